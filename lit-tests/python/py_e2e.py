#!/usr/bin/env python3
"""exec() scenarios (§15.7): executables built by ksc become Python scripts that use the unit's
generated module over the inherited descriptors.

usage: py_e2e.py KSC SCENARIO

Prints `ok: ...` lines and exits 0, or prints `FAIL: ...` and exits 1. The veth pair, the
namespace and the build directory are removed in `finally` blocks."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
NS = "ksc-py"
HOST_IF, PEER_IF = "kscpy0", "kscpy1"
HOST_IP, PEER_IP = "10.214.0.1", "10.214.0.2"


# The failure, check, command and build helpers of the kernel end-to-end scenarios.
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from e2e import Failure, check, sh  # noqa: E402
from e2e import build as build_in  # noqa: E402


def build(ksc, name, out):
    return build_in(ksc, name, out, programs=PROGRAMS)


def cleanup_net():
    sh("ip", "link", "del", HOST_IF, check_rc=False)
    sh("ip", "netns", "del", NS, check_rc=False)


def setup_net():
    cleanup_net()
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF)
    sh("ip", "link", "set", PEER_IF, "netns", NS)
    sh("ip", "addr", "add", HOST_IP + "/24", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "-n", NS, "addr", "add", PEER_IP + "/24", "dev", PEER_IF)
    sh("ip", "-n", NS, "link", "set", PEER_IF, "up")


def xdp_attached(iface):
    return "xdp" in sh("ip", "link", "show", "dev", iface)


def run(argv, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd=cwd, timeout=120)
    return p.returncode, p.stdout, p.stderr


def scenario_exec(ksc, work):
    exe = build(ksc, "exec_xdp", work)
    check(os.path.exists(exe + ".py"), "ksc build writes exec_xdp.py beside the executable")
    env = {"PY_NS": NS, "PY_HOST_IP": HOST_IP, "PY_IFACE": HOST_IF}
    try:
        setup_net()
        # The script is found in the working directory.
        rc, out, err = run([exe, "--iface", HOST_IF, "--script", "check_exec.py"], env, cwd=PROGRAMS)
        sys.stdout.write(out)
        check(rc == 0, "the Python script ran every check and exited 0 (exit %d, stderr %r)" % (rc, err.strip()[-2000:]))
        check(not xdp_attached(HOST_IF), "the XDP link is gone once the Python process has exited")
        # The exit status is Python's; a script beside the executable is found too.
        shutil.copy(os.path.join(PROGRAMS, "check_exec.py"), work)
        rc, out, err = run([exe, "--iface", HOST_IF, "--script", "check_exec.py"], dict(env, PY_EXIT="3"), cwd="/")
        check(rc == 3, "the process exits with the Python script's status, found beside the executable (exit %d, %r)" % (rc, err.strip()[-500:]))
        check(not xdp_attached(HOST_IF), "nothing stays attached after that run either")
        check(not os.path.exists("/sys/fs/bpf/exec_xdp"), "no pins left behind")
    finally:
        cleanup_net()


def scenario_exec_errors(ksc, work):
    exe = build(ksc, "exec_xdp", work)
    try:
        setup_net()
        rc, out, err = run([exe, "--iface", HOST_IF, "--script", "no_such_script.py"], cwd=work)
        check(rc == 1 and 'exec("no_such_script.py"): no such script' in err,
              "a missing script: one line naming it, exit 1 (exit %d, %r)" % (rc, err.strip()))
        check(not xdp_attached(HOST_IF), "a failed exec detaches what the program attached")
        # (A copy in the short work directory: `--script` holds 63 bytes, fewer than a path into
        # a checkout under a temporary directory may take.)
        script = os.path.join(work, "check_exec.py")
        shutil.copy(os.path.join(PROGRAMS, "check_exec.py"), script)
        rc, out, err = run([exe, "--iface", HOST_IF, "--script", script],
                           {"PATH": "/nonexistent"}, cwd=work)
        check(rc == 1 and 'cannot run python3' in err and "check_exec.py" in err,
              "no python3 on PATH: one line naming the script, exit 1 (exit %d, %r)" % (rc, err.strip()))
        check(not xdp_attached(HOST_IF), "nothing stays attached when python3 is missing")
    finally:
        cleanup_net()


def main():
    ksc, scenario = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="ksc-py-")
    try:
        globals()["scenario_" + scenario](ksc, work)
    except Failure as e:
        print("FAIL: " + str(e))
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
