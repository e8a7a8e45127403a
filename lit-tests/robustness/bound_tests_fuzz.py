#!/usr/bin/env python3
"""Accepted means loadable for values the source's own tests bound on both sides.

Generates seeded kernel programs in which a value (a packet byte, a 16-bit packet number, a
masked byte, a context field) is tested against a lower and an upper constant, in the shapes
users write them — one `&&`, a negated `||` that leaves, one test inside the other's arm, two
early exits, two exits that count alike, the upper test first, with or without a constant
added — and then indexes a stack array or a map value's array, sizes a helper's read, offsets a
packet pointer or is passed to a function that indexes with it. ksc trusts those tests and adds
no check, so every program it accepts must load: LLVM folds such pairs into one test of a
derived value, from which the verifier learns nothing (see passes/separate-bound-tests.ks).

usage: bound_tests_fuzz.py KSC SEED COUNT [ksc flags...]
Prints `REJECTED`/`CRASH` lines and ends with `N programs: A loaded, R refused by ksc, B bad`.
"""

import os
import random
import subprocess
import sys
import tempfile

MAPS = """
struct Slots {
    len: u32,
    hits: u64[16],
}
var slots : array<u32, Slots>(1)
var seen : array<u32, u64>(4)
"""

XDP_HEAD = """@xdp fn p(ctx: *xdp_md) -> xdp_action {
    var data = ctx->data
    if (data + 64 > ctx->data_end) {
        return XDP_PASS
    }
"""

TC_HEAD = """@tc("ingress") fn p(ctx: *__sk_buff) -> i32 {
"""


def at_least(v, lo, form, holds):
    """A test of `v >= lo` (lo >= 1) written as `form`; its negation when not `holds`."""
    tests = {
        "ge": (f"{v} >= {lo}", f"{v} < {lo}"),
        "gt": (f"{v} > {lo - 1}", f"{v} <= {lo - 1}"),
        "nonzero": (f"{v} != 0", f"{v} == 0") if lo == 1 else (f"{v} >= {lo}", f"{v} < {lo}"),
        "not_below": (f"!({v} < {lo})", f"{v} < {lo}"),
    }
    return tests[form][0 if holds else 1]


def below(v, hi, form, holds):
    """A test of `v < hi` written as `form`; its negation when not `holds`."""
    tests = {
        "lt": (f"{v} < {hi}", f"{v} >= {hi}"),
        "le": (f"{v} <= {hi - 1}", f"{v} > {hi - 1}"),
        "not_above": (f"!({v} > {hi - 1})", f"{v} > {hi - 1}"),
        "not_at_least": (f"!({v} >= {hi})", f"{v} >= {hi}"),
    }
    return tests[form][0 if holds else 1]


def program(rnd):
    kind = rnd.choice(["xdp", "tc"])
    size = rnd.choice([8, 16, 24, 32])
    lo = rnd.choice([1, 1, 2, 3, 4])
    hi = rnd.randint(lo + 1, size)
    added = rnd.choice([0, 0, 1, 2])
    low_form = rnd.choice(["ge", "gt", "nonzero", "not_below"])
    high_form = rnd.choice(["lt", "le", "not_above", "not_at_least"])
    shape = rnd.choice(["and", "upper_first", "or_exit", "nested", "exits", "counted_exits"])
    uses = ["stack", "helper", "callee"] + (["value"] if size <= 16 else [])
    use = rnd.choice(uses + (["packet"] if kind == "xdp" else []))
    if kind == "xdp":
        head, ok, drop = XDP_HEAD, "XDP_PASS", "XDP_DROP"
        source = rnd.choice(["*(data + 1) as u32",
                             "((*(data + 12) as u32) << 8 | *(data + 13) as u32)",
                             "(*(data + 5) as u32) & 63"])
    else:
        head, ok, drop = TC_HEAD, "0", "2"
        source = rnd.choice(["ctx->len", "ctx->mark", "ctx->len & 255"])
    v = "n" if added == 0 else f"n + {added}"
    lo, hi = lo + added, hi + added
    act = {
        "stack": "buf[n] = 1\n        seen[0] += buf[n] as u64",
        "value": "var s = slots[0]\n        if (s != null) {\n            s.hits[n] += 1\n        }",
        "helper": "seen[2] += bpf_csum_diff(&buf[0], n, &buf[0], n, 0) as u64",
        "callee": "poke(n)",
        "packet": "var q = data + n\n        if (q + 1 <= ctx->data_end) {\n"
                  "            seen[3] += *q as u64\n        }",
    }[use]
    low, high = at_least(v, lo, low_form, True), below(v, hi, high_form, True)
    not_low, not_high = at_least(v, lo, low_form, False), below(v, hi, high_form, False)
    body = f"    var n = {source}\n    var buf: u8[{size}]\n"
    if shape == "and":
        body += f"    if ({low} && {high}) {{\n        {act}\n    }}\n"
    elif shape == "upper_first":
        body += f"    if ({high} && {low}) {{\n        {act}\n    }}\n"
    elif shape == "or_exit":
        body += f"    if ({not_low} || {not_high}) {{\n        return {drop}\n    }}\n    {act}\n"
    elif shape == "nested":
        body += f"    if ({low}) {{\n        if ({high}) {{\n            {act}\n        }}\n    }}\n"
    else:
        count = "        seen[1] += 1\n" if shape == "counted_exits" else ""
        body += (f"    if ({not_low}) {{\n{count}        return {drop}\n    }}\n"
                 f"    if ({not_high}) {{\n{count}        return {drop}\n    }}\n    {act}\n")
    callee = (f"@helper\nfn poke(i: u32) {{\n    var b: u8[{size}]\n    b[i] = 3\n"
              f"    seen[0] += b[1] as u64\n}}\n")
    text = (MAPS + callee + head + body + f"    return {ok}\n}}\n\n"
            "fn main() -> i32 {\n    return 0\n}\n")
    return text, f"{kind} {shape} {use} {low_form}/{high_form} +{added - 0}"


def main():
    ksc, seed, count, flags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    rnd = random.Random(seed)
    loaded = refused = bad = 0
    with tempfile.TemporaryDirectory(prefix="ksc-bound-tests-") as tmp:
        for i in range(count):
            text, what = program(rnd)
            path = os.path.join(tmp, f"p{i}.ks")
            with open(path, "w") as f:
                f.write(text)
            run = subprocess.run([ksc, "verify", *flags, path], capture_output=True, text=True,
                                 timeout=120)
            out = run.stdout + run.stderr
            if run.returncode not in (0, 1) or "panicked" in out or "internal" in out.lower():
                bad += 1
                print(f"CRASH program {i} ({what}): exit {run.returncode}")
            elif "E0901" in out:
                bad += 1
                reason = next((l for l in out.splitlines() if l.startswith("rejected")), "")
                print(f"REJECTED program {i} ({what}): {reason}")
                print(text)
            elif run.returncode == 0:
                loaded += 1
            else:
                refused += 1
                print(f"refused by ksc: program {i} ({what}): {out.splitlines()[0] if out else ''}")
    print(f"{count} programs: {loaded} loaded, {refused} refused by ksc, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
