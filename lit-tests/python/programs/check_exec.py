"""Run by exec_xdp through exec(): checks the unit's module over the inherited descriptors.

Prints `ok: ...` per check; exits 0, or 1 at the first failure. PY_NS / PY_HOST_IP name the
network namespace and the address to ping so that packets cross the attached XDP program."""
import os
import subprocess
import sys

import exec_xdp as ks


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        sys.exit(1)


def ping(n):
    return subprocess.run(["ip", "netns", "exec", os.environ["PY_NS"], "ping", "-c", str(n), "-i", "0.2", "-W", "1",
                           os.environ["PY_HOST_IP"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def raises(exc, f):
    try:
        f()
    except exc:
        return True
    return False


fds = dict(e.split("=", 1) for e in os.environ["KSC_FDS"].split(";"))
check(all(k in fds for k in ("map:counts", "map:flows", "map:per_cpu", "prog:watch", "link:watch", "global:icmp_seen")),
      "KSC_FDS names the maps, the program, its link and the globals")
check(os.readlink("/proc/self/fd/" + fds["link:watch"]) == "anon_inode:bpf_link", "the attachment is an inherited bpf_link")
named = {int(v.split(":")[0]) for v in fds.values()}


def target(fd):
    try:
        return os.readlink("/proc/self/fd/" + fd)
    except OSError:  # the descriptor listdir itself used
        return ""


bpf_fds = {int(fd) for fd in os.listdir("/proc/self/fd") if target(fd).startswith("anon_inode:bpf")}
check(bpf_fds <= named, "every inherited BPF descriptor is one KSC_FDS names (%s, %s)" % (sorted(bpf_fds), sorted(named)))
check(sys.argv[1:3] == ["--iface", os.environ["PY_IFACE"]], "the script gets the executable's arguments (%s)" % sys.argv)

check(ks.counts[3] == 33, "reads the array entry main wrote before exec")
f = ks.flows[1]
check((f.packets, f.bytes, f.tag, f.seen) == (5, 1500, "ks", True), "reads the struct value main wrote, field by field (%r)" % f)
check(f["tag"] == "ks" and f._asdict()["bytes"] == 1500, "a struct value is also a mapping")
check((ks.policy.drop_icmp, ks.policy.limit) == (False, 7), "reads the config defaults")

check(ping(3) == 0, "pings cross the attached program")
check(ks.counts[0] == 3, "the program counted 3 ICMP packets (%d)" % ks.counts[0])
check(ks.icmp_seen == 3, "the global the program increments reads 3 (%d)" % ks.icmp_seen)
pc = ks.per_cpu[0]
check(isinstance(pc, list) and len(pc) >= os.cpu_count() and sum(pc) == 3,
      "the per-CPU map reads one value per CPU, summing to 3 (%s)" % pc)

ks.icmp_seen = 1000
ks.policy.limit = 5
check(ks.policy.limit == 5, "writes a config field")
ks.policy.drop_icmp = True
check(ping(2) != 0, "pings are dropped once Python set the config's drop_icmp")
check(ks.counts[1] == 2, "the program saw the config Python wrote (dropped %d)" % ks.counts[1])
check(ks.icmp_seen == 1002, "the program saw the global Python wrote (%d)" % ks.icmp_seen)

ks.counts[2] = 99
check(ks.counts[2] == 99 and ks.counts.get(2) == 99, "writes an array entry")
check(raises(IndexError, lambda: ks.counts[4]), "an index past the array is IndexError")
check(raises(OverflowError, lambda: ks.counts.__setitem__(0, -1)), "a value out of the value type's range is refused")
check(len(ks.counts) == 4 and list(ks.counts.keys()) == [0, 1, 2, 3], "an array has its max_entries keys")
ks.flows[2] = {"packets": 1, "tag": "py"}
ks.flows[3] = ks.Flow(packets=9, bytes=3, tag="obj", seen=True)
check(2 in ks.flows and ks.flows[2].tag == "py" and ks.flows[2].seen is False, "writes a struct value from a dict (missing fields zero)")
check(ks.flows[3] == {"packets": 9, "bytes": 3, "tag": "obj", "seen": True}, "writes a struct value from its class")
check(sorted(ks.flows) == [1, 2, 3] and len(ks.flows) == 3 and dict(ks.flows.items())[3].bytes == 3, "iterates a hash map")
del ks.flows[2]
check(2 not in ks.flows and raises(KeyError, lambda: ks.flows[2]), "deletes an entry; a missing key is KeyError")
check(raises(KeyError, lambda: ks.flows.__delitem__(2)), "deleting a missing key is KeyError")
ks.per_cpu[0] = 0
check(ks.per_cpu[0] == [0] * len(pc), "one value written to a per-CPU map goes to every CPU")

link = subprocess.run(["ip", "link", "show", "dev", os.environ["PY_IFACE"]], stdout=subprocess.PIPE, text=True).stdout
check("xdp" in link, "the program is still attached while Python runs")
sys.exit(int(os.environ.get("PY_EXIT", "0")))
