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
config.substitutions.append(("%expect-exit", "%s %s" % (sys.executable, os.path.join(config.test_source_root, "expect_exit.py"))))
config.substitutions.append(("%examples", os.path.join(repo, "examples")))
config.substitutions.append(("%benches", os.path.join(repo, "benches", "programs")))
config.substitutions.append(("%conformance", os.path.join(repo, "tests", "conformance")))

# FileCheck, not and count come from llvm-19-tools.
config.environment["PATH"] = os.pathsep.join([llvm_bin, os.environ.get("PATH", "")])
for var in ("KSC_REQUIRE_KERNEL", "HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]


def bpf_usable():
    """Creates and closes a one-entry BPF array map with the raw bpf() syscall."""
    import ctypes
    import struct
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 4, 1) + bytes(112))
        fd = libc.syscall(321, 0, attr, 128)  # __NR_bpf on x86-64, BPF_MAP_CREATE
        if fd < 0:
            return False
        os.close(fd)
        return True
    except OSError:
        return False


# Tests that switch to an unprivileged user (setpriv) run as root. The user nobody must reach
# ksc and the test's files, which a checkout under a private directory (`mktemp -d`) does not
# allow: %unpriv-tmp is a scratch directory anyone can enter, and %ksc-unpriv ksc itself or, when
# nobody cannot reach it, a copy there.
def reachable_by_others(path):
    here = os.path.abspath(path)
    while os.path.dirname(here) != here:
        here = os.path.dirname(here)
        if not os.stat(here).st_mode & 0o001:
            return False
    return True


if os.geteuid() == 0:
    import atexit
    import shutil
    import tempfile

    config.available_features.add("root")
    unpriv_tmp = tempfile.mkdtemp(prefix="ksc-lit-unpriv-", dir="/tmp")
    os.chmod(unpriv_tmp, 0o755)
    atexit.register(shutil.rmtree, unpriv_tmp, True)
    ksc_unpriv = ksc
    if not reachable_by_others(ksc) and os.path.exists(ksc):
        ksc_unpriv = os.path.join(unpriv_tmp, "ksc")
        shutil.copy2(ksc, ksc_unpriv)
        os.chmod(ksc_unpriv, 0o755)
    # Before %ksc, which would otherwise match their first four letters.
    config.substitutions.insert(0, ("%ksc-unpriv", ksc_unpriv))
    config.substitutions.insert(0, ("%unpriv-tmp", unpriv_tmp))

# Tests that load programs into the kernel need bpf(); in CI (KSC_REQUIRE_KERNEL=1) they always
# run, so a machine without bpf() fails them instead of skipping them.
if os.environ.get("KSC_REQUIRE_KERNEL") == "1" or bpf_usable():
    config.available_features.add("kernel")
# Generated kernel modules are compiled against Debian's kernel headers; CI installs them, so
# there the tests always run.
import glob
if os.environ.get("KSC_REQUIRE_KERNEL") == "1" or glob.glob("/usr/src/linux-headers-*-amd64/Makefile"):
    config.available_features.add("kbuild")
# ksc under valgrind: CI installs it (ci/setup), so there the test always runs.
import shutil
if os.environ.get("CI") == "true" or shutil.which("valgrind"):
    config.available_features.add("valgrind")
# Tests on other kernels boot them in QEMU through ci/vmrun (slow under TCG): run when asked for
# (KSC_VM_TESTS=1) and always in CI, where a missing prerequisite fails them.
if os.environ.get("KSC_VM_TESTS") == "1" or os.environ.get("CI") == "true":
    config.available_features.add("vm")
config.substitutions.append(("%vmrun", os.path.join(repo, "ci", "vmrun")))
for var in ("KSC_VM_TESTS", "CI", "VMRUN_ACCEL", "VMRUN_CACHE", "XDG_CACHE_HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
config.substitutions.append(("%llvm-objdump", os.path.join(llvm_bin, "llvm-objdump")))
config.substitutions.append(("%bpftool", "bpftool"))

# End-to-end scenarios share one network namespace and veth pair (lit-tests/e2e).
lit_config.parallelism_groups["e2e"] = 1
