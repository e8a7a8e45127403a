"""Functions the conformance cases call through `import … from "…py"` (§15.8)."""


class Refused(Exception):
    code = 7


def add(a, b):
    return a + b


def greet(name):
    return "hi " + name


def swap(p):
    return {"x": p["y"], "y": p["x"]}


def is_even(n):
    return n % 2 == 0


def refuse():
    raise Refused("refused")


def fail():
    raise RuntimeError("failed on purpose")
