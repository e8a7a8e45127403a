#!/usr/bin/env python3
"""usage: expect_exit.py STATUS CMD [ARGS...]

Runs CMD with its stderr merged into stdout (which it copies), and succeeds iff CMD exits with
exactly STATUS; lit's `not` accepts any failure, but aborts (§13.4) must exit 101."""
import subprocess
import sys

want = int(sys.argv[1])
p = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
sys.stdout.buffer.write(p.stdout)
if p.returncode != want:
    print("expect_exit.py: exit status %d, expected %d" % (p.returncode, want))
    sys.exit(1)
