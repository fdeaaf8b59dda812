#!/usr/bin/env bats
# --crlf on every stdio side: local LF line endings go out as CRLF.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

# What a python client reads from ADDR until EOF, as repr().
read_all() {
	$PY - "$1" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    got += d
print(repr(got))
PYEOF
}

@test "tcp-server --crlf: stdin's LF line endings reach the client as CRLF" {
	printf 'one\ntwo\r\nthree\n\nlast' >"$T/s.in"
	bg_xport s tcp-server --crlf 127.0.0.1:0
	wait_ready s
	[ "$(read_all "$PORT")" = "b'one\\r\\ntwo\\r\\nthree\\r\\n\\r\\nlast'" ]
}

@test "tcp-server -k --crlf: every connection's stdio session converts" {
	mkfifo "$T/f"
	"$XPORT" tcp-server -k --crlf -v 127.0.0.1:0 <"$T/f" >/dev/null 2>"$T/s.err" &
	BG_PIDS+=("$!")
	exec 7>"$T/f"
	wait_ready s
	# stdin is the next session's only once this one has begun (-v logs
	# it): a byte written earlier would be the ending session's.
	$PY - "$PORT" 7 "$T/s.err" <<'PYEOF'
import os, socket, sys, time
port, fd, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def opened(n):
    end = time.time() + 10
    while open(log).read().count(" open\n") < n:
        assert time.time() < end, open(log).read()
        time.sleep(0.02)
for i in range(2):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    opened(i + 1)
    os.write(fd, b"line %d\nnext\r\n" % i)
    got = b""
    while not got.endswith(b"next\r\n"):
        d = s.recv(100)
        assert d, got
        got += d
    assert got == b"line %d\r\nnext\r\n" % i, got
    s.close()
PYEOF
	exec 7>&-
}

@test "pipe --crlf: the stdio endpoint's LF line endings go out as CRLF" {
	printf 'a\nb\n' | timeout 10 "$XPORT" pipe --crlf - 'exec:od -An -c' >"$T/o"
	[ "$(tr -s ' ' <"$T/o")" = " a \\r \\n b \\r \\n" ]
	# the other way round (stdio second), into a TCP peer
	bg_xport s tcp-server 127.0.0.1:0 --once
	wait_ready s
	printf 'x\ny\n' | timeout 10 "$XPORT" pipe --crlf "tcp:127.0.0.1:$PORT" - >/dev/null
	wait_exit "$BG_PID"
	[ "$(od -An -c "$T/s.out" | tr -s ' ')" = " x \\r \\n y \\r \\n" ]
}

@test "subprocess --crlf: stdin reaches the child with CRLF line endings" {
	printf 'a\nb\n' | timeout 10 "$XPORT" subprocess --crlf -- od -An -c >"$T/o"
	[ "$(tr -s ' ' <"$T/o")" = " a \\r \\n b \\r \\n" ]
}

@test "--crlf: usage errors where there is no stdio side" {
	run_xp 5 tcp-server --crlf --proto echo 127.0.0.1:0
	[ "$status" -eq 64 ] && one_error_line '--crlf requires --proto stdio'
	run_xp 5 pipe --crlf tcp:127.0.0.1:1 exec:cat
	[ "$status" -eq 64 ] && one_error_line '--crlf requires a stdio endpoint'
	run_xp 5 subprocess --crlf --connect 127.0.0.1:1 -- cat
	[ "$status" -eq 64 ] && one_error_line 'cannot be used together'
}
