#!/bin/bash
# usage: kfunc_vm.sh KSC DIR
#
# Runs in a VM; DIR holds `ksc build` outputs whose modules were built on the host for the VM's
# kernel with the Makefile ksc writes (make KVER=…): DIR/km (programs/kfunc_loopback.ks), DIR/fh
# (examples/flow_hash_kfunc.ks), DIR/uncalled (programs/kfunc_uncalled.ks) and, when present,
# DIR/nobtf (kfunc_loopback built by the kernel's build alone, which gives it no BTF on 6.1).
# KSC runs `ksc verify`. Prints `ok: ...` lines and exits 0, or `FAIL: ...` and exits 1.
set -u
ksc=$1 dir=$2
src=$(dirname "$0")/programs/kfunc_loopback.ks
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -s /var/run/flow_hash_kfunc.pid ] && kill -KILL "$(< /var/run/flow_hash_kfunc.pid)" 2>/dev/null
    rm -rf "$work" /sys/fs/bpf/flow_hash_kfunc
}
trap cleanup EXIT
. "$(dirname "$0")/vm_lib.sh"
loaded() { [[ "$(< /proc/modules)" == *"$1 "* ]]; }
gone() { ! loaded "$1"; }
# Three UDP datagrams to 127.0.0.1:4242 through bash's /dev/udp (nothing listens: ICMP replies).
send3() { local i; for i in 1 2 3; do echo -n hello > /dev/udp/127.0.0.1/4242; done; }

echo "kernel $(uname -r)"

# ksc verify finds the unit's kfunc once its module is loaded (it does not load it itself).
out=$("$ksc" verify "$src" 2>&1) && fail "verify without the module passed: $out"
[[ "$out" == *"its module kfunc_loopback_kmod is not loaded (ksc verify does not load kernel modules)"* ]] ||
    fail "verify without the module says why ($out)"
ok "ksc verify without the module: its module is not loaded"
insmod "$dir/km/kfunc_loopback_kmod.ko" || fail "insmod kfunc_loopback_kmod.ko"
out=$("$ksc" verify "$src" 2>&1) || fail "verify with the module loaded ($out)"
[[ "$out" == *"ok on_packet"* ]] || fail "verify with the module loaded ($out)"
ok "ksc verify with the module loaded: ok on_packet"
rmmod kfunc_loopback_kmod || fail "rmmod kfunc_loopback_kmod"

# The executable loads its module, the program calls the kfunc, SIGTERM unloads the module.
"$dir/km/kfunc_loopback" > "$work/out" 2>&1 &
pid=$!
wait_for contains "$work/out" ready || fail "the executable did not start: $(< "$work/out")"
loaded kfunc_loopback_kmod || fail "kfunc_loopback_kmod is not in /proc/modules while the executable runs"
[ -e /sys/kernel/btf/kfunc_loopback_kmod ] || fail "the module has no BTF in /sys/kernel/btf"
ok "the executable loaded kfunc_loopback_kmod.ko, with its BTF"
send3
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
out=$(< "$work/out")
[ "$rc" -eq 0 ] || fail "the executable exits 0 after SIGTERM (exit $rc: $out)"
# combine(daddr, port): 127.0.0.1 and 4242 as little-endian loads of the packet's bytes.
expected=$(( ((0x0100007f << 8 | 0x0100007f >> 24) & 0xffffffff) * 1000003 + 0x9210 ))
[[ "$out" == *"count=3 value=$expected"* ]] || fail "the kfunc computed $expected for each of the three datagrams ($out)"
ok "the program called the kfunc for the three datagrams; the module computed $expected"
gone kfunc_loopback_kmod || fail "kfunc_loopback_kmod is still loaded after SIGTERM ($out)"
ok "after SIGTERM the module is unloaded"

# examples/flow_hash_kfunc.ks as a daemon on lo with one backend: every flow lands in bucket 0.
"$dir/fh/flow_hash_kfunc" --iface lo --backends 1 > "$work/fh" 2>&1 || fail "flow_hash_kfunc did not start ($(< "$work/fh"))"
wait_for test -s /var/run/flow_hash_kfunc.pid || fail "flow_hash_kfunc wrote no pid file"
fhpid=$(< /var/run/flow_hash_kfunc.pid)
loaded flow_hash_kfunc_kmod || fail "flow_hash_kfunc_kmod is not loaded while the daemon runs"
send3
show=$("$dir/fh/flow_hash_kfunc" --show 2>&1)
[[ "$show" == *"backend 0: 3 packets (100%)"* ]] || fail "flow_hash_kfunc --show counts the three datagrams ($show)"
ok "flow_hash_kfunc: the kfunc hashed the three datagrams (backend 0: 3 packets)"
kill -TERM "$fhpid"
wait_for gone flow_hash_kfunc_kmod || fail "flow_hash_kfunc_kmod is still loaded after the daemon's SIGTERM"
ok "flow_hash_kfunc: the daemon unloaded its module after SIGTERM"

# A kfunc no program calls: registered for every kind of program (one kind at a time before 6.2).
insmod "$dir/uncalled/kfunc_uncalled_kmod.ko" || fail "kfunc_uncalled_kmod.ko does not load"
[ -e /sys/kernel/btf/kfunc_uncalled_kmod ] || fail "kfunc_uncalled_kmod has no BTF"
rmmod kfunc_uncalled_kmod || fail "rmmod kfunc_uncalled_kmod"
ok "a module whose kfunc no program calls registers it"

# Kfuncs called from kretprobe and tracepoint programs: 6.1 lets neither call kfuncs, and the
# executable stops at start-up with the call's line; 6.12 runs all three calls.
kc_src=$(cd "$(dirname "$0")" && pwd)/programs/kfunc_callers.ks
if [[ "$(uname -r)" == 6.1.* ]]; then
    out=$("$dir/kc/kfunc_callers" 2>&1) && fail "kfunc_callers started on 6.1 ($out)"
    [[ "$out" == *"$kc_src:19: the kretprobe program on_unlink calls the kfunc scale, which this kernel (Linux 6.1."*") does not let kretprobe programs call"* ]] ||
        fail "kfunc_callers names the refused call's line and kind ($out)"
    [ "$(grep -c . <<< "$out")" -eq 1 ] || fail "kfunc_callers says it in one line ($out)"
    gone kfunc_callers_kmod || fail "kfunc_callers_kmod stayed loaded after the failed start-up"
    ok "a kfunc called from a kretprobe on 6.1: one line with the call's line and the program's kind"
else
    "$dir/kc/kfunc_callers" > "$work/kc" 2>&1 &
    pid=$!
    wait_for contains "$work/kc" ready || fail "kfunc_callers did not start: $(< "$work/kc")"
    touch "$work/victim" && rm "$work/victim"
    perl -e 'getppid()' 2>/dev/null || python3 -c 'import os; os.getppid()'
    send3
    kill -TERM "$pid"
    wait "$pid"
    pid=
    out=$(< "$work/kc")
    [[ "$out" =~ unlink=([0-9]+)\ getppid=([0-9]+)\ xdp=([0-9]+) ]] || fail "kfunc_callers printed its counts ($out)"
    for c in "${BASH_REMATCH[@]:1}"; do
        [ "$c" -ge 1 ] && [ $(( (c - 1) % 3 )) -eq 0 ] || fail "each program's calls went through scale ($out)"
    done
    gone kfunc_callers_kmod || fail "kfunc_callers_kmod is still loaded after SIGTERM"
    ok "the kfunc ran from kretprobe, tracepoint and xdp programs"
fi

# A module without BTF: the kernel refuses it, and the executable says how to build it.
if [ -d "$dir/nobtf" ]; then
    out=$("$dir/nobtf/kfunc_loopback" 2>&1) && fail "the executable ran with a module without BTF ($out)"
    [[ "$out" == *"cannot load kernel module kfunc_loopback_kmod.ko"*"the module has no BTF"*"build it with \`make\`"* ]] ||
        fail "the executable says the module has no BTF ($out)"
    gone kfunc_loopback_kmod || fail "kfunc_loopback_kmod stayed loaded"
    ok "a module built without BTF: the executable says so and how to build it"
fi
