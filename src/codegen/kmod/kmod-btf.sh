#!/bin/bash
# kmod-btf.sh - give a kernel module built by Kbuild its BTF when the kernel headers could not.
# Written by ksc next to a unit's kernel module and run by the Makefile beside it:
#
#   kmod-btf.sh MODULE.ko KVER [KDIR]
#
# The kernel registers a module's kfuncs only from the module's BTF ("missing module BTF,
# cannot register kfuncs" otherwise). Kbuild generates it with pahole against the kernel's
# vmlinux, which some header packages lack (Debian 12's 6.1 headers have no vmlinux and no
# resolve_btfids: Kbuild then prints "Skipping BTF generation"). This script then does what
# Kbuild would have done:
#   pahole -J --btf_gen_floats -j --lang_exclude=rust --btf_base VMLINUX MODULE.ko
#   resolve_btfids -b VMLINUX MODULE.ko
# with VMLINUX, in order: $VMLINUX; KDIR/vmlinux; /sys/kernel/btf/vmlinux when KVER is the
# running kernel; /boot/vmlinuz-KVER unpacked (cached in ${XDG_CACHE_HOME:-~/.cache}/ksc).
# resolve_btfids: $RESOLVE_BTFIDS, KDIR's tools, the newest /usr/lib/linux-kbuild-*'s (that of
# a newer kernel works on older modules), or PATH. A module that already has BTF is left alone.
#
# Sourced (by ci/vmrun), it only defines extract_vmlinux.
#
# Needs: pahole (Debian package dwarves), readelf and objcopy (binutils), and for the unpacking
# xz, zstd or gzip. Exit 1 with one line naming what is missing.

# extract_vmlinux IMAGE OUT: the ELF vmlinux inside a compressed kernel image (bzImage) into
# OUT; status 1 when no decompressor finds one.
extract_vmlinux() {
	local image=$1 out=$2 tmp="$2.tmp.$$" spec magic dec off
	for spec in 'fd377a585a00:xz -dc --single-stream' '28b52ffd:zstd -qdc' '1f8b08:gzip -dc'; do
		magic=$(echo "${spec%%:*}" | sed 's/../\\x&/g')
		dec=${spec#*:}
		off=$(LC_ALL=C grep -obUaP "$magic" "$image" 2>/dev/null | head -n1 | cut -d: -f1)
		[ -n "$off" ] || continue
		tail -c +$((off + 1)) "$image" | $dec >"$tmp" 2>/dev/null
		if [ "$(head -c4 "$tmp" | tail -c3)" = ELF ]; then
			mv -f "$tmp" "$out"
			return 0
		fi
	done
	rm -f "$tmp"
	return 1
}

kmod_btf_main() {
	set -euo pipefail
	die() {
		echo "kmod-btf.sh: $*" >&2
		exit 1
	}
	[ $# -ge 2 ] || die "usage: kmod-btf.sh MODULE.ko KVER [KDIR]"
	local ko=$1 kver=$2 kdir=${3:-/lib/modules/$2/build}
	[ -f "$ko" ] || die "$ko: no such module (did the kernel build fail?)"
	command -v readelf >/dev/null || die "readelf not found (Debian package binutils)"
	if readelf -S --wide "$ko" | grep -q ' \.BTF '; then
		return 0
	fi
	if [ -f "$kdir/include/config/auto.conf" ] &&
		! grep -q '^CONFIG_DEBUG_INFO_BTF_MODULES=y' "$kdir/include/config/auto.conf"; then
		die "kernel $kver is built without CONFIG_DEBUG_INFO_BTF_MODULES: it cannot register the kfuncs of a module"
	fi
	local vmlinux=${VMLINUX:-}
	if [ -z "$vmlinux" ] && [ -f "$kdir/vmlinux" ]; then
		vmlinux=$kdir/vmlinux
	elif [ -z "$vmlinux" ] && [ "$kver" = "$(uname -r)" ] && [ -r /sys/kernel/btf/vmlinux ]; then
		vmlinux=/sys/kernel/btf/vmlinux
	elif [ -z "$vmlinux" ]; then
		local image=/boot/vmlinuz-$kver cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ksc
		[ -f "$image" ] || die "no vmlinux for kernel $kver: neither $kdir/vmlinux nor $image (install that kernel's image, or set VMLINUX=PATH)"
		vmlinux=$cache/vmlinux-$kver-$(stat -L -c %s-%Y "$image")
		if [ ! -s "$vmlinux" ]; then
			mkdir -p "$cache" || die "cannot create $cache"
			extract_vmlinux "$image" "$vmlinux" || die "cannot unpack $image (needs xz, zstd or gzip)"
		fi
	fi
	command -v pahole >/dev/null || die "pahole not found (Debian package dwarves): needed for the module's BTF"
	local btfids=${RESOLVE_BTFIDS:-}
	if [ -z "$btfids" ]; then
		local d
		for d in "$kdir" $(ls -1d /usr/lib/linux-kbuild-* 2>/dev/null | sort -V -r); do
			if [ -x "$d/tools/bpf/resolve_btfids/resolve_btfids" ]; then
				btfids=$d/tools/bpf/resolve_btfids/resolve_btfids
				break
			fi
		done
		[ -n "$btfids" ] || btfids=$(command -v resolve_btfids || true)
		[ -n "$btfids" ] || die "resolve_btfids not found: install a linux-kbuild package that has it (Debian 12: linux-headers-6.12-amd64), or set RESOLVE_BTFIDS=PATH"
	fi
	echo "  BTF [M] $ko (ksc: base $vmlinux)"
	LLVM_OBJCOPY=${OBJCOPY:-objcopy} pahole -J --btf_gen_floats -j --lang_exclude=rust --btf_base "$vmlinux" "$ko" ||
		die "pahole could not generate the BTF of $ko"
	"$btfids" -b "$vmlinux" "$ko" || die "resolve_btfids failed on $ko"
	readelf -S --wide "$ko" | grep -q ' \.BTF ' || die "$ko still has no BTF"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	kmod_btf_main "$@"
fi
