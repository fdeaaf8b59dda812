#!/usr/bin/env bats
# pipe ENDPOINT ENDPOINT: every endpoint kind, flow control, failures.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "16 MiB byte-exact through pipe (stdio -> tcp-listen -> stdout), EOF passed on" {
	big_file
	bg_xport l pipe tcp-listen:127.0.0.1:0 -
	wait_ready l
	timeout 30 "$XPORT" pipe - "tcp:127.0.0.1:$PORT" <"$T/big" >"$T/back"
	wait_exit "$BG_PID" 20
	[ "$RC" -eq 0 ]
	[ "$(sha "$T/l.out")" = "$(sha "$T/big")" ]
	[ ! -s "$T/back" ]
}

@test "16 MiB both ways through tcp-listen + exec:cat" {
	big_file
	bg_xport l pipe tcp-listen:127.0.0.1:0 exec:cat
	wait_ready l
	timeout 30 "$XPORT" pipe stdio "tcp:127.0.0.1:$PORT" <"$T/big" >"$T/back"
	[ "$(sha "$T/back")" = "$(sha "$T/big")" ]
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "tcp-listen -k: one relay per connection, the other endpoint opened anew" {
	bg_xport l pipe -k tcp-listen:127.0.0.1:0 'exec:echo "child $$"'
	wait_ready l
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/o1"
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/o2"
	grep -q '^child [0-9]' "$T/o1" && grep -q '^child [0-9]' "$T/o2"
	[ "$(cat "$T/o1")" != "$(cat "$T/o2")" ]
	kill -0 "$BG_PID"
}

@test "unix-listen and unix: endpoints" {
	bg_xport l pipe "unix-listen:$T/s" exec:cat
	wait_for_line "$T/l.err" "^listening on unix:$T/s\$"
	echo via-unix | timeout 5 "$XPORT" pipe - "unix:$T/s" >"$T/o"
	[ "$(cat "$T/o")" = via-unix ]
}

@test "udp: endpoint: each chunk is one datagram, replies come back" {
	bg_xport u udp-echo 127.0.0.1:0
	wait_ready u
	$PY - "$XPORT" "$PORT" <<'PYEOF'
import socket, subprocess, sys
xport, port = sys.argv[1], sys.argv[2]
# A peer that records the datagram sizes it gets, and echoes them.
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
r.settimeout(5)
rp = r.getsockname()[1]
# tcp side feeds chunks through a socketpair-backed stdin
p = subprocess.Popen([xport, "pipe", "-", "udp:127.0.0.1:%d" % rp],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
sizes = []
for n in (5, 100, 1000):
    p.stdin.write(b"x" * n); p.stdin.flush()
    d, a = r.recvfrom(65536)
    sizes.append(len(d))
    r.sendto(b"reply%d\n" % n, a)
p.stdin.close()
out = p.stdout.read()
assert p.wait(timeout=5) == 0
assert sizes == [5, 100, 1000], sizes
assert out == b"reply5\nreply100\nreply1000\n", out
PYEOF
	# and against udp-echo
	echo hello | timeout 5 "$XPORT" pipe - "udp:127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = hello ]
}

@test "udp: endpoint: replies are taken for --eof-timeout after EOF, then exit 0" {
	# The relay's own EOF timer used to fire together with the endpoint's
	# wait and win: exit 75, "xport: unix:: timed out".
	$PY - "$XPORT" <<'PYEOF'
import os, socket, subprocess, sys, time
xport = sys.argv[1]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
r.settimeout(5)
t0 = time.time()
rfd, wfd = os.pipe()
p = subprocess.Popen([xport, "pipe", "--eof-timeout", "1", "-",
                      "udp:127.0.0.1:%d" % r.getsockname()[1]],
                     stdin=rfd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(rfd)
os.write(wfd, b"query"); os.close(wfd)      # EOF at once
d, a = r.recvfrom(65536)
time.sleep(0.4)                               # well inside the second
r.sendto(b"late reply\n", a)
out, err = p.communicate(timeout=5)
took = time.time() - t0
assert p.returncode == 0, (p.returncode, err)
assert err == b"", err
assert out == b"late reply\n", out
assert 0.9 <= took < 3, took                  # it did wait the second
PYEOF
}

@test "udp: endpoint: --eof-timeout 0 takes replies until SIGINT, exit 130" {
	$PY - "$XPORT" <<'PYEOF'
import os, signal, socket, subprocess, sys, time
xport = sys.argv[1]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
r.settimeout(5)
rfd, wfd = os.pipe()
p = subprocess.Popen([xport, "pipe", "--eof-timeout", "0", "-",
                      "udp:127.0.0.1:%d" % r.getsockname()[1]],
                     stdin=rfd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(rfd)
os.write(wfd, b"query"); os.close(wfd)
d, a = r.recvfrom(65536)
time.sleep(1.0)                               # past the 0.5 s default
assert p.poll() is None, "gave up waiting for replies"
r.sendto(b"much later\n", a)
time.sleep(0.2)
p.send_signal(signal.SIGINT)                  # stops at once: nothing listens
out, err = p.communicate(timeout=3)
assert p.returncode == 130, (p.returncode, err)
assert out == b"much later\n", out
assert err == b"", err
PYEOF
}

@test "udp: endpoint: a chunk over 65507 bytes is split, every byte arrives" {
	head -c 200000 /dev/urandom >"$T/in"
	$PY - "$XPORT" "$T/in" <<'PYEOF'
import socket, subprocess, sys
xport, path = sys.argv[1], sys.argv[2]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# room for everything even if xport outruns us: UDP may not drop here
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
r.bind(("127.0.0.1", 0))
r.settimeout(5)
p = subprocess.Popen([xport, "pipe", "-", "udp:127.0.0.1:%d" % r.getsockname()[1]],
                     stdin=open(path, "rb"), stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
want = open(path, "rb").read()
got, sizes = b"", []
while len(got) < len(want):
    d = r.recv(1 << 17)
    sizes.append(len(d))
    got += d
_, err = p.communicate(timeout=5)
assert p.returncode == 0, (p.returncode, err)
assert err == b"", err
assert got == want, (len(got), sizes)
assert max(sizes) <= 65507 and len(sizes) >= 4, sizes
PYEOF
}

@test "udp: endpoint: a datagram the peer refuses is an error: exit 1, one line" {
	local p
	p="$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
	run_xp 5 pipe - "udp:127.0.0.1:$p" <<<hello
	[ "$status" -eq 1 ]
	one_error_line "udp:127\.0\.0\.1:$p: Connection refused"
	head -c 200000 /dev/zero >"$T/in"
	run_xp 5 pipe - "udp:127.0.0.1:$p" <"$T/in"
	[ "$status" -eq 1 ]
	one_error_line "udp:127\.0\.0\.1:$p: Connection refused"
	# the other endpoint first: the line still names the udp: one
	run_xp 5 pipe "udp:127.0.0.1:$p" - <<<hello
	[ "$status" -eq 1 ]
	one_error_line "udp:127\.0\.0\.1:$p: Connection refused"
}

@test "udp: endpoint: the largest replies arrive whole, even with --read-size 1K" {
	$PY - "$XPORT" <<'PYEOF'
import os, socket, subprocess, sys, threading, time
xport = sys.argv[1]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
r.settimeout(5)
rfd, wfd = os.pipe()
p = subprocess.Popen([xport, "pipe", "--read-size", "1K", "--eof-timeout", "2", "-",
                      "udp:127.0.0.1:%d" % r.getsockname()[1]],
                     stdin=rfd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(rfd)
got = []
th = threading.Thread(target=lambda: got.append(p.stdout.read()))
th.start()
os.write(wfd, b"q")
_, a = r.recvfrom(65536)
want = b"".join(bytes([65 + i]) * 65507 for i in range(8))
for i in range(8):
    r.sendto(bytes([65 + i]) * 65507, a)
    time.sleep(0.02)      # no faster than loopback UDP keeps
os.close(wfd)
th.join(10)
p.wait(timeout=5)
assert p.returncode == 0, (p.returncode, p.stderr.read())
assert got[0] == want, (len(got[0]), sorted(set(got[0])))
PYEOF
}

@test "udp: endpoint: a timeout names it udp:HOST:PORT, never a bare unix:" {
	bg_xport u udp-echo 127.0.0.1:0
	wait_ready u
	run_xp 5 pipe --stats --idle-timeout 0.3 - "udp:127.0.0.1:$PORT" < <(sleep 3)
	[ "$status" -eq 75 ]
	grep -q "^xport: stats udp:127\.0\.0\.1:$PORT sent=0 received=0 .*end=timeout\$" "$T/fg.err"
	grep -q "^xport: udp:127\.0\.0\.1:$PORT: timed out\$" "$T/fg.err"
	! grep -q 'unix:' "$T/fg.err"
}

@test "fd:N endpoints: a pipe and a socket" {
	echo from-fd5 >"$T/in5"
	timeout 5 "$XPORT" pipe fd:5 exec:cat 5<>"$T/in5" >/dev/null
	# fd 5 is read and written: cat's output went back into the file
	grep -q from-fd5 "$T/in5"
	bg_xport l pipe tcp-listen:127.0.0.1:0 exec:cat
	wait_ready l
	$PY - "$XPORT" "$PORT" <<'PYEOF'
import socket, subprocess, sys, os
xport, port = sys.argv[1], int(sys.argv[2])
a, b = socket.socketpair()
p = subprocess.Popen([xport, "pipe", "fd:%d" % b.fileno(), "tcp:127.0.0.1:%d" % port],
                     pass_fds=[b.fileno()])
b.close()
a.settimeout(5)
a.sendall(b"through-fd3")
a.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = a.recv(100)
    if not d:
        break
    got += d
assert got == b"through-fd3", got
assert p.wait(timeout=5) == 0
PYEOF
}

@test "two listening endpoints are joined" {
	bg_xport l pipe tcp-listen:127.0.0.1:0 tcp-listen:127.0.0.1:0
	wait_for_count "$T/l.err" '^listening on ' 2
	local p1 p2
	p1=$(sed -n '1s/.*://p' "$T/l.err")
	p2=$(sed -n '2s/.*://p' "$T/l.err")
	$PY - "$p1" "$p2" <<'PYEOF'
import socket, sys
a = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
b = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5)
a.sendall(b"a->b"); assert b.recv(10) == b"a->b"
b.sendall(b"b->a"); assert a.recv(10) == b"b->a"
PYEOF
}

@test "--high-water 1K against a slow reader: RSS stays flat" {
	bg_xport l pipe --high-water 1K tcp-listen:127.0.0.1:0 'exec:cat /dev/zero'
	wait_ready l
	$PY - "$PORT" "$BG_PID" <<'PYEOF'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
got, samples = 0, []
end = time.time() + 2.0
while time.time() < end:
    got += len(s.recv(1024))
    time.sleep(0.01)
    samples.append(rss())
base = samples[len(samples) // 4]
assert got > 0
assert max(samples) - base < 2048, ("RSS grew", base, max(samples))
PYEOF
}

@test "failures: refused 69, in use 71, exec not found 127" {
	run_xp 5 pipe - "tcp:127.0.0.1:$(closed_port)"
	[ "$status" -eq 69 ]
	one_error_line "connect 127.0.0.1:[0-9]*: Connection refused"
	bg_xport l pipe tcp-listen:127.0.0.1:0 -
	wait_ready l
	run_xp 5 pipe "tcp-listen:127.0.0.1:$PORT" -
	[ "$status" -eq 71 ]
	one_error_line "Address already in use"
	run_xp 5 pipe - 'exec:/nonexistent/prog'
	[ "$status" -eq 127 ]
	grep -q 'nonexistent/prog' "$T/fg.err"
	run_xp 5 pipe - "unix:$T/nosock"
	[ "$status" -eq 69 ]
	one_error_line "unix:$T/nosock"
}

@test "tcp: reset just after the connection is made: exit 1, not 69" {
	reset_server now
	for i in 1 2 3 4 5; do
		run_xp 5 pipe - "tcp:127.0.0.1:$PORT" < <(sleep 5)
		[ "$status" -eq 1 ] || { echo "try $i: exit $status: $err"; return 1; }
		one_error_line "127\.0\.0\.1:$PORT: Connection reset by peer"
	done
}

@test "tcp: reset after bytes came: exit 1, the bytes delivered, one line" {
	reset_server after-data
	rm -f "$T/fg.out"
	run_xp 10 pipe - "tcp:127.0.0.1:$PORT" < <(ack_after_hello "$T/fg.out")
	[ "$status" -eq 1 ]
	[ "$(cat "$T/fg.out")" = hello ]
	one_error_line "127\.0\.0\.1:$PORT: Connection reset by peer"
}

@test "--no-half-close: EOF on one side closes both" {
	bg_xport l pipe tcp-listen:127.0.0.1:0 'exec:sleep 5; echo late'
	wait_ready l
	run_xp 5 pipe --no-half-close - "tcp:127.0.0.1:$PORT"
	[ "$status" -eq 0 ]
	[ ! -s "$T/fg.out" ]
}

@test "exec: the child's status when not 0, 128+N for a signal, else the relay's" {
	# stdin still open when the child ends: `sleep 2 | xport pipe - exec:false`
	run_xp 5 pipe - exec:false < <(sleep 2)
	[ "$status" -eq 1 ]
	[ -z "$err" ]
	run_xp 5 pipe - 'exec:exit 3' < <(sleep 2)
	[ "$status" -eq 3 ]
	run_xp 5 pipe exec:false - </dev/null
	[ "$status" -eq 1 ]
	run_xp 5 pipe - 'exec:kill -TERM $$' < <(sleep 2)
	[ "$status" -eq 143 ]
	run_xp 5 pipe - 'exec:kill -9 $$' </dev/null
	[ "$status" -eq 137 ]
	# output still delivered before the status
	run_xp 5 pipe - 'exec:cat; exit 4' <<<data
	[ "$status" -eq 4 ]
	[ "$(cat "$T/fg.out")" = data ]
	run_xp 5 pipe - exec:cat <<<data
	[ "$status" -eq 0 ]
	[ "$(cat "$T/fg.out")" = data ]
}

@test "exec: with -k the child's status is not the server's" {
	bg_xport l pipe -k tcp-listen:127.0.0.1:0 'exec:exit 5'
	wait_ready l
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "exec: command not executable: 126" {
	printf 'echo x\n' >"$T/noexec"
	chmod 644 "$T/noexec"
	run_xp 5 pipe - "exec:$T/noexec"
	[ "$status" -eq 126 ]
}

@test "both connect endpoints refused: exit 69 and one line, not two" {
	local p
	p="$(closed_port)"
	run_xp 5 pipe "tcp:127.0.0.1:$p" "tcp:127.0.0.1:$p"
	[ "$status" -eq 69 ]
	one_error_line "connect 127.0.0.1:$p: Connection refused"
	run_xp 5 pipe fd:8 fd:9 8<&- 9<&-
	[ "$status" -eq 1 ]
	one_error_line "fd:8: Bad file descriptor"
}

@test "fd:N that is a pipe's read end: exit 1 with one line, no byte swallowed" {
	run_xp 5 pipe fd:0 udp:127.0.0.1:9 < <(echo hi)
	[ "$status" -eq 1 ]
	one_error_line "fd:0: not open for writing"
}

@test "the same unix-listen: path twice: exit 71, one line, no socket file left" {
	run_xp 5 pipe "unix-listen:$T/s" "unix-listen:$T/s"
	[ "$status" -eq 71 ]
	one_error_line "listen unix:$T/s: Address already in use"
	[ ! -e "$T/s" ]
}
