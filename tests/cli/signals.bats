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

@test "tcp-client: SIGTERM lets the connection finish within --grace, exit 0" {
	bg_xport s tcp-server --proto discard 127.0.0.1:0
	wait_ready s
	mkfifo "$T/c.in"
	"$XPORT" tcp-client --grace 0.3 "127.0.0.1:$PORT" <"$T/c.in" >/dev/null 2>"$T/c.err" &
	local pid=$!
	BG_PIDS+=("$pid")
	exec 6>"$T/c.in"
	echo data >&6
	# connected once the server has a connection
	for i in $(seq 100); do
		kill -USR1 "$BG_PID"
		grep -q end=open "$T/s.err" && break
		sleep 0.05
	done
	kill -TERM "$pid"
	wait_exit "$pid" 5
	exec 6>&-
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
