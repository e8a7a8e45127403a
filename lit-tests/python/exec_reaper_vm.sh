#!/bin/bash
# usage: exec_reaper_vm.sh EXE SCRIPT
#
# In a VM on Linux 6.1 (exec-reaper_vm.test): EXE attaches a TC program, which falls back to a
# clsact filter without TCX, and execs SCRIPT; once the Python process has exited, the runtime's
# guard process, whose socket Python inherited, must remove the filter, and unload the unit's
# kernel module (built beside EXE for the VM's kernel). Prints `ok: ...` lines and exits 0, or
# `FAIL: ...` and exits 1.
set -u
exe=$1 script=$2
iface=kscvm0
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
cleanup() { ip link del "$iface" 2>/dev/null; }
trap cleanup EXIT
echo "kernel $(uname -r)"
ip link add "$iface" type veth peer name kscvm1 || fail "cannot create a veth pair"
ip link set "$iface" up
"$exe" --iface "$iface" --script "$script" || fail "the executable or its Python script failed (exit $?)"
ok "the Python script exited 0"
for ((i = 0; i < 300; i++)); do
    [[ -z "$(tc filter show dev "$iface" ingress)" ]] && break
    sleep 0.1
done
[[ -z "$(tc filter show dev "$iface" ingress)" ]] || fail "the clsact filter is still there: $(tc filter show dev "$iface" ingress)"
ok "the reaper removed the clsact filter after Python exited"
for ((i = 0; i < 300; i++)); do
    [[ "$(< /proc/modules)" != *"exec_tc_kmod "* ]] && break
    sleep 0.1
done
[[ "$(< /proc/modules)" != *"exec_tc_kmod "* ]] || fail "exec_tc_kmod is still loaded after Python exited"
ok "the reaper unloaded the unit's kernel module after Python exited"
