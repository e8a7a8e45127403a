"""Writes the module of each unit given and compiles it with the kernel's own build system
against the installed kernel headers (Debian's linux-headers-amd64), warnings as errors: the C
ksc writes must compile, not just look right."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

ksc, units = sys.argv[1], sys.argv[2:]
trees = sorted(glob.glob("/usr/src/linux-headers-*-amd64"))
if not trees:
    print("FAIL no kernel headers under /usr/src (install linux-headers-amd64)")
    sys.exit(1)
tree = trees[-1]
failed = 0
for unit in units:
    base = os.path.splitext(os.path.basename(unit))[0]
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([ksc, "--target=kmod", unit, "-o", out], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL {base}: ksc: {r.stderr.strip()[:500]}")
            failed += 1
            continue
        r = subprocess.run(["make", "-s", "-C", tree, f"M={out}", "KCFLAGS=-Werror", "modules"], capture_output=True, text=True)
        ko = os.path.join(out, f"{base}_kmod.ko")
        if r.returncode != 0 or not os.path.exists(ko):
            print(f"FAIL {base}: make: {(r.stdout + r.stderr).strip()[:2000]}")
            failed += 1
            continue
        print(f"ok {base}_kmod.ko against {os.path.basename(tree)}")
print(f"{len(units)} modules, {failed} failure(s)")
sys.exit(1 if failed else 0)
