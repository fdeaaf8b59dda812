"""subprocess --connect streaming 1 GiB of `head -c` output, against the same
bytes pushed through `xport pipe - tcp:` (the relay path), into one sink.

The sink is `xport tcp-server --proto discard --once --stats`, which
reports the bytes it received; the rate is bytes / wall time of the sender.
"""
import argparse
import os
import re
import statistics
import subprocess
import time

GIB = 1 << 30


def run_one(xport, sender):
    pf = "/tmp/xport-bench-port-%d" % os.getpid()
    try:
        os.unlink(pf)
    except FileNotFoundError:
        pass
    sink = subprocess.Popen(["taskset", "-c", "0", xport, "tcp-server", "127.0.0.1:0",
                             "--proto", "discard", "--once", "--stats", "--port-file", pf],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while not (os.path.exists(pf) and os.path.getsize(pf) > 0):
        if time.time() > deadline:
            sink.kill()
            return None
        time.sleep(0.02)
    port = open(pf).read().strip()
    cmd = [c.replace("{port}", port) for c in sender]
    t0 = time.time()
    subprocess.run(["taskset", "-c", "1", "bash", "-c", " ".join(cmd)], check=False)
    err = sink.communicate(timeout=60)[1]
    dt = time.time() - t0
    m = re.search(r"received=(\d+)", err)
    got = int(m.group(1)) if m else -1
    return (GIB / dt / (1 << 20), got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xport", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    x = a.xport
    targets = {
        "subprocess": [x, "-q", "subprocess", "--connect", "127.0.0.1:{port}", "--",
                       "head", "-c", str(GIB), "/dev/zero"],
        "pipe": ["head", "-c", str(GIB), "/dev/zero", "|", x, "-q", "pipe", "-",
                 "tcp:127.0.0.1:{port}"],
    }
    res = {k: [] for k in targets}
    for _ in range(a.repeat):
        for k, cmd in targets.items():
            r = run_one(x, cmd)
            if r and r[1] == GIB:
                res[k].append(r[0])
            else:
                print("%s: run failed (%r)" % (k, r))
    med = {k: statistics.median(v) for k, v in res.items() if v}
    for k, v in med.items():
        print("summary label=%s median_mibps=%.0f runs=%d" % (k, v, len(res[k])))
    if "subprocess" in med and "pipe" in med:
        print("ratio subprocess/pipe = %.2f (target >= 0.8)" % (med["subprocess"] / med["pipe"]))


main()
