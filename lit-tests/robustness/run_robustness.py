#!/usr/bin/env python3
"""Robustness test for `ksc check` (docs/language.md section 18.1).

`ksc check FILE` must never crash, panic, hang or exit with a status other than
0 or 1.  When it exits with 1 it must have printed at least one diagnostic of
the form `FILE:LINE:COL: error[EXXXX]: message` on stderr.  An internal failure
is supposed to be reported as E0999, but this script still counts any
"internal compiler error" text as a failure because it means a compiler bug was
hit.

Inputs fed to `ksc check`:

* for every `.ks` file found (recursively, nothing skipped) under the
  directories given with --examples / --conformance / --extra:
  - truncated variants: cut at ~10%, ~50% and ~90% of the bytes, inside a
    random token, inside a literal or comment (if any), and in the middle of a
    multi-byte UTF-8 character (if any);
  - byte-garbled variants: seeded random byte flips, insertions of NUL / 0xFF /
    invalid UTF-8 sequences / punctuation, deletions, duplications;
  - token-level variants: seeded random token deletion, duplication, swapping
    and replacement (keeps most of the file parseable so the later phases get
    exercised too);
* generated hostile inputs: 10 MB of valid-looking statements, 10 MB of random
  bytes, 100000 nested `(` and `{`, a 2 MB single-line `a+a+...`, long chains of
  `-`, an empty file, a BOM-only file, a 100 KB identifier, 100000 unterminated
  strings, and a few more of the same spirit;
* every `.ks` file in inputs/ next to this script (saved reproducers), as is.

Every root directory is copied into a temporary directory and the variants are
written next to the copied original, so that `include`/`import` paths relative
to the case folder (e.g. `../_support/xdp.kh`) still resolve.  All randomness
is derived from --seed, so a run is fully deterministic.

Output (stdout): one line `CRASH <input>: <reason>` per failing input, then
`robustness: N inputs, K crashes`.  Exit status 1 if K > 0 (or on a setup
error), 0 otherwise.  Only the Python standard library is used.
"""

import argparse
import concurrent.futures
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import resource
except ImportError:  # not on POSIX: no memory limit
    resource = None


# --------------------------------------------------------------------------
# verdicts

DIAG_RE = re.compile(rb"^[^:\n]+:\d+:\d+: error\[E\d{4}\]:", re.M)

# (text searched in stderr, reason reported)
BAD_TEXTS = [
    (b"panicked", "panic"),
    (b"RUST_BACKTRACE", "panic (RUST_BACKTRACE hint)"),
    (b"internal compiler error", "internal compiler error reported"),
    (b"overflowed its stack", "stack overflow"),
    (b"memory allocation of", "out of memory"),
]


def first_line_with(text, needle, limit=200):
    """The stderr line containing `needle`, shortened, for the report."""
    idx = text.find(needle)
    if idx < 0:
        return ""
    start = text.rfind(b"\n", 0, idx) + 1
    end = text.find(b"\n", idx)
    if end < 0:
        end = len(text)
    line = text[start:end].decode("utf-8", "replace").strip()
    if len(line) > limit:
        line = line[:limit] + "..."
    return line


def judge(returncode, stderr, timed_out, timeout):
    """Return None if the run is acceptable, else a one-line reason."""
    if timed_out:
        return "timeout: no exit within %gs" % timeout
    reasons = []
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        reasons.append("killed by %s" % name)
    elif returncode not in (0, 1):
        reasons.append("exit status %d" % returncode)
    for needle, what in BAD_TEXTS:
        if needle in stderr:
            reasons.append("%s: %s" % (what, first_line_with(stderr, needle)))
            break
    if returncode == 1 and not DIAG_RE.search(stderr):
        first = stderr.strip().split(b"\n", 1)[0][:160]
        reasons.append("exit status 1 without a FILE:LINE:COL: error[EXXXX] "
                       "diagnostic (stderr starts: %r)"
                       % first.decode("utf-8", "replace"))
    if not reasons:
        return None
    return "; ".join(reasons)


# --------------------------------------------------------------------------
# variant generation for corpus files

TOKEN_RE = re.compile(
    rb"//[^\n]*"
    rb"|/\*.*?(?:\*/|\Z)"
    rb'|"(?:[^"\\]|\\.)*"?'
    rb"|'(?:[^'\\\n]|\\.)*'?"
    rb"|[A-Za-z_][A-Za-z0-9_]*"
    rb"|0[xXbBoO][0-9A-Fa-f_]*"
    rb"|[0-9][0-9_]*"
    rb"|<<=|>>=|->|==|!=|<=|>=|&&|\|\||\.\.|<<|>>|[-+*/%&|^]="
    rb"|\S",
    re.S,
)

LITERAL_START = (b'"', b"'", b"/*", b"//")

NASTY_BYTES = [
    b"\x00", b"\x00\x00\x00", b"\xff", b"\xff\xfe", b"\xfe", b"\x80",
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\x80",
    b"\xf8\x88\x80\x80\x80", b"\xef\xbb\xbf", b"\r", b"\x0b", b"\x0c",
    b"\x1b", b"\x7f", b"\xe2\x80\xae", b"\xc2\xa0",
]

PUNCT = [
    b"{", b"}", b"(", b")", b"[", b"]", b'"', b"'", b"/*", b"*/", b"//",
    b"\\", b"<", b">", b">>", b"@", b"->", b"..", b";", b",", b":", b"=",
    b"$", b"?", b"#", b"`", b"::", b"-", b"*", b"&", b"!", b".", b"\n",
]

REPLACEMENTS = [
    b"0", b"1", b"255", b"256", b"65536", b"4294967295", b"4294967296",
    b"18446744073709551615", b"18446744073709551616", b"0x", b"0b2", b"1_",
    b"99999999999999999999999999", b"-1", b"true", b"null", b"_", b"main",
    b"fn", b"var", b"return", b"match", b"if", b"else", b"while", b"for",
    b"try", b"catch", b"throw", b"defer", b"new", b"delete", b"sizeof",
    b"struct", b"enum", b"impl", b"type", b"config", b"pin", b"const",
    b"u8", b"u64", b"i32", b"bool", b"void", b"str", b"str(0)", b"str(1)",
    b"u8[0]", b"u32[4294967295]", b"*void", b"xdp_md", b"xdp_action",
    b"hash", b"ringbuf", b"@xdp", b"@tc", b"@kfunc", b"@test", b"@helper",
    b"include", b"import", b"extern", b"local", b"as", b"in", b"default",
    b'""', b"'a'", b"'\\x'", b"sizeof(void)", b"ctx", b"ctx->data",
    b"print", b"assert", b"exec", b"load", b"attach", b"detach",
]


def tokens(data):
    return [(m.start(), m.end()) for m in TOKEN_RE.finditer(data)]


def variant_truncations(data, rng):
    """(kind, bytes) pairs of truncated variants."""
    out = []
    n = len(data)
    for pct in (10, 50, 90):
        out.append(("trunc%d" % pct, data[: n * pct // 100]))
    toks = [t for t in tokens(data) if t[1] - t[0] >= 2]
    if toks:
        s, e = rng.choice(toks)
        out.append(("trunc-token", data[: rng.randrange(s + 1, e)]))
    lits = [t for t in toks if data[t[0]:t[0] + 2].startswith(LITERAL_START)]
    if lits:
        s, e = rng.choice(lits)
        out.append(("trunc-literal", data[: rng.randrange(s + 1, e)]))
    multi = [i for i, b in enumerate(data) if b >= 0xC0]
    if multi:
        i = rng.choice(multi)
        out.append(("trunc-utf8", data[: i + 1]))
    return out


def mutate_bytes(data, rng, ops, count):
    buf = bytearray(data)
    for _ in range(count):
        op = rng.choice(ops)
        pos = rng.randrange(len(buf) + 1)
        if op == "flip" and buf:
            pos = min(pos, len(buf) - 1)
            if rng.random() < 0.5:
                buf[pos] = rng.randrange(256)
            else:
                buf[pos] ^= 1 << rng.randrange(8)
        elif op == "nul":
            buf[pos:pos] = b"\x00" * rng.choice((1, 1, 2, 8))
        elif op == "nasty":
            buf[pos:pos] = rng.choice(NASTY_BYTES)
        elif op == "ff" and buf:
            pos = min(pos, len(buf) - 1)
            buf[pos] = 0xFF
        elif op == "punct":
            buf[pos:pos] = rng.choice(PUNCT)
        elif op == "del":
            del buf[pos:pos + rng.randrange(1, 24)]
        elif op == "dup" and buf:
            a = rng.randrange(len(buf))
            b = min(len(buf), a + rng.randrange(1, 200))
            buf[pos:pos] = buf[a:b]
        elif op == "random":
            buf[pos:pos] = bytes(rng.randrange(256)
                                 for _ in range(rng.randrange(1, 16)))
    return bytes(buf)


def mutate_tokens(data, rng, ops, count):
    toks = tokens(data)
    if not toks:
        return data
    # pieces alternate: gap0, tok0, gap1, tok1, ..., gapN
    gaps = []
    texts = []
    prev = 0
    for s, e in toks:
        gaps.append(data[prev:s])
        texts.append(data[s:e])
        prev = e
    tail = data[prev:]
    idents = [t for t in texts if re.match(rb"[A-Za-z_]", t)] or [b"x"]
    for _ in range(count):
        if not texts:
            break
        op = rng.choice(ops)
        i = rng.randrange(len(texts))
        if op == "tdel":
            texts[i] = b""
        elif op == "tdup":
            texts[i] = texts[i] + b" " + texts[i]
        elif op == "tswap":
            j = rng.randrange(len(texts))
            texts[i], texts[j] = texts[j], texts[i]
        elif op == "trepl":
            if rng.random() < 0.5:
                texts[i] = rng.choice(REPLACEMENTS)
            else:
                texts[i] = rng.choice(idents)
        elif op == "tmove":
            # move a run of tokens somewhere else
            k = min(len(texts), i + rng.randrange(1, 12))
            run = b" ".join(texts[i:k])
            for m in range(i, k):
                texts[m] = b""
            j = rng.randrange(len(texts))
            texts[j] = texts[j] + b" " + run
    out = []
    for g, t in zip(gaps, texts):
        out.append(g)
        out.append(t)
    out.append(tail)
    return b"".join(out)


BYTE_VARIANTS = [
    ("garble-flip1", ("flip",), 1),
    ("garble-flip8", ("flip",), 8),
    ("garble-nul", ("nul",), 3),
    ("garble-utf8", ("nasty", "ff"), 6),
    ("garble-del", ("del",), 5),
    ("garble-punct", ("punct",), 4),
    ("garble-mix", ("flip", "nul", "nasty", "ff", "punct", "del", "dup",
                    "random"), 24),
]

TOKEN_VARIANTS = [
    ("tok-del", ("tdel",), 1),
    ("tok-swap", ("tswap",), 1),
    ("tok-repl", ("trepl",), 2),
    ("tok-mix", ("tdel", "tdup", "tswap", "trepl", "tmove"), 4),
]


def corpus_variants(data, seed, rel, rounds):
    """All (kind, bytes) variants of one corpus file, deterministic."""
    out = []
    rng = random.Random("%s:%s:trunc" % (seed, rel))
    out.extend(variant_truncations(data, rng))
    for r in range(rounds):
        for kind, ops, count in BYTE_VARIANTS:
            rng = random.Random("%s:%s:%s:%d" % (seed, rel, kind, r))
            out.append(("%s.%d" % (kind, r), mutate_bytes(data, rng, ops, count)))
        for kind, ops, count in TOKEN_VARIANTS:
            rng = random.Random("%s:%s:%s:%d" % (seed, rel, kind, r))
            out.append(("%s.%d" % (kind, r), mutate_tokens(data, rng, ops, count)))
    return out


# --------------------------------------------------------------------------
# hostile inputs

MB = 1 << 20


def gen_statements(size):
    """Valid-looking KernelScript: many functions full of statements."""
    parts = [
        b"// generated: valid-looking statements\n",
        b"struct Pair { a: u32, b: u64 }\n",
        b"var counts : hash<u32, u64>(1024)\n\n",
    ]
    total = sum(len(p) for p in parts)
    f = 0
    while total < size:
        lines = ["fn work_%d(x: u32, y: u64) -> u64 {" % f,
                 "    var acc: u64 = y"]
        for j in range(40):
            lines.append("    var v%d: u32 = x + %d * (x - 1)" % (j, j))
            lines.append("    if (v%d > %d) {" % (j, j * 7))
            lines.append("        acc = acc + v%d" % j)
            lines.append("    } else {")
            lines.append("        acc = acc - 1")
            lines.append("    }")
        lines.append("    for (i in 0..16) {")
        lines.append("        acc += i")
        lines.append("    }")
        lines.append("    return acc")
        lines.append("}\n")
        chunk = "\n".join(lines).encode()
        parts.append(chunk)
        total += len(chunk)
        f += 1
    parts.append(b"fn main() -> i32 {\n    var p = Pair { a: 1, b: 2 }\n"
                 b"    return 0\n}\n")
    return b"".join(parts)


def gen_one_function(size):
    """One giant function body of simple statements."""
    parts = [b"fn main() -> i32 {\n    var a: u64 = 0\n"]
    total = len(parts[0])
    i = 0
    while total < size:
        line = b"    a = a + %d * (a - %d)\n" % (i, i % 97)
        parts.append(line)
        total += len(line)
        i += 1
    parts.append(b"    return 0\n}\n")
    return b"".join(parts)


def gen_random(size, seed):
    rng = random.Random("%s:random-bytes" % seed)
    if hasattr(rng, "randbytes"):
        return rng.randbytes(size)
    return bytes(rng.getrandbits(8) for _ in range(size))


def wrap_main(body):
    return b"fn main() -> i32 {\n" + body + b"\n    return 0\n}\n"


def hostile_inputs(seed):
    """List of (name, generator, extra_files) where extra_files maps
    file name -> bytes generator written next to the input."""
    N = 100000
    ident = b"x" * (100 * 1024)
    h = []

    def add(name, gen, extra=None):
        h.append((name, gen, extra or {}))

    add("statements_10mb.ks", lambda: gen_statements(10 * MB))
    add("one_function_2mb.ks", lambda: gen_one_function(2 * MB))
    add("random_10mb.ks", lambda: gen_random(10 * MB, seed))
    add("random_64kb.ks", lambda: gen_random(64 * 1024, seed + 1))
    add("nested_paren.ks", lambda: wrap_main(
        b"    var r: i32 = " + b"(" * N + b"1" + b")" * N))
    add("nested_paren_open.ks", lambda: b"(" * N)
    add("nested_paren_open_in_fn.ks", lambda: wrap_main(
        b"    var r: i32 = " + b"(" * N))
    add("nested_brace.ks", lambda: wrap_main(b"{" * N + b"}" * N))
    add("nested_brace_open.ks", lambda: b"{" * N)
    add("nested_brace_open_in_fn.ks", lambda: b"fn main() -> i32 {" + b"{" * N)
    add("nested_if.ks", lambda: wrap_main(
        b"if (true) {" * N + b"}" * N))
    add("nested_while_open.ks", lambda: wrap_main(b"while (true) {" * N))
    add("else_if_chain.ks", lambda: wrap_main(
        b"    var a: i32 = 1\n    if (a == 0) { a = 1 }"
        + b" else if (a == 1) { a = 2 }" * N))
    add("nested_bracket.ks", lambda: wrap_main(
        b"    var r = a" + b"[" * N + b"0" + b"]" * N))
    add("nested_call.ks", lambda: wrap_main(
        b"    var r = " + b"f(" * N + b"1" + b")" * N))
    add("nested_match.ks", lambda: wrap_main(
        b"    var r = " + b"match (1) { default: " * 20000 + b"1"
        + b" }" * 20000))
    add("nested_struct_lit.ks", lambda: wrap_main(
        b"    var r = " + b"S { a: " * N + b"1" + b" }" * N))
    add("long_sum_2mb.ks", lambda: wrap_main(
        b"    var a: i32 = 1\n    var r: i32 = a" + b"+a" * MB))
    add("long_sum_untyped.ks", lambda: wrap_main(
        b"    return 1" + b"+1" * (MB // 2)))
    add("long_mixed_ops.ks", lambda: wrap_main(
        b"    var a: u32 = 1\n    var r: u32 = a"
        + b"*a-a/a%a<<a>>a&a|a^a" * 50000))
    # ~4.9 MB single line of short statements using an [ext] operator
    add("one_line_statements.ks", lambda: wrap_main(
        b"    var a: u32 = 1\n    var r: u32 = 0\n    "
        + b"r = a as u32; " * 350000))
    add("long_and_chain.ks", lambda: wrap_main(
        b"    var a = true\n    var r = a" + b" && a" * 200000))
    add("long_compare_chain.ks", lambda: wrap_main(
        b"    var a: u32 = 1\n    var r = a" + b" < a" * 200000))
    # 1,000,000 prefix minus: 1 MB, still far below the 10 MB inputs above
    add("minus_chain.ks", lambda: wrap_main(
        b"    var r: i32 = " + b"-" * (10 * N) + b"1"))
    add("minus_chain_spaced.ks", lambda: wrap_main(
        b"    var r: i32 = " + b"- " * (10 * N) + b"1"))
    add("minus_chain_100k.ks", lambda: wrap_main(
        b"    var r: i32 = " + b"-" * N + b"1"))
    add("minus_chain_binary.ks", lambda: wrap_main(
        b"    var a: i32 = 1\n    var r: i32 = a" + b" - a" * N))
    add("minus_chain_alone.ks", lambda: b"-" * N)
    add("not_chain.ks", lambda: wrap_main(b"    var r = " + b"!" * N + b"true"))
    add("tilde_chain.ks", lambda: wrap_main(b"    var r = " + b"~" * N + b"1"))
    add("deref_chain.ks", lambda: wrap_main(b"    var r = " + b"*" * N + b"p"))
    add("addr_chain.ks", lambda: wrap_main(b"    var r = " + b"&" * N + b"p"))
    add("field_chain.ks", lambda: wrap_main(b"    var r = a" + b".b" * N))
    add("arrow_chain.ks", lambda: wrap_main(b"    var r = a" + b"->b" * N))
    add("index_chain.ks", lambda: wrap_main(b"    var r = a" + b"[0]" * N))
    add("cast_chain.ks", lambda: wrap_main(
        b"    var a: u32 = 1\n    var r = a" + b" as u32" * N))
    # a 4 MB single line of casts
    add("cast_chain_4mb.ks", lambda: wrap_main(
        b"    var a: u32 = 1\n    var r = a" + b" as u32" * (5 * N)))
    add("pointer_type_chain.ks", lambda: b"type T = " + b"*" * N + b"u8\n"
        + wrap_main(b""))
    add("array_type_chain.ks", lambda: wrap_main(
        b"    var r: u8" + b"[2]" * 10000))
    add("generic_type_chain.ks", lambda: b"var m : hash<u32, "
        + b"hash<u32, " * 20000 + b"u8" + b">" * 20000 + b">(1)\n"
        + wrap_main(b""))
    add("fn_type_chain.ks", lambda: b"type F = " + b"fn() -> " * 50000
        + b"u8\n" + wrap_main(b""))
    add("alias_chain.ks", lambda: b"".join(
        b"type T%d = T%d\n" % (i, i + 1) for i in range(20000))
        + b"type T20000 = T0\n" + wrap_main(b"    var v: T0 = 0"))
    add("struct_cycle.ks", lambda: b"struct A { b: B }\nstruct B { a: A }\n"
        + wrap_main(b"    var v: A = A { b: B { a: A { b: B { a: A "
                    b"{ b: B { } } } } } }\n    var n = sizeof(B)"))
    add("struct_self_map.ks", lambda: b"struct A { a: A }\n"
        b"var m : hash<u32, A>(1)\n" + wrap_main(b""))
    add("struct_self.ks", lambda: b"struct A { a: A, n: u8[4] }\n"
        + wrap_main(b"    var v = sizeof(A)"))
    add("many_args.ks", lambda: wrap_main(
        b"    var r = f(" + b"1, " * N + b"1)"))
    add("many_params.ks", lambda: b"fn f("
        + b", ".join(b"p%d: u64" % i for i in range(20000))
        + b") -> u64 { return p0 }\n" + wrap_main(b""))
    add("many_fields.ks", lambda: b"struct Big { "
        + b", ".join(b"f%d: u64" % i for i in range(20000))
        + b" }\n" + wrap_main(b"    var v = sizeof(Big)"))
    add("many_enum_variants.ks", lambda: b"enum E { "
        + b", ".join(b"V%d = %d" % (i, i) for i in range(N))
        + b" }\n" + wrap_main(b""))
    add("many_match_arms.ks", lambda: wrap_main(
        b"    var x: u32 = 3\n    var r = match (x) { "
        + b", ".join(b"%d: %d" % (i, i) for i in range(50000))
        + b", default: 0 }"))
    add("many_functions.ks", lambda: b"".join(
        b"fn f%d() -> u32 { return %d }\n" % (i, i) for i in range(50000))
        + wrap_main(b""))
    add("duplicate_functions.ks", lambda: b"fn f() -> u32 { return 1 }\n"
        * 50000 + wrap_main(b""))
    add("many_maps.ks", lambda: b"".join(
        b"var m%d : hash<u32, u64>(16)\n" % i for i in range(20000))
        + wrap_main(b""))
    add("deep_loops.ks", lambda: wrap_main(
        b"for (i in 0..2) {" * 5000 + b"}" * 5000))
    add("deep_try.ks", lambda: wrap_main(
        b"try {" * 20000 + b"throw 1" + b"} catch 1 { }" * 20000))
    add("empty.ks", lambda: b"")
    add("bom_only.ks", lambda: b"\xef\xbb\xbf")
    add("bom_twice.ks", lambda: b"\xef\xbb\xbf\xef\xbb\xbf" + wrap_main(b""))
    add("bom_then_main.ks", lambda: b"\xef\xbb\xbf" + wrap_main(b""))
    add("whitespace_only.ks", lambda: b" \t\r\n" * 100000)
    add("newlines_only.ks", lambda: b"\n" * MB)
    add("nul_only.ks", lambda: b"\x00" * 4096)
    add("ff_only.ks", lambda: b"\xff" * 4096)
    add("lone_cr.ks", lambda: b"fn main() -> i32 {\r    return 0\r}\r")
    add("cr_then_error.ks", lambda: b"fn main() -> i32 {\r\r\r    $\r}\r")
    add("utf16.ks", lambda: "\ufefffn main() -> i32 { return 0 }\n"
        .encode("utf-16"))
    add("surrogates.ks", lambda: wrap_main(
        b"    var s = \"\xed\xa0\x80\xed\xbf\xbf\"\n    var c = '\xed\xa0\x80'"))
    add("nonascii_ident.ks", lambda: wrap_main(
        b"    var caf\xc3\xa9 = 1\n    var \xe2\x80\xae = 2"))
    add("nonascii_cols.ks", lambda: wrap_main(
        b"    // \xf0\x9f\x98\x80\xf0\x9f\x98\x80\n    var s = "
        b"\"\xf0\x9f\x98\x80\" $ \xe2\x82\xac"))
    add("long_ident.ks", lambda: wrap_main(
        b"    var " + ident + b": u32 = 1\n    var r = " + ident
        + b" + y" + ident))
    add("long_ident_alone.ks", lambda: ident)
    add("long_ident_type.ks", lambda: wrap_main(
        b"    var r: " + ident + b" = 1"))
    add("long_number.ks", lambda: wrap_main(b"    var r = " + b"9" * N))
    add("long_hex.ks", lambda: wrap_main(b"    var r = 0x" + b"F" * N))
    add("long_underscores.ks", lambda: wrap_main(
        b"    var r = 1" + b"_1" * N))
    add("unterminated_strings.ks", lambda: b"x = \"abc\n" * N)
    add("unterminated_strings_in_fn.ks", lambda: wrap_main(
        b"    var s = \"abc\n" * N))
    add("unterminated_chars.ks", lambda: wrap_main(b"    var c = 'ab\n" * N))
    add("unterminated_string_eof.ks", lambda: wrap_main(b"") + b"\"" + b"a" * MB)
    add("unterminated_comment.ks", lambda: wrap_main(b"") + b"/*" + b"a" * MB)
    add("many_bad_escapes.ks", lambda: wrap_main(
        b"    var s = \"" + b"\\q\\x\\xZZ\\u{0}" * 20000 + b"\""))
    add("long_string.ks", lambda: wrap_main(
        b"    var s: str(16) = \"" + b"a" * (2 * MB) + b"\""))
    add("huge_str_capacity.ks", lambda: wrap_main(
        b"    var s: str(18446744073709551615) = \"a\"\n"
        b"    var t: str(99999999999999999999) = \"a\"\n"
        b"    var u: u8[18446744073709551615] = []"))
    add("huge_map_size.ks", lambda: b"var m : hash<u32, u64>"
        b"(18446744073709551615)\nvar n : array<u32, u8[4294967295]>(1)\n"
        + wrap_main(b""))
    add("many_unexpected_chars.ks", lambda: b"$ " * N)
    add("many_syntax_errors.ks", lambda: b"fn ) } ] = ,\n" * 50000)
    # 20000 broken items followed by ~5.5 MB of valid ones: every syntax
    # error must not cost time proportional to the rest of the file.
    add("syntax_errors_then_valid.ks", lambda: b"fn )\n" * 20000
        + b"".join(b"fn g%d() -> u32 { return 1 }\n" % i
                   for i in range(180000)) + wrap_main(b""))
    add("many_semicolons.ks", lambda: b";" * N + wrap_main(b";" * N))
    add("attr_chain.ks", lambda: b"@xdp " * 50000 + wrap_main(b""))
    add("ternary_chain.ks", lambda: wrap_main(
        b"    var r = 1" + b" ? 1 : 1" * 50000))
    add("double_colon_chain.ks", lambda: wrap_main(
        b"    var r = a" + b"::b" * 50000))
    add("include_self.ks", lambda: b'include "self.kh"\n' + wrap_main(b""),
        {"self.kh": lambda: b'include "self.kh"\nstruct S { a: u8 }\n'})
    add("include_cycle.ks", lambda: b'include "cyc_a.kh"\n' + wrap_main(b""),
        {"cyc_a.kh": lambda: b'include "cyc_b.kh"\nstruct A { a: u8 }\n',
         "cyc_b.kh": lambda: b'include "cyc_a.kh"\nstruct B { b: u8 }\n'})
    add("include_garbage.ks", lambda: b'include "garbage.kh"\n'
        + wrap_main(b""), {"garbage.kh": lambda: gen_random(65536, seed + 2)})
    add("include_many.ks", lambda: b'include "one.kh"\n' * 5000
        + wrap_main(b""), {"one.kh": lambda: b"struct One { a: u8 }\n"})
    add("include_dir.ks", lambda: b'include ".kh"\ninclude "/.kh"\n'
        b'include "/dev/null.kh"\ninclude "\x00.kh"\ninclude "'
        + b"a/" * 3000 + b'x.kh"\n' + wrap_main(b""))
    add("import_self.ks", lambda: b'import me from "import_self.ks"\n'
        + wrap_main(b"    var r = me.f()"))
    add("import_cycle.ks", lambda: b'import m from "imp_a.ks"\n'
        + wrap_main(b""),
        {"imp_a.ks": lambda: b'import b from "imp_b.ks"\n'
                             b"fn fa() -> u32 { return 1 }\n",
         "imp_b.ks": lambda: b'import a from "imp_a.ks"\n'
                             b"fn fb() -> u32 { return 2 }\n"})
    add("import_garbage.ks", lambda: b'import g from "garbage_mod.ks"\n'
        + wrap_main(b"    var r = g.x()"),
        {"garbage_mod.ks": lambda: gen_random(65536, seed + 3)})
    return h


# --------------------------------------------------------------------------
# running

class Job(object):
    __slots__ = ("label", "path", "make", "extra", "cwd")

    def __init__(self, label, path, make, extra=None, cwd=None):
        self.label = label
        self.path = path
        self.make = make
        self.extra = extra or {}
        self.cwd = cwd or os.path.dirname(path)


def run_ksc(ksc, path, cwd, timeout, env):
    """Run `ksc check path`; returns (returncode, stderr, timed_out)."""
    proc = subprocess.Popen(
        [ksc, "check", path], cwd=cwd, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err, False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = b""
        return -signal.SIGKILL, err or b"", True


def safe_name(label):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")[:150]


def execute(job, opts, env):
    extra_paths = []
    try:
        data = job.make()
        for name, gen in job.extra.items():
            p = os.path.join(os.path.dirname(job.path), name)
            with open(p, "wb") as f:
                f.write(gen())
            extra_paths.append(p)
        with open(job.path, "wb") as f:
            f.write(data)
        # A hang is no exit at all; a 10 MB input on a loaded two-core CI
        # machine legitimately takes a while, so large inputs get more time.
        timeout = opts.timeout + opts.timeout_per_mb * len(data) / MB
        del data
        t0 = time.monotonic()
        rc, err, timed_out = run_ksc(opts.ksc, job.path, job.cwd,
                                     timeout, env)
        elapsed = time.monotonic() - t0
        reason = judge(rc, err, timed_out, timeout)
        if reason and opts.keep_failures:
            os.makedirs(opts.keep_failures, exist_ok=True)
            dst = os.path.join(opts.keep_failures, safe_name(job.label))
            if not dst.endswith(".ks"):
                dst += ".ks"
            shutil.copyfile(job.path, dst)
            with open(dst + ".stderr", "wb") as f:
                f.write(err[:65536])
        return job.label, reason, elapsed
    except Exception as exc:  # setup problem: report, do not hide it
        return job.label, "harness error: %r" % (exc,), 0.0
    finally:
        for p in [job.path] + extra_paths:
            try:
                os.unlink(p)
            except OSError:
                pass


def collect_corpus(roots, tmp, seed, rounds):
    """Mirror each root into tmp and build the variant jobs."""
    jobs = []
    for name, root in roots:
        mirror = os.path.join(tmp, name)
        shutil.copytree(root, mirror, symlinks=False)
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.endswith(".ks"):
                    files.append(os.path.join(dirpath, fn))
        for src in files:
            rel = os.path.relpath(src, root)
            with open(src, "rb") as f:
                data = f.read()
            stem = os.path.join(mirror, rel)[:-3]
            for kind, blob in corpus_variants(data, seed, name + "/" + rel,
                                              rounds):
                path = "%s.rb-%s.ks" % (stem, kind)
                label = "%s/%s [%s]" % (name, rel, kind)
                jobs.append(Job(label, path, (lambda b=blob: b)))
    return jobs


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ksc", required=True, help="path of the ksc binary")
    ap.add_argument("--examples", help="examples directory")
    ap.add_argument("--conformance", help="conformance directory")
    ap.add_argument("--extra", action="append", default=[],
                    help="another directory of .ks files (repeatable)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="parallel ksc processes (default 2, the maximum)")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="seconds per input before it counts as a hang")
    ap.add_argument("--timeout-per-mb", type=float, default=4.0,
                    help="extra seconds per MB of input on top of --timeout")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--rounds", type=int, default=4,
                    help="garbled/token variants of each kind per file")
    ap.add_argument("--max-variants", type=int, default=12000,
                    help="cap on corpus-derived inputs; a deterministic "
                         "sample is taken above it (hostile inputs are "
                         "always run)")
    ap.add_argument("--inputs",
                    default=os.path.join(os.path.dirname(
                        os.path.abspath(__file__)), "inputs"),
                    help="directory of saved reproducers, run unmodified "
                         "(default: inputs/ next to this script)")
    ap.add_argument("--no-hostile", action="store_true",
                    help="skip the generated hostile inputs")
    ap.add_argument("--only", help="run only inputs whose label contains this")
    ap.add_argument("--mem-limit-mb", type=int, default=4096,
                    help="address-space limit for ksc (0 = none)")
    ap.add_argument("--keep-failures", metavar="DIR",
                    help="copy failing inputs (and their stderr) into DIR")
    opts = ap.parse_args(argv)

    jobs_n = max(1, min(opts.jobs, 2))
    opts.ksc = os.path.abspath(opts.ksc)
    if not os.access(opts.ksc, os.X_OK):
        print("robustness: ksc binary not found or not executable: %s"
              % opts.ksc)
        return 1
    roots = []
    for name, d in (("examples", opts.examples),
                    ("conformance", opts.conformance)):
        if d is None:
            continue
        if not os.path.isdir(d):
            print("robustness: directory not found: %s" % d)
            return 1
        roots.append((name, os.path.abspath(d)))
    for i, d in enumerate(opts.extra):
        if not os.path.isdir(d):
            print("robustness: directory not found: %s" % d)
            return 1
        roots.append(("extra%d" % i, os.path.abspath(d)))

    if opts.mem_limit_mb and resource is not None:
        # Inherited by every ksc child; a runaway allocation then aborts
        # (reported as a crash) instead of taking the machine down.
        lim = opts.mem_limit_mb * MB
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            lim = min(lim, hard)
        resource.setrlimit(resource.RLIMIT_AS, (lim, hard))

    env = dict(os.environ)
    env.pop("RUST_BACKTRACE", None)
    env.pop("RUST_LIB_BACKTRACE", None)

    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="ksc-robustness-")
    try:
        jobs = collect_corpus(roots, tmp, opts.seed, opts.rounds)
        if len(jobs) > opts.max_variants:
            rng = random.Random("%s:sample" % opts.seed)
            keep = set(rng.sample(range(len(jobs)), opts.max_variants))
            jobs = [j for i, j in enumerate(jobs) if i in keep]
        if not opts.no_hostile:
            hdir = os.path.join(tmp, "hostile")
            os.makedirs(hdir)
            hostile = []
            for name, gen, extra in hostile_inputs(opts.seed):
                hostile.append(Job("hostile/" + name,
                                   os.path.join(hdir, name), gen, extra))
            # big inputs first so they overlap with the many small ones
            jobs = hostile + jobs
        if opts.inputs and os.path.isdir(opts.inputs):
            # saved reproducers of past failures, run as they are
            idir = os.path.join(tmp, "inputs")
            shutil.copytree(opts.inputs, idir)
            for fn in sorted(os.listdir(idir)):
                if fn.endswith(".ks"):
                    p = os.path.join(idir, fn)
                    with open(p, "rb") as f:
                        blob = f.read()
                    jobs.append(Job("inputs/" + fn, p, (lambda b=blob: b)))
        if opts.only:
            jobs = [j for j in jobs if opts.only in j.label]

        failures = []
        slow = []
        with concurrent.futures.ThreadPoolExecutor(jobs_n) as pool:
            futs = [pool.submit(execute, j, opts, env) for j in jobs]
            for fut in concurrent.futures.as_completed(futs):
                label, reason, elapsed = fut.result()
                if reason:
                    failures.append((label, reason))
                if elapsed > 2.0:
                    slow.append((elapsed, label))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for label, reason in sorted(failures):
        print("CRASH %s: %s" % (label, reason))
    for elapsed, label in sorted(slow, reverse=True)[:10]:
        sys.stderr.write("robustness: slow input %s: %.1fs\n"
                         % (label, elapsed))
    sys.stderr.write("robustness: finished in %.1fs\n"
                     % (time.monotonic() - start))
    print("robustness: %d inputs, %d crashes" % (len(jobs), len(failures)))
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
