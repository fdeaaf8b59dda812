#!/usr/bin/env bats
# SIGINT/SIGTERM (graceful, --grace, reset), second signal, SIGUSR1, SIGPIPE.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "SIGTERM: listener closed, open connection flushed to the end, exit 0" {
	big_file
	cp "$T/big" "$T/s.in"
	bg_xport s tcp-server 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" "$BG_PID" "$T/got" <<'PYEOF'
import os, signal, socket, sys, time
port, pid, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
data = s.recv(65536)
os.kill(pid, signal.SIGTERM)
time.sleep(0.2)
# the listener is closed: a new connection is refused
try:
    socket.create_connection(("127.0.0.1", port), timeout=2)
    raise SystemExit("listener still open")
except ConnectionRefusedError:
    pass
s.shutdown(socket.SHUT_WR)
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    data += d
open(out, "wb").write(data)
PYEOF
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
	[ "$(sha "$T/got")" = "$(sha "$T/big")" ]
}

@test "SIGTERM: connections still open after --grace are reset, exit 0" {
	bg_xport s tcp-server --proto echo --grace 0.3 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" "$BG_PID" <<'PYEOF'
import os, signal, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"x"); assert s.recv(1) == b"x"
t = time.time()
os.kill(int(sys.argv[2]), signal.SIGTERM)
try:
    d = s.recv(10)
    raise SystemExit("expected a reset, got %r" % d)
except ConnectionResetError:
    pass
assert time.time() - t >= 0.25, time.time() - t
PYEOF
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "a second signal aborts at once with 128+N" {
	bg_xport s tcp-server --proto echo --grace 30 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" "$BG_PID" <<'PYEOF'
import os, signal, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"x"); assert s.recv(1) == b"x"
os.kill(int(sys.argv[2]), signal.SIGTERM)
time.sleep(0.2)
os.kill(int(sys.argv[2]), signal.SIGTERM)
try:
    d = s.recv(10)
    assert d == b"", d
except ConnectionResetError:
    pass
PYEOF
	wait_exit "$BG_PID" 5
	[ "$RC" -eq 143 ]
	bg_xport i tcp-server --proto echo --grace 30 127.0.0.1:0
	wait_ready i
	$PY -c "
import socket, os, signal, time
s = socket.create_connection(('127.0.0.1', $PORT), timeout=5)
s.sendall(b'x'); s.recv(1)
os.kill($BG_PID, signal.SIGINT); time.sleep(0.2); os.kill($BG_PID, signal.SIGINT)
time.sleep(0.5)"
	wait_exit "$BG_PID" 5
	[ "$RC" -eq 130 ]
}

@test "SIGINT without connections exits 0 at once" {
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	kill -INT "$BG_PID"
	wait_exit "$BG_PID" 3
	[ "$RC" -eq 0 ]
}

@test "SIGUSR1 prints end=open lines, with or without --stats, and changes nothing" {
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" "$BG_PID" "$T/s.err" <<'PYEOF'
import os, re, signal, socket, sys, time
port, pid, errf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
a = socket.create_connection(("127.0.0.1", port), timeout=5)
b = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"hello"); assert a.recv(5) == b"hello"
b.sendall(b"x"); assert b.recv(1) == b"x"
os.kill(pid, signal.SIGUSR1)
for i in range(250):
    lines = [l for l in open(errf) if "end=open" in l]
    if len(lines) >= 2:
        break
    time.sleep(0.02)
assert len(lines) == 2, open(errf).read()
pat = re.compile(r"^xport: stats 127\.0\.0\.1:\d+ sent=(\d+) received=(\d+) seconds=[0-9.]+ end=open$")
got = sorted((int(m.group(1)), int(m.group(2))) for m in map(pat.match, lines))
assert got == [(1, 1), (5, 5)], got
# still serving
a.sendall(b"more"); assert a.recv(4) == b"more"
PYEOF
	kill -0 "$BG_PID"
	bg_xport j tcp-server --proto echo --stats=json 127.0.0.1:0
	wait_ready j
	$PY - "$PORT" "$BG_PID" "$T/j.err" <<'PYEOF'
import json, os, signal, socket, sys, time
port, pid, errf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"abc"); assert a.recv(3) == b"abc"
os.kill(pid, signal.SIGUSR1)
for i in range(250):
    lines = [l for l in open(errf) if l.startswith("{")]
    if lines:
        break
    time.sleep(0.02)
o = json.loads(lines[0])
assert o["end"] == "open" and o["sent"] == 3 and o["received"] == 3, o
PYEOF
}

@test "SIGPIPE never kills xport" {
	$PY - "$T/port" <<'PYEOF' &
import os, socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % l.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = l.accept()
c.close()
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$T/port" '^[0-9]+$'
	status=0
	head -c 50000000 /dev/zero | timeout 10 "$XPORT" pipe - "tcp:127.0.0.1:$(cat "$T/port")" >/dev/null 2>"$T/fg.err" || status=$?
	[ "$status" -eq 0 ] || [ "$status" -eq 1 ]
}

# A TCP peer for the commands that do not listen: accepts one connection
# and reads it (slowly with "slow") until EOF or a reset.  $T/peer.conn
# appears once accepted, $T/peer.data once bytes came, and $T/peer.result
# says how it ended: "reset" or "eof".  Sets PORT.
reset_peer() {
	$PY - "$T/port" "$T/peer" "${1:-}" <<'PYEOF' &
import os, socket, sys, time
portf, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
open(portf + ".tmp", "w").write("%d\n" % l.getsockname()[1])
os.rename(portf + ".tmp", portf)
c, _ = l.accept()
c.settimeout(30)
open(out + ".conn", "w").close()
res, got = "eof", 0
try:
    while True:
        d = c.recv(65536)
        if not d:
            break
        if not got:
            open(out + ".data", "w").close()
        got += len(d)
        if mode == "slow":
            time.sleep(0.01)
except ConnectionResetError:
    res = "reset"
except socket.timeout:
    res = "timeout"
open(out + ".result.tmp", "w").write(res + "\n")
os.rename(out + ".result.tmp", out + ".result")
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$T/port" '^[0-9]+$'
	PORT="$(cat "$T/port")"
}

wait_for_file() {
	local n=500
	while [ ! -e "$1" ] && [ "$n" -gt 0 ]; do
		n=$((n - 1))
		sleep 0.02
	done
	[ -e "$1" ] || { echo "no $1" >&2; return 1; }
}

# signal_stops SIG PID STATUS: SIG stops PID at once (well within the
# --grace 10 the tests give, which a graceful stop would wait out) with
# STATUS.
signal_stops() {
	local t0 t1
	t0=$(date +%s%N)
	kill -"$1" "$2"
	wait_exit "$2" 8
	t1=$(date +%s%N)
	[ "$RC" -eq "$3" ] || { echo "exit $RC, not $3"; return 1; }
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] || { echo "took $(( (t1 - t0) / 1000000 )) ms"; return 1; }
}

# Wait for an open relay: SIGUSR1 prints its end=open line once it exists.
wait_relay_open() {
	local i
	for i in $(seq 100); do
		kill -USR1 "$1"
		grep -q end=open "$2" && return 0
		sleep 0.05
	done
	echo "no open relay in $2" >&2
	return 1
}

@test "tcp-client moving data: SIGINT resets the connection at once, exit 130" {
	reset_peer slow
	ln -s /dev/zero "$T/c.in"
	bg_xport c --grace 10 tcp-client "127.0.0.1:$PORT"
	wait_for_file "$T/peer.data"
	signal_stops INT "$BG_PID" 130
	wait_for_line "$T/peer.result" .
	[ "$(cat "$T/peer.result")" = reset ]
	# stopped by the user: no failure line
	[ ! -s "$T/c.err" ]
}

@test "tcp-client idle: SIGTERM resets the connection at once, exit 143" {
	reset_peer
	mkfifo "$T/c.in"
	exec 6<>"$T/c.in"
	bg_xport c --grace 10 tcp-client "127.0.0.1:$PORT"
	# accepted: xport is past installing its handlers, SIGUSR1 is safe
	wait_for_file "$T/peer.conn"
	wait_relay_open "$BG_PID" "$T/c.err"
	signal_stops TERM "$BG_PID" 143
	exec 6>&-
	wait_for_line "$T/peer.result" .
	[ "$(cat "$T/peer.result")" = reset ]
}

@test "tcp-client still connecting (--wait-for): SIGINT stops it, exit 130" {
	bg_xport c --grace 10 tcp-client -v --wait-for 30 "127.0.0.1:$(closed_port)"
	wait_for_line "$T/c.err" 'retrying'
	signal_stops INT "$BG_PID" 130
}

@test "subprocess --connect: SIGINT resets the connection, the child gets --signal, exit 130" {
	reset_peer
	bg_xport s --grace 10 subprocess --connect "127.0.0.1:$PORT" --signal USR1 -- \
		sh -c "trap 'echo usr1 >$T/trap; exit 0' USR1; echo up >$T/up; while :; do sleep 0.05; done"
	wait_for_line "$T/up" up
	wait_relay_open "$BG_PID" "$T/s.err"
	signal_stops INT "$BG_PID" 130
	wait_for_line "$T/peer.result" .
	[ "$(cat "$T/peer.result")" = reset ]
	wait_for_line "$T/trap" '^usr1$'
}

@test "subprocess with local stdio: SIGTERM passes SIGTERM to the child, exit 143" {
	mkfifo "$T/s.in"
	exec 6<>"$T/s.in"
	bg_xport s --grace 10 subprocess -- \
		sh -c "trap 'echo term >$T/trap; exit 0' TERM; echo up >$T/up; while :; do sleep 0.05; done"
	wait_for_line "$T/up" up
	signal_stops TERM "$BG_PID" 143
	exec 6>&-
	wait_for_line "$T/trap" '^term$'
}

@test "pipe - tcp: SIGINT resets the connection at once, exit 130" {
	reset_peer slow
	ln -s /dev/zero "$T/p.in"
	bg_xport p --grace 10 pipe - "tcp:127.0.0.1:$PORT"
	wait_for_file "$T/peer.data"
	signal_stops INT "$BG_PID" 130
	wait_for_line "$T/peer.result" .
	[ "$(cat "$T/peer.result")" = reset ]
	[ ! -s "$T/p.err" ]
}

@test "pipe with an exec: endpoint: SIGTERM reaches the child, exit 143 (not the child's)" {
	mkfifo "$T/p.in"
	exec 6<>"$T/p.in"
	bg_xport p --grace 10 pipe - \
		"exec:trap 'echo term >$T/trap; exit 0' TERM; echo up >$T/up; while :; do sleep 0.05; done"
	wait_for_line "$T/up" up
	signal_stops TERM "$BG_PID" 143
	exec 6>&-
	wait_for_line "$T/trap" '^term$'
}

@test "pipe with a listening endpoint keeps --grace: open relay still served, exit 0" {
	bg_xport l --grace 0.5 pipe tcp-listen:127.0.0.1:0 exec:cat
	wait_ready l
	$PY - "$PORT" "$BG_PID" <<'PYEOF'
import os, signal, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"x"); assert s.recv(1) == b"x"
t = time.time()
os.kill(int(sys.argv[2]), signal.SIGTERM)
time.sleep(0.1)
s.sendall(b"y"); assert s.recv(1) == b"y"   # still relayed within the grace
try:
    d = s.recv(10)
    raise SystemExit("expected a reset, got %r" % d)
except ConnectionResetError:
    pass
assert time.time() - t >= 0.4, time.time() - t
PYEOF
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "subprocess --listen keeps --grace: exit 0, not the status of the child it stopped" {
	bg_xport l --grace 0.3 subprocess --listen 127.0.0.1:0 -- cat
	wait_ready l
	$PY - "$PORT" "$BG_PID" <<'PYEOF'
import os, signal, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"x"); assert s.recv(1) == b"x"
os.kill(int(sys.argv[2]), signal.SIGTERM)
try:
    d = s.recv(10)
    raise SystemExit("expected a reset, got %r" % d)
except ConnectionResetError:
    pass
PYEOF
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "SIGUSR1 on a relay (pipe -k): end=open line for the open connection" {
	bg_xport l pipe -k tcp-listen:127.0.0.1:0 exec:cat --port-file "$T/port"
	wait_ready l
	[ "$(cat "$T/port")" = "$PORT" ]
	$PY - "$PORT" "$BG_PID" "$T/l.err" <<'PYEOF'
import os, signal, socket, sys, time
port, pid, errf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"1234"); assert a.recv(4) == b"1234"
os.kill(pid, signal.SIGUSR1)
for i in range(250):
    lines = [l for l in open(errf) if "end=open" in l]
    if lines:
        break
    time.sleep(0.02)
assert len(lines) == 1, open(errf).read()
assert " sent=4 received=4 " in lines[0], lines
PYEOF
}
