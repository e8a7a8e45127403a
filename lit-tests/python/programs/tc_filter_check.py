"""Run by exec_tc through exec() in the VM: the clsact filter and the unit's kernel module are
there while Python runs."""
import subprocess
import sys

import exec_tc as ks

iface = sys.argv[sys.argv.index("--iface") + 1]
shown = subprocess.run(["tc", "filter", "show", "dev", iface, "ingress"], stdout=subprocess.PIPE, text=True).stdout
print(("ok: " if "mark" in shown else "FAIL: ") + "the TC program is attached as a clsact filter while Python runs", flush=True)
print(("ok: " if ks.seen[0] >= 0 else "FAIL: ") + "the module reads the map", flush=True)
with open("/proc/modules") as modules:
    loaded = any(line.startswith("exec_tc_kmod ") for line in modules)
print(("ok: " if loaded else "FAIL: ") + "the unit's kernel module is loaded while Python runs", flush=True)
sys.exit(0 if "mark" in shown and loaded else 1)
