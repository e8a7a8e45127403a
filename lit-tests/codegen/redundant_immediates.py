#!/usr/bin/env python3
"""No immediate load repeats a value its register already holds.

Reads BPF assembly (`ksc --emit=asm`) and counts each `rN = C` or `wN = C` that follows an
earlier load of the same constant into the same register, on a straight-line stretch: no label
(a join) between them, no other write of the register, no call (which clobbers r0-r5). Such a
load is one instruction on a path for nothing; each throw site of a merged `catch` that sets the
code the site before it set is the typical case. Prints `REDUNDANT file: line` for each and a
summary line `immediates: N files, R redundant`.

With `--ksc KSC ROOTS...`, compiles every kernel-side .ks file under ROOTS (files ksc refuses
are skipped) and checks their assembly. Standard library only.
"""
import os
import re
import subprocess
import sys

WRITE = re.compile(r"^([rw])(\d+)\s*(\S*=)\s*(.*)$")
CONSTANT = re.compile(r"-?(0x[0-9a-fA-F]+|\d+)")
CALL_CLOBBERED = [str(r) for r in range(6)]


def redundant(asm):
    """The redundant immediate loads of one function listing, as source lines."""
    held = {}  # register number -> (32-bit?, constant)
    found = []
    for raw in asm.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(".") and not line.endswith(":"):
            continue
        if line.endswith(":"):
            held.clear()
            continue
        if line.startswith("call"):
            for r in CALL_CLOBBERED:
                held.pop(r, None)
            continue
        m = WRITE.match(line)
        if not m:
            continue
        width, reg, op, rhs = m.group(1), m.group(2), m.group(3), m.group(4).strip()
        if op == "=" and CONSTANT.fullmatch(rhs):
            value = (width == "w", rhs)
            if held.get(reg) == value:
                found.append(line)
            held[reg] = value
        else:
            held.pop(reg, None)
    return found


def kernel_sources(roots):
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                if name.endswith(".ks"):
                    yield os.path.join(dirpath, name)


def main(argv):
    if argv[:1] == ["--ksc"]:
        ksc, roots = os.path.abspath(argv[1]), argv[2:]
        listings = []
        for path in kernel_sources(roots):
            path = os.path.abspath(path)
            out = subprocess.run([ksc, "--emit=asm", path, "-o", "-"], capture_output=True,
                                 text=True, cwd=os.path.dirname(path))
            if out.returncode == 0 and out.stdout:
                listings.append((path, out.stdout))
    else:
        listings = [(p, open(p).read()) for p in argv]
    total = 0
    for path, asm in listings:
        for line in redundant(asm):
            print(f"REDUNDANT {path}: {line}")
            total += 1
    print(f"immediates: {len(listings)} files, {total} redundant")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
