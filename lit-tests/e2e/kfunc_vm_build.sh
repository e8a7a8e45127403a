#!/bin/bash
# usage: kfunc_vm_build.sh KSC OUT KERNEL
#
# On the host, for kfunc_vm.sh: `ksc build` of programs/kfunc_loopback.ks, examples/
# flow_hash_kfunc.ks, programs/kfunc_uncalled.ks and programs/kfunc_callers.ks into OUT/km,
# OUT/fh, OUT/uncalled and OUT/kc, each
# module built with the Makefile ksc writes for the kernel in /boot matching KERNEL ("6.1" or
# "6.12", as ci/vmrun --kernel). When that kernel's headers have no vmlinux (6.1), OUT/nobtf is
# kfunc_loopback built by the kernel's build alone: a module without BTF.
set -euo pipefail
ksc=$1 out=$2 kernel=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
"$ksc" build "$here/programs/kfunc_loopback.ks" -o "$out/km"
"$ksc" build "$here/../../examples/flow_hash_kfunc.ks" -o "$out/fh"
"$ksc" --target=kmod "$here/programs/kfunc_uncalled.ks" -o "$out/uncalled"
"$ksc" build "$here/programs/kfunc_callers.ks" -o "$out/kc"
for d in km fh uncalled kc; do
    kver=$(bash "$here/make_kmod.sh" "$out/$d" "$kernel")
done
if [ ! -e "/lib/modules/$kver/build/vmlinux" ]; then
    "$ksc" build "$here/programs/kfunc_loopback.ks" -o "$out/nobtf"
    make -s -C "/lib/modules/$kver/build" M="$out/nobtf" modules > "$out/nobtf.log" 2>&1 ||
        { cat "$out/nobtf.log" >&2; exit 1; }
fi
echo "built for $kver"
