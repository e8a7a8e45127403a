"""Differential check of if-chains-to-switch and switch-to-table: random large matches and
else-if chains over every integer type (dense, holed, sparse and duplicated cases; constant and
identity arms), each compiled into an executable that compares the function's result on probe
values — every case's neighbours, the type's extremes, random values — with this script's
oracle. Exits 1 naming the first program that disagrees (kept in --dir).

usage: switch_fuzz.py --ksc KSC --dir DIR [--seed S] [--count N]
"""
import argparse
import os
import random
import subprocess
import sys

TYPES = {"u8": (8, False), "u16": (16, False), "u32": (32, False), "u64": (64, False),
         "i8": (8, True), "i16": (16, True), "i32": (32, True), "i64": (64, True)}


def domain(ty):
    bits, signed = TYPES[ty]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def case_set(rng, ty, n):
    lo, hi = domain(ty)
    style = rng.choice(["dense", "holes", "sparse", "edges"])
    width = hi - lo + 1
    if style == "dense" or width <= 4 * n:
        start = rng.randint(lo, max(lo, hi - n + 1))
        cases = list(range(start, min(hi, start + n - 1) + 1))
    elif style == "holes":
        start = rng.randint(lo, max(lo, hi - 3 * n))
        cases = [k for k in range(start, start + 3 * n) if rng.random() < 0.6][:n]
    elif style == "sparse":
        cases = sorted(rng.sample(range(lo, hi + 1), n)) if width < 1 << 62 else \
            sorted({rng.randint(lo, hi) for _ in range(n)})
    else:
        # Both ends of the type's range: offsets wrap around in u64.
        cases = list(range(lo, lo + n // 2)) + list(range(hi - n // 2 + 1, hi + 1))
    rng.shuffle(cases)
    return cases


def program(rng, ty):
    lo, hi = domain(ty)
    n = rng.randint(256, 420)
    cases = case_set(rng, ty, n)
    form = rng.choice(["match", "chain-assign", "chain-return"])
    if form != "match" and rng.random() < 0.3:
        cases += rng.sample(cases, 5)        # repeated tests: the first one wins
    identity = rng.random() < 0.2
    values = {}
    arms = []
    for k in cases:
        v = rng.randint(lo, hi)
        arms.append((k, v))
        values.setdefault(k, k if identity else v)
    default = rng.randint(lo, hi)

    def arm_value(v):
        return "x" if identity else str(v)

    if form == "match":
        # A match's repeated case is an error, so matches get distinct cases.
        seen, unique = set(), []
        for k, v in arms:
            if k not in seen:
                seen.add(k)
                unique.append((k, v))
        body = "".join(f"        {k}: {arm_value(v)},\n" for k, v in unique)
        src = f"fn pick(x: {ty}) -> {ty} {{\n    return match (x) {{\n{body}        default: {default},\n    }}\n}}\n"
    elif form == "chain-assign":
        links = " else ".join(f"if (x == {k}) {{\n        r = {arm_value(v)}\n    }}" for k, v in arms)
        src = (f"fn pick(x: {ty}) -> {ty} {{\n    var r: {ty} = {default}\n    {links}\n"
               f"    return r\n}}\n")
    else:
        links = " else ".join(f"if ({k} == x) {{\n        return {arm_value(v)}\n    }}" for k, v in arms)
        src = f"fn pick(x: {ty}) -> {ty} {{\n    {links}\n    return {default}\n}}\n"

    probes = {lo, hi, lo + 1, hi - 1}
    for k in rng.sample(cases, min(40, len(cases))):
        probes.update({k, k - 1, k + 1})
    probes.update({min(cases) - 1, max(cases) + 1})
    probes.update(rng.randint(lo, hi) for _ in range(20))
    probes = sorted(p for p in probes if lo <= p <= hi)
    checks = "".join(
        f"    p = {p}\n    if (pick(p) != {values.get(p, default)}) {{\n        return {i + 1}\n    }}\n"
        for i, p in enumerate(probes[:250]))
    src += f"\nfn main() -> i32 {{\n    var p: {ty} = 0\n{checks}    return 0\n}}\n"
    return src, probes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ksc", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=30)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    for i in range(a.count):
        ty = rng.choice(list(TYPES))
        src, probes = program(rng, ty)
        path = os.path.join(a.dir, f"fuzz{i}.ks")
        with open(path, "w") as f:
            f.write(src)
        out = os.path.join(a.dir, f"fuzz{i}.d")
        b = subprocess.run([a.ksc, "build", path, "-o", out], capture_output=True, text=True)
        if b.returncode != 0:
            print(f"{path}: ksc build failed:\n{b.stderr[-2000:]}")
            return 1
        r = subprocess.run([os.path.join(out, f"fuzz{i}")], capture_output=True, text=True)
        if r.returncode != 0:
            bad = probes[r.returncode - 1] if 0 < r.returncode <= len(probes) else "?"
            print(f"{path} ({ty}): pick({bad}) disagrees with the oracle (exit {r.returncode})")
            return 1
        subprocess.run(["rm", "-rf", out])
    print(f"switch fuzz: {a.count} programs agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
