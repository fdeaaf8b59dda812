#!/usr/bin/env bats
# tcp-server: readiness, built-in protocols, server options.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "readiness line for IPv4 with the real port, port-file atomic and equal" {
	bg_xport s tcp-server --proto echo 127.0.0.1:0 --port-file "$T/port"
	wait_ready s
	[ "$PORT" -gt 0 ]
	grep -qx "listening on 127.0.0.1:$PORT" "$T/s.err"
	[ "$(cat "$T/port")" = "$PORT" ]
	# exactly one line per bound socket, nothing else
	[ "$(grep -c '' "$T/s.err")" -eq 1 ]
	# no temporary file left behind
	[ "$(ls "$T" | grep -c '^port')" -eq 1 ]
}

@test "port-file that cannot be written: one line, exit 1, no readiness line first" {
	run_xp 5 tcp-server --proto echo 127.0.0.1:0 --port-file "$T/no/such/dir/port"
	[ "$status" -eq 1 ]
	one_error_line "port file $T/no/such/dir/port: No such file or directory"
}

@test "readiness line for IPv6 and for all interfaces (one shared port)" {
	have_ipv6 || skip "no IPv6"
	bg_xport s6 tcp-server --proto echo '[::1]:0'
	wait_ready s6
	grep -qx "listening on \[::1\]:$PORT" "$T/s6.err"
	bg_xport sa tcp-server --proto echo :0
	wait_ready sa
	wait_for_line "$T/sa.err" '^listening on \[::\]:'
	grep -qx "listening on 0.0.0.0:$PORT" "$T/sa.err"
	grep -qx "listening on \[::\]:$PORT" "$T/sa.err"
	[ "$(grep -c '^listening on' "$T/sa.err")" -eq 2 ]
	# reachable on both families
	echo v4 | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o4"
	echo v6 | timeout 5 "$XPORT" tcp-client "[::1]:$PORT" >"$T/o6"
	[ "$(cat "$T/o4")" = v4 ] && [ "$(cat "$T/o6")" = v6 ]
}

@test "readiness line for unix sockets; stale socket removed, other files kept" {
	bg_xport u tcp-server --proto echo "unix:$T/sock"
	wait_for_line "$T/u.err" "^listening on unix:$T/sock\$"
	echo hi | timeout 5 "$XPORT" tcp-client "unix:$T/sock" >"$T/o"
	[ "$(cat "$T/o")" = hi ]
	kill -9 "$BG_PID"
	wait "$BG_PID" || true
	[ -S "$T/sock" ]
	bg_xport u2 tcp-server --proto echo "unix:$T/sock"
	wait_for_line "$T/u2.err" "^listening on unix:$T/sock\$"
	echo plain >"$T/file"
	run_xp 5 tcp-server --proto echo "unix:$T/file"
	[ "$status" -eq 71 ]
	one_error_line "$T/file"
	[ "$(cat "$T/file")" = plain ]
}

@test "readiness line for abstract unix sockets" {
	bg_xport ua tcp-server --proto echo "unix:@xport-test-$$-$BATS_TEST_NUMBER"
	wait_for_line "$T/ua.err" "^listening on unix:@xport-test-$$-$BATS_TEST_NUMBER\$"
	echo abs | timeout 5 "$XPORT" tcp-client "unix:@xport-test-$$-$BATS_TEST_NUMBER" >"$T/o"
	[ "$(cat "$T/o")" = abs ]
}

@test "-q: no readiness line, the port file still written" {
	bg_xport q -q tcp-server --proto echo 127.0.0.1:0 --port-file "$T/port"
	wait_for_line "$T/port" '^[0-9]+$'
	echo x | timeout 5 "$XPORT" tcp-client "127.0.0.1:$(cat "$T/port")" >/dev/null
	[ ! -s "$T/q.err" ]
}

@test "address in use exits 71 with one line; --reuse-port needed to share" {
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	run_xp 5 tcp-server --proto echo "127.0.0.1:$PORT"
	[ "$status" -eq 71 ]
	one_error_line "127.0.0.1:$PORT: Address already in use"
}

@test "echo: byte-exact, honours half-close" {
	big_file 1048576
	bg_xport s tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	timeout 20 "$XPORT" tcp-client "127.0.0.1:$PORT" <"$T/big" >"$T/o"
	[ "$(sha "$T/o")" = "$(sha "$T/big")" ]
	# several concurrent clients
	local pids=()
	for i in 1 2 3; do
		(echo "client $i" | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/c$i") &
		pids+=($!)
	done
	bg_wait "${pids[@]}"
	for i in 1 2 3; do [ "$(cat "$T/c$i")" = "client $i" ]; done
}

@test "discard reads and drops, closes after the peer's EOF" {
	bg_xport s tcp-server --proto discard 127.0.0.1:0
	wait_ready s
	head -c 100000 /dev/zero | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ ! -s "$T/o" ]
}

@test "chargen: 72-character rotating lines with CRLF" {
	bg_xport s tcp-server --proto chargen 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
buf = b""
while len(buf) < 74 * 200:
    buf += s.recv(65536)
s.close()
lines = buf.split(b"\r\n")[:200]
# the 95 printable characters (32..126) as a ring; each line starts one
# character later than the previous one
start = lines[0][0] - 32
for i, l in enumerate(lines):
    want = bytes(32 + (start + i + k) % 95 for k in range(72))
    assert l == want, (i, l, want)
PYEOF
}

@test "chargen against a slow reader: RSS stays flat" {
	bg_xport s tcp-server --proto chargen 127.0.0.1:0
	wait_ready s
	local pid=$BG_PID
	$PY - "$PORT" "$pid" <<'PYEOF'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
got = 0
samples = []
end = time.time() + 2.0
while time.time() < end:
    got += len(s.recv(1024))
    time.sleep(0.01)
    samples.append(rss())
first, last = samples[len(samples) // 4], max(samples)
assert got > 0
assert last - first < 4096, ("RSS grew", first, last)
PYEOF
}

@test "exec: environment and byte-exact 16 MiB through --exec cat with half-close" {
	big_file
	bg_xport s tcp-server -e cat 127.0.0.1:0
	wait_ready s
	timeout 30 "$XPORT" tcp-client "127.0.0.1:$PORT" <"$T/big" >"$T/o"
	[ "$(sha "$T/o")" = "$(sha "$T/big")" ]
	bg_xport e tcp-server -e 'echo "$XPORT_PEER_ADDR $XPORT_PEER_PORT $XPORT_LOCAL_ADDR $XPORT_LOCAL_PORT"' 127.0.0.1:0
	wait_ready e
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/env"
	read -r pa pp la lp <"$T/env"
	[ "$pa" = 127.0.0.1 ] && [ "$la" = 127.0.0.1 ] && [ "$lp" = "$PORT" ] && [ "$pp" -gt 0 ]
}

@test "exec: EOF from the peer closes the child's stdin, its output still arrives" {
	bg_xport s tcp-server -e 'cat; echo done' 127.0.0.1:0
	wait_ready s
	printf 'abc\n' | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = "$(printf 'abc\ndone')" ]
}

@test "forward: byte-exact 16 MiB relay with half-close" {
	big_file
	bg_xport e tcp-server --proto echo 127.0.0.1:0
	wait_ready e
	bg_xport f tcp-server --forward "127.0.0.1:$PORT" 127.0.0.1:0
	wait_ready f
	timeout 30 "$XPORT" tcp-client "127.0.0.1:$PORT" <"$T/big" >"$T/o"
	[ "$(sha "$T/o")" = "$(sha "$T/big")" ]
}

@test "forward to a refused address: the client's connection ends, the server keeps serving" {
	local dead
	dead=$(closed_port)
	bg_xport f tcp-server --forward "127.0.0.1:$dead" 127.0.0.1:0
	wait_ready f
	echo x | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o" 2>/dev/null || true
	[ ! -s "$T/o" ]
	kill -0 "$BG_PID"
	grep -q "Connection refused" "$T/f.err"
}

@test "stdio (default): like nc -l, one connection, stdin to peer, peer to stdout" {
	printf 'from server\n' >"$T/s.in"
	bg_xport s tcp-server 127.0.0.1:0
	wait_ready s
	printf 'from client\n' | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/o")" = "from server" ]
	[ "$(cat "$T/s.out")" = "from client" ]
}

@test "stdio: stdin may be /dev/null, a FIFO or a pipe" {
	# /dev/null
	bg_xport n tcp-server 127.0.0.1:0
	wait_ready n
	echo one | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ] && [ ! -s "$T/o" ] && [ "$(cat "$T/n.out")" = one ]
	# FIFO
	mkfifo "$T/fifo"
	"$XPORT" tcp-server 127.0.0.1:0 <"$T/fifo" >"$T/fo.out" 2>"$T/fo.err" &
	local pid=$!
	BG_PIDS+=("$pid")
	exec 5>"$T/fifo"
	wait_ready fo
	echo via-fifo >&5
	exec 5>&-
	echo two | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	wait_exit "$pid"
	[ "$RC" -eq 0 ] && [ "$(cat "$T/o")" = via-fifo ] && [ "$(cat "$T/fo.out")" = two ]
	# pipe
	(echo via-pipe | "$XPORT" tcp-server 127.0.0.1:0 >"$T/p.out" 2>"$T/p.err") &
	BG_PIDS+=("$!")
	wait_ready p
	echo three | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = via-pipe ]
	wait_for_line "$T/p.out" three
}

@test "--max-conns: a connection over N is closed at once with a notice" {
	bg_xport s tcp-server --proto echo --max-conns 1 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"a"); assert a.recv(1) == b"a"
b = socket.create_connection(("127.0.0.1", port), timeout=5)
b.sendall(b"b")
try:
    d = b.recv(10)
except ConnectionResetError:
    d = b""
assert d == b"", d
a.sendall(b"c"); assert a.recv(1) == b"c"
a.close()
PYEOF
	grep -q "^xport: refused 127.0.0.1:[0-9]*: over --max-conns 1" "$T/s.err"
}

@test "--allow/--deny: a refused peer is closed before a byte is read" {
	bg_xport d tcp-server --proto echo --deny 127.0.0.0/8 127.0.0.1:0
	wait_ready d
	local p1=$PORT
	bg_xport a tcp-server --proto echo --allow 127.0.0.2/32 127.0.0.1:0
	wait_ready a
	local p2=$PORT
	bg_xport ok tcp-server --proto echo --allow 10.0.0.0/8 --allow 127.0.0.1 127.0.0.1:0
	wait_ready ok
	local p3=$PORT
	$PY - "$p1" "$p2" "$p3" <<'PYEOF'
import socket, sys
def talk(port):
    try:
        # the reset of a refused peer may even beat connect() back
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        s.sendall(b"ping")
        return s.recv(10)
    except (ConnectionResetError, BrokenPipeError):
        return b""
assert talk(sys.argv[1]) == b"", "denied peer got data"
assert talk(sys.argv[2]) == b"", "peer outside the allow list got data"
assert talk(sys.argv[3]) == b"ping"
PYEOF
}

@test "--once: exits 0 after the first connection ends" {
	bg_xport s tcp-server --proto echo --once 127.0.0.1:0
	wait_ready s
	echo x | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "-k with the stdio protocol serves one connection after the other" {
	bg_xport s tcp-server -k 127.0.0.1:0
	wait_ready s
	echo one | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null
	echo two | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null
	wait_for_line "$T/s.out" two
	[ "$(cat "$T/s.out")" = "$(printf 'one\ntwo')" ]
}

@test "--workers 3: every worker serves the same port; SIGTERM exits 0" {
	bg_xport w tcp-server --proto echo --workers 3 127.0.0.1:0 --port-file "$T/port"
	wait_ready w
	[ "$(grep -c '^listening on' "$T/w.err")" -eq 1 ]
	[ "$(cat "$T/port")" = "$PORT" ]
	[ "$(ls /proc/$BG_PID/task | wc -l)" -ge 4 ]
	local pids=()
	for i in $(seq 8); do
		(echo "w$i" | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/c$i") &
		pids+=($!)
	done
	bg_wait "${pids[@]}"
	for i in $(seq 8); do [ "$(cat "$T/c$i")" = "w$i" ]; done
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "--backlog and --reuse-port are applied" {
	bg_xport a tcp-server --proto echo --reuse-port --backlog 5 127.0.0.1:0
	wait_ready a
	bg_xport b tcp-server --proto echo --reuse-port "127.0.0.1:$PORT"
	wait_ready b
	echo x | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = x ]
}

@test "-v logs connections made and lost with addresses" {
	bg_xport s -v tcp-server --proto echo 127.0.0.1:0
	wait_ready s
	echo x | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >/dev/null
	wait_for_line "$T/s.err" '^xport: connection 127\.0\.0\.1:[0-9]+ closed'
	grep -Eq '^xport: connection 127\.0\.0\.1:[0-9]+ open' "$T/s.err"
}

@test "exec: a child whose connection is reset gets SIGTERM" {
	bg_xport s tcp-server -e "trap 'echo term >$T/trap; exit 0' TERM; while :; do sleep 0.05; done" 127.0.0.1:0
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PYEOF
	wait_for_line "$T/trap" '^term$'
}

@test "stdio -k: a second concurrent connection is refused with a notice" {
	mkfifo "$T/f"
	"$XPORT" tcp-server -k 127.0.0.1:0 <"$T/f" >/dev/null 2>"$T/s.err" &
	BG_PIDS+=("$!")
	exec 7>"$T/f"
	wait_ready s
	$PY - "$PORT" <<'PYEOF'
import socket, sys
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"first")
b = socket.create_connection(("127.0.0.1", port), timeout=5)
assert b.recv(10) == b""
PYEOF
	exec 7>&-
	grep -q 'busy' "$T/s.err"
}
