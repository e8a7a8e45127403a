"""Compiles both sides of every example and conformance case that type-checks: the kernel side
to a BPF object and the userspace side (program and test runner) to a native object. Each must
succeed, with no internal error."""
import glob
import os
import subprocess
import sys
import tempfile

ksc, examples, conformance = sys.argv[1:4]
files = sorted(glob.glob(os.path.join(examples, "*.ks")))
files += sorted(f for f in glob.glob(os.path.join(conformance, "**", "*.ks"), recursive=True) if "/_" not in f)
units = bad = 0
with tempfile.TemporaryDirectory() as tmp:
    for f in files:
        if subprocess.run([ksc, "check", f], capture_output=True).returncode != 0:
            continue
        units += 1
        for flags in (["--emit=obj"], ["--target=host", "--emit=obj"], ["--target=host", "--emit=obj", "--test"]):
            r = subprocess.run([ksc, *flags, "-o", os.path.join(tmp, "x.o"), f], capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or "E0999" in r.stderr:
                bad += 1
                print(f"FAIL {' '.join(flags)} {f}: exit {r.returncode}: {r.stderr[:300]}")
print(f"{units} units compiled, {bad} failure(s)")
sys.exit(1 if bad or units < 100 else 0)
