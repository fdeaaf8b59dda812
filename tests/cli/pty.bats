#!/usr/bin/env bats
# --pty: exec, exec: and subprocess children on a pseudo-terminal.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

# A shell for --exec with a known prompt; TERM=dumb keeps readline's
# bracketed-paste escapes out of what the tests match.
SHELL_CMD='PS1="xp> " TERM=dumb exec bash --norc -i'

@test "tcp-server --pty --exec 'bash -i': a usable shell for tcp-client on a terminal, job control included" {
	bg_xport s tcp-server 127.0.0.1:0 --pty --exec "$SHELL_CMD"
	wait_ready s
	$PY - "$XPORT" "$PORT" <<'PYEOF'
import os, pty, re, select, sys, time, tty
xport, port = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    # What a user types before `nc`: the local terminal raw, so that ^C
    # and ^Z are bytes for the remote terminal, not signals for us.
    tty.setraw(0)
    os.execv(xport, [xport, "tcp-client", "--no-readline", "127.0.0.1:" + port])
buf = b""
def expect(pat, secs=10):
    global buf
    end = time.time() + secs
    while True:
        m = re.search(pat, buf)
        if m:
            buf = buf[m.end():]
            return m
        left = end - time.time()
        if left <= 0:
            sys.exit("timed out waiting for %r in %r" % (pat, buf))
        if select.select([fd], [], [], left)[0]:
            try:
                d = os.read(fd, 4096)
            except OSError:
                d = b""
            if not d:
                sys.exit("EOF waiting for %r in %r" % (pat, buf))
            buf += d
def send(s):
    os.write(fd, s)
P = rb"xp> "
expect(P)
send(b"echo $((6*7))\r"); expect(rb"\r\n42\r\n"); expect(P)
send(b"tty\r"); expect(rb"\r\n/dev/pts/\d+\r\n"); expect(P)
send(b"sleep 30\r"); expect(rb"sleep 30\r\n")
time.sleep(0.5)
t0 = time.time()
send(b"\x03"); expect(P)
assert time.time() - t0 < 10, "^C did not interrupt sleep 30"
send(b"echo alive\r"); expect(rb"\r\nalive\r\n"); expect(P)
# job control
send(b"sleep 100 &\r"); expect(rb"\[1\] \d+"); expect(P)
send(b"jobs\r"); expect(rb"\[1\]\+ +Running +sleep 100 &"); expect(P)
send(b"fg\r"); expect(rb"sleep 100\r\n")
time.sleep(0.5)
send(b"\x1a"); expect(rb"\[1\]\+ +Stopped +sleep 100"); expect(P)
send(b"jobs\r"); expect(rb"Stopped"); expect(P)
send(b"fg\r"); expect(rb"sleep 100\r\n")
time.sleep(0.5)
send(b"\x03"); expect(P)
send(b"jobs; echo no-jobs\r"); m = expect(rb"\r\n(.*)no-jobs\r\n")
assert b"sleep" not in m.group(1), m.group(1)
expect(P)
send(b"exit\r")
end = time.time() + 10
while True:
    r, st = os.waitpid(pid, os.WNOHANG)
    if r:
        break
    if time.time() > end:
        sys.exit("tcp-client did not exit")
    try:
        if select.select([fd], [], [], 0.1)[0]:
            os.read(fd, 4096)
    except OSError:
        pass
assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, st
print("ok")
PYEOF
	# The server outlives the session (exec serves many) and is still fine.
	kill -0 "$BG_PID"
}

@test "tcp-server --pty: a reset connection hangs the terminal up, the shell and its jobs get SIGHUP" {
	bg_xport s tcp-server 127.0.0.1:0 --pty --exec "$SHELL_CMD"
	wait_ready s
	# An interactive bash ignores SIGTERM (the relay's --signal): only the
	# hang-up can end it, and bash passes SIGHUP on to its jobs.
	$PY - "$PORT" "$T" <<'PYEOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t = sys.argv[2]
s.sendall(b"sleep 1000 & echo $! >%s/job; echo $$ >%s/sh; echo wrote-$((1+1))\r" % (t.encode(), t.encode()))
got = b""
while b"wrote-2" not in got:
    d = s.recv(4096)
    assert d, got
    got += d
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PYEOF
	local job sh n=500
	job=$(cat "$T/job") sh=$(cat "$T/sh")
	while { kill -0 "$job" || kill -0 "$sh"; } 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.02
		n=$((n - 1))
	done
	! kill -0 "$job" 2>/dev/null
	! kill -0 "$sh" 2>/dev/null
}

@test "tcp-server --pty: EOF from the peer is the terminal's ^D" {
	bg_xport s tcp-server 127.0.0.1:0 --pty --exec "$SHELL_CMD"
	wait_ready s
	# At the prompt: typed ahead, the ^D would meet the line discipline
	# before readline's mode, as on any terminal.
	$PY - "$PORT" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
got = b""
def until(want):
    global got
    while want not in got:
        d = s.recv(4096)
        assert d, (want, got)
        got += d
    got = got[got.index(want) + len(want):]
until(b"xp> ")
s.sendall(b"echo $((6*7))\r")
until(b"\r\n42\r\n")
until(b"xp> ")
s.shutdown(socket.SHUT_WR)
while True:
    d = s.recv(4096)
    if not d:
        break
    got += d
assert b"exit" in got, got  # bash's answer to ^D at its prompt
PYEOF
}

@test "subprocess --pty: stdin, stdout and stderr are the child's controlling terminal" {
	run_xp 10 subprocess --pty -- sh -c '
		[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty
		read pid comm st ppid pgrp sid rest </proc/$$/stat; [ "$sid" = $$ ] && echo leader
		(exec 3</dev/tty) && echo ctty; tty; stty size; echo on-stderr >&2; exit 3'
	[ "$status" -eq 3 ]
	[ -z "$err" ]
	tr -d '\r' <"$T/fg.out" >"$T/o"
	[ "$(sed -n 1,3p "$T/o")" = "$(printf 'all-tty\nleader\nctty')" ]
	grep -Eq '^/dev/pts/[0-9]+$' "$T/o"
	grep -qx '24 80' "$T/o"
	grep -qx 'on-stderr' "$T/o"
}

@test "subprocess --pty takes the size of the terminal it is streamed to" {
	$PY - "$XPORT" <<'PYEOF'
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 37, 101, 0, 0))
    os.execv(sys.argv[1], [sys.argv[1], "subprocess", "--pty", "--", "stty", "size"])
out = b""
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
os.waitpid(pid, 0)
assert b"37 101" in out, out
PYEOF
}

@test "pipe --pty: exec: on a terminal; stdin's EOF ends its input, after a partial line too" {
	# The terminal echoes what it is given, then cat writes it.
	printf 'hello\n' | timeout 10 "$XPORT" pipe --pty - 'exec:cat; echo done' >"$T/o"
	[ "$(tr -d '\r' <"$T/o")" = "$(printf 'hello\nhello\ndone')" ]
	printf 'abc' | timeout 10 "$XPORT" pipe --pty - 'exec:cat; echo; echo done' >"$T/o"
	[ "$(tr -d '\r' <"$T/o")" = "$(printf 'abcabc\ndone')" ]
	timeout 10 "$XPORT" pipe --pty 'exec:tty' - </dev/null >"$T/o"
	grep -Eq '^/dev/pts/[0-9]+' "$T/o"
}

@test "--pty: usage errors" {
	run_xp 5 tcp-server --pty 127.0.0.1:0
	[ "$status" -eq 64 ] && one_error_line '--pty requires --exec'
	run_xp 5 tcp-server --pty --proto echo 127.0.0.1:0
	[ "$status" -eq 64 ] && one_error_line '--pty requires --exec'
	run_xp 5 pipe --pty - tcp:127.0.0.1:1
	[ "$status" -eq 64 ] && one_error_line '--pty requires an exec: endpoint'
	run_xp 5 subprocess --pty --stderr separate -- true
	[ "$status" -eq 64 ] && one_error_line 'pty and --stderr cannot be used together'
	run_xp 5 tcp-client --pty 127.0.0.1:1
	[ "$status" -eq 64 ]
}
