# lit configuration for ksc: FileCheck-style tests of the compiler's output and diagnostics.
import os
import sys

import lit.formats

config.name = "ksc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".ks", ".ksir", ".test"]
config.excludes = ["inputs", "Output", "lit.cfg.py"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = config.test_source_root

repo = os.path.dirname(config.test_source_root)
ksc = os.environ.get("KSC", os.path.join(repo, "target", "release", "ksc"))
llvm_bin = "/usr/lib/llvm-19/bin"

config.substitutions.append(("%ksc", ksc))
config.substitutions.append(("%FileCheck", os.path.join(llvm_bin, "FileCheck")))
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%examples", os.path.join(repo, "examples")))
config.substitutions.append(("%conformance", os.path.join(os.path.dirname(repo), "shared", "conformance")))

# FileCheck, not and count come from llvm-19-tools.
config.environment["PATH"] = os.pathsep.join([llvm_bin, os.environ.get("PATH", "")])
for var in ("KSC_REQUIRE_KERNEL", "HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
