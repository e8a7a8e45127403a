#!/usr/bin/env python3
"""Accepted means loadable: mutants of the corpus that ksc accepts must load into the kernel.

For every kernel-side `.ks` file under the given roots, seeded mutations that mostly keep a
program well-formed — another integer literal (offsets, indexes, sizes, verdicts), another
comparison or arithmetic operator, a statement line deleted or duplicated — are written next to
a copy of the original (so relative includes resolve) and given to `ksc verify`:

* exit 1 without E0901: ksc rejected the mutant (fine, whatever the code);
* exit 0: every program loaded;
* E0901 where the kernel refused a program *before verification* for a feature it lacks (no
  module support, fentry refused, no BPF LSM, kprobes off): a feature refusal, counted apart;
* E0901 for a loop the verifier proves endless (a mutation such as `i = i * 1` makes one; no
  compiler can decide termination in general): counted apart;
* any other E0901: ksc accepted a program the kernel rejects — a failure, listed as
  `REJECTED <mutant>: <reason>`.

A crash, an internal compiler error or a timeout is a failure too. Output ends with
`kernel-acceptance: N mutants, A accepted by ksc, F feature refusals, E endless loops, R rejected by
the kernel, C crashes`.
Exit status 1 when R > 0 or anything crashed. Deterministic for a given --seed; standard
library only.
"""

import argparse
import concurrent.futures
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

INT_RE = re.compile(rb"(?<![\w.])(?:0x[0-9a-fA-F]+|\d+)(?![\w.])")
CMP_RE = re.compile(rb"(?<![<>=!])(?:<=|>=|==|!=|<|>)(?![<>=])")
ARITH_RE = re.compile(rb"(?<=\s)[+\-*](?=\s)")
LITERALS = [b"0", b"1", b"2", b"3", b"7", b"8", b"13", b"14", b"20", b"34", b"54", b"60", b"64",
            b"255", b"256", b"512", b"4096", b"65534", b"65535", b"65536", b"0xffffffff"]
CMPS = [b"<", b"<=", b">", b">=", b"==", b"!="]
ARITH = [b"+", b"-", b"*"]

# The kernel lacks the feature: the program is refused before the verifier looks at it.
FEATURE_REFUSALS = [
    "before verification",
    "no loadable module support",
    "CONFIG_MODULES",
]


def is_kernel_unit(data):
    return re.search(rb"^\s*@(xdp|tc|tracepoint|tp_btf|probe|kprobe|perf_event|lsm|cgroup_skb|helper|struct_ops)\b", data, re.M) is not None


def mutate(data, rng):
    """One mutation of a random kind; None when the kind finds nothing to change."""
    kind = rng.choice(["int", "int", "int", "cmp", "arith", "delete", "duplicate"])
    if kind in ("int", "cmp", "arith"):
        regex, pool = {"int": (INT_RE, LITERALS), "cmp": (CMP_RE, CMPS), "arith": (ARITH_RE, ARITH)}[kind]
        body_start = first_code_line(data)
        spots = [m for m in regex.finditer(data) if m.start() >= body_start]
        if not spots:
            return None
        m = rng.choice(spots)
        return data[:m.start()] + rng.choice(pool) + data[m.end():]
    lines = data.split(b"\n")
    code = [i for i, l in enumerate(lines) if l.strip() and not l.strip().startswith(b"//") and l.startswith(b"    ")]
    if not code:
        return None
    i = rng.choice(code)
    if kind == "delete":
        del lines[i]
    else:
        lines.insert(i, lines[i])
    return b"\n".join(lines)


def first_code_line(data):
    """Offset past the leading comment block (directives stay as they are)."""
    off = 0
    for line in data.split(b"\n"):
        if line.strip().startswith(b"//") or not line.strip():
            off += len(line) + 1
            continue
        break
    return off


def judge(proc, timed_out):
    """(verdict, reason): accepted / ksc-rejected / feature / rejected / crash."""
    err = proc.stderr.decode("utf-8", "replace") if proc else ""
    if timed_out:
        return "crash", "timeout"
    if proc.returncode not in (0, 1) or "panicked" in err or "internal compiler error" in err:
        first = next((l for l in err.splitlines() if "internal compiler error" in l or "panicked" in l), err[:200])
        return "crash", "exit %d: %s" % (proc.returncode, first.strip())
    if proc.returncode == 0:
        return "accepted", ""
    rejections = [l for l in err.splitlines() if "error[E0901]" in l]
    if not rejections:
        return "ksc-rejected", ""
    real = [l for l in rejections if not any(f in l for f in FEATURE_REFUSALS)]
    if real and "infinite loop detected" in err:
        return "endless", ""
    if real:
        return "rejected", real[0].split("error[E0901]: ", 1)[-1][:300]
    return "feature", ""


def run_one(ksc, path, timeout, flags=()):
    try:
        proc = subprocess.run([ksc, "verify", *flags, path], capture_output=True, timeout=timeout, cwd=os.path.dirname(path))
        return judge(proc, False)
    except subprocess.TimeoutExpired:
        return judge(None, True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ksc", required=True)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--per-file", type=int, default=6, help="mutants of each kernel-side file")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--flag", action="append", default=[], help="passed to `ksc verify` (-O0)")
    ap.add_argument("--keep", help="copy each mutant the kernel rejected, proved endless or that crashed ksc into this directory")
    ap.add_argument("roots", nargs="+")
    opts = ap.parse_args(argv)
    opts.ksc = os.path.abspath(opts.ksc)

    tmp = tempfile.mkdtemp(prefix="ksc-kernel-acceptance-")
    try:
        jobs = []
        for n, root in enumerate(opts.roots):
            copy = os.path.join(tmp, "r%d" % n)
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns("Output", "*.o"))
            for dirpath, _, files in os.walk(copy):
                for f in sorted(files):
                    if not f.endswith(".ks"):
                        continue
                    path = os.path.join(dirpath, f)
                    data = open(path, "rb").read()
                    # Only programs that load as written: a case that shows a rejection
                    # (lit-tests/verify/rejected.ks) says nothing about its mutants.
                    if not is_kernel_unit(data) or run_one(opts.ksc, path, opts.timeout, opts.flag)[0] not in ("accepted", "feature"):
                        continue
                    rel = os.path.relpath(path, copy)
                    # Seeded by the root's name, not its path: a clone elsewhere (CI checks out
                    # into another directory) makes the same mutants.
                    name = os.path.join(os.path.basename(os.path.normpath(root)), rel)
                    for k in range(opts.per_file):
                        rng = random.Random("%s:%s:%d" % (opts.seed, name, k))
                        mutant = None
                        for _ in range(8):
                            mutant = mutate(data, rng)
                            if mutant is not None and mutant != data:
                                break
                        if mutant is None or mutant == data:
                            continue
                        out = os.path.join(dirpath, "%s.m%d.ks" % (f[:-3], k))
                        open(out, "wb").write(mutant)
                        jobs.append((name + " m%d" % k, out))
        counts = {"accepted": 0, "ksc-rejected": 0, "feature": 0, "endless": 0, "rejected": 0, "crash": 0}
        with concurrent.futures.ThreadPoolExecutor(max_workers=opts.jobs) as pool:
            results = pool.map(lambda j: (j, run_one(opts.ksc, j[1], opts.timeout, opts.flag)), jobs)
            for (label, path), (verdict, reason) in results:
                counts[verdict] += 1
                if verdict == "rejected":
                    print("REJECTED %s: %s" % (label, reason))
                elif verdict == "crash":
                    print("CRASH %s: %s" % (label, reason))
                elif verdict == "endless":
                    print("ENDLESS %s" % label)
                if opts.keep and verdict in ("rejected", "crash", "endless"):
                    os.makedirs(opts.keep, exist_ok=True)
                    shutil.copy(path, os.path.join(opts.keep, label.replace("/", "_").replace(" ", ".") + ".ks"))
        built = counts["accepted"] + counts["feature"] + counts["endless"] + counts["rejected"]
        print("kernel-acceptance: %d mutants, %d accepted by ksc, %d feature refusals, %d endless loops, %d rejected by the kernel, %d crashes"
              % (len(jobs), built, counts["feature"], counts["endless"], counts["rejected"], counts["crash"]))
        return 1 if counts["rejected"] or counts["crash"] else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
