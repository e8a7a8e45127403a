#!/bin/sh
# usage: lost_bounds_vm.sh KSC LIT_TESTS_DIR — run inside the VM by lost_bounds_vm.test.
ksc=$1
dir=$2
for f in "$dir/codegen/lost-bounds.ks" "$dir/passes/bounds-check-moved-ahead.ks" "$dir/../benches/programs/blind10_xdp_pppoe_sessions.ks" \
    "$dir/passes/separate-bound-tests.ks" "$dir/../benches/programs/blind11_tc_tail_ip_scrub.ks"; do
    "$ksc" verify "$f" 2>&1 | grep -E '^(ok|rejected)'
    "$ksc" verify -O0 "$f" 2>&1 | grep -E '^(ok|rejected)' | sed 's/^/O0 /'
done
echo done
