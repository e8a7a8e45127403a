#!/bin/sh
# usage: verify_vm.sh KSC FILE… — run inside a VM by the *_vm.test files: `ksc verify` of each
# file at -O2 and at -O0 (lines prefixed `O0 `), and `ksc test` of each that has `@test`s; then
# `done`.
ksc=$1
shift
for f in "$@"; do
    "$ksc" verify "$f" 2>&1 | grep -E '^(ok|rejected)'
    "$ksc" verify -O0 "$f" 2>&1 | grep -E '^(ok|rejected)' | sed 's/^/O0 /'
    if grep -q '^@test' "$f"; then
        "$ksc" test "$f" 2>&1 | grep -E '^(PASS|FAIL|[0-9]+ passed)'
    fi
done
echo done
