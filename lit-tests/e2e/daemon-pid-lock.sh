#!/bin/bash
# Scenario of daemon-pid-lock.test: $1 is the built daemon executable.
set -u
exe=$1
pidfile=/var/run/pid_lock_daemon.pid
fail() { echo "FAIL: $*"; [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; exit 1; }
pgrep -x pid_lock_daemon >/dev/null && { echo "FAIL: a pid_lock_daemon is already running"; exit 1; }
# A stale pid file (a daemon that died without cleaning up) holds no lock and must not block.
echo 999999 > "$pidfile"
"$exe" || fail "the first daemon did not start"
for _ in $(seq 300); do [ "$(cat "$pidfile" 2>/dev/null)" != 999999 ] && [ -s "$pidfile" ] && break; sleep 0.1; done
first=$(cat "$pidfile" 2>/dev/null)
kill -0 "$first" 2>/dev/null || fail "no live pid in $pidfile"
echo "ok: the first daemon wrote its pid over a stale file"
"$exe" 2>&1
status=$?
[ "$status" = 1 ] || fail "the second daemon exited with $status"
echo "ok: the second refused with status 1"
[ "$(cat "$pidfile")" = "$first" ] || fail "the pid file changed"
echo "ok: the pid file still names the first"
kill -TERM "$first"
for _ in $(seq 300); do kill -0 "$first" 2>/dev/null || break; sleep 0.1; done
kill -0 "$first" 2>/dev/null && fail "the daemon did not stop"
[ -e "$pidfile" ] && fail "$pidfile was left behind"
bpftool prog show name on_exec 2>/dev/null | grep -q on_exec && fail "the program is still loaded"
echo "ok: after SIGTERM the pid file is gone and nothing is attached"
