#!/bin/bash
# usage: struct_ops_vm.sh EXE
#
# The struct_ops scenario of e2e.py in shell, for a VM (struct_ops_vm.test): under TCG, starting
# Python over the VM's 9p root takes longer than the whole scenario. EXE is programs/struct_ops_cc
# built on the host. Its congestion control must be registered, carry a loopback connection as
# the system default, count its callbacks, and be unregistered when EXE exits on SIGTERM, and
# also when it dies of SIGKILL (links on 6.4+; before, the runtime's guard process).
# Prints `ok: ...` lines and exits 0, or `FAIL: ...` and exits 1.
set -u
exe=$1
avail=/proc/sys/net/ipv4/tcp_available_congestion_control
default=/proc/sys/net/ipv4/tcp_congestion_control
port=5599 # 0x15DF in /proc/net/tcp
work=$(mktemp -d)
pid= old= server=
cleanup() {
    [ -n "$old" ] && echo "$old" > "$default"
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/vm_lib.sh"
listening() { contains /proc/net/tcp ":15DF 00000000:0000 0A" || contains /proc/net/tcp6 ":15DF 00000000000000000000000000000000:0000 0A"; }

echo "kernel $(uname -r)"
"$exe" > "$work/out" 2>&1 &
pid=$!
wait_for contains "$work/out" ready || fail "the executable did not start: $(cat "$work/out")"
grep -qw ks_e2e_cc "$avail" || fail "ks_e2e_cc is not an available congestion control: $(cat "$avail")"
# Linux 6.4+ registers through a struct_ops link, older kernels by a map update (no link).
echo "BPF links: $(bpftool link show | grep -c '^[0-9]')"
ok "ks_e2e_cc is an available congestion control"

old=$(cat "$default")
echo ks_e2e_cc > "$default" || fail "cannot make ks_e2e_cc the default congestion control"
busybox nc -l -p "$port" > "$work/received" &
server=$!
wait_for listening || fail "the loopback server did not listen"
head -c 1000000 /dev/zero > "/dev/tcp/127.0.0.1/$port" || fail "cannot send over the loopback connection"
wait "$server"
server=
echo "$old" > "$default"
old=
received=$(wc -c < "$work/received")
[ "$received" -eq 1000000 ] || fail "1 MB crossed the connection ($received bytes)"
ok "1 MB crossed the connection"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
out=$(cat "$work/out")
inits=$(sed -n 's/.*inits=\([0-9]*\).*/\1/p' "$work/out")
cong_avoid=$(sed -n 's/.*cong_avoid=\([0-9]*\).*/\1/p' "$work/out")
[ "$rc" -eq 0 ] && [ "${inits:-0}" -ge 1 ] || fail "the struct_ops init ran for the connection (exit $rc: $out)"
ok "the struct_ops init ran for the connection, counted in a map"
[ "${cong_avoid:-0}" -ge 1 ] || fail "cong_avoid ran on ACKs ($out)"
ok "cong_avoid, which calls the kernel's tcp_slow_start/tcp_cong_avoid_ai kfuncs, ran on ACKs"
grep -qw ks_e2e_cc "$avail" && fail "ks_e2e_cc is still registered after exit: $(cat "$avail")"
ok "unregistered at exit"

# A fresh file: the child truncates it only once it runs, and the last run's "ready" must not be
# taken for this one's.
rm -f "$work/out"
"$exe" > "$work/out" 2>&1 &
pid=$!
wait_for contains "$work/out" ready || fail "the executable did not start again: $(cat "$work/out")"
kill -KILL "$pid"
wait "$pid" 2> /dev/null
pid=
unregistered() { ! contains "$avail" ks_e2e_cc; }
wait_for unregistered || fail "ks_e2e_cc is still registered after SIGKILL: $(cat "$avail")"
ok "unregistered after SIGKILL"
