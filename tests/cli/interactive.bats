#!/usr/bin/env bats
# tcp-client on a terminal (cli/interactive.c): readline driven from the
# event loop.  Each test runs the real binary in a private tmux server,
# types with send-keys and reads the screen with capture-pane.  Every wait
# polls the screen (or a file) against a deadline; nothing sleeps blindly.

XPORT="${XPORT:-$BATS_TEST_DIRNAME/../../build/xport}"

# A scriptable peer: binds 127.0.0.1:0, writes the port to PORTFILE, serves
# one connection the way MODE says, and logs what it received to LOG.
# "Triggered" modes wait for the file TRIG before acting, so the test
# decides when the peer speaks (e.g. while a line is half typed).
write_peer() {
	cat >"$T/peer.py" <<'EOF'
import os, socket, struct, sys, time

mode, portfile, trig, log = sys.argv[1:5]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
ls.settimeout(30)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
c, _ = ls.accept()
c.settimeout(30)
got = b""

def wait_trigger():
    end = time.time() + 30
    while not os.path.exists(trig) and time.time() < end:
        time.sleep(0.02)

def readline():
    global got
    buf = b""
    while not buf.endswith(b"\n"):
        d = c.recv(1)
        if not d:
            break
        buf += d
    got += buf
    return buf

def read_to_eof():
    global got
    while True:
        d = c.recv(4096)
        if not d:
            return
        got += d

if mode == "echo":
    while True:
        d = c.recv(4096)
        if not d:
            break
        got += d
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)
elif mode == "unsolicited":
    wait_trigger()
    c.sendall(b"unsolicited news\n")
    c.sendall(b"got: " + readline())
    read_to_eof()
elif mode == "prompt":
    c.sendall(b"login: ")
    c.sendall(b"hello " + readline())
    read_to_eof()
elif mode == "bye":
    read_to_eof()
    c.sendall(b"bye after %d bytes\n" % len(got))
elif mode == "close":
    wait_trigger()
    c.sendall(b"closing now\n")
elif mode == "reset":
    wait_trigger()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
elif mode == "hold":
    read_to_eof()
elif mode == "linger":
    read_to_eof()
    time.sleep(30)
elif mode == "late":
    read_to_eof()
    wait_trigger()
    c.sendall(b"late reply\n")
c.close()
with open(log, "wb") as f:
    f.write(got)
EOF
}

setup() {
	command -v tmux >/dev/null || skip "tmux not installed"
	command -v python3 >/dev/null || skip "python3 not installed"
	[ -x "$XPORT" ] || skip "no xport binary at $XPORT"
	grep -q rl_callback_read_char "$XPORT" || skip "xport built without readline"
	T="$BATS_TEST_TMPDIR"
	SOCK="xpia-$$-$BATS_TEST_NUMBER"
	PIDS=()
	write_peer
}

teardown() {
	tmux -L "$SOCK" kill-server 2>/dev/null || true
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}

tm() {
	tmux -L "$SOCK" -f /dev/null "$@"
}

# wait_file FILE: until FILE exists (10 s at most).
wait_file() {
	local end=$((SECONDS + 10))
	while [ ! -s "$1" ]; do
		[ "$SECONDS" -lt "$end" ] || { echo "timed out waiting for $1" >&2; return 1; }
		sleep 0.02
	done
}

# peer MODE: start the python peer; sets PORT.
peer() {
	python3 "$T/peer.py" "$1" "$T/port" "$T/trigger" "$T/peer.log" 2>"$T/peer.err" &
	PIDS+=("$!")
	PEER_PID=$!
	wait_file "$T/port"
	PORT="$(cat "$T/port")"
}

# echo_server: xport's own echo server; the python one if it is not up.
echo_server() {
	"$XPORT" -q tcp-server 127.0.0.1:0 --proto echo --port-file "$T/xport.port" \
		2>"$T/server.err" &
	PIDS+=("$!")
	if wait_file "$T/xport.port" 2>/dev/null; then
		PORT="$(cat "$T/xport.port")"
	else
		peer echo
	fi
}

# client ARGS...: xport tcp-client in a 120x30 tmux pane.  The pane stays
# after xport exits; its status goes to $T/exit, the terminal settings
# before and after to $T/stty.before and $T/stty.after.
client() {
	local q
	q="$(printf ' %q' "$@")"
	# The shell survives the Ctrl-C test (a trap, unlike an ignored
	# signal, is not inherited by xport).
	cat >"$T/run.sh" <<EOF
trap : INT
stty -g >"$T/stty.before"
XDG_STATE_HOME=$(printf %q "$T/state") INPUTRC=/dev/null $(printf %q "$XPORT")$q
st=\$?
stty -g >"$T/stty.after"
echo "EXIT=\$st"
echo "\$st" >"$T/exit.tmp" && mv "$T/exit.tmp" "$T/exit"
exec sleep 120
EOF
	rm -f "$T/exit"
	tm new-session -d -x 120 -y 30 "sh $T/run.sh"
}

screen() {
	tm capture-pane -p
}

# wait_screen REGEX: until a line of the screen matches (10 s at most).
wait_screen() {
	local end=$((SECONDS + 10))
	until screen | grep -Eq -- "$1"; do
		if [ "$SECONDS" -ge "$end" ]; then
			echo "screen never matched: $1" >&2
			screen | sed 's/^/| /' >&2
			return 1
		fi
		sleep 0.05
	done
}

# The exit status of xport, once it has exited (10 s at most).
wait_exit() {
	wait_file "$T/exit" || { screen | sed 's/^/| /' >&2; return 1; }
	cat "$T/exit"
}

# Wait for the peer process to finish (it writes peer.log at the end).
wait_peer() {
	local end=$((SECONDS + 10))
	while kill -0 "$PEER_PID" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || { echo "peer did not finish" >&2; return 1; }
		sleep 0.02
	done
}

cursor_x() {
	tm display-message -p '#{cursor_x}'
}

# Line number (1-based) of the first screen line matching REGEX.
line_of() {
	screen | grep -nE -- "$1" | head -n 1 | cut -d: -f1
}

@test "interactive: a typed line is sent and the echo is shown" {
	echo_server
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'hello interactive' Enter
	wait_screen '^hello interactive$'
	# The line typed stays on screen with its prompt, the echo below it.
	[ "$(line_of '^> hello interactive$')" -lt "$(line_of '^hello interactive$')" ]
	tm send-keys C-d
	[ "$(wait_exit)" = 0 ]
}

@test "interactive: data arriving mid-typing leaves the line being typed intact" {
	peer unsolicited
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'partial li'
	wait_screen '^> partial li$'
	tm send-keys Left Left
	[ "$(cursor_x)" = 10 ]
	touch "$T/trigger"
	wait_screen '^unsolicited news$'
	# Printed above the prompt; the half-typed line redrawn below it with
	# the cursor where it was.
	wait_screen '^> partial li$'
	[ "$(line_of '^unsolicited news$')" -lt "$(line_of '^> partial li$')" ]
	[ "$(cursor_x)" = 10 ]
	# Still editable: the insertion lands at the cursor, Enter sends all.
	tm send-keys 'XY' Enter
	wait_screen '^got: partial XYli$'
	tm send-keys C-d
	[ "$(wait_exit)" = 0 ]
	wait_peer
	[ "$(cat "$T/peer.log")" = "partial XYli" ]
}

@test "interactive: a partial line from the peer becomes the prompt" {
	peer prompt
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^login:'
	tm send-keys 'bob'
	wait_screen '^login: bob$'
	tm send-keys Enter
	wait_screen '^hello bob$'
	tm send-keys C-d
	[ "$(wait_exit)" = 0 ]
}

@test "interactive: history persists across runs" {
	echo_server
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'remember this line' Enter
	wait_screen '^remember this line$'
	tm send-keys C-d
	[ "$(wait_exit)" = 0 ]
	[ -f "$T/state/xport/history" ]
	grep -qx 'remember this line' "$T/state/xport/history"
	[ "$(stat -c %a "$T/state/xport")" = 700 ]
	tm kill-server

	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys Up
	wait_screen '^> remember this line$'
	tm send-keys ' again' Enter
	wait_screen '^remember this line again$'
	tm send-keys C-d
	[ "$(wait_exit)" = 0 ]
	[ "$(grep -c '' "$T/state/xport/history")" = 2 ]
}

@test "interactive: Ctrl-D half-closes and the peer's reply is still shown" {
	peer bye
	client tcp-client --stats "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'abc' Enter
	tm send-keys C-d
	wait_screen '^bye after 4 bytes$'
	[ "$(wait_exit)" = 0 ]
	wait_screen '^xport: stats 127\.0\.0\.1:[0-9]+ sent=4 received=18 .*end=eof$'
	# The terminal is given back as it was.
	[ "$(cat "$T/stty.before")" = "$(cat "$T/stty.after")" ]
}

@test "interactive: --crlf sends CRLF line endings" {
	peer bye
	client tcp-client --crlf "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'abc' Enter
	wait_screen '^> abc$'
	tm send-keys C-d
	wait_screen '^bye after 5 bytes$'
	[ "$(wait_exit)" = 0 ]
	wait_peer
	[ "$(od -An -c "$T/peer.log" | tr -s ' ')" = " a b c \r \n" ]
}

@test "interactive: the peer closing ends the session with status 0" {
	peer close
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'never sent'
	wait_screen '^> never sent$'
	touch "$T/trigger"
	wait_screen '^closing now$'
	[ "$(wait_exit)" = 0 ]
	[ "$(cat "$T/stty.before")" = "$(cat "$T/stty.after")" ]
}

@test "interactive: a reset by the peer exits 1 with one xport: line" {
	peer reset
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	touch "$T/trigger"
	[ "$(wait_exit)" = 1 ]
	wait_screen '^xport: 127\.0\.0\.1:[0-9]+: Connection reset by peer$'
	[ "$(screen | grep -c '^xport:')" = 1 ]
	[ "$(cat "$T/stty.before")" = "$(cat "$T/stty.after")" ]
}

@test "interactive: Ctrl-C closes the connection gracefully and exits 0" {
	peer hold
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'sent line' Enter 'half typed'
	wait_screen '^> half typed$'
	tm send-keys C-c
	[ "$(wait_exit)" = 0 ]
	wait_peer
	# What was entered arrived, then a clean FIN (the peer saw EOF).
	[ "$(cat "$T/peer.log")" = "sent line" ]
	[ "$(cat "$T/stty.before")" = "$(cat "$T/stty.after")" ]
}

@test "interactive: SIGUSR1 prints a stats line and the session goes on" {
	echo_server
	client tcp-client "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys 'ping' Enter
	wait_screen '^ping$'
	tm send-keys 'typing'
	wait_screen '^> typing$'
	local pid
	pid="$(pgrep -P "$(tm display-message -p '#{pane_pid}')" -x xport)"
	[ -n "$pid" ]
	kill -USR1 "$pid"
	wait_screen '^xport: stats 127\.0\.0\.1:[0-9]+ sent=5 received=5 .*end=open$'
	wait_screen '^> typing$'
	tm send-keys ' on' Enter
	wait_screen '^typing on$'
	tm send-keys C-d
	[ "$(wait_exit)" = 0 ]
}

@test "interactive: --idle-timeout ends a silent session with status 75" {
	peer hold
	client tcp-client --idle-timeout 0.5 "127.0.0.1:$PORT"
	wait_screen '^>'
	[ "$(wait_exit)" = 75 ]
	wait_screen '^xport: 127\.0\.0\.1:[0-9]+: idle timeout'
}

@test "interactive: --eof-timeout bounds the wait after Ctrl-D (status 75)" {
	peer linger
	client tcp-client --eof-timeout 0.5 "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys C-d
	[ "$(wait_exit)" = 75 ]
	wait_screen '^xport: 127\.0\.0\.1:[0-9]+: timed out waiting for EOF'
}

@test "interactive: --eof-timeout 0 waits for ever after Ctrl-D, as for relays" {
	# It used to give up at once (0 s after Ctrl-D, status 75).
	peer late
	client tcp-client --eof-timeout 0 "127.0.0.1:$PORT"
	wait_screen '^>'
	tm send-keys C-d
	sleep 1
	[ ! -e "$T/exit" ]
	touch "$T/trigger"
	wait_screen '^late reply'
	[ "$(wait_exit)" = 0 ]
	! screen | grep -q 'timed out'
}
