#!/bin/bash
# usage: syscall_probe_vm.sh EXE
#
# EXE is programs/syscall_probe built on the host. While it runs, this shell creates a file named
# ksopen-probe three times: bash's `>` is openat(AT_FDCWD, "ksopen-probe", O_WRONLY|O_CREAT|O_TRUNC,
# 0666). After SIGTERM, EXE prints what its `@probe("sys_openat")` program saw; every argument
# must be the syscall's own. Prints `ok: ...` lines and exits 0, or `FAIL: ...` and exits 1.
set -u
exe=$1
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/vm_lib.sh"

echo "kernel $(uname -r)"
"$exe" > "$work/out" 2>&1 &
pid=$!
wait_for contains "$work/out" ready || fail "the executable did not start: $(cat "$work/out")"
cd "$work" || fail "cannot enter $work"
for _ in 1 2 3; do : > ksopen-probe; done
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
out=$(cat "$work/out")
[ "$rc" -eq 0 ] || fail "the executable exits 0 after SIGTERM (exit $rc: $out)"
ok "the executable exits 0 after SIGTERM"
[[ "$out" == *"count=3 "* ]] || fail "the probe saw the three opens ($out)"
ok "the probe saw the three opens"
# AT_FDCWD is -100; O_WRONLY|O_CREAT|O_TRUNC is 0x241 = 577; mode 0666 = 438 (in r10).
[[ "$out" == *"dfd=-100 flags=577 mode=438 "* ]] || fail "the probe read the syscall's arguments ($out)"
ok "dfd, flags and mode are the syscall's arguments (mode from r10)"
# 'k' = 107, 'o' = 111: read through the user pointer filename.
[[ "$out" == *"first=107 third=111"* ]] || fail "the probe read the file name through the user pointer ($out)"
ok "the file name was read through the user pointer"
