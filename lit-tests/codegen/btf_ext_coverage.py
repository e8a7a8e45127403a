#!/usr/bin/env python3
"""Every function of a BPF object has its BTF function info and line info.

The kernel needs func_info for every subprogram of a program that takes a callback's address
(`bpf_loop`: "missing btf func_info"), and libbpf drops all of a program's func_info when one of
its subprograms (callbacks and helpers in .text, appended to each program that calls them) lacks
a record. For each object given, every STT_FUNC symbol in an executable section must have a
func_info record at its first instruction and a line_info record there too. Prints
`btf-ext: N objects, F functions, all covered` or one `MISSING ...` line per gap (exit 1).
With `--ksc KSC ROOTS...`, compiles every kernel-side .ks file under ROOTS that ksc accepts
(at -O2, -O0 and cpu v1) and checks those objects. Standard library only.
"""
import os
import re
import struct
import subprocess
import sys
import tempfile


def sections(elf):
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx]
    def name(off):
        start = names[4] + off
        return elf[start:elf.index(b"\0", start)].decode()
    return [(name(h[0]), h) for h in headers]


def cstr(data, off):
    return data[off:data.index(b"\0", off)].decode()


def records(ext, strings, off, length):
    """{section name: set of byte offsets} of a func_info or line_info block."""
    out = {}
    if length == 0:
        return out
    rec_size, = struct.unpack_from("<I", ext, off)
    pos, end = off + 4, off + length
    while pos < end:
        name_off, n = struct.unpack_from("<II", ext, pos)
        pos += 8
        offs = out.setdefault(cstr(strings, name_off), set())
        for i in range(n):
            offs.add(struct.unpack_from("<I", ext, pos + i * rec_size)[0])
        pos += n * rec_size
    return out


def check(path):
    elf = open(path, "rb").read()
    secs = sections(elf)
    by_name = {n: h for n, h in secs}
    btf = elf[by_name[".BTF"][4]:][:by_name[".BTF"][5]]
    hdr_len, _, _, str_off, str_len = struct.unpack_from("<IIIII", btf, 4)
    strings = btf[hdr_len + str_off:hdr_len + str_off + str_len]
    ext = elf[by_name[".BTF.ext"][4]:][:by_name[".BTF.ext"][5]]
    ext_hdr, fi_off, fi_len, li_off, li_len = struct.unpack_from("<IIIII", ext, 4)
    funcs = records(ext, strings, ext_hdr + fi_off, fi_len)
    lines = records(ext, strings, ext_hdr + li_off, li_len)
    symtab = by_name[".symtab"]
    strtab = secs[symtab[6]][1]
    missing, count = [], 0
    for i in range(symtab[5] // 24):
        st_name, st_info, _, shndx, value, _ = struct.unpack_from("<IBBHQQ", elf, symtab[4] + i * 24)
        if st_info & 0xF != 2 or shndx == 0 or shndx >= len(secs):
            continue
        sec_name, sec = secs[shndx]
        if not sec[2] & 0x4:  # SHF_EXECINSTR
            continue
        count += 1
        name = cstr(elf, strtab[4] + st_name)
        if value not in funcs.get(sec_name, ()):
            missing.append("MISSING func_info %s: %s in %s at %d" % (path, name, sec_name, value))
        if value not in lines.get(sec_name, ()):
            missing.append("MISSING line_info %s: %s in %s at %d" % (path, name, sec_name, value))
    return count, missing


KERNEL_UNIT = re.compile(rb"^\s*@(xdp|tc|tracepoint|tp_btf|probe|kprobe|perf_event|lsm|cgroup_skb|helper|struct_ops)\b", re.M)


def compile_roots(ksc, roots, out):
    """Objects of every kernel-side file ksc accepts, at three code generation levels."""
    objects = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                path = os.path.join(dirpath, f)
                if not f.endswith(".ks") or not KERNEL_UNIT.search(open(path, "rb").read()):
                    continue
                for n, level in enumerate([[], ["-O0"], ["--bpf-cpu=v1"]]):
                    obj = os.path.join(out, "%d-%d.o" % (len(objects), n))
                    r = subprocess.run([ksc, "--emit=obj", "--target=bpf", *level, f, "-o", obj],
                                       capture_output=True, cwd=dirpath)
                    if r.returncode == 0:
                        objects.append(obj)
    return objects


def main(argv):
    if argv[:1] == ["--ksc"]:
        with tempfile.TemporaryDirectory(prefix="ksc-btf-ext-") as out:
            return check_all(compile_roots(os.path.abspath(argv[1]), argv[2:], out))
    return check_all(argv)


def check_all(paths):
    total, gaps = 0, []
    for p in paths:
        n, missing = check(p)
        total += n
        gaps += missing
    for g in gaps:
        print(g)
    if not gaps:
        print("btf-ext: %d objects, %d functions, all covered" % (len(paths), total))
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
