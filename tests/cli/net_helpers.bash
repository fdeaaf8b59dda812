# Helpers for the CLI tests that run real commands against real peers.
#
# Background xport processes are started with bg_xport (never through
# `timeout`, so that signals reach xport itself); each gets a watchdog and
# is killed in teardown.  Readiness comes from the `listening on` line or
# --port-file: no test sleeps to wait for a server.

load helpers

PY=/usr/bin/python3

net_setup() {
	setup_xport
	BG_PIDS=()
	T="$BATS_TEST_TMPDIR"
}

net_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		{ kill -9 "$p" && wait "$p"; } 2>/dev/null || true
	done
}

# bg_xport NAME ARGS...: start xport in the background, stderr in
# $T/NAME.err, stdout in $T/NAME.out, stdin from $T/NAME.in if it exists
# (else /dev/null).  Sets BG_PID.
bg_xport() {
	local name=$1 in=/dev/null
	shift
	[ -e "$T/$name.in" ] && in="$T/$name.in"
	"$XPORT" "$@" <"$in" >"$T/$name.out" 2>"$T/$name.err" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
	# Watchdog: no test may hang.  Disowned: `wait` never waits for it,
	# and holding none of bats' descriptors (fd 3 and its internal pipes),
	# bats does not wait for it either.
	watchdog "$BG_PID"
}

# watchdog PID [SECONDS]: kill -9 PID after SECONDS (default 60), from a
# background job that has closed every descriptor above 2.
watchdog() {
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done 2>/dev/null
		sleep "${2:-60}"
		kill -9 "$1"
	) >/dev/null 2>&1 &
	disown $!
}

# bg_wait PIDS...: wait for the given client jobs (never plain `wait`,
# which would also wait for the servers).
bg_wait() {
	local p rc=0
	for p in "$@"; do
		wait "$p" || rc=$?
	done
	return "$rc"
}

# wait_for_line FILE REGEX [SECONDS]: poll (bounded) until a line matches.
wait_for_line() {
	local f=$1 re=$2 n=$(( ${3:-10} * 50 ))
	while [ "$n" -gt 0 ]; do
		grep -Eq "$re" "$f" 2>/dev/null && return 0
		n=$((n - 1))
		sleep 0.02
	done
	echo "timed out waiting for /$re/ in $f:" >&2
	cat "$f" >&2 2>/dev/null
	return 1
}

# wait_for_count FILE REGEX N: poll (bounded) until N lines match.
wait_for_count() {
	local n=500
	while [ "$n" -gt 0 ]; do
		[ "$(grep -Ec "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		n=$((n - 1))
		sleep 0.02
	done
	echo "timed out waiting for $3 lines /$2/ in $1" >&2
	return 1
}

# wait_ready NAME: wait for the readiness line of bg NAME; sets PORT.
wait_ready() {
	wait_for_line "$T/$1.err" '^listening on ' || return 1
	PORT="$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$T/$1.err" | head -n1)"
}

# wait_exit PID [SECONDS]: wait for a background process; sets RC.
wait_exit() {
	local pid=$1 n=$(( ${2:-10} * 50 ))
	while kill -0 "$pid" 2>/dev/null && [ "$n" -gt 0 ]; do
		# A zombie still answers kill -0; ask ps.
		[ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
		n=$((n - 1))
		sleep 0.02
	done
	RC=0
	wait "$pid" || RC=$?
}

# run_xp SECONDS ARGS...: run xport in the foreground (bounded); sets
# status, out (file $T/fg.out) and err.
run_xp() {
	local secs=$1
	shift
	status=0
	timeout -s KILL "$secs" "$XPORT" "$@" >"$T/fg.out" 2>"$T/fg.err" || status=$?
	err="$(cat "$T/fg.err")"
}

# One `xport: ...` line on stderr containing TEXT.
one_error_line() {
	local n
	n="$(grep -c '' "$T/fg.err")"
	[ "$n" -eq 1 ] || { echo "expected one stderr line, got $n:"; cat "$T/fg.err"; return 1; }
	grep -q "^xport: .*$1" "$T/fg.err" || { echo "no '$1' in: $(cat "$T/fg.err")"; return 1; }
}

have_ipv6() {
	$PY -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null
}

big_file() {
	[ -f "$T/big" ] || head -c "${1:-16777216}" /dev/urandom >"$T/big"
}

sha() {
	sha256sum "$1" | cut -d' ' -f1
}

# A free TCP port nobody listens on (for "refused").
closed_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# reset_server MODE [CERT KEY]: a TCP server that resets (SO_LINGER 0)
# every connection it accepts: "now" at once, "after-data" once it has sent
# "hello\n" and read "ack" back (so the client has the bytes).  With CERT
# and KEY, after a TLS handshake.  Sets PORT.
reset_server() {
	$PY - "$1" "$T/rport" "${2:-}" "${3:-}" <<'PYEOF' &
import os, socket, ssl, struct, sys
mode, portf, cert, key = sys.argv[1:5]
ctx = None
if cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(16)
open(portf + ".tmp", "w").write("%d\n" % l.getsockname()[1])
os.rename(portf + ".tmp", portf)
while True:
    c, _ = l.accept()
    c.settimeout(20)
    try:
        if ctx:
            c = ctx.wrap_socket(c, server_side=True)
        if mode == "after-data":
            c.sendall(b"hello\n")
            got = b""
            while b"ack" not in got:
                d = c.recv(100)
                if not d:
                    break
                got += d
    except OSError:
        pass
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$T/rport" '^[0-9]+$'
	PORT="$(cat "$T/rport")"
}

# Input for a client of reset_server after-data: "ack" once FILE (its
# output) has the "hello", then silence (the reset ends the session).
ack_after_hello() {
	wait_for_line "$1" '^hello$' && echo ack
	sleep 5
}

vmrss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
