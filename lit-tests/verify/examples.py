"""Runs `ksc verify` on every example with kernel-side code. Each must load into the running
kernel, except:
- examples this machine's kernel refuses before verification (fentry/fexit/lsm programs are
  EPERM here; a kfunc of the unit's own module cannot exist without CONFIG_MODULES): their
  object must still build, and verify must report exactly that refusal;
- examples using constructs the back end does not emit yet (none today), expected to fail with
  that message, so the list shrinks as the back end grows.
Arguments after the examples folder are passed to `ksc verify` (`-O0`, `--bpf-cpu=v2`)."""
import glob
import os
import subprocess
import sys

ksc, examples = sys.argv[1:3]
flags = sys.argv[3:]
REFUSED_HERE = {
    "flow_hash_kfunc.ks": "the kfunc `flow_hash` is this unit's own, and ",
    "lsm_exec_guard.ks": "refused the lsm program before verification: Operation not permitted",
    "vfs_read_top.ks": "refused the fentry program before verification: Operation not permitted",
}
PENDING: dict = {}
bad = ok = refused = 0
for f in sorted(glob.glob(os.path.join(examples, "*.ks"))):
    name = os.path.basename(f)
    r = subprocess.run([ksc, "verify", *flags, f], capture_output=True, text=True, timeout=120)
    if name in REFUSED_HERE:
        refused += 1
        built = subprocess.run([ksc, "--emit=obj", *flags, "-o", os.devnull, f], capture_output=True, text=True, timeout=120)
        if built.returncode != 0 or REFUSED_HERE[name] not in r.stdout + r.stderr:
            bad += 1
            print(f"UNEXPECTED {name}: build exit {built.returncode}, verify: {r.stdout[-200:]} {r.stderr[:300]}")
        continue
    if name in PENDING:
        if r.returncode == 0 or PENDING[name] not in r.stdout + r.stderr:
            bad += 1
            print(f"UNEXPECTED {name}: exit {r.returncode}: {r.stderr[:300]}")
        continue
    if r.returncode != 0:
        bad += 1
        print(f"FAIL {name}: {r.stdout[-300:]} {r.stderr[:600]}")
    else:
        ok += 1
print(f"{ok} examples verified, {refused} refused by this kernel, {len(PENDING)} pending, {bad} failure(s)")
sys.exit(1 if bad else 0)
