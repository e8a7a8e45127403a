"""Builds each program's kernel object under valgrind; prints each build with memory errors and
a summary line."""
import os
import subprocess
import sys

ksc, programs = sys.argv[1], sys.argv[2:]
failed = 0
for path in programs:
    run = subprocess.run(
        ["valgrind", "--error-exitcode=9", "-q", ksc, "--emit=obj", "-o", os.devnull, path],
        capture_output=True, text=True, timeout=600, cwd=os.path.dirname(path) or ".",
    )
    if run.returncode == 9:
        failed += 1
        print(f"memory error building {path}:\n{run.stderr[:3000]}")
    elif run.returncode != 0:
        failed += 1
        print(f"memory error? ksc exited {run.returncode} building {path}:\n{run.stderr[:3000]}")
print(f"{len(programs)} builds, {failed} with memory errors")
