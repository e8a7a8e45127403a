#!/bin/bash
# usage: kernel_hooks_vm.sh EXE
#
# For a VM (kernel_hooks_vm.test): EXE is programs/kernel_hooks built on the host. It attaches
# fentry and fexit programs on do_sys_openat2, an LSM hook on file_open and a TC ingress filter
# on a veth end whose peer lives in a network namespace; this shell makes the events (opens with
# bash redirections, UDP datagrams from the namespace with bash's /dev/udp) and checks what the
# programs saw, that the LSM hook denied with EPERM, that the datagrams the filter dropped never
# reached UDP, and that nothing stays attached after EXE exits on SIGTERM or dies of SIGKILL.
# Prints `ok: ...` lines and exits 0, or `FAIL: ...` and exits 1.
set -u
exe=$1
ns=ksvm
host_if=ksvm0
peer_if=ksvm1
pass_port=7000
block_port=7777
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    ip link del "$host_if" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    cd / && rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/vm_lib.sh"
# UDP datagrams for a closed port (Udp NoPorts in /proc/net/snmp of this namespace).
no_ports() {
    local line fields
    while read -r line; do
        [[ "$line" == Udp:\ [0-9]* ]] || continue
        read -r -a fields <<< "$line"
        echo "${fields[2]}"
        return
    done < /proc/net/snmp
}
no_ports_reach() { [ "$(no_ports)" -ge "$1" ]; }
links() { bpftool link show | grep -c '^[0-9]'; }
tc_filters() { tc filter show dev "$host_if" ingress; }
tc_clean() { [ -z "$(tc_filters)" ] && [[ "$(tc qdisc show dev "$host_if")" != *clsact* ]]; }
open_denied() { ! { : > "$work/ksdeny"; } 2> "$work/err"; }
start() {
    # A fresh file: the child truncates it only once it runs, and the last run's "ready" must not
    # be taken for this one's.
    rm -f "$work/out"
    "$exe" --iface "$host_if" --block-port "$block_port" > "$work/out" 2>&1 &
    pid=$!
    wait_for contains "$work/out" ready || fail "the executable did not start: $(cat "$work/out")"
}

echo "kernel $(uname -r)"
ip netns add "$ns" || fail "cannot add a network namespace"
ip link add "$host_if" type veth peer name "$peer_if" netns "$ns" || fail "cannot add a veth pair"
ip addr add 10.77.0.1/24 dev "$host_if"
ip link set "$host_if" up
ip -n "$ns" addr add 10.77.0.2/24 dev "$peer_if"
ip -n "$ns" link set "$peer_if" up
# A static neighbour entry: no ARP round trip before the first datagram.
ip -n "$ns" neigh add 10.77.0.1 lladdr "$(< "/sys/class/net/$host_if/address")" dev "$peer_if"

start
n=$(links)
if [[ "$(tc_filters)" == *guard* ]]; then
    echo "tc attached through a clsact filter, $n links"
else
    echo "tc attached through TCX, $n links"
fi

cd "$work" || fail "cannot enter $work"
for _ in 1 2 3 4 5; do : > ksfentry; done
for _ in 1 2 3 4; do : > kskprobe; done
for _ in 1 2 3; do { : < ksmissing/x; } 2> /dev/null; done
open_denied || fail "the LSM hook denied opening ksdeny"
[[ "$(< "$work/err")" == *"Operation not permitted"* ]] || fail "the open failed with EPERM ($(< "$work/err"))"
ok "the LSM hook denied opening ksdeny with EPERM"
open_denied || fail "the LSM hook denied opening ksdeny a second time"
: > ksallowed || fail "the LSM hook allowed another name"

before=$(no_ports)
ip netns exec "$ns" bash -c "for i in 1 2 3; do echo a > /dev/udp/10.77.0.1/$pass_port; done; for i in 1 2 3 4 5 6; do echo b > /dev/udp/10.77.0.1/$block_port; done" 2> /dev/null
wait_for no_ports_reach $((before + 3)) || fail "the passed datagrams reached UDP ($(no_ports) - $before)"
nap; nap; nap
[ "$(no_ports)" -eq $((before + 3)) ] || fail "only the passed datagrams reached UDP ($(no_ports) - $before)"
ok "only the 3 datagrams to the open port reached UDP"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
out=$(< "$work/out")
[ "$rc" -eq 0 ] || fail "the executable exits 0 after SIGTERM (exit $rc: $out)"
ok "the executable exits 0 after SIGTERM"
[[ "$out" == *"passed=3 dropped=6 "* ]] || fail "TC ingress passed 3 and dropped 6 ($out)"
ok "TC ingress passed 3 and dropped 6"
[[ "$out" == *" fentry=5 "* ]] || fail "fentry counted the 5 opens ($out)"
ok "fentry counted the 5 opens"
[[ "$out" == *" kprobe=4"* ]] || fail "the kprobe counted the 4 opens ($out)"
ok "the kprobe counted the 4 opens"
[[ "$out" == *" fexit=3 ret=-2 "* ]] || fail "fexit saw 3 returns of -ENOENT ($out)"
ok "fexit saw 3 returns of -ENOENT"
[[ "$out" == *" denied=2"* ]] || fail "the LSM hook counted 2 denials ($out)"
ok "the LSM hook counted 2 denials"
open_denied && fail "ksdeny can be opened again after exit"
ok "ksdeny can be opened after exit"
[ "$(links)" -eq 0 ] || fail "no BPF link left after exit: $(bpftool link show)"
tc_clean || fail "no TC filter or clsact qdisc left after exit: $(tc_filters; tc qdisc show dev "$host_if")"
ok "nothing attached after exit"

start
open_denied || fail "the LSM hook denies again after a restart"
kill -KILL "$pid"
wait "$pid" 2> /dev/null
pid=
# Links die with the process; a clsact filter is removed by the runtime's watchdog, which
# notices the death and needs a moment.
wait_for tc_clean || fail "no TC filter or clsact qdisc left after SIGKILL: $(tc_filters; tc qdisc show dev "$host_if")"
[ "$(links)" -eq 0 ] || fail "no BPF link left after SIGKILL: $(bpftool link show)"
open_denied && fail "ksdeny can be opened after SIGKILL"
ok "nothing attached after SIGKILL"
