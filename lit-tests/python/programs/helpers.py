"""Python functions a KernelScript unit calls through `import helpers from "helpers.py"`."""

import os


class Denied(Exception):
    """Thrown into KernelScript with code 13 (its `code` attribute)."""
    code = 13


def add(a, b):
    return a + b


def negate(x):
    return -x


def default_mtu():
    return 1500


def is_big(n):
    return n > 100


def greet(name):
    return "hello, " + name


def upper(s):
    return s.upper()


def length(s):
    return len(s)


def initial(name):
    return name[0].upper()


def promote(p):
    return {"id": p["id"] + 1, "name": p["name"].upper(), "admin": not p["admin"], "level": p["level"] * 2}


def partial():
    # `level` missing: it stays zero
    return {"id": 1, "name": "partial"}


def too_big():
    return 300


def not_an_int():
    return "300"


def long_name():
    return "x" * 40


def deny(who):
    raise Denied("no entry for " + who)


def boom():
    raise ValueError("bad value")


def side_effect(path):
    with open(path, "w") as f:
        f.write("written by Python\n")


def neighbour():
    # The module's own directory is on sys.path: it can import its neighbours.
    import helper_neighbour
    return helper_neighbour.VALUE
