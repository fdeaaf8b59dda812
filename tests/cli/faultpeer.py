#!/usr/bin/env python3
"""A scriptable TCP/Unix/TLS peer for the fault-matrix tests.

    faultpeer.py listen|connect ADDR [options] ACTION

ADDR is HOST:PORT (port 0 with listen: pick one, written to --port-file) or
unix:PATH.  The peer sends --send N bytes (a pattern, or from --send-file),
then does ACTION:

    rst         close with a TCP reset (SO_LINGER 0)
    pushrst     send (ignores --send) until the other side stops taking
                bytes for 0.5 s (it holds us back), then reset
    fin         shut down its write side, then read until EOF
    close       close (FIN), reading nothing more
    noread      never read; keep the connection open for --hold seconds
    blackhole   send nothing (ignores --send), read nothing, hold
    drain       read until EOF (after sending)
    readsome    read --read N bytes, then close the connection
    tlsgarbage  (with --tls) close_notify, then raw bytes for --hold s

Reading goes on in the background from the start for every action but
noread/blackhole/readsome, so that "what the peer acknowledged" is known.
The report (--report FILE, JSON) says: event (time.time() of the action),
received (bytes), sha256 (of what was received), reset (a reset was seen),
eof (EOF was seen), sent.
"""
import argparse
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time


def pattern(n):
    block = bytes(range(256)) * 256
    out = bytearray()
    while len(out) < n:
        out += block[: n - len(out)]
    return bytes(out)


class Reader(threading.Thread):
    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.h = hashlib.sha256()
        self.n = 0
        self.eof = False
        self.reset = False
        self.done = threading.Event()

    def run(self):
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    self.eof = True
                    break
                self.h.update(b)
                self.n += len(b)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
        except (OSError, ssl.SSLError, ValueError):
            pass
        self.done.set()


def make_sock(addr, listen, port_file):
    if addr.startswith("unix:"):
        path = addr[5:]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if listen:
            if os.path.exists(path):
                os.unlink(path)
            s.bind(path)
        else:
            s.connect(path)
            return s
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if listen:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host or "127.0.0.1", int(port)))
        else:
            s.connect((host or "127.0.0.1", int(port)))
            return s
    s.listen(8)
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            name = s.getsockname()
            f.write("%s\n" % (name[1] if isinstance(name, tuple) else name))
        os.rename(tmp, port_file)
    c, _ = s.accept()
    s.close()
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["listen", "connect"])
    ap.add_argument("addr")
    ap.add_argument("action")
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--send-file")
    ap.add_argument("--read", type=int, default=0)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--port-file")
    ap.add_argument("--report")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--rcvbuf", type=int, default=0)
    ap.add_argument("--after", help="wait until this file exists before acting")
    a = ap.parse_args()

    raw = make_sock(a.addr, a.role == "listen", a.port_file)
    if a.rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    sock = raw
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        sock = ctx.wrap_socket(raw)

    reader = None
    if a.action not in ("noread", "blackhole", "readsome", "tlsgarbage"):
        reader = Reader(sock)
        reader.start()
    sent = 0
    reset = False
    if a.action == "pushrst":
        raw.setblocking(False)
        chunk = pattern(65536)
        stalled = None
        while True:
            try:
                sent += raw.send(chunk)
                stalled = None
            except BlockingIOError:
                stalled = stalled or time.time()
                if time.time() - stalled > 0.5:
                    break
                time.sleep(0.01)
        raw.setblocking(True)
        a.action = "rst"
    elif a.action != "blackhole":
        data = open(a.send_file, "rb").read() if a.send_file else pattern(a.send)
        try:
            sock.sendall(data)
            sent = len(data)
        except (ConnectionResetError, BrokenPipeError):
            reset = True

    if a.after:
        end = time.time() + 10
        while not os.path.exists(a.after) and time.time() < end:
            time.sleep(0.01)
    got = hashlib.sha256()
    n = 0
    event = time.time()
    if a.action == "rst":
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        event = time.time()
        raw.close()
    elif a.action == "fin":
        event = time.time()
        raw.shutdown(socket.SHUT_WR)
        reader.done.wait(a.hold)
    elif a.action == "close":
        event = time.time()
        sock.close()
    elif a.action in ("noread", "blackhole"):
        time.sleep(a.hold)
    elif a.action == "drain":
        reader.done.wait(a.hold)
    elif a.action == "readsome":
        while n < a.read:
            b = sock.recv(min(65536, a.read - n))
            if not b:
                break
            got.update(b)
            n += len(b)
        event = time.time()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
    elif a.action == "tlsgarbage":
        obj = sock._sslobj  # close_notify without waiting for the answer
        try:
            sock.setblocking(False)
            obj.shutdown()
        except (ssl.SSLWantReadError, ssl.SSLError, OSError):
            pass
        # Plain bytes on the same connection, under the TLS layer.
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        raw.setblocking(True)
        raw.settimeout(0.5)
        event = time.time()
        junk = b"\x17" * 65536
        end = time.time() + a.hold
        while time.time() < end:
            try:
                raw.send(junk)
                sent += len(junk)
            except socket.timeout:
                continue
            except OSError:
                reset = True
                break
    if reader:
        reader.done.wait(1.0)
        got, n = reader.h, reader.n
        reset = reset or reader.reset
    rep = {
        "event": event,
        "received": n,
        "sha256": got.hexdigest(),
        "reset": reset,
        "eof": bool(reader and reader.eof),
        "sent": sent,
    }
    if a.report:
        with open(a.report + ".tmp", "w") as f:
            json.dump(rep, f)
        os.rename(a.report + ".tmp", a.report)
    else:
        print(json.dumps(rep))


if __name__ == "__main__":
    main()
