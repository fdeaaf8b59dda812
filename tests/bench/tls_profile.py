#!/usr/bin/env python3
"""tls_profile.py - where a TLS terminator's CPU goes, for RESULTS.md.

For each target and workload, two runs of the shared harness's pieces
(../shared/bench/tls: the target's exact command line from tlsperf.py, the
terminator on CPU 1, tlsload and the backend on CPU 0):

  1. `perf record -g` on the terminator's processes: the share of samples
     in the kernel, libcrypto, libssl, libc (memcpy/memmove and memset
     apart) and the terminator's own code, and the top symbols;
  2. `perf record -e raw_syscalls:sys_exit`: every system call with its
     return value, as counts and mean sizes per MiB (bulk) or per accepted
     connection (hs).

  tls_profile.py --xport X --bin DIR --certdir DIR --out DIR
                 [--targets xport,nginx] [--modes bulk,hs] [--cert ecdsa]

The binaries and certificates come from `tests/bench/run.sh tls` (or
tls-quick), which builds them into build/bench/tls.  perf follows the
processes that exist when it attaches: fine for xport and
nginx (one worker), not for the forking targets (socat, ncat).
"""
import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import types

NR = {0: "read", 1: "write", 3: "close", 7: "poll", 19: "readv", 20: "writev",
      41: "socket", 42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom",
      46: "sendmsg", 47: "recvmsg", 48: "shutdown", 54: "setsockopt",
      55: "getsockopt", 51: "getsockname", 52: "getpeername", 72: "fcntl",
      9: "mmap", 11: "munmap", 12: "brk", 25: "mremap", 28: "madvise",
      13: "rt_sigaction", 14: "rt_sigprocmask", 16: "ioctl", 202: "futex",
      228: "clock_gettime", 232: "epoll_wait", 233: "epoll_ctl",
      275: "splice", 281: "epoll_pwait", 288: "accept4", 293: "pipe2",
      318: "getrandom", 39: "getpid", 441: "epoll_pwait2", 270: "pselect6", 23: "select"}
RT = ["chrt", "-f", "2"]  # perf above the SCHED_FIFO 1 terminator and load
SIZED = {"read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg",
         "recvmsg", "splice"}


def run_line(res):
    """The load's result and the terminator's CPU under the tracer."""
    line = " ".join("%s=%s" % (k, res[k]) for k in ("mibps", "rate", "conns", "srv_cpu_s")
                    if k in res)
    if res.get("bytes"):
        line += " (%.2f s/GiB)" % (res["srv_cpu_s"] / (res["bytes"] / 2**30))
    return line


def session_pids(sid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            s = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        if int(s[s.rindex(")") + 2:].split()[3]) == sid:
            pids.append(int(d))
    return pids


def run_once(a, tp, target, mode, perf_args, data):
    """One terminator under perf while the load runs; the load's result line."""
    port, sink = tp.free_port(), tp.free_port()
    certs = {k: os.path.join(a.certdir, "%s.%s" % (a.cert, k)) for k in ("crt", "key", "pem")}
    tmp = tempfile.mkdtemp(prefix="tlsprof-%s-" % target)
    ns = types.SimpleNamespace(xport=a.xport, bin=a.bin)
    cmd = tp.TARGETS[target](ns, port, sink, certs, tmp)
    log = open(os.path.join(tmp, "server.log"), "w")
    echo = None
    if mode == "hs":
        echo = subprocess.Popen(tp.RT + ["taskset", "-c", "0", os.path.join(a.bin, "c_echo"),
                                 str(sink), "127.0.0.1"], stdout=subprocess.DEVNULL)
    srv = tp.start_server(cmd, 1, log)
    cpu0 = None
    try:
        t_end = time.time() + 10
        while not tp.listening(port) or (echo and not tp.listening(sink)):
            if srv.poll() is not None or time.time() > t_end:
                sys.exit("tls_profile: %s did not start (%s)" % (target, tmp))
            time.sleep(0.02)
        time.sleep(0.3)
        pids = ",".join(str(p) for p in session_pids(srv.pid))
        cpu0 = tp.tree_cpu(srv.pid)[0]
        perf = subprocess.Popen(RT + ["perf", "record", "-q", "-o", data, "-p", pids] + perf_args,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        load = [os.path.join(a.bin, "tlsload")]
        if mode == "bulk":
            load += ["bulk", "-p", str(port), "-k", str(sink), "-n", a.n]
        else:
            load += ["hs", "-p", str(port), "-c", "10", "-t", str(a.t), "-w", "0"]
        r = subprocess.run(tp.RT + ["taskset", "-c", "0"] + load, capture_output=True, text=True)
        perf.send_signal(signal.SIGINT)
        perf.wait()
        lines = [x for x in r.stdout.splitlines() if "=" in x]
        res = tp.kv(lines[-1]) if lines else {}
        res["srv_cpu_s"] = round(tp.tree_cpu(srv.pid)[0] - cpu0, 3)
        return res
    finally:
        tp.stop_server(srv)
        if echo:
            echo.kill()
            echo.wait()
        log.close()


def perf_report(data, sort):
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                          "-g", "none", "--percent-limit", "0.01", "--sort", sort],
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(.*\S)", line)
        if m and not line.lstrip().startswith("#"):
            rows.append((float(m.group(1)), re.split(r"\s{2,}", m.group(2))))
    return rows


def breakdown(data, own):
    cat = collections.Counter()
    for pct, cols in perf_report(data, "dso,sym"):
        dso, sym = cols[0], cols[-1]
        if "kernel" in dso:
            cat["kernel"] += pct
        elif "libcrypto" in dso:
            cat["libcrypto"] += pct
        elif "libssl" in dso:
            cat["libssl"] += pct
        elif "libc.so" in dso and re.search(r"mem(cpy|move)", sym):
            cat["libc memcpy/memmove"] += pct
        elif "libc.so" in dso and "memset" in sym:
            cat["libc memset"] += pct
        elif "libc.so" in dso:
            cat["libc other"] += pct
        elif dso in own:
            cat["own code"] += pct
        else:
            cat["other (%s)" % dso] += pct
    return cat


def syscalls(data):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "trace"],
                         capture_output=True, text=True).stdout
    n = collections.Counter()
    size = collections.Counter()
    for m in re.finditer(r"NR (\d+) = (-?\d+)", out):
        name = NR.get(int(m.group(1)), "NR%s" % m.group(1))
        ret = int(m.group(2))
        if ret < 0:
            name += " (error)"
        n[name] += 1
        if name in SIZED and ret > 0:
            size[name] += ret
    return n, size


def profile(a, tp, target, mode):
    base = os.path.join(a.out, "%s-%s-%s" % (target, mode, a.cert))
    own = {"xport", "libxport.so.0.1.0", "nginx", "haproxy", "stunnel4", "ref_tls_relay"}
    res = run_once(a, tp, target, mode, ["-g", "-F", str(a.freq)], base + ".perf.data")
    cat = breakdown(base + ".perf.data", own)
    res2 = run_once(a, tp, target, mode, ["-e", "raw_syscalls:sys_exit"], base + ".sys.data")
    n, size = syscalls(base + ".sys.data")
    if mode == "bulk":
        unit, per = "MiB", res2.get("bytes", 0) / 2**20
    else:
        unit, per = "handshake", n.get("accept4", 0) + n.get("accept", 0)
    rep = ["## %s, %s, %s\n" % (target, mode, a.cert),
           "perf -g run: %s; syscall-trace run: %s\n" % (run_line(res), run_line(res2)),
           "| where | % of samples |", "|---|---|"]
    rep += ["| %s | %.1f |" % (k, v) for k, v in cat.most_common()]
    rep += ["", "| symbol | dso | % |", "|---|---|---|"]
    for pct, cols in perf_report(base + ".perf.data", "dso,sym")[:a.top]:
        rep.append("| %s | %s | %.2f |" % (cols[-1], cols[0], pct))
    rep += ["", "system calls per %s (%d %ss in the traced run):\n" % (unit, per, unit),
            "| call | per %s | mean bytes |" % unit, "|---|---|---|"]
    for name, c in n.most_common():
        mean = "%.0f" % (size[name] / c) if name in SIZED and c else ""
        rep.append("| %s | %.3f | %s |" % (name, c / per if per else 0, mean))
    rep.append("| all | %.3f | |\n" % (sum(n.values()) / per if per else 0))
    text = "\n".join(rep)
    open(base + ".md", "w").write(text + "\n")
    print(text, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xport", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--certdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "..", "..", "..", "shared"))
    ap.add_argument("--targets", default="xport,nginx")
    ap.add_argument("--modes", default="bulk,hs")
    ap.add_argument("--cert", default="ecdsa")
    ap.add_argument("-n", default="2g", help="bulk bytes")
    ap.add_argument("-t", type=float, default=8, help="hs seconds")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("-F", dest="freq", type=int, default=1999, help="perf sampling rate")
    ap.add_argument("--no-rt", action="store_true",
                    help="no SCHED_FIFO (the default shields the runs from niced work)")
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(a.shared, "bench", "tls"))
    import tlsperf as tp
    if a.no_rt:
        RT[:] = []
    else:
        tp.RT[:] = ["chrt", "-f", "1"]
    os.makedirs(a.out, exist_ok=True)
    for mode in a.modes.split(","):
        for target in a.targets.split(","):
            profile(a, tp, target, mode)


if __name__ == "__main__":
    main()
