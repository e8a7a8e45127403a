"""Feeds `ksc opt` thousands of damaged KS-IR texts (truncations, deleted and swapped tokens, byte
flips) derived from the IR of the examples, and checks that every run ends with status 0 or 1 and
never with a crash, a panic or an internal-error report."""
import glob
import os
import random
import subprocess
import sys
import tempfile

ksc, examples = sys.argv[1:3]
random.seed(7)
texts = []
for f in sorted(glob.glob(os.path.join(examples, "*.ks")))[:6]:
    r = subprocess.run([ksc, "--emit=ks-ir", f], capture_output=True)
    if r.returncode == 0:
        texts.append(r.stdout.decode())

def variants(t):
    n = len(t)
    for _ in range(40):
        yield t[: random.randrange(n)]
    toks = t.split(" ")
    for _ in range(60):
        k = list(toks)
        i = random.randrange(len(k))
        op = random.randrange(3)
        if op == 0:
            del k[i]
        elif op == 1:
            j = random.randrange(len(k))
            k[i], k[j] = k[j], k[i]
        else:
            k[i] = random.choice(["%0", "^bb9", "@x", "{", "}", "(", ")", ":", "=", "u64", "ptr<", "[3 x u8]", "-5", '"\\q"', "core.ret", "ks.yield"])
        yield " ".join(k)
    b = bytearray(t.encode())
    for _ in range(40):
        c = bytearray(b)
        for _ in range(3):
            c[random.randrange(len(c))] = random.randrange(256)
        yield c.decode("latin-1")

bad = count = 0
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "x.ksir")
    for t in texts:
        for v in variants(t):
            with open(path, "w", encoding="latin-1", errors="replace") as out:
                out.write(v)
            for passes in ([], ["--passes=flatten"]):
                r = subprocess.run([ksc, "opt", *passes, path], capture_output=True, timeout=30)
                count += 1
                err = r.stderr.decode(errors="replace")
                if r.returncode not in (0, 1) or "internal compiler error" in err or "panicked" in err:
                    bad += 1
                    if bad <= 5:
                        print(f"BAD exit {r.returncode}: {err[:300]}")
                        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "inputs", f"ir-crash-{bad}.ksir"), "w", encoding="latin-1", errors="replace") as keep:
                            keep.write(v)
print(f"{count} runs, {bad} bad")
sys.exit(1 if bad or count < 1000 else 0)
