#!/usr/bin/env bats
# --stats (text and json), -x hexdump format, --progress.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "--stats text: one parseable line per connection at its end" {
	bg_xport s tcp-server --proto echo --stats 127.0.0.1:0
	wait_ready s
	printf 'hello' | timeout 5 "$XPORT" tcp-client --stats "127.0.0.1:$PORT" >"$T/o" 2>"$T/c.err"
	[ "$(cat "$T/o")" = hello ]
	# client side: the peer is the server, 5 bytes each way, clean end
	grep -Eqx "xport: stats 127\.0\.0\.1:$PORT sent=5 received=5 seconds=[0-9]+\.[0-9]+ end=eof" "$T/c.err"
	wait_for_line "$T/s.err" '^xport: stats '
	grep -Eqx 'xport: stats 127\.0\.0\.1:[0-9]+ sent=5 received=5 seconds=[0-9]+\.[0-9]+ end=(eof|closed)' "$T/s.err"
}

@test "--stats=json: one JSON object per line with the keys xport(1) documents" {
	bg_xport s tcp-server --proto discard --stats=json 127.0.0.1:0
	wait_ready s
	head -c 1000 /dev/zero | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null
	head -c 2000 /dev/zero | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null
	wait_for_count "$T/s.err" '^\{' 2
	grep '^{' "$T/s.err" | $PY -c '
import json, sys
objs = [json.loads(l) for l in sys.stdin]
assert len(objs) == 2, objs
for o in objs:
    assert set(o) >= {"peer", "sent", "received", "seconds", "end"}, o
    assert o["sent"] == 0 and o["end"] in ("eof", "closed"), o
    assert isinstance(o["seconds"], float)
assert sorted(o["received"] for o in objs) == [1000, 2000]
'
}

@test "--stats: a reset connection ends with end=reset, a timeout with end=timeout" {
	bg_xport s tcp-server --proto echo --stats --idle-timeout 0.3 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, struct, sys, time
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"x"); a.recv(1)
a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
a.close()
b = socket.create_connection(("127.0.0.1", port), timeout=5)
assert b.recv(10) == b""   # closed by the idle timeout
PYEOF
	wait_for_line "$T/s.err" 'end=timeout$'
	grep -q 'end=reset$' "$T/s.err"
}

@test "-x: '> N bytes' / '< N bytes' headers and hexdump -C lines" {
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	printf 'Hello, world! 0123456789' | timeout 5 "$XPORT" tcp-client -x "127.0.0.1:$PORT" >"$T/o" 2>"$T/x"
	[ "$(cat "$T/o")" = 'Hello, world! 0123456789' ]
	grep -qx '> 24 bytes' "$T/x"
	grep -qx '< 24 bytes' "$T/x"
	printf 'Hello, world! 0123456789' | hexdump -C | head -n 2 >"$T/want"
	# each header is followed by exactly hexdump -C's lines (its final
	# offset line aside)
	awk '/^> 24 bytes$/ { getline; print; getline; print; exit }' "$T/x" >"$T/got"
	diff "$T/want" "$T/got"
}

@test "--progress: a live line only when stderr is a terminal" {
	bg_xport s tcp-server --proto discard 127.0.0.1:0
	wait_ready s
	head -c 100000 /dev/zero | timeout 5 "$XPORT" tcp-client --progress "127.0.0.1:$PORT" 2>"$T/e"
	[ ! -s "$T/e" ]
	command -v script >/dev/null || skip "no script(1)"
	timeout 10 script -qec "sh -c 'sleep 0.7; head -c 100000 /dev/zero' | $XPORT tcp-client --progress 127.0.0.1:$PORT" /dev/null >"$T/tty" || true
	grep -q 'xport: sent ' "$T/tty"
}
