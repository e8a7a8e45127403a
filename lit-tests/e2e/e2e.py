#!/usr/bin/env python3
"""End-to-end scenarios: executables built by ksc run against the real kernel, with real traffic.

usage: e2e.py KSC SCENARIO

Each scenario builds a program of programs/, runs it, drives it (packets through a veth pair
into a network namespace, system calls, a loopback TCP connection), stops it with a signal and
checks what it printed and what it left behind. Namespaces, links and pins are removed in
`finally` blocks, so a failing scenario leaves the machine as it found it. Prints `ok: ...`
lines and exits 0, or prints `FAIL: ...` and exits 1.
"""
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "ksc-e2e"
HOST_IF, PEER_IF = "ksce2e0", "ksce2e1"
HOST_IP, PEER_IP = "10.213.0.1", "10.213.0.2"
TCP_CONGESTION = 13


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok: " + what, flush=True)


def sh(*cmd, check_rc=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check_rc and p.returncode != 0:
        raise Failure("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stdout.strip()))
    return p.stdout


def build(ksc, name, out, programs=os.path.join(HERE, "programs")):
    src = os.path.join(programs, name + ".ks")
    p = subprocess.run([ksc, "build", src, "-o", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise Failure("ksc build %s: %s" % (name, p.stdout.strip()))
    return os.path.join(out, name)


@contextlib.contextmanager
def veth_pair():
    """HOST_IF in this namespace, PEER_IF in namespace NS, addressed and up."""
    sh("ip", "netns", "del", NS, check_rc=False)
    sh("ip", "link", "del", HOST_IF, check_rc=False)
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF)
        sh("ip", "link", "set", PEER_IF, "netns", NS)
        sh("ip", "addr", "add", HOST_IP + "/24", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "-n", NS, "addr", "add", PEER_IP + "/24", "dev", PEER_IF)
        sh("ip", "-n", NS, "link", "set", PEER_IF, "up")
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        yield
    finally:
        sh("ip", "link", "del", HOST_IF, check_rc=False)
        sh("ip", "netns", "del", NS, check_rc=False)


class Program:
    """A running executable whose stdout is read line by line."""

    def __init__(self, argv, **popen):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
        # Processes that may hold the output pipes open after the one started (its children).
        self.others = []

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        line = self.proc.stdout.readline()
        if line.strip() != "ready" or time.time() > deadline:
            rc, out, err = self.stop(signal.SIGKILL)
            raise Failure("program did not start (exit %s): %r %s %s" % (rc, line, out.strip(), err.strip()))

    def stop(self, sig=signal.SIGTERM):
        # "ready" is printed just before the program enters dispatch(), which is what turns
        # SIGTERM into a normal return; give it that moment.
        time.sleep(0.3)
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in self.others:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


@contextlib.contextmanager
def running(argv, **popen):
    p = Program(argv, **popen)
    try:
        p.wait_ready()
        yield p
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def counters(text):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", text)}


def xdp_attached(ifname):
    return "prog/xdp" in sh("ip", "-d", "link", "show", ifname)


def tc_attached(ifname):
    out = sh("bpftool", "net", "show", "dev", ifname, check_rc=False) if shutil.which("bpftool") else ""
    return "guard" in out or "tcx" in out and "id" in out


def udp_send_from_ns(dst, port, count):
    code = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(%d): s.sendto(b'x'*32,(%r,%d))\n" % (count, dst, port)
    sh("ip", "netns", "exec", NS, sys.executable, "-c", code)


def udp_receiver(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.5)
    return s


def drain(sock):
    n = 0
    while True:
        try:
            sock.recv(2048)
            n += 1
        except socket.timeout:
            return n


def scenario_xdp(ksc, work):
    exe = build(ksc, "xdp_veth", work)
    with veth_pair():
        passed, dropped = udp_receiver(HOST_IP, 7002), udp_receiver(HOST_IP, 7001)
        with running([exe, "--iface", HOST_IF, "--drop-port", "7001"]) as p:
            check(xdp_attached(HOST_IF), "XDP program attached to %s" % HOST_IF)
            sh("ip", "netns", "exec", NS, "ping", "-c", "3", "-i", "0.2", "-W", "1", HOST_IP)
            udp_send_from_ns(HOST_IP, 7001, 5)
            udp_send_from_ns(HOST_IP, 7002, 4)
            got_passed, got_dropped = drain(passed), drain(dropped)
            rc, out, err = p.stop(signal.SIGTERM)
        c = counters(out)
        check(rc == 0, "program exits 0 after SIGTERM (got %s, stderr %r)" % (rc, err.strip()))
        check(c.get("icmp", 0) >= 3, "ICMP echo requests counted (%s)" % c.get("icmp"))
        check(c.get("udp") == 9 and c.get("dropped") == 5, "UDP counted 9, dropped 5 (%s)" % out.strip())
        check(c.get("reported") == 5, "each drop delivered through the ring buffer to drops_callback (%s)" % c.get("reported"))
        check(got_passed == 4 and got_dropped == 0, "receiver got the 4 passed datagrams and none of the dropped (%d, %d)" % (got_passed, got_dropped))
        check(not xdp_attached(HOST_IF), "XDP program detached at exit")
        check(not os.path.exists("/sys/fs/bpf/xdp_veth"), "no pins left behind")


def scenario_tc(ksc, work):
    exe = build(ksc, "tc_veth", work)
    with veth_pair():
        ns_recv = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c",
                                    "import socket\nsocks=[]\nfor port in (7101,7102):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',port)); socks.append(s)\nprint('bound', flush=True)\nout=[]\nfor s in socks:\n s.settimeout(3)\n n=0\n try:\n  while True: s.recv(2048); n+=1; s.settimeout(0.5)\n except socket.timeout: pass\n out.append(n)\nprint(out[0], out[1])\n"],
                                   stdout=subprocess.PIPE, text=True)
        if ns_recv.stdout.readline().strip() != "bound":
            raise Failure("the receiver in the namespace did not start")
        with running([exe, "--iface", HOST_IF, "--block-port", "7101"]) as p:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(6):
                s.sendto(b"y" * 32, (PEER_IP, 7101))
            for _ in range(3):
                s.sendto(b"y" * 32, (PEER_IP, 7102))
            recv_out = ns_recv.communicate(timeout=30)[0].split()
            rc, out, err = p.stop(signal.SIGINT)
        c = counters(out)
        check(rc == 0, "program exits 0 after SIGINT (got %s, stderr %r)" % (rc, err.strip()))
        check(c.get("dropped") == 6 and c.get("passed") == 3, "TC egress dropped 6 and passed 3 (%s)" % out.strip())
        check(recv_out == ["0", "3"], "the namespace received only the unblocked port's datagrams (%s)" % recv_out)
        check("tcx" not in sh("ip", "-d", "link", "show", HOST_IF) and not tc_attached(HOST_IF), "TC program detached at exit")


def scenario_tracepoint(ksc, work):
    exe = build(ksc, "syscall_tracepoint", work)
    with running([exe, "--pid", str(os.getpid())]) as p:
        for _ in range(7):
            os.getppid()
        rc, out, err = p.stop(signal.SIGTERM)
    c = counters(out)
    check(rc == 0, "program exits 0 after SIGTERM (got %s, stderr %r)" % (rc, err.strip()))
    check(c.get("calls") == 7, "the tracepoint saw exactly this process's 7 getppid calls (%s)" % out.strip())


def scenario_sleep(ksc, work):
    """sleep(ms) in a monitoring loop: it waits as long as asked, and SIGINT ends the wait at once."""
    exe = build(ksc, "sampling_tracepoint", work)
    started = time.time()
    with running([exe, "--pid", str(os.getpid()), "--ms", "300", "--rounds", "3"]) as p:
        for _ in range(5):
            os.getppid()
        rc, out, err = p.stop(None)
    elapsed = time.time() - started
    rounds = re.findall(r"round=(\d+) calls=(\d+)", out)
    check(rc == 0 and [r for r, _ in rounds] == ["1", "2", "3"], "three rounds printed, exit 0 (exit %s: %r %s)" % (rc, out, err.strip()))
    check(rounds[-1][1] == "5", "the last round saw this process's 5 getppid calls (%s)" % rounds[-1][1])
    check(0.9 <= elapsed < 10, "three sleeps of 300 ms took at least 0.9 s (%.2f s)" % elapsed)
    with running([exe, "--pid", "1", "--ms", "60000", "--rounds", "1"]) as p:
        time.sleep(0.2)
        interrupted = time.time()
        p.proc.send_signal(signal.SIGINT)
        rc, out, err = p.stop(None)
        waited = time.time() - interrupted
    check(rc == 128 + signal.SIGINT and waited < 5, "SIGINT ends a 60 s sleep at once with status 130 (exit %s after %.2f s)" % (rc, waited))


def scenario_dispatch_loop(ksc, work):
    """A stop signal ends the dispatch it arrives in; a loop that then sleeps or dispatches again
    ends (status 128 + N), instead of waiting for one signal per round."""
    exe = build(ksc, "dispatch_loop", work)
    with running([exe, "--pid", str(os.getpid())]) as p:
        for _ in range(3):
            os.getppid()
        time.sleep(0.3)
        stopped = time.time()
        p.proc.send_signal(signal.SIGTERM)
        rc, out, err = p.stop(None)
        waited = time.time() - stopped
    check("seen=3" in out, "the loop's dispatch handled this process's 3 getppid events (%r)" % out)
    check(rc == 128 + signal.SIGTERM and waited < 5,
          "one SIGTERM ends the dispatch loop at once with status 143 (exit %s after %.2f s, stderr %r)"
          % (rc, waited, err.strip()))
    check("never reached" not in out, "the loop did not run to its end")


def scenario_monitor_forever(ksc, work):
    """`while (true) { print(…); sleep(100) }`: it reports until SIGINT or SIGTERM ends it, with the
    XDP program detached."""
    exe = build(ksc, "monitor_forever", work)
    with veth_pair():
        for sig in (signal.SIGINT, signal.SIGTERM):
            name = signal.Signals(sig).name
            with running([exe, "--iface", HOST_IF]) as p:
                check(xdp_attached(HOST_IF), "%s: XDP program attached to %s" % (name, HOST_IF))
                sh("ip", "netns", "exec", NS, "ping", "-c", "2", "-i", "0.2", "-W", "1", HOST_IP)
                time.sleep(0.3)
                rc, out, err = p.stop(sig)
            reports = [int(n) for n in re.findall(r"icmp=(\d+)", out)]
            check(len(reports) >= 3 and reports[-1] >= 2,
                  "%s: the loop reported every 100 ms and saw the pings (%s)" % (name, reports[-3:]))
            check(rc == 128 + sig, "%s: the program exits %d (got %s, stderr %r)" % (name, 128 + sig, rc, err.strip()))
            check(not xdp_attached(HOST_IF), "%s: XDP program detached at exit" % name)


def scenario_struct_ops(ksc, work):
    exe = build(ksc, "struct_ops_cc", work)
    with running([exe]) as p:
        check("ks_e2e_cc" in open("/proc/sys/net/ipv4/tcp_available_congestion_control").read(), "ks_e2e_cc is an available congestion control")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, b"ks_e2e_cc")
        client.connect(server.getsockname())
        conn, _ = server.accept()
        chosen = client.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0")
        client.sendall(b"z" * 1000000)
        client.close()
        total = 0
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            total += len(chunk)
        conn.close()
        server.close()
        rc, out, err = p.stop(signal.SIGTERM)
    c = counters(out)
    check(chosen == b"ks_e2e_cc", "setsockopt(TCP_CONGESTION) chose ks_e2e_cc (%r)" % chosen)
    check(total == 1000000, "1 MB crossed the connection (%d bytes)" % total)
    check(rc == 0 and c.get("inits", 0) >= 1, "the struct_ops init ran for the connection, counted in a map (exit %s: %s %s)" % (rc, out.strip(), err.strip()))
    check(c.get("cong_avoid", 0) >= 1, "cong_avoid, which calls the kernel's tcp_slow_start/tcp_cong_avoid_ai kfuncs, ran on ACKs (%s)" % c.get("cong_avoid"))
    check("ks_e2e_cc" not in open("/proc/sys/net/ipv4/tcp_available_congestion_control").read(), "unregistered at exit")


def scenario_kill(ksc, work):
    """SIGKILL mid-run (no handler can run): the kernel must still drop every attachment."""
    xdp = build(ksc, "xdp_veth", work)
    tc = build(ksc, "tc_veth", work)
    with veth_pair():
        with running([xdp, "--iface", HOST_IF, "--drop-port", "1"]) as p:
            check(xdp_attached(HOST_IF), "XDP attached before the kill")
            p.stop(signal.SIGKILL)
        check(not xdp_attached(HOST_IF), "no XDP program attached after SIGKILL")
        with running([tc, "--iface", HOST_IF, "--block-port", "1"]) as p:
            p.stop(signal.SIGKILL)
        time.sleep(0.2)
        check(not tc_attached(HOST_IF) and "clsact" not in sh("tc", "qdisc", "show", "dev", HOST_IF), "no TC program or clsact qdisc left after SIGKILL")
        for d in ("xdp_veth", "tc_veth"):
            check(not os.path.exists("/sys/fs/bpf/" + d), "no pins left by " + d)


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


def own_terminal():
    """In the child, after setsid: make stdin (a pty) the controlling terminal, whose foreground
    process group is then this new session's."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def scenario_run_signals(ksc, work):
    """`ksc run` stopped by a signal: the program gets it once, detaches and exits normally; ksc
    waits for it. The temporary directory is gone as soon as the program runs. Ctrl-C on a terminal reaches both (ksc must
    not send it a second time); the hangup of the terminal whose session ksc leads reaches ksc
    alone (ksc must pass it on); after SIGKILL the kernel sends the program SIGTERM."""
    src = os.path.join(HERE, "programs", "xdp_veth.ks")
    tmp = os.path.join(work, "tmp")
    os.mkdir(tmp, 0o700)
    argv = [ksc, "run", src, "--", "--iface", HOST_IF, "--drop-port", "7001"]
    cases = [
        ("SIGTERM", signal.SIGTERM, 0),
        ("SIGINT", signal.SIGINT, 0),
        ("Ctrl-C", "tty", 0),
        ("hangup", "tty", 128 + signal.SIGHUP),
        ("SIGHUP", signal.SIGHUP, 128 + signal.SIGHUP),
        ("SIGKILL", signal.SIGKILL, -signal.SIGKILL),
    ]
    with veth_pair():
        for name, sig, want in cases:
            popen = {"env": dict(os.environ, TMPDIR=tmp)}
            master = slave = None
            if sig == "tty":
                master, slave = os.openpty()
                popen.update(stdin=slave, start_new_session=True, preexec_fn=own_terminal)
            program = None
            try:
                with running(argv, **popen) as p:
                    if slave is not None:
                        os.close(slave)
                        slave = None
                    kids = children(p.proc.pid)
                    program = kids[0] if len(kids) == 1 else None
                    p.others = kids
                    check(program is not None and xdp_attached(HOST_IF), "%s: ksc runs the program, which attached XDP to %s" % (name, HOST_IF))
                    check(os.listdir(tmp) == [], "%s: the build directory is gone once the program runs" % name)
                    if name == "Ctrl-C":
                        time.sleep(0.3)
                        os.write(master, b"\x03")
                        rc, out, err = p.stop(None)
                    elif name == "hangup":
                        time.sleep(0.3)
                        os.close(master)
                        master = None
                        rc, out, err = p.stop(None)
                    else:
                        rc, out, err = p.stop(sig)
                check(rc == want, "%s: ksc exits %d (got %s, stderr %r)" % (name, want, rc, err.strip()))
                if want != 128 + signal.SIGHUP:
                    check(out.count("icmp=") == 1,
                          "%s: the program got one signal and returned from dispatch normally (%r)" % (name, out.strip()))
                check(gone(program), "%s: the program is gone" % name)
                check(not xdp_attached(HOST_IF), "%s: nothing attached to %s" % (name, HOST_IF))
                check(os.listdir(tmp) == [], "%s: no temporary directory left" % name)
            finally:
                for fd in (master, slave):
                    if fd is not None:
                        os.close(fd)
                if program is not None and not gone(program, 0):
                    os.kill(program, signal.SIGKILL)
        check(not os.path.exists("/sys/fs/bpf/xdp_veth"), "no pins left behind")


def scenario_errors(ksc, work):
    """Kernel errors are one clear line and a non-zero exit, with nothing left attached."""
    exe = build(ksc, "xdp_veth", work)
    p = subprocess.run([exe, "--iface", "ksc-no-such-if", "--drop-port", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    check(p.returncode == 1 and "cannot attach to ksc-no-such-if: -19" in p.stdout, "attaching to a missing interface returns -ENODEV to the program (%r)" % p.stdout.strip())
    p = subprocess.run([exe, "--drop-port", "70000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    check(p.returncode == 1 and p.stderr.startswith("error: ") and "drop" in p.stderr, "an out-of-range option is rejected before anything loads (%r)" % p.stderr.splitlines()[:1])
    refused = build(ksc, "refused_fentry", work)
    p = subprocess.run([refused], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    first = p.stderr.splitlines()[0] if p.stderr else ""
    check(p.returncode == 1 and p.stdout == "" and first.startswith("ksrt: refused_fentry: cannot load program on_open: ") and "Operation not permitted" in first,
          "a program the kernel refuses stops start-up with one line naming it and the cause (%r)" % first)
    as_root = os.geteuid() == 0
    check(("this kernel itself refuses" in first) == as_root and ("needs root" in first) != as_root,
          "root is not told it needs root: the refusal is the kernel's own (%r)" % first)


SCENARIOS = {
    "xdp": scenario_xdp,
    "tc": scenario_tc,
    "tracepoint": scenario_tracepoint,
    "sleep": scenario_sleep,
    "dispatch-loop": scenario_dispatch_loop,
    "monitor-forever": scenario_monitor_forever,
    "struct_ops": scenario_struct_ops,
    "kill": scenario_kill,
    "run-signals": scenario_run_signals,
    "errors": scenario_errors,
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in SCENARIOS:
        print("usage: e2e.py KSC {%s}" % ",".join(SCENARIOS), file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="ksc-e2e-")
    try:
        SCENARIOS[sys.argv[2]](os.path.abspath(sys.argv[1]), work)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
