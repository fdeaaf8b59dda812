#!/usr/bin/env bats
# How a session ends (xport(1), HOW A SESSION ENDS): fd 1 closed at the peer's EOF,
# the terminal rule, a -k stdio server ending each connection at its peer's
# EOF, and the one-way options --send-only / --recv-only.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

# py_peer ACTION PORTFILE: a python TCP server for one connection.
#   send-hold: send 6000 bytes, shut down writing, read to EOF (recording
#              what came in PORTFILE.data), then hold the socket open.
#   noisy:     send 16 MiB from a thread (PORTFILE.sent once all of it is
#              taken), record what comes in until EOF, then hold it open.
py_peer() {
	$PY - "$@" <<'PYEOF' &
import os, socket, sys, threading, time
action, portfile = sys.argv[1], sys.argv[2]
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(5)
open(portfile + ".tmp", "w").write("%d\n" % l.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
l.settimeout(30)
c, _ = l.accept()
c.settimeout(30)

def record():
    data = b""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    open(portfile + ".data", "wb").write(data)

if action == "send-hold":
    c.sendall(b"hello\n" * 1000)
    c.shutdown(socket.SHUT_WR)
    record()
elif action == "noisy":
    def noise():
        c.sendall(b"n" * (16 << 20))
        open(portfile + ".sent", "w").write("ok\n")
    threading.Thread(target=noise, daemon=True).start()
    record()
time.sleep(20)
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$2" '^[0-9]+$'
	PORT=$(cat "$2")
}

# on_tty SECONDS CMD...: run CMD with its stdin on a fresh pseudo-terminal
# that nobody types on (stdout and stderr as given to on_tty); its status,
# or 124 if it is still running after SECONDS.
on_tty() {
	$PY - "$@" <<'PYEOF'
import os, subprocess, sys
secs, argv = float(sys.argv[1]), sys.argv[2:]
m, s = os.openpty()
p = subprocess.Popen(argv, stdin=s)
os.close(s)
try:
    rc = p.wait(timeout=secs)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    rc = 124
sys.exit(rc if rc >= 0 else 128 - rc)
PYEOF
}

# hold_stdin NAME [TEXT]: $T/NAME.in becomes a FIFO whose writer writes TEXT
# and then stays open, silent, until teardown.  Start it before bg_xport.
hold_stdin() {
	mkfifo "$T/$1.in"
	{ printf '%s' "${2:-}"; exec sleep 30; } >"$T/$1.in" &
	BG_PIDS+=("$!")
}

# wait_file FILE: bounded wait for FILE to exist.
wait_file() {
	local n=500
	while [ ! -e "$1" ] && [ "$n" -gt 0 ]; do
		n=$((n - 1))
		sleep 0.02
	done
	[ -e "$1" ]
}

# ---- fd 1 is closed at the peer's EOF ---------------------------------------

# xport's stdout goes to a consumer that writes a marker when it sees EOF;
# xport itself keeps running (its stdin is open and silent).
# consume FIFO: read FIFO to its EOF into $T/got, then touch $T/consumer.done.
consume() {
	mkfifo "$1"
	{ cat <"$1" >"$T/got"; touch "$T/consumer.done"; } &
	BG_PIDS+=("$!")
}

fd1_closed_early() {
	hold_stdin x
	consume "$T/out"
	"$XPORT" "$@" <"$T/x.in" >"$T/out" 2>"$T/x.err" &
	local xp=$!
	BG_PIDS+=("$xp")
	wait_file "$T/consumer.done"
	# The consumer is done while xport still runs.
	kill -0 "$xp"
	[ "$(wc -c <"$T/got")" -eq 6000 ]
}

@test "tcp-client: the peer's EOF closes fd 1 itself, while stdin is still open" {
	py_peer send-hold "$T/port"
	fd1_closed_early tcp-client "127.0.0.1:$PORT"
}

@test "pipe - tcp: the peer's EOF closes fd 1 itself, while stdin is still open" {
	py_peer send-hold "$T/port"
	fd1_closed_early pipe - "tcp:127.0.0.1:$PORT"
}

@test "subprocess: the child's EOF closes fd 1 itself, while the child still runs" {
	hold_stdin x
	consume "$T/out"
	"$XPORT" subprocess -- sh -c 'echo from-child; exec >&- 2>&-; exec sleep 20' \
		<"$T/x.in" >"$T/out" 2>"$T/x.err" &
	local xp=$!
	BG_PIDS+=("$xp")
	wait_file "$T/consumer.done"
	kill -0 "$xp"
	[ "$(cat "$T/got")" = from-child ]
}

# ---- the terminal rule -------------------------------------------------------

@test "terminal rule: tcp-server > file typed at a terminal exits when the file is across" {
	big_file 4194304
	on_tty 30 "$XPORT" tcp-server 127.0.0.1:0 >"$T/got" 2>"$T/srv.err" &
	local srv=$!
	BG_PIDS+=("$srv")
	wait_ready srv
	run timeout 30 "$XPORT" tcp-client "127.0.0.1:$PORT" <"$T/big"
	[ "$status" -eq 0 ]
	wait_exit "$srv" 30
	[ "$RC" -eq 0 ]
	[ "$(sha "$T/got")" = "$(sha "$T/big")" ]
}

@test "terminal rule: tcp-client > file typed at a terminal exits when the file is across" {
	big_file 4194304
	cp "$T/big" "$T/srv.in"
	bg_xport srv tcp-server 127.0.0.1:0
	wait_ready srv
	status=0
	on_tty 30 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/got" || status=$?
	[ "$status" -eq 0 ]
	wait_exit "$BG_PID" 30
	[ "$RC" -eq 0 ]
	[ "$(sha "$T/got")" = "$(sha "$T/big")" ]
}

@test "without a terminal the peer's EOF is only a half-close" {
	py_peer send-hold "$T/port"
	mkfifo "$T/c.in"
	bg_xport c tcp-client "127.0.0.1:$PORT"
	exec 8>"$T/c.in"
	wait_for_count "$T/c.out" '^hello$' 1000
	# The other direction still runs after the peer's EOF.
	printf 'late\n' >&8
	exec 8>&-
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	wait_file "$T/port.data"
	[ "$(cat "$T/port.data")" = late ]
}

@test "-k stdio server: each connection ends at its peer's EOF, stdin open and silent" {
	hold_stdin srv
	bg_xport srv tcp-server -k --max-conns 1 127.0.0.1:0
	wait_ready srv
	run timeout 10 "$XPORT" tcp-client "127.0.0.1:$PORT" <<<one
	[ "$status" -eq 0 ]
	run timeout 10 "$XPORT" tcp-client "127.0.0.1:$PORT" <<<two
	[ "$status" -eq 0 ]
	# stdout belongs to every connection: not closed after the first.
	wait_for_count "$T/srv.out" '^(one|two)$' 2
	[ "$(cat "$T/srv.out")" = "$(printf 'one\ntwo')" ]
	kill -0 "$BG_PID"
}

# ---- --send-only / --recv-only -------------------------------------------------

# send_only_run ARGS...: xport ARGS --send-only against a noisy peer: the
# peer's 16 MiB are read (its sender finishes) and never written to stdout;
# the session ends when stdin ends though the peer keeps its socket open.
send_only_run() {
	mkfifo "$T/c.in"
	bg_xport c "$@"
	exec 8>"$T/c.in"
	printf 'payload\n' >&8
	wait_file "$T/port.sent"
	exec 8>&-
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ ! -s "$T/c.out" ]
	wait_file "$T/port.data"
	[ "$(cat "$T/port.data")" = payload ]
}

@test "tcp-client --send-only: the peer's data dropped, ends when stdin ends" {
	py_peer noisy "$T/port"
	send_only_run tcp-client --send-only "127.0.0.1:$PORT"
}

@test "pipe --send-only - tcp: first endpoint to second only, ends when stdin ends" {
	py_peer noisy "$T/port"
	send_only_run pipe --send-only - "tcp:127.0.0.1:$PORT"
}

# recv_only_run ARGS...: xport ARGS --recv-only: the peer's data reaches
# stdout and the session ends at its EOF, while stdin is open; what is in
# stdin is left there and nothing reaches the peer.
recv_only_run() {
	hold_stdin c unread
	bg_xport c "$@"
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ "$(wc -c <"$T/c.out")" -eq 6000 ]
	wait_file "$T/port.data"
	[ ! -s "$T/port.data" ]
	[ "$(timeout 5 head -c 6 "$T/c.in")" = unread ]
}

@test "tcp-client --recv-only: ends at the peer's EOF, stdin never read" {
	py_peer send-hold "$T/port"
	recv_only_run tcp-client --recv-only "127.0.0.1:$PORT"
}

@test "pipe --recv-only - tcp: second endpoint to first only" {
	py_peer send-hold "$T/port"
	recv_only_run pipe --recv-only - "tcp:127.0.0.1:$PORT"
}

@test "tcp-server --send-only: stdin to the peer, its data read and dropped" {
	mkfifo "$T/srv.in"
	bg_xport srv tcp-server -x --send-only 127.0.0.1:0
	exec 8>"$T/srv.in"
	wait_ready srv
	$PY - "$PORT" "$T/peer" <<'PYEOF' &
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
c.sendall(b"noise" * 1000)
data = b""
try:
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
except OSError:
    pass
open(sys.argv[2], "wb").write(data)
time.sleep(20)
PYEOF
	BG_PIDS+=("$!")
	# Its 5000 bytes were read (the hexdump shows them) before stdin ends.
	local n=500
	until [ "$(awk '/^< [0-9]+ bytes$/ { s += $2 } END { print s + 0 }' "$T/srv.err")" -ge 5000 ]; do
		n=$((n - 1))
		[ "$n" -gt 0 ]
		sleep 0.02
	done
	printf 'to-peer\n' >&8
	exec 8>&-
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ ! -s "$T/srv.out" ]
	wait_file "$T/peer"
	[ "$(cat "$T/peer")" = to-peer ]
}

@test "tcp-server --recv-only: the peer to stdout, ends at its EOF, stdin open" {
	hold_stdin srv unread
	bg_xport srv tcp-server --recv-only 127.0.0.1:0
	wait_ready srv
	run timeout 10 "$XPORT" tcp-client "127.0.0.1:$PORT" <<<from-peer
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	wait_exit "$BG_PID" 10
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/srv.out")" = from-peer ]
	[ "$(timeout 5 head -c 6 "$T/srv.in")" = unread ]
}

@test "pipe --send-only / --recv-only with exec: first to second / second to first" {
	echo to-child | timeout 10 "$XPORT" pipe --send-only - "exec:echo dropped; cat >$T/child.got" >"$T/o"
	[ "$(cat "$T/child.got")" = to-child ]
	[ ! -s "$T/o" ]
	# Never fed, the child's stdin is at EOF at once (as < /dev/null).
	run timeout 10 "$XPORT" pipe --recv-only - "exec:echo from-child; cat >$T/child2.got" <<<never
	[ "$status" -eq 0 ]
	[ "$output" = from-child ]
	[ ! -s "$T/child2.got" ]
}

@test "--send-only with --recv-only is a usage error" {
	[ -z "$(usage_error_problem tcp-client --send-only --recv-only 127.0.0.1:1)" ]
	[ -z "$(usage_error_problem pipe --recv-only --send-only - tcp:127.0.0.1:1)" ]
	[ -z "$(usage_error_problem tcp-server --proto echo --send-only :0)" ]
}
