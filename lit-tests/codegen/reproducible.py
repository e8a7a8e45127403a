"""Compiles every example and bench program's kernel side twice, in two processes (each with its
own hash seeds and addresses), and compares the objects byte for byte: a rewrite that walks a
hash set in its own order would make the object differ from run to run."""
import glob
import os
import subprocess
import sys
import tempfile

ksc, *roots = sys.argv[1:]
files = sorted(f for root in roots for f in glob.glob(os.path.join(root, "*.ks")))
compared = differ = 0
with tempfile.TemporaryDirectory() as tmp:
    for f in files:
        objects = []
        for run in ("a", "b"):
            out = os.path.join(tmp, run + ".o")
            r = subprocess.run([ksc, "--emit=obj", "-o", out, f], capture_output=True, timeout=60)
            if r.returncode != 0:
                break
            with open(out, "rb") as o:
                objects.append(o.read())
        if len(objects) != 2:
            continue
        compared += 1
        if objects[0] != objects[1]:
            differ += 1
            print(f"DIFFER {f}")
print(f"{compared} objects compared, {differ} differ")
sys.exit(1 if differ or compared < 100 else 0)
