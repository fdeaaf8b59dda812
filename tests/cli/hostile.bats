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
