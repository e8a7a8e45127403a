"""Writes the module of each unit given and compiles it with the kernel's own build system
against every installed tree of kernel headers (Debian 12's linux-headers-amd64, 6.1, and
linux-headers-6.12-amd64 where installed: the kfunc markers differ, __bpf_kfunc from 6.2 and
BTF_KFUNCS_START from 6.9), warnings as errors: the C ksc writes must compile, not just look
right."""
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
failed = 0
for tree, unit in [(t, u) for u in units for t in trees]:
    base = os.path.splitext(os.path.basename(unit))[0]
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([ksc, "--target=kmod", unit, "-o", out], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL {base} against {os.path.basename(tree)}: ksc: {r.stderr.strip()[:500]}")
            failed += 1
            continue
        r = subprocess.run(["make", "-s", "-C", tree, f"M={out}", "KCFLAGS=-Werror", "modules"], capture_output=True, text=True)
        ko = os.path.join(out, f"{base}_kmod.ko")
        if r.returncode != 0 or not os.path.exists(ko):
            print(f"FAIL {base} against {os.path.basename(tree)}: make: {(r.stdout + r.stderr).strip()[:2000]}")
            failed += 1
            continue
        print(f"ok {base}_kmod.ko against {os.path.basename(tree)}")
print(f"{len(units)} modules x {len(trees)} kernel(s), {failed} failure(s)")
sys.exit(1 if failed else 0)
