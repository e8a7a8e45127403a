#!/bin/bash
# usage: make_kmod.sh DIR KERNEL
#
# Builds the kernel module in DIR (a `ksc build` output) for the installed kernel whose version
# starts with KERNEL ("6.1" or "6.12", as ci/vmrun --kernel), with the Makefile ksc wrote there.
# Prints the kernel release it built for; the build's output only when it fails.
set -euo pipefail
dir=$1 kernel=$2
image=$(ls -1 /boot/vmlinuz-"$kernel".* /boot/vmlinuz-"$kernel"-* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$image" ] || { echo "no /boot/vmlinuz-$kernel.* (ci/setup installs it with KSC_VM_TESTS=1)" >&2; exit 1; }
kver=${image#/boot/vmlinuz-}
make -s -C "$dir" KVER="$kver" > "$dir.make.log" 2>&1 || { cat "$dir.make.log" >&2; exit 1; }
echo "$kver"
