"""Runs `ksc verify` on every example with kernel-side code. Each must load into the running
kernel, except those using constructs the BPF back end does not emit yet (listed below, each
expected to fail with that message, so the list shrinks as the back end grows)."""
import glob
import os
import subprocess
import sys

ksc, examples = sys.argv[1:3]
PENDING = {
    "cpu_profiler.ks": "CO-RE",
    "exec_snoop.ks": "CO-RE",
    "flow_hash_kfunc.ks": "kfunc",
    "lsm_exec_guard.ks": "CO-RE",
    "sched_switch_count.ks": "CO-RE",
    "tcp_gentle_reno.ks": "CO-RE",
    "vfs_read_top.ks": "CO-RE",
}
bad = ok = 0
for f in sorted(glob.glob(os.path.join(examples, "*.ks"))):
    name = os.path.basename(f)
    r = subprocess.run([ksc, "verify", f], capture_output=True, text=True, timeout=120)
    if name in PENDING:
        if r.returncode == 0 or PENDING[name] not in r.stderr:
            bad += 1
            print(f"UNEXPECTED {name}: exit {r.returncode}: {r.stderr[:300]}")
        continue
    if r.returncode != 0:
        bad += 1
        print(f"FAIL {name}: {r.stdout[-300:]} {r.stderr[:600]}")
    else:
        ok += 1
print(f"{ok} examples verified, {len(PENDING)} pending, {bad} failure(s)")
sys.exit(1 if bad else 0)
