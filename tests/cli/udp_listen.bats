#!/usr/bin/env bats
# pipe udp-listen:, unixgram:, unixgram-listen: against real peers (nc -u,
# socat, python3): the first sender is the peer, -k gives every sender its
# own relay, replies go back to the right sender.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "udp-listen: nc -u is the peer: its datagram to stdout, stdin back to it, exit 0" {
	printf 'reply\n' >"$T/l.in"
	bg_xport l pipe udp-listen:127.0.0.1:0 -
	wait_ready l
	# nc stops reading the network at its stdin's EOF: keep it open
	# until the one reply (-W 1) is in.
	(printf 'hello\n'; sleep 3) | timeout 10 nc -u -W 1 127.0.0.1 "$PORT" >"$T/nc.out"
	[ "$(cat "$T/nc.out")" = reply ]
	# stdin ended: replies are taken for --eof-timeout (0.5 s), then exit 0
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/l.out")" = hello ]
}

@test "udp-listen: other senders are dropped, logged at -v; the peer keeps its relay" {
	bg_xport l pipe -v --eof-timeout 0 udp-listen:127.0.0.1:0 -
	wait_ready l
	$PY - "$PORT" "$T/l.err" <<'PYEOF'
import socket, sys, time
port, err = int(sys.argv[1]), sys.argv[2]
def wait_for(text):
    for _ in range(500):
        if text in open(err).read():
            return
        time.sleep(0.02)
    sys.exit("no %r in %s" % (text, open(err).read()))
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.sendto(b"one\n", ("127.0.0.1", port))
wait_for("new peer")
b.sendto(b"intruder\n", ("127.0.0.1", port))
wait_for("dropped 9 bytes from udp:127.0.0.1:%d: not the peer" % b.getsockname()[1])
a.sendto(b"two\n", ("127.0.0.1", port))
PYEOF
	wait_for_count "$T/l.out" '^(one|two)$' 2
	kill -INT "$BG_PID"
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/l.out")" = "$(printf 'one\ntwo')" ]
}

@test "udp-listen: socat UDP: sender gets the exec: child's answer" {
	bg_xport l pipe --idle-timeout 1 udp-listen:127.0.0.1:0 exec:'stdbuf -o0 tr a-z A-Z'
	wait_ready l
	echo 'hi there' | timeout 10 socat -t 2 - "UDP:127.0.0.1:$PORT" >"$T/s.out"
	[ "$(cat "$T/s.out")" = 'HI THERE' ]
	# The child never sees an EOF (UDP has none): --idle-timeout ends the
	# relay; the child is sent SIGTERM and its status is the exit status.
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 143 ]
	grep -q "^xport: udp:127\.0\.0\.1:[0-9]*: timed out\$" "$T/l.err"
}

@test "udp-listen -k: three concurrent senders, each its own exec: relay, replies to the right one" {
	bg_xport l pipe -k udp-listen:127.0.0.1:0 exec:'echo "pid $$"; exec stdbuf -o0 tr a-z A-Z'
	wait_ready l
	$PY - "$PORT" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
got = [b""] * 3
for i, s in enumerate(socks):
    s.settimeout(10)
    s.sendto(b"hello %d\n" % i, ("127.0.0.1", port))
def until(i, want):
    while want not in got[i]:
        d, a = socks[i].recvfrom(65536)
        assert a[1] == port, a
        got[i] += d
for i in range(3):
    until(i, b"HELLO %d\n" % i)
for i, s in enumerate(socks):
    s.sendto(b"again %d\n" % i, ("127.0.0.1", port))
for i in range(3):
    until(i, b"AGAIN %d\n" % i)
pids = set()
for i in range(3):
    lines = got[i].decode().split("\n")
    assert lines[0].startswith("pid "), got[i]
    pids.add(lines[0])
    # Nobody else's words: exactly this sender's lines, in order.
    assert lines[1:] == ["HELLO %d" % i, "AGAIN %d" % i, ""], got[i]
assert len(pids) == 3, pids
PYEOF
	kill -0 "$BG_PID"
}

@test "udp-listen -k: --idle-timeout ends a relay, the sender's next datagram starts a new one" {
	bg_xport l pipe -v -k --idle-timeout 0.5 udp-listen:127.0.0.1:0 \
		exec:'echo "pid $$"; exec cat >/dev/null'
	wait_ready l
	$PY - "$PORT" "$T/l.err" <<'PYEOF'
import socket, sys, time
port, err = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"x\n", ("127.0.0.1", port))
first = s.recvfrom(100)[0]
name = "udp:127.0.0.1:%d" % s.getsockname()[1]
for _ in range(500):
    if "%s: relay ended" % name in open(err).read():
        break
    time.sleep(0.02)
else:
    sys.exit("the relay did not end: " + open(err).read())
s.sendto(b"y\n", ("127.0.0.1", port))
second = s.recvfrom(100)[0]
assert first.startswith(b"pid ") and second.startswith(b"pid "), (first, second)
assert first != second, (first, second)
PYEOF
	grep -q "connection udp:127\.0\.0\.1:[0-9]* closed (timeout)" "$T/l.err"
	kill -0 "$BG_PID"
}

@test "udp-listen: 200,000 bytes from the other endpoint reach the sender, datagrams <= 65507" {
	head -c 200000 /dev/urandom >"$T/l.in"
	bg_xport l pipe udp-listen:127.0.0.1:0 -
	wait_ready l
	$PY - "$PORT" "$T/l.in" <<'PYEOF'
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
want = open(path, "rb").read()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:  # SO_RCVBUFFORCE (33): as root, past net.core.rmem_max
    s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(10)
s.sendto(b"go\n", ("127.0.0.1", port))
got, n, biggest = b"", 0, 0
while len(got) < len(want):
    d = s.recv(1 << 17)
    got += d
    n += 1
    biggest = max(biggest, len(d))
assert got == want, (len(got), len(want))
assert biggest <= 65507, biggest
assert n >= 4, n
PYEOF
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/l.out")" = go ]
}

@test "udp-listen: --port-file and port 0" {
	bg_xport l pipe --port-file "$T/pf" udp-listen:127.0.0.1:0 -
	wait_ready l
	[ "$(cat "$T/pf")" = "$PORT" ]
}

@test "unixgram-listen -k: socat UNIX-SENDTO and python3 each get their own answer" {
	bg_xport l pipe -k unixgram-listen:"$T/s" exec:'stdbuf -o0 tr a-z A-Z'
	wait_for_line "$T/l.err" "^listening on unix:$T/s\$"
	echo 'from socat' | timeout 10 socat -t 2 - "UNIX-SENDTO:$T/s,bind=$T/c1" >"$T/s.out"
	[ "$(cat "$T/s.out")" = 'FROM SOCAT' ]
	$PY - "$T/s" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0xport-test-%d" % id(s))
s.settimeout(10)
s.sendto(b"from python\n", sys.argv[1])
d, a = s.recvfrom(100)
assert d == b"FROM PYTHON\n" and a == sys.argv[1], (d, a)
PYEOF
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID" 15
	[ "$RC" -eq 0 ]
	[ ! -e "$T/s" ] # removed on exit
}

@test "unixgram-listen: a stale socket file is replaced, a regular file never" {
	$PY -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])' "$T/stale"
	[ -S "$T/stale" ]
	bg_xport l pipe unixgram-listen:"$T/stale" -
	wait_for_line "$T/l.err" "^listening on unix:$T/stale\$"
	# a live one is in use
	run_xp 5 pipe unixgram-listen:"$T/stale" -
	[ "$status" -eq 71 ]
	one_error_line "Address already in use"
	echo keep >"$T/file"
	run_xp 5 pipe unixgram-listen:"$T/file" -
	[ "$status" -eq 71 ]
	one_error_line "listen unix:$T/file (unixgram): Address already in use"
	[ "$(cat "$T/file")" = keep ]
}

@test "unixgram: to socat UNIX-RECVFROM, the answer comes back; a missing path is 69" {
	timeout 10 socat UNIX-RECVFROM:"$T/r" SYSTEM:'tr a-z A-Z' &
	local s=$!
	for _ in $(seq 250); do [ -S "$T/r" ] && break; sleep 0.02; done
	echo 'over unixgram' | timeout 10 "$XPORT" pipe - "unixgram:$T/r" >"$T/o"
	[ "$(cat "$T/o")" = 'OVER UNIXGRAM' ]
	wait "$s" || true
	run_xp 5 pipe - "unixgram:$T/none" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "connect unixgram:$T/none: No such file or directory"
}

@test "unixgram-listen: a reply the sender can no longer take is exit 1, one line" {
	mkfifo "$T/l.in"
	bg_xport l pipe -v --eof-timeout 0 unixgram-listen:"$T/s" -
	# xport's stdin: a reply once the sender is gone
	( wait_for_line "$T/l.err" "new peer unixgram:$T/c" && echo reply ) >"$T/l.in" &
	wait_for_line "$T/l.err" "^listening on unix:$T/s\$"
	$PY - "$T/s" "$T/c" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[2])
s.sendto(b"bye\n", sys.argv[1])
s.close()  # the file stays: nobody answers at it
PYEOF
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 1 ]
	[ "$(grep -c "^xport: unixgram:$T/c: Connection refused\$" "$T/l.err")" -eq 1 ]
	[ "$(cat "$T/l.out")" = bye ]
	[ ! -e "$T/s" ]
}

@test "udp-listen: and unixgram endpoints: bad addresses are usage errors (64), one line" {
	for ep in udp-listen:nope udp-listen:unix:/x udp-listen:127.0.0.1:70000 \
		unixgram-listen: unixgram: "unixgram:$(printf '%0200d' 0)"; do
		run_xp 5 pipe "$ep" -
		[ "$status" -eq 64 ] || { echo "$ep: $status"; false; }
		one_error_line "endpoint '"
	done
	run_xp 5 pipe --port-file "$T/pf" unixgram-listen:"$T/s" -
	[ "$status" -eq 64 ]
	one_error_line "--port-file"
	[ ! -e "$T/pf" ]
}
