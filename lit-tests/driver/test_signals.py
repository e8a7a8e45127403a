#!/usr/bin/env python3
"""`ksc test` stopped by a signal while a test loops: the test and the runner stop and ksc exits,
leaving no temporary directory (it goes as soon as the runner has started). Killed outright
(SIGKILL), ksc cannot pass the signal on, but the runner and its test must still go (the kernel
sends them SIGTERM when their parent dies).

usage: test_signals.py KSC SPINS.ks

Prints `ok: ...` lines and exits 0, or `FAIL: ...` and exits 1. Every process it started is
killed and every directory removed before it returns.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok: " + what)


def children(pid):
    """The pids whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def gone(pid, within=5.0):
    """Whether `pid` has disappeared (exited and been reaped) within `within` seconds."""
    deadline = time.time() + within
    while os.path.exists("/proc/%d" % pid):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def emptied(path, within=5.0):
    """Whether directory `path` is empty within `within` seconds."""
    deadline = time.time() + within
    while os.listdir(path):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_case(ksc, source, tmp, sig, want_rc):
    name = signal.Signals(sig).name
    proc = subprocess.Popen([ksc, "test", "--timeout", "0", source], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=tmp))
    started = []
    try:
        line = proc.stdout.readline()
        if line.strip() != "spinning":
            raise Failure("the test did not start: %r" % line)
        runners = children(proc.pid)
        tests = [t for r in runners for t in children(r)]
        started = runners + tests
        check(len(runners) == 1 and len(tests) == 1, "%s: ksc runs the runner, the runner the test in a process of its own" % name)
        # ksc removes the build directory right after spawning the runner, concurrently with the
        # runner starting the test: under load the test may print first, so allow it a moment.
        check(emptied(tmp), "%s: the build directory is gone once the runner runs" % name)
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            raise Failure("%s: ksc did not exit" % name)
        check(proc.returncode == want_rc, "%s: ksc exits %d (got %s, stderr %r)" % (name, want_rc, proc.returncode, err.strip()))
        check(all(gone(p) for p in started), "%s: the runner and its test are gone" % name)
        check("passed" not in out, "%s: no summary for an interrupted run (%r)" % (name, out.strip()))
        check(os.listdir(tmp) == [], "%s: no temporary directory left" % name)
    finally:
        for p in [proc.pid] + started:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ksc, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="ksc-signals-")
    try:
        stop_case(ksc, source, tmp, signal.SIGTERM, 128 + signal.SIGTERM)
        stop_case(ksc, source, tmp, signal.SIGINT, 128 + signal.SIGINT)
        stop_case(ksc, source, tmp, signal.SIGHUP, 128 + signal.SIGHUP)
        stop_case(ksc, source, tmp, signal.SIGKILL, -signal.SIGKILL)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
