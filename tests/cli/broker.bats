#!/usr/bin/env bats
# tcp-server --proto broker: ncat's broker mode.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "broker: a message goes to every other client, never back to its sender (ncat and python clients)" {
	command -v ncat >/dev/null || skip "ncat not installed"
	bg_xport s tcp-server --proto broker 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, subprocess, sys
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port), timeout=10)
b = socket.create_connection(("127.0.0.1", port), timeout=10)
# ncat connects last: connections are accepted in order, so once its line
# reached a and b, all three are in the room.
n = subprocess.Popen(["ncat", "127.0.0.1", str(port)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE)
def until(s, want):
    got = b""
    while len(got) < len(want):
        d = s.recv(4096)
        assert d, got
        got += d
    assert got == want, (got, want)
n.stdin.write(b"from-ncat\n"); n.stdin.flush()
until(a, b"from-ncat\n"); until(b, b"from-ncat\n")
a.sendall(b"from-a\n")
until(b, b"from-a\n"); assert n.stdout.readline() == b"from-a\n"
b.sendall(b"from-b\n")
until(a, b"from-b\n"); assert n.stdout.readline() == b"from-b\n"
# Nothing came back to a sender.
a.settimeout(0.3); b.settimeout(0.3)
for s in (a, b):
    try:
        d = s.recv(100)
        raise AssertionError("echoed to its sender: %r" % d)
    except socket.timeout:
        pass
n.kill(); n.wait()
PYEOF
	# The server keeps serving (broker is -k by default).
	kill -0 "$BG_PID"
}

@test "broker: a client that never reads pauses the sender, memory stays flat; --idle-timeout drops it and the rest goes on" {
	bg_xport s tcp-server --proto broker --idle-timeout 2 -v 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" "$BG_PID" <<'PYEOF'
import socket, sys, threading, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=30)
stuck = socket.socket()
stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
stuck.connect(("127.0.0.1", port))
reader, sender = conn(), conn()
# Accepted in order: once the last one's byte reached the first two, all
# three are in.
sender.sendall(b"!")
for s in (stuck, reader):
    assert s.recv(1) == b"!"
total = 32 << 20
got = [0]
def read_all():
    while got[0] < total:
        d = reader.recv(65536)
        if not d:
            break
        got[0] += len(d)
th = threading.Thread(target=read_all); th.start()
chunk = b"x" * 65536
sent = 0
base = rss()
peak = base
sender.settimeout(0.2)
t0 = time.time()
blocked_at = None
while sent < total and time.time() - t0 < 60:
    try:
        sent += sender.send(chunk[: min(len(chunk), total - sent)])
    except socket.timeout:
        # Paused against the stuck client: the sender's socket is full.
        if blocked_at is None:
            blocked_at = sent
    peak = max(peak, rss())
th.join(30)
assert blocked_at is not None and blocked_at < total, "the sender was never paused"
assert sent == total, ("not all sent", sent)
assert got[0] == total, ("the reader missed data", got[0])
assert peak - base < 8192, ("RSS grew", base, peak)
# The stuck client was dropped: EOF or reset after what it had.
stuck.settimeout(10)
try:
    while stuck.recv(65536):
        pass
except ConnectionResetError:
    pass
PYEOF
	grep -q 'closed (timeout)' "$T/s.err"
	[ "$(grep -c 'closed (timeout)' "$T/s.err")" -eq 1 ]
}

@test "broker: --idle-timeout drops a client that is merely quiet" {
	bg_xport s tcp-server --proto broker --idle-timeout 0.5 --stats 127.0.0.1:0
	wait_ready s
	local t0=$SECONDS
	$PY - "$PORT" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
assert s.recv(100) == b""
PYEOF
	[ $((SECONDS - t0)) -lt 10 ]
	wait_for_line "$T/s.err" 'end=timeout'
}

@test "broker: usage" {
	run_xp 5 tcp-server --proto broker --workers 2 127.0.0.1:0
	[ "$status" -eq 64 ] && one_error_line '--workers cannot be used with --proto broker'
	run_xp 5 tcp-server --proto broker --send-only 127.0.0.1:0
	[ "$status" -eq 64 ]
	run_xp 5 --parse-only tcp-server --proto broker :0
	grep -q 'proto=8' "$T/fg.out"
	grep -q 'resolved_keep_open=1' "$T/fg.out"
}
