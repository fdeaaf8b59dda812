#!/usr/bin/env bats
# Hostile peers: names chosen by peers, spoofed datagrams, idle and
# refused peers, descriptor limits.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

# hostile_client PATH: connect to the abstract socket @PATH from a socket
# bound to an abstract name holding a newline, an ANSI escape and
# invalid UTF-8; send "hi", read to EOF.
hostile_client() {
	$PY - "$1" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b"\0evil\nxport: forged line\x1b[31mred\xff\xfe\xc3(\xed\xa0\x80")
s.connect(b"\0" + sys.argv[1].encode())
s.sendall(b"hi")
s.shutdown(socket.SHUT_WR)
while s.recv(4096):
    pass
PYEOF
}

# The escaped form of that name (bytes of invalid UTF-8 one by one).
EVIL='unix:@evil\x0axport: forged line\x1b[31mred\xff\xfe\xc3(\xed\xa0\x80'

@test "peer names: -v and --stats lines escape control characters and invalid UTF-8" {
	local name="xport-evil-$$-$BATS_TEST_NUMBER"
	bg_xport s tcp-server --proto echo -v --stats "unix:@$name"
	wait_ready s || wait_for_line "$T/s.err" '^listening on '
	hostile_client "$name"
	wait_for_line "$T/s.err" 'closed'
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
	# No forged line, no raw escape, no byte of invalid UTF-8.
	[ "$(grep -ac '^xport: forged' "$T/s.err")" -eq 0 ]
	[ "$(grep -ac $'\x1b' "$T/s.err")" -eq 0 ]
	$PY -c 'import sys; sys.stdin.buffer.read().decode("utf-8")' <"$T/s.err"
	grep -Fq "connection $EVIL open" "$T/s.err"
	grep -Fq "xport: stats $EVIL sent=2 received=2 " "$T/s.err"
}

@test "peer names: --stats=json is valid UTF-8 JSON with the escaped name" {
	local name="xport-evil-$$-$BATS_TEST_NUMBER"
	bg_xport s tcp-server --proto echo --stats=json "unix:@$name"
	wait_for_line "$T/s.err" '^listening on '
	hostile_client "$name"
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID"
	grep -a '^{' "$T/s.err" >"$T/json"
	$PY - "$EVIL" "$T/json" <<'PYEOF'
import json, sys
raw = open(sys.argv[2], "rb").read()
lines = raw.decode("utf-8").splitlines()   # strict: invalid UTF-8 raises
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert o["peer"] == sys.argv[1], (o["peer"], sys.argv[1])
assert o["sent"] == 2 and o["received"] == 2, o
PYEOF
}

@test "peer names: XPORT_PEER_ADDR holds the escaped name" {
	local name="xport-evil-$$-$BATS_TEST_NUMBER"
	bg_xport s tcp-server --once --exec 'printf %s "$XPORT_PEER_ADDR"' "unix:@$name"
	wait_for_line "$T/s.err" '^listening on '
	$PY - "$name" >"$T/got" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b"\0evil\nxport: forged line\x1b[31mred\xff\xfe\xc3(\xed\xa0\x80")
s.connect(b"\0" + sys.argv[1].encode())
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.buffer.write(data)
PYEOF
	[ "$(cat "$T/got")" = "$EVIL" ]
}

# spoof SRC_IP SRC_PORT DST_PORT: one UDP datagram "spoof" to 127.0.0.1
# with a forged source, through a raw socket (root only).
spoof() {
	$PY - "$@" <<'PYEOF'
import socket, struct, sys
src, sport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = b"spoof"
udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton("127.0.0.1"))
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
r.sendto(ip + udp, ("127.0.0.1", 0))
PYEOF
}

need_raw() {
	$PY -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)' \
		2>/dev/null || skip "raw sockets need root (CAP_NET_RAW)"
}

# echo_roundtrip PORT: a real peer is still answered (and, as datagrams
# to one socket are handled in order, everything sent before was seen).
echo_roundtrip() {
	$PY - "$1" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"real", ("127.0.0.1", int(sys.argv[1])))
assert s.recvfrom(100)[0] == b"real"
PYEOF
}

# cpu_ticks PID: user+system clock ticks used so far.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

@test "udp-echo: a datagram forged from its own address is not answered" {
	need_raw
	bg_xport u -v udp-echo --stats 127.0.0.1:0
	wait_ready u
	local pid=$BG_PID port=$PORT
	spoof 127.0.0.1 "$port" "$port"
	echo_roundtrip "$port"
	local t0
	t0=$(cpu_ticks "$pid")
	sleep 1
	# A loop would burn the whole second; 0.5 s is a generous bound.
	[ $(( $(cpu_ticks "$pid") - t0 )) -lt 50 ]
	kill -TERM "$pid"
	wait_exit "$pid"
	[ "$RC" -eq 0 ]
	[ "$(grep -c "^xport: dropped 5 bytes from 127.0.0.1:$port: source is this server\$" "$T/u.err")" -eq 1 ]
	grep -qx 'xport: dropped 1 datagrams from sources never answered' "$T/u.err"
	# never answered, so never counted as a peer
	[ "$(grep -c "^xport: stats 127.0.0.1:$port " "$T/u.err")" -eq 0 ]
	grep -Eq '^xport: stats 127\.0\.0\.1:[0-9]+ sent=4 received=4 ' "$T/u.err"
}

@test "udp-echo on a wildcard: any local address with its port is itself" {
	need_raw
	bg_xport u -v udp-echo --stats :0
	wait_ready u
	local pid=$BG_PID port=$PORT
	spoof 127.0.0.1 "$port" "$port"
	spoof 127.0.0.2 "$port" "$port"
	# the same address with another port is an ordinary peer
	spoof 127.0.0.2 40007 "$port"
	echo_roundtrip "$port"
	kill -TERM "$pid"
	wait_exit "$pid"
	[ "$(grep -c "source is this server\$" "$T/u.err")" -eq 2 ]
	grep -q "^xport: dropped 5 bytes from 127.0.0.2:$port: source is this server\$" "$T/u.err"
	[ "$(grep -c "^xport: stats 127.0.0.[12]:$port " "$T/u.err")" -eq 0 ]
	grep -q '^xport: stats 127.0.0.2:40007 sent=5 received=5 ' "$T/u.err"
}

@test "udp-echo: port 0 and reflector ports are never answered" {
	need_raw
	bg_xport u -v udp-echo --stats 127.0.0.1:0
	wait_ready u
	local pid=$BG_PID port=$PORT p
	spoof 127.0.0.1 0 "$port"
	for p in 7 13 17 19 37; do
		spoof 127.0.0.1 "$p" "$port"
	done
	echo_roundtrip "$port"
	kill -TERM "$pid"
	wait_exit "$pid"
	grep -q '^xport: dropped 5 bytes from 127.0.0.1:0: source port 0$' "$T/u.err"
	[ "$(grep -c '^xport: dropped 5 bytes from 127.0.0.1:[0-9]*: source port of a UDP reflector service$' "$T/u.err")" -eq 5 ]
	grep -qx 'xport: dropped 6 datagrams from sources never answered' "$T/u.err"
	[ "$(grep -Ec '^xport: stats 127\.0\.0\.1:(0|7|13|17|19|37) ' "$T/u.err")" -eq 0 ]
}

@test "two udp-echo servers: one forged datagram between them does not loop" {
	need_raw
	local p rport=
	# B answers everything, like a classic echo service on a reflector port.
	for p in 7 13 17 19 37; do
		bg_xport "b$p" -v udp-echo --stats "127.0.0.1:$p"
		if wait_for_line "$T/b$p.err" '^(listening on|xport: listen)' &&
			grep -q '^listening on' "$T/b$p.err"; then
			rport=$p
			break
		fi
	done
	[ -n "$rport" ] || skip "no reflector port free on 127.0.0.1"
	local bpid=$BG_PID
	bg_xport a -v udp-echo --stats 127.0.0.1:0
	wait_ready a
	local apid=$BG_PID aport=$PORT
	# B "from" A: B answers A once, A does not answer B's reflector port.
	spoof 127.0.0.1 "$aport" "$rport"
	# A "from" B: dropped at once.
	spoof 127.0.0.1 "$rport" "$aport"
	echo_roundtrip "$rport"
	echo_roundtrip "$aport"
	local t0
	t0=$(( $(cpu_ticks "$apid") + $(cpu_ticks "$bpid") ))
	sleep 1
	[ $(( $(cpu_ticks "$apid") + $(cpu_ticks "$bpid") - t0 )) -lt 50 ]
	kill -TERM "$apid" "$bpid"
	wait_exit "$apid"
	wait_exit "$bpid"
	grep -q "^xport: stats 127.0.0.1:$aport sent=5 received=5 " "$T/b$rport.err"
	[ "$(grep -c "^xport: dropped 5 bytes from 127.0.0.1:$rport: source port of a UDP reflector service\$" "$T/a.err")" -eq 2 ]
	[ "$(grep -c "^xport: stats 127.0.0.1:$rport " "$T/a.err")" -eq 0 ]
}

@test "--handshake-timeout: a TLS client that stalls its handshake is closed" {
	bg_xport s tcp-server --proto echo --tls --handshake-timeout 1 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1])
def stalled(first):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t0 = time.monotonic()
    s.sendall(first)
    try:
        d = s.recv(100)
    except ConnectionResetError:
        d = b""
    return d, time.monotonic() - t0
# nothing at all, then the start of a ClientHello record
for first in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
    d, dt = stalled(first)
    assert d == b"", d
    assert 0.9 <= dt < 9, dt
PYEOF
	# The limit is on the handshake only: a slow but set-up session lives on.
	(sleep 1.5; echo late) | timeout 10 "$XPORT" tcp-client --tls --insecure "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = late ]
}

@test "--handshake-timeout: default 10, 0 means none, TLS servers only" {
	xp --parse-only tcp-server --tls :0
	[[ "$out" == *"handshake_timeout=10"* ]]
	xp --parse-only tcp-server --tls --handshake-timeout 0 :0
	[[ "$out" == *"handshake_timeout=-1"* ]]
	[ -z "$(usage_error_problem tcp-server --handshake-timeout 1 :0)" ]
	[ -z "$(usage_error_problem pipe tls:localhost:1 tcp-listen:0 --handshake-timeout 1)" ]
	[ -z "$(usage_error_problem tcp-server --tls --handshake-timeout -1 :0)" ]
}

@test "at start xport raises its descriptor soft limit to the hard limit" {
	[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt 600 ] || skip "hard limit too low"
	ulimit -Sn 256
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	local soft hard
	read -r soft hard < <(awk '/^Max open files/ { print $4, $5 }' "/proc/$BG_PID/limits")
	[ "$soft" = "$hard" ]
	[ "$soft" != 256 ]
	# and it is used: 400 peers at once, each answered
	$PY - "$PORT" <<'PYEOF'
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(400)]
for i, c in enumerate(conns):
    c.sendall(b"%d\n" % i)
for i, c in enumerate(conns):
    want = b"%d\n" % i
    got = b""
    while len(got) < len(want):
        got += c.recv(100)
    assert got == want, (i, got)
PYEOF
}

# s_client PORT: one TLS client that sends nothing; its report on $T/sc.
s_client() {
	timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost \
		</dev/null >"$T/sc" 2>&1 || true
}

@test "--deny: a refused TLS peer is closed at accept, before any ServerHello" {
	command -v openssl >/dev/null || skip "no openssl"
	bg_xport s -v tcp-server --proto echo --tls --deny 127.0.0.1 127.0.0.1:0
	wait_ready s
	s_client "$PORT"
	# nothing at all came back: no ServerHello, no certificate
	grep -q 'SSL handshake has read 0 bytes' "$T/sc"
	grep -q 'no peer certificate available' "$T/sc"
	grep -Eq '^xport: refused 127\.0\.0\.1:[0-9]+: --allow/--deny$' "$T/s.err"
}

@test "--allow/--deny: a deny rule wins over an allow rule, in any order" {
	bg_xport a tcp-server --proto echo --allow 127.0.0.1 --deny 127.0.0.0/8 127.0.0.1:0
	wait_ready a
	local p1=$PORT
	bg_xport b tcp-server --proto echo --deny 127.0.0.2 --allow 127.0.0.0/8 127.0.0.1:0
	wait_ready b
	local p2=$PORT
	$PY - "$p1" "$p2" <<'PYEOF'
import socket, sys
def talk(port):
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        s.sendall(b"ping")
        return s.recv(10)
    except (ConnectionResetError, BrokenPipeError):
        return b""
assert talk(sys.argv[1]) == b"", "allowed although a deny rule matches"
assert talk(sys.argv[2]) == b"ping", "the deny rule of another address refused us"
PYEOF
}

@test "--max-conns counts TLS handshakes in progress" {
	command -v openssl >/dev/null || skip "no openssl"
	bg_xport s tcp-server --proto echo --tls --max-conns 1 --handshake-timeout 30 127.0.0.1:0
	wait_ready s
	# One client connects and stalls its handshake, holding the slot
	# (until $T/leave appears; bounded, so it never outlives the test)...
	$PY - "$PORT" "$T" >"$T/stalled" <<'PYEOF' &
import socket, sys, os, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
print("connected", flush=True)
end = time.monotonic() + 20
while not os.path.exists(sys.argv[2] + "/leave") and time.monotonic() < end:
    time.sleep(0.05)
s.close()
PYEOF
	local stalled=$!
	wait_for_line "$T/stalled" '^connected$'
	# ... so the next one is refused at accept: no ServerHello.
	s_client "$PORT"
	grep -q 'SSL handshake has read 0 bytes' "$T/sc"
	wait_for_line "$T/s.err" '^xport: refused 127\.0\.0\.1:[0-9]+: over --max-conns 1$'
	# Once the stalled client leaves, the slot is free again (polled: the
	# server notices the leaving peer in its own time).
	touch "$T/leave"
	bg_wait "$stalled"
	local i ok=
	for i in $(seq 50); do
		if [ "$(echo again | timeout 5 "$XPORT" tcp-client --tls --insecure "127.0.0.1:$PORT" 2>/dev/null)" = again ]; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ -n "$ok" ]
}
