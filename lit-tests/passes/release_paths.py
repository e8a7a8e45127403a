"""Walks every path of every function in textual bpf-ir (read from stdin) and checks the release
guarantee of docs/language.md §11.5: each ring-buffer dynptr reserved on a path is submitted or
discarded exactly once before the path returns or tail-calls. Stores and loads of constants
through stack slots are tracked, so a release guarded by its "live" flag is followed exactly.
Prints one line per function and one per violation."""
import re
import sys

func_re = re.compile(r"^\s*ks\.func \{name = @([\w.]+)")
label_re = re.compile(r"^\s*\^(bb\d+)(\(.*\))?:$")
op_re = re.compile(r"^\s*(?:(%[\w.]+(?:, %[\w.]+)*) = )?([a-z]+\.[a-z_]+)(.*)$")

def parse(text):
    funcs, cur, block = {}, None, None
    for line in text.splitlines():
        m = func_re.match(line)
        if m:
            cur = funcs.setdefault(m.group(1), {"order": [], "blocks": {}})
            block = "entry"
            cur["order"].append(block)
            cur["blocks"][block] = []
            continue
        if cur is None:
            continue
        if line.startswith("  })"):
            cur = None
            continue
        m = label_re.match(line)
        if m:
            block = m.group(1)
            if not cur["blocks"].get("entry"):
                # The labelled first block is the entry.
                cur["order"] = [block] if cur["order"] == ["entry"] else cur["order"] + [block]
                cur["blocks"].pop("entry", None)
            else:
                cur["order"].append(block)
            cur["blocks"].setdefault(block, [])
            continue
        m = op_re.match(line)
        if m:
            results = (m.group(1) or "").replace(" ", "").split(",") if m.group(1) else []
            cur["blocks"][block].append((results, m.group(2), m.group(3)))
    return funcs

def operands(rest):
    head = rest.split("{")[0].split("[")[0].split(":")[0]
    return re.findall(r"%[\w.]+", head)

def succs(rest):
    m = re.search(r"\[(\^bb\d+(?:, \^bb\d+)*)\]", rest)
    return [s[1:] for s in m.group(1).split(", ")] if m else []

def check(name, f):
    problems, paths = [], 0
    start = f["order"][0]
    seen = set()
    stack = [(start, (), frozenset())]
    while stack:
        block, mem, live = stack.pop()
        key = (block, mem, live)
        if key in seen:
            continue
        seen.add(key)
        mem, live, consts = dict(mem), set(live), {}
        # Constants are re-derived per visit: values in this text are block-local or loaded.
        for results, op, rest in f["blocks"][block]:
            ops = operands(rest)
            if op == "core.const":
                consts[results[0]] = int(re.search(r"value = (-?\d+)", rest).group(1))
            elif op == "core.store":
                v, slot = ops[0], ops[1]
                if v in consts:
                    mem[slot] = consts[v]
                else:
                    mem.pop(slot, None)
            elif op == "core.load" and ops[0] in mem:
                consts[results[0]] = mem[ops[0]]
            elif op == "core.cmp" and ops[0] in consts and ops[1] in consts:
                a, b = consts[ops[0]], consts[ops[1]]
                pred = re.search(r'pred = "(\w+)"', rest).group(1)
                consts[results[0]] = int({"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[pred])
            elif op == "bpf.dynptr_reserve":
                if ops[0] in live:
                    problems.append(f"RESERVED TWICE {name} {ops[0]} in ^{block}")
                live.add(ops[0])
            elif op in ("bpf.dynptr_submit", "bpf.dynptr_discard"):
                if ops[0] not in live:
                    problems.append(f"RELEASED TWICE {name} {ops[0]} in ^{block}")
                live.discard(ops[0])
            elif op in ("core.ret", "bpf.tail_call"):
                paths += op == "core.ret"
                if live:
                    problems.append(f"LEAK {name}: {sorted(live)} live at {op} in ^{block}")
                if op == "core.ret":
                    break
            elif op == "core.unreachable":
                break
            elif op == "core.br":
                stack.append((succs(rest)[0], tuple(sorted(mem.items())), frozenset(live)))
            elif op == "core.cond_br":
                t, e = succs(rest)
                c = consts.get(ops[0])
                for s, taken in ((t, 1), (e, 0)):
                    if c is None or c == taken:
                        stack.append((s, tuple(sorted(mem.items())), frozenset(live)))
            elif op == "core.switch":
                for s in succs(rest):
                    stack.append((s, tuple(sorted(mem.items())), frozenset(live)))
    return paths, problems

funcs = parse(sys.stdin.read())
bad = 0
for name, f in funcs.items():
    paths, problems = check(name, f)
    for p in problems:
        print(p)
    bad += len(problems)
    print(f"{name}: {paths} returning paths checked")
print(f"{bad} violation(s)")
sys.exit(1 if bad else 0)
