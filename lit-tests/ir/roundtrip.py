"""Lowers every example and conformance case that type-checks and checks that the ks-ir (and,
when given, the bpf-ir and host-ir pipelines) verifies and round-trips: print -> parse -> print is
byte-identical. Prints one line per failure and a summary; exits 1 on any failure."""
import glob
import os
import subprocess
import sys
import tempfile

ksc, examples, conformance = sys.argv[1:4]
emits = sys.argv[4:] or ["ks-ir"]
files = sorted(glob.glob(os.path.join(examples, "*.ks")))
files += sorted(f for f in glob.glob(os.path.join(conformance, "**", "*.ks"), recursive=True) if "/_" not in f)

def run(args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True, timeout=60)

checked = failures = 0
with tempfile.TemporaryDirectory() as tmp:
    for f in files:
        if run([ksc, "check", f]).returncode != 0:
            continue
        checked += 1
        for emit in emits:
            first = run([ksc, "--emit=" + emit, f])
            if first.returncode != 0:
                failures += 1
                print(f"FAIL {f} --emit={emit}: {first.stderr.decode(errors='replace')[:300]}")
                continue
            path = os.path.join(tmp, "m.ksir")
            with open(path, "wb") as out:
                out.write(first.stdout)
            second = run([ksc, "opt", path])
            if second.returncode != 0 or second.stdout != first.stdout:
                failures += 1
                print(f"FAIL {f} --emit={emit}: the textual form does not round-trip: {second.stderr.decode(errors='replace')[:300]}")
print(f"{checked} units, {len(emits)} level(s), {failures} failure(s)")
sys.exit(1 if failures or checked < 100 else 0)
