"""Writes a KernelScript program with one large multi-way branch of the shape named on the
command line. Each userspace program checks every input (cases, holes, below and above the
range) against a closed-form oracle and exits 0 only when all agree; the xdp shape is checked
by its @test through BPF_PROG_TEST_RUN.

usage: big_switch.py SHAPE [ARMS]
"""
import sys

shape = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def check_main(lo, hi, oracle, ty="u32"):
    """`oracle` is a list of (condition, value) tried in order, then a final value."""
    *tests, last = oracle
    body = "".join(f"    if ({c}) {{\n        return {v}\n    }}\n" for c, v in tests)
    return f"""
fn want(x: {ty}) -> {ty} {{
{body}    return {last}
}}

fn main() -> i32 {{
    for (i in {lo}..{hi}) {{
        var x: {ty} = i as {ty}
        if (pick(x) != want(x)) {{
            print("pick(%d) is wrong", i)
            return 1
        }}
    }}
    return 0
}}
"""


def match(arm_value, cases, default="99", ty="u32", ret="u32"):
    arms = "".join(f"        {k}: {arm_value(k)},\n" for k in cases)
    return (f"fn pick(x: {ty}) -> {ret} {{\n    return match (x) {{\n{arms}"
            f"        default: {default},\n    }}\n}}\n")


if shape == "dense":
    # Cases 0..n-1 in a scrambled order: a table behind one range test.
    cases = sorted(range(n), key=lambda k: (k * 7919) % n)
    src = match(lambda k: k * 7 + 1, cases)
    src += check_main(0, n + 20, [(f"x < {n}", "x * 7 + 1"), "99"])
elif shape == "holes":
    # Every third value missing: a hit table decides between the arm and the default.
    src = match(lambda k: k + 1000, [k for k in range(n * 3 // 2) if k % 3 != 1])
    src += check_main(0, n * 3 // 2 + 10,
                      [(f"x < {n * 3 // 2} && x % 3 != 1", "x + 1000"), "99"])
elif shape == "signed":
    # i32 cases from -n/2 to n/2: offsets computed on the sign-extended value.
    h = n // 2
    src = match(lambda k: k * 3, range(-h, h), default="7", ty="i32", ret="i32")
    src += check_main(-h - 10, h + 10, [(f"x >= -{h} && x < {h}", "x * 3"), "7"], ty="i32")
elif shape == "computed":
    # Arms compute from the scrutinee with per-arm constants.
    src = match(lambda k: f"x * {k % 5} + {k}", range(n))
    src += check_main(0, n + 5, [(f"x < {n}", "x * (x % 5) + x"), "99"])
elif shape == "sparse":
    # Cases about 1000 apart, in scrambled order: too sparse for a table over their range, so
    # userspace finds the case by binary search over the sorted cases.
    order = sorted(range(n), key=lambda k: (k * 7919) % n)
    arms = "".join(f"        {k * 1000 + k % 7}: {k * 3 + 1},\n" for k in order)
    src = (f"fn pick(x: u32) -> u32 {{\n    return match (x) {{\n{arms}"
           f"        default: 99,\n    }}\n}}\n")
    src += check_main(0, n * 1000 + 10,
                      [(f"x / 1000 < {n} && x % 1000 == x / 1000 % 7", "x / 1000 * 3 + 1"), "99"])
elif shape == "sparse-xdp":
    # The same in kernel code: the switch stays (a search's every path would be verified).
    arms = "".join(f"        {k * 1000}: XDP_DROP,\n" for k in range(n))
    src = (f"@xdp fn sparse(ctx: *xdp_md) -> xdp_action {{\n"
           f"    var field: u32 = ctx->ingress_ifindex\n"
           f"    return match (field) {{\n{arms}        default: XDP_PASS,\n    }}\n}}\n\n"
           f"fn main() -> i32 {{\n    return 0\n}}\n")
elif shape == "mixed":
    # One arm computes differently from the rest: the arms are not one shape; the switch stays.
    src = match(lambda k: f"x + {k}" if k == 5 else str(k * 2), range(n))
    src += check_main(0, n + 5, [("x == 5", "10"), (f"x < {n}", "x * 2"), "99"])
elif shape == "chain":
    # An else-if chain assigning a local, with a final else and a repeated (dead) test.
    links = "".join(f" else if (x == {k}) {{\n        r = {k * 5}\n    }}" for k in range(1, n))
    src = (f"fn pick(x: u32) -> u32 {{\n    var r: u32 = 0\n    if (x == 0) {{\n        r = 3\n    }}"
           f"{links} else if (x == 4) {{\n        r = 1\n    }} else {{\n        r = 77\n    }}\n"
           f"    return r\n}}\n")
    src += check_main(0, n + 10, [("x == 0", "3"), (f"x < {n}", "x * 5"), "77"])
elif shape == "chain-return":
    # Each link returns, with the constant first; the chain has no final else.
    links = "".join(f" else if ({k} == x) {{\n        return {k + 40}\n    }}" for k in range(1, n))
    src = (f"fn pick(x: u32) -> u32 {{\n    if (x == 0) {{\n        return 40\n    }}{links}\n"
           f"    return 1\n}}\n")
    src += check_main(0, n + 10, [(f"x < {n}", "x + 40"), "1"])
elif shape == "xdp-offset":
    # A match choosing a packet offset: read from a table the offset would be a scalar the
    # verifier knows no bounds of (each arm of the switch gives it a constant), so kernel code
    # keeps the switch.
    arms = "".join(f"        {k}: {k % 50},\n" for k in range(n))
    src = f"""@xdp fn pick_byte(ctx: *xdp_md) -> xdp_action {{
    var data = ctx->data
    if (data + 64 > ctx->data_end) {{
        return XDP_PASS
    }}
    var field: u32 = (*(data + 12) as u32) * 256 + (*(data + 13) as u32)
    var at: u32 = match (field) {{
{arms}        default: 0,
    }}
    if (*(data + at) == 7) {{
        return XDP_DROP
    }}
    return XDP_PASS
}}

fn main() -> i32 {{
    return 0
}}
"""
elif shape == "xdp":
    # Kernel side: the class of the packet's 16-bit field at byte 12 from a large match; the
    # verdict too. The test sweeps the field across cases and defaults.
    arms = "".join(f"        {k}: {k % 4 + 10},\n" for k in range(n))
    # Every third value missing, and arms computing from the field: a hit table and two tables.
    holes = "".join(f"        {k}: field * {k % 3 + 1} + {k},\n" for k in range(n * 3 // 2) if k % 3 != 2)
    verdicts = "".join(f"        {k}: {'XDP_DROP' if k % 2 else 'XDP_PASS'},\n" for k in range(n))
    src = f"""var last_class: u32 = 0
var last_mix: u32 = 0

@xdp fn classify(ctx: *xdp_md) -> xdp_action {{
    var data = ctx->data
    if (data + 14 > ctx->data_end) {{
        return XDP_ABORTED
    }}
    var field: u32 = (*(data + 12) as u32) * 256 + (*(data + 13) as u32)
    last_class = match (field) {{
{arms}        default: 99,
    }}
    last_mix = match (field) {{
{holes}        default: 5,
    }}
    return match (field) {{
{verdicts}        default: XDP_TX,
    }}
}}

@test
fn every_class() -> i32 {{
    var pkt: u8[14] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    for (i in 0..{n * 3 // 2 + 300}) {{
        var v = i as u32
        pkt[12] = (v / 256) as u8
        pkt[13] = (v % 256) as u8
        var verdict = test(classify, pkt)
        var want_class: u32 = 99
        var want_verdict = XDP_TX
        if (v < {n}) {{
            want_class = v % 4 + 10
            want_verdict = XDP_PASS
            if (v % 2 == 1) {{
                want_verdict = XDP_DROP
            }}
        }}
        var want_mix: u32 = 5
        if (v < {n * 3 // 2} && v % 3 != 2) {{
            want_mix = v * (v % 3 + 1) + v
        }}
        if (last_class != want_class || verdict != want_verdict || last_mix != want_mix) {{
            print("field %d: class %d verdict %d mix %d", v, last_class, verdict, last_mix)
            return 1
        }}
    }}
    return 0
}}

fn main() -> i32 {{
    return 0
}}
"""
else:
    sys.exit(f"unknown shape {shape}")

sys.stdout.write(src)
