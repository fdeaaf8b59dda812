"""10,000 idle connections against an echo server: peak RSS of the server.

Each server is started on a free port, N connections are opened (and each
does one small round trip, so it is really being served), then they sit
idle while the server's VmRSS and VmHWM are read from /proc.
"""
import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_listening(port, deadline):
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def measure(label, cmd, n):
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in cmd]
    srv = subprocess.Popen(argv, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        if not wait_listening(port, time.time() + 10):
            return "%s: did not start" % label
        socks = []
        t0 = time.time()
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        # one round trip on a sample spread over the set
        bad = 0
        for s in socks[:: max(1, n // 100)]:
            s.sendall(b"ping")
            if s.recv(16) != b"ping":
                bad += 1
        time.sleep(0.5)
        rss = status_kib(srv.pid, "VmRSS")
        hwm = status_kib(srv.pid, "VmHWM")
        dt = time.time() - t0
        for s in socks:
            s.close()
        return ("%s: conns=%d rss_kib=%d hwm_kib=%d (%.1f MiB) per_conn_bytes=%d "
                "setup_s=%.1f bad=%d" % (label, n, rss, hwm, hwm / 1024.0,
                                         hwm * 1024 // n, dt, bad))
    finally:
        srv.terminate()
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xport", required=True)
    ap.add_argument("--uvloop-cmd", default=None)
    ap.add_argument("-n", type=int, default=10000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.n + 100
    if hard < need:
        print("idle: the fd limit (%d) is below %d; skipped" % (hard, need))
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(measure("xport", [a.xport, "-q", "tcp-server", "127.0.0.1:{port}", "--proto", "echo"], a.n))
    if a.uvloop_cmd:
        print(measure("uvloop", a.uvloop_cmd.split() + ["{port}", "--uvloop"], a.n))
    sys.stdout.flush()


main()
