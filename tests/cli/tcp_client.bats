#!/usr/bin/env bats
# tcp-client: relay, failures and their exit codes, --wait-for, --check.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

# A python server: accept one connection, run ACTION on it.
py_server() {
	$PY - "$@" <<'PYEOF' &
import socket, sys, time, os
action, portfile = sys.argv[1], sys.argv[2]
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(5)
tmp = portfile + ".tmp"
open(tmp, "w").write("%d\n" % l.getsockname()[1])
os.rename(tmp, portfile)
l.settimeout(20)
c, _ = l.accept()
c.settimeout(20)
if action == "reset":
    c.recv(100)
    import struct
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
elif action == "silent":
    time.sleep(5)
elif action == "record":
    data = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    open(portfile + ".data", "wb").write(data)
    c.sendall(b"bye\n")
    c.close()
elif action == "hold-open":
    # read to EOF, then never close
    while c.recv(65536):
        pass
    time.sleep(5)
PYEOF
	PY_PID=$!
	BG_PIDS+=("$PY_PID")
	wait_for_line "$2" '^[0-9]+$'
	PORT=$(cat "$2")
}

@test "relays stdin to the peer and the peer to stdout, half-close passes EOF" {
	py_server record "$T/port"
	printf 'line1\nline2\n' | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = bye ]
	[ "$(cat "$T/port.data")" = "$(printf 'line1\nline2')" ]
}

@test "connection refused: exit 69 and one line naming the address" {
	local p
	p=$(closed_port)
	run_xp 5 tcp-client "127.0.0.1:$p"
	[ "$status" -eq 69 ]
	one_error_line "connect 127.0.0.1:$p: Connection refused"
}

@test "name not found: exit 69" {
	run_xp 20 tcp-client no-such-host.invalid:80
	[ "$status" -eq 69 ]
	one_error_line "connect no-such-host.invalid:80: "
}

@test "empty host means localhost" {
	py_server record "$T/port"
	echo hi | timeout 5 "$XPORT" tcp-client ":$PORT" >"$T/o"
	[ "$(cat "$T/o")" = bye ]
}

@test "reset by the peer: exit 1 with one line" {
	py_server reset "$T/port"
	(echo data; sleep 3) | timeout -s KILL 10 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null 2>"$T/fg.err" || status=$?
	[ "$status" -eq 1 ]
	one_error_line "reset"
}

@test "reset just after the connection is made: exit 1, not 69 (also --tls)" {
	reset_server now
	# the reset may come before or after xport sees the connect complete
	for i in 1 2 3 4 5; do
		run_xp 5 tcp-client "127.0.0.1:$PORT" < <(sleep 5)
		[ "$status" -eq 1 ] || { echo "try $i: exit $status: $err"; return 1; }
		one_error_line "127\.0\.0\.1:$PORT: Connection reset by peer"
	done
	# during the TLS handshake: a TLS failure, the server was reached
	run_xp 5 tcp-client --tls --insecure "127.0.0.1:$PORT" < <(sleep 5)
	[ "$status" -eq 1 ]
	one_error_line "Connection reset by peer"
	# --check: the server was reachable
	run_xp 5 tcp-client --check "127.0.0.1:$PORT"
	[ "$status" -eq 0 ]
	[ -z "$err" ]
}

@test "reset after bytes came: exit 1, the bytes delivered, one line" {
	reset_server after-data
	rm -f "$T/fg.out"
	run_xp 10 tcp-client "127.0.0.1:$PORT" < <(ack_after_hello "$T/fg.out")
	[ "$status" -eq 1 ]
	[ "$(cat "$T/fg.out")" = hello ]
	one_error_line "127\.0\.0\.1:$PORT: Connection reset by peer"
}

@test "--check: 0 when reachable (nothing sent), 69 when not" {
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	run_xp 5 tcp-client --check "127.0.0.1:$PORT"
	[ "$status" -eq 0 ]
	[ -z "$err" ]
	run_xp 5 tcp-client --check "127.0.0.1:$(closed_port)"
	[ "$status" -eq 69 ]
	one_error_line "Connection refused"
}

@test "--wait-for: retries until the server is up" {
	local p
	p=$(closed_port)
	(sleep 0.7; exec "$XPORT" -q tcp-server --proto echo "127.0.0.1:$p") &
	BG_PIDS+=("$!")
	run_xp 10 tcp-client --wait-for 8 --check "127.0.0.1:$p"
	[ "$status" -eq 0 ]
}

@test "--wait-for: exit 75 once the time is spent" {
	run_xp 10 tcp-client --wait-for 0.5 "127.0.0.1:$(closed_port)"
	[ "$status" -eq 75 ]
	one_error_line "not reachable within 0.5 s"
}

@test "--connect-timeout: exit 75" {
	# A listener whose backlog is full drops further SYNs.
	$PY - "$T/port" <<'PYEOF' &
import socket, sys, os, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(0)
port = l.getsockname()[1]
fill = []
for i in range(4):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    fill.append(s)
time.sleep(0.2)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % port)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(10)
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$T/port" '^[0-9]+$'
	run_xp 10 tcp-client --connect-timeout 0.5 "127.0.0.1:$(cat "$T/port")"
	[ "$status" -eq 75 ]
	one_error_line "timed out"
}

@test "--idle-timeout: exit 75" {
	py_server silent "$T/port"
	(sleep 4) | timeout -s KILL 10 "$XPORT" tcp-client --idle-timeout 0.3 "127.0.0.1:$PORT" >/dev/null 2>"$T/fg.err" || status=$?
	[ "$status" -eq 75 ]
	one_error_line "timed out"
}

@test "--eof-timeout: exit 75 when the other direction does not end" {
	py_server hold-open "$T/port"
	run_xp 10 tcp-client --eof-timeout 0.3 "127.0.0.1:$PORT"
	[ "$status" -eq 75 ]
	one_error_line "timed out"
}

@test "--crlf sends CRLF line endings" {
	py_server record "$T/port"
	printf 'a\nb\r\nc\n' | timeout 5 "$XPORT" tcp-client --crlf "127.0.0.1:$PORT" >/dev/null
	[ "$(od -An -c "$T/port.data" | tr -d ' ')" = 'a\r\nb\r\nc\r\n' ]
}

@test "stdin from a regular file and /dev/null" {
	py_server record "$T/port"
	echo content >"$T/in"
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" <"$T/in" >"$T/o"
	[ "$(cat "$T/port.data")" = content ]
	rm -f "$T/port"
	py_server record "$T/port"
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/o"
	[ "$(cat "$T/o")" = bye ] && [ ! -s "$T/port.data" ]
}

@test "closed stdin (<&-) reads as empty, never as the loop's own descriptor" {
	py_server record "$T/port"
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" <&- >"$T/o"
	[ "$(cat "$T/o")" = bye ] && [ ! -s "$T/port.data" ]
}

@test "closed stdout (>&-): exit 1 with one line, no hang" {
	py_server record "$T/port"
	status=0
	echo hi | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" 2>"$T/fg.err" >&- || status=$?
	[ "$status" -eq 1 ]
	one_error_line "Bad file descriptor"
	[ "$(cat "$T/port.data")" = hi ]
}

@test "--no-readline on a terminal still relays plainly" {
	command -v script >/dev/null || skip "no script(1)"
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	printf 'tty\n' | timeout 10 script -qec "$XPORT tcp-client --no-readline 127.0.0.1:$PORT" /dev/null >"$T/o" || true
	grep -q tty "$T/o"
}
