"""`ksc verify FLAGS` on every conformance case of the given folders that has kernel-side code:
each must load, except for programs this kernel refuses before verification (a feature it
lacks, or a kfunc of the unit's own module, which cannot be loaded without CONFIG_MODULES), which are
counted apart. The conformance runner itself verifies at the default level;
this covers the others (-O0, older BPF CPU versions)."""
import glob
import os
import subprocess
import sys

ksc, flags, folders = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
ok = refused = bad = 0
for folder in folders:
    for f in sorted(glob.glob(os.path.join(folder, "*.ks"))):
        r = subprocess.run([ksc, "verify", *flags, f], capture_output=True, text=True, timeout=120)
        out = r.stdout + r.stderr
        if "no kernel-side programs" in out or ("error[" in out and "E0901" not in out):
            continue
        rejected = [l for l in r.stdout.splitlines() if l.startswith("rejected ")]
        refusals = ("before verification", "nor a loaded module's BTF", "is this unit's own, and ")
        if rejected and all(any(why in l for why in refusals) for l in rejected):
            refused += 1
        elif r.returncode == 0:
            ok += 1
        else:
            bad += 1
            print(f"FAIL {os.path.relpath(f, os.path.dirname(folder))}: {(rejected or [r.stderr[:300]])[0]}")
print(f"{ok} cases verified, {refused} refused by this kernel, {bad} failure(s)")
sys.exit(1 if bad else 0)
