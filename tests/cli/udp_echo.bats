#!/usr/bin/env bats
# udp-echo: one socket, every peer served, replies to each sender.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "two concurrent peers each get their own replies" {
	bg_xport u -v udp-echo 127.0.0.1:0
	wait_ready u
	grep -qx "listening on 127.0.0.1:$PORT" "$T/u.err"
	$PY - "$PORT" <<'PYEOF'
import socket, sys, threading
port = int(sys.argv[1])
errors = []
def peer(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    for i in range(50):
        msg = ("%s-%d" % (name, i)).encode()
        s.sendto(msg, ("127.0.0.1", port))
        d, a = s.recvfrom(100)
        if d != msg:
            errors.append((name, msg, d))
ts = [threading.Thread(target=peer, args=(n,)) for n in ("a", "b")]
[t.start() for t in ts]
[t.join() for t in ts]
assert not errors, errors
PYEOF
	# -v: the first datagram of each new peer, once
	[ "$(grep -c '^xport: new peer 127.0.0.1:' "$T/u.err")" -eq 2 ]
}

@test "keeps serving when a peer disappears" {
	bg_xport u udp-echo 127.0.0.1:0
	wait_ready u
	$PY - "$PORT" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
# a peer that sends and closes before the reply (ICMP unreachable back)
for i in range(5):
    g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    g.sendto(b"gone", ("127.0.0.1", port))
    g.close()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"still", ("127.0.0.1", port))
assert s.recvfrom(100)[0] == b"still"
PYEOF
	kill -0 "$BG_PID"
}

@test "all interfaces: one socket answers IPv4 and IPv6 peers; -vv logs every datagram" {
	have_ipv6 || skip "no IPv6"
	bg_xport u -vv udp-echo :0
	wait_ready u
	[ "$(grep -c '^listening on' "$T/u.err")" -eq 1 ]
	$PY - "$PORT" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    for i in range(2):
        s.sendto(b"x%d" % i, (host, port))
        assert s.recvfrom(100)[0] == b"x%d" % i
PYEOF
	[ "$(grep -c '^xport: datagram from' "$T/u.err")" -eq 4 ]
	grep -q '^xport: datagram from 127.0.0.1:' "$T/u.err"
	grep -q '^xport: datagram from \[::1\]:' "$T/u.err"
}

@test "port in use: exit 71; SIGTERM: exit 0 with --stats lines per peer" {
	bg_xport u udp-echo --stats 127.0.0.1:0
	wait_ready u
	run_xp 5 udp-echo "127.0.0.1:$PORT"
	[ "$status" -eq 71 ]
	one_error_line "Address already in use"
	$PY -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b'12345', ('127.0.0.1', $PORT)); s.recvfrom(10)"
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
	grep -Eq '^xport: stats 127.0.0.1:[0-9]+ sent=5 received=5 seconds=[0-9.]+ end=closed$' "$T/u.err"
}

@test "--deny drops datagrams; -x dumps them" {
	bg_xport u udp-echo -x --deny 127.0.0.1/32 127.0.0.1:0
	wait_ready u
	$PY - "$PORT" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
s.sendto(b"no", ("127.0.0.1", int(sys.argv[1])))
try:
    s.recvfrom(10)
    raise SystemExit("denied peer got a reply")
except socket.timeout:
    pass
PYEOF
	bg_xport x udp-echo -x 127.0.0.1:0
	wait_ready x
	$PY -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b'hi', ('127.0.0.1', $PORT)); s.recvfrom(10)"
	wait_for_line "$T/x.err" '^> 2 bytes$'
	grep -qx '< 2 bytes' "$T/x.err"
	grep -qF '00000000  68 69                                             |hi|' "$T/x.err"
}
