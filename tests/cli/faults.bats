#!/usr/bin/env bats
# The fault matrix: every relay shape against every way a side can stop.
#
# Each case starts xport and a real peer (tests/cli/faultpeer.py, a child
# process, a pipe reader), makes one side stop, and asserts the documented
# exit status within 2 s of the event (or of the timeout that applies), that
# no byte the receiving side acknowledged was lost, and, where a side stops
# reading, that xport's memory stays bounded.  The rules are those of
# xport(1), HOW A SESSION ENDS.

load net_helpers

FP="$BATS_TEST_DIRNAME/faultpeer.py"

setup() {
	net_setup
	PEERS=()
}

teardown() {
	local p
	for p in "${PEERS[@]}"; do
		{ kill -9 "$p" && wait "$p"; } 2>/dev/null || true
	done
	net_teardown
}

# peer NAME ROLE ADDR ACTION [OPTIONS]: faultpeer in the background;
# report in $T/NAME.json, port (listen) in $T/NAME.port.
peer() {
	local name=$1
	shift
	$PY "$FP" "$@" --report "$T/$name.json" --port-file "$T/$name.port" \
		>"$T/$name.pout" 2>&1 3>&- &
	PEERS+=($!)
}

peer_port() {
	local n=250
	while [ ! -s "$T/$1.port" ] && [ $n -gt 0 ]; do
		sleep 0.02
		n=$((n - 1))
	done
	cat "$T/$1.port"
}

peer_done() {
	local n=$(( ${2:-15} * 50 ))
	while [ ! -s "$T/$1.json" ] && [ $n -gt 0 ]; do
		sleep 0.02
		n=$((n - 1))
	done
	[ -s "$T/$1.json" ] || { echo "peer $1 did not finish: $(cat "$T/$1.pout")"; return 1; }
}

jget() {
	$PY -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

# xrun NAME STDIN STDOUT-CMD ARGS...: xport in the background, stdin from
# STDIN (a file, a FIFO or /dev/null), stdout into the shell command
# STDOUT-CMD (e.g. "cat >FILE"); on exit, "STATUS EPOCH" in $T/NAME.exit.
# $T/NAME.pid holds xport's own pid.
xrun() {
	local name=$1 in=$2 outcmd=$3
	shift 3
	# Through a FIFO, so that no shell but xport holds the consumer's pipe:
	# the consumer sees EOF exactly when xport closes its fd 1.
	mkfifo "$T/$name.fifo"
	(eval "$outcmd") <"$T/$name.fifo" 3>&- &
	PEERS+=($!)
	(
		st=0
		"$XPORT" "$@" <"$in" >"$T/$name.fifo" 2>"$T/$name.err" &
		echo $! >"$T/$name.pid"
		wait $! || st=$?
		echo "$st $(date +%s.%N)" >"$T/$name.exit"
	) 3>&- &
	PEERS+=($!)
	local n=250
	while [ ! -s "$T/$name.pid" ] && [ $n -gt 0 ]; do sleep 0.02; n=$((n - 1)); done
	XPID=$(cat "$T/$name.pid")
	PEERS+=("$XPID")
	watchdog "$XPID"
}

# xexit NAME [SECONDS]: wait for xport's exit; sets XST and XEND.
xexit() {
	local n=$(( ${2:-15} * 50 ))
	while [ ! -s "$T/$1.exit" ] && [ $n -gt 0 ]; do
		sleep 0.02
		n=$((n - 1))
	done
	[ -s "$T/$1.exit" ] || { echo "xport $1 still running; stderr: $(cat "$T/$1.err")"; return 1; }
	read -r XST XEND <"$T/$1.exit"
}

# within SECONDS FROM TO: TO - FROM <= SECONDS (epoch floats).
within() {
	$PY -c 'import sys; d=float(sys.argv[3])-float(sys.argv[2]); sys.exit(0 if d <= float(sys.argv[1]) else 1)' "$@" ||
		{ echo "took longer than $1 s: $2 -> $3"; return 1; }
}

# rss_watch PID FILE: the largest VmRSS (kB) seen while PID lives.
rss_watch() {
	( m=0; while r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null) && [ -n "$r" ]; do
		[ "$r" -gt "$m" ] && m=$r && echo "$m" >"$2"; sleep 0.05; done ) 3>&- &
	PEERS+=($!)
}

rss_max() {
	cat "$1" 2>/dev/null || echo 0
}

# A FIFO held open by a silent writer: stdin that neither sends nor ends.
silent_stdin() {
	mkfifo "$T/$1"
	# The writer is sleep itself (no shell around it to outlive a kill).
	(exec sleep 60) 3>"$T/$1" &
	SILENT=$!
	PEERS+=("$SILENT")
}

expect_status() {
	[ "$XST" -eq "$1" ] || { echo "exit $XST, expected $1; stderr: $(cat "$T/$2.err")"; return 1; }
}

# ---- tcp-client -----------------------------------------------------------

@test "faults: tcp-client, peer resets: exit 1 within 2 s" {
	peer p listen 127.0.0.1:0 rst --send 100000
	silent_stdin in
	xrun x "$T/in" "cat >$T/x.out" tcp-client "127.0.0.1:$(peer_port p)"
	peer_done p
	xexit x
	expect_status 1 x
	within 2 "$(jget "$T/p.json" event)" "$XEND"
	grep -q '^xport: .*reset' "$T/x.err"
}

@test "faults: tcp-client, peer FIN: stdout ends at once, stdin still relayed" {
	peer p listen 127.0.0.1:0 fin --send 1000000 --hold 20
	silent_stdin in
	xrun x "$T/in" "cat >$T/x.out; date +%s.%N >$T/consumer.end" \
		tcp-client "127.0.0.1:$(peer_port p)"
	n=250
	while [ ! -s "$T/consumer.end" ] && [ $n -gt 0 ]; do sleep 0.02; n=$((n - 1)); done
	[ -s "$T/consumer.end" ] || { echo "stdout consumer saw no EOF"; false; }
	kill -0 "$XPID" # half-close: xport still relays stdin to the peer
	[ "$(stat -c %s "$T/x.out")" -eq 1000000 ]
	# Ending stdin ends the session cleanly.
	kill "$SILENT"
	xexit x 5
	expect_status 0 x
}

@test "faults: tcp-client, reader of stdout gone: exit 1 within 2 s" {
	peer p listen 127.0.0.1:0 drain --send 16777216 --hold 20
	silent_stdin in
	xrun x "$T/in" "head -c 1000 >/dev/null; date +%s.%N >$T/reader.gone" \
		tcp-client "127.0.0.1:$(peer_port p)"
	xexit x
	expect_status 1 x
	within 2 "$(cat "$T/reader.gone")" "$XEND"
}

@test "faults: tcp-client, reader of stdout gone while idle: exit 1 within 2 s" {
	peer p listen 127.0.0.1:0 blackhole --hold 20
	silent_stdin in
	xrun x "$T/in" "sleep 0.3; date +%s.%N >$T/reader.gone" \
		tcp-client "127.0.0.1:$(peer_port p)"
	xexit x
	expect_status 1 x
	within 2 "$(cat "$T/reader.gone")" "$XEND"
	grep -q '^xport: .*Broken pipe' "$T/x.err"
}

@test "faults: tcp-client, peer never reads: memory bounded, idle timeout 75" {
	head -c 67108864 /dev/zero >"$T/zero"
	peer p listen 127.0.0.1:0 noread --hold 20
	xrun x "$T/zero" "cat >/dev/null" tcp-client --idle-timeout 1 "127.0.0.1:$(peer_port p)"
	rss_watch "$XPID" "$T/rss"
	xexit x 10
	expect_status 75 x
	[ "$(rss_max "$T/rss")" -lt 40000 ] || { echo "RSS $(rss_max "$T/rss") kB"; false; }
}

@test "faults: tcp-client, black hole with --idle-timeout: exit 75" {
	peer p listen 127.0.0.1:0 blackhole --hold 20
	silent_stdin in
	start=$(date +%s.%N)
	xrun x "$T/in" "cat >/dev/null" tcp-client --idle-timeout 1 "127.0.0.1:$(peer_port p)"
	xexit x 10
	expect_status 75 x
	within 3 "$start" "$XEND"
}

# ---- tcp-server, stdio ----------------------------------------------------

@test "faults: tcp-server stdio, client resets: exit 1 within 2 s" {
	silent_stdin in
	xrun x "$T/in" "cat >$T/x.out" tcp-server 127.0.0.1:0 --port-file "$T/xp"
	wait_for_line "$T/x.err" '^listening on '
	peer p connect "127.0.0.1:$(cat "$T/xp")" rst --send 100000
	peer_done p
	xexit x
	expect_status 1 x
	within 2 "$(jget "$T/p.json" event)" "$XEND"
}

@test "faults: tcp-server stdio, client FIN and stdin at EOF: exit 0, bytes exact" {
	xrun x /dev/null "cat >$T/x.out" tcp-server 127.0.0.1:0 --port-file "$T/xp"
	wait_for_line "$T/x.err" '^listening on '
	peer p connect "127.0.0.1:$(cat "$T/xp")" fin --send 1000000
	peer_done p
	xexit x
	expect_status 0 x
	within 2 "$(jget "$T/p.json" event)" "$XEND"
	[ "$(stat -c %s "$T/x.out")" -eq 1000000 ]
	[ "$(jget "$T/p.json" eof)" = true ]
}

@test "faults: tcp-server stdio, reader of stdout gone: exit 1 within 2 s" {
	silent_stdin in
	xrun x "$T/in" "head -c 1000 >/dev/null; date +%s.%N >$T/reader.gone" \
		tcp-server 127.0.0.1:0 --port-file "$T/xp"
	wait_for_line "$T/x.err" '^listening on '
	peer p connect "127.0.0.1:$(cat "$T/xp")" noread --send 16777216 --hold 20
	xexit x
	expect_status 1 x
	within 2 "$(cat "$T/reader.gone")" "$XEND"
}

@test "faults: tcp-server stdio, client never reads: memory bounded, 75" {
	head -c 67108864 /dev/zero >"$T/zero"
	xrun x "$T/zero" "cat >/dev/null" tcp-server 127.0.0.1:0 --idle-timeout 1 --port-file "$T/xp"
	wait_for_line "$T/x.err" '^listening on '
	rss_watch "$XPID" "$T/rss"
	peer p connect "127.0.0.1:$(cat "$T/xp")" noread --hold 20
	xexit x 10
	expect_status 75 x
	[ "$(rss_max "$T/rss")" -lt 40000 ] || { echo "RSS $(rss_max "$T/rss") kB"; false; }
}

# ---- tcp-server --exec ----------------------------------------------------

@test "faults: exec, child never reads and the client resets: child gets SIGTERM" {
	bg_xport s tcp-server 127.0.0.1:0 --exec \
		"trap 'date +%s.%N >$T/term; exit 0' TERM; while :; do sleep 0.1; done"
	wait_ready s
	peer p connect "127.0.0.1:$PORT" pushrst
	peer_done p
	n=150
	while [ ! -s "$T/term" ] && [ $n -gt 0 ]; do sleep 0.02; n=$((n - 1)); done
	[ -s "$T/term" ] || { echo "child never got SIGTERM"; cat "$T/s.err"; false; }
	within 2 "$(jget "$T/p.json" event)" "$(cat "$T/term")"
}

@test "faults: exec, child exits: client gets its output and EOF at once" {
	bg_xport s tcp-server 127.0.0.1:0 --exec 'echo bye'
	wait_ready s
	start=$(date +%s.%N)
	peer p connect "127.0.0.1:$PORT" drain --hold 10
	peer_done p 5
	[ "$(jget "$T/p.json" received)" -eq 4 ]
	[ "$(jget "$T/p.json" eof)" = true ]
	within 2 "$start" "$(date +%s.%N)"
}

@test "faults: exec, client FIN: the child's stdin ends, its output still arrives" {
	bg_xport s tcp-server 127.0.0.1:0 --exec 'cat'
	wait_ready s
	peer p connect "127.0.0.1:$PORT" fin --send 3000000
	peer_done p
	[ "$(jget "$T/p.json" received)" -eq 3000000 ]
	[ "$(jget "$T/p.json" eof)" = true ]
	within 2 "$(jget "$T/p.json" event)" "$(date +%s.%N)"
}

# ---- tcp-server --forward -------------------------------------------------

@test "faults: forward, upstream resets: the client sees a reset within 2 s" {
	peer up listen 127.0.0.1:0 rst --send 100000
	bg_xport s tcp-server 127.0.0.1:0 --forward "127.0.0.1:$(peer_port up)"
	wait_ready s
	peer c connect "127.0.0.1:$PORT" drain --hold 10
	peer_done up
	peer_done c 5
	[ "$(jget "$T/c.json" reset)" = true ]
}

@test "faults: forward, client resets: upstream sees a reset within 2 s" {
	peer up listen 127.0.0.1:0 drain --hold 10
	bg_xport s tcp-server 127.0.0.1:0 --forward "127.0.0.1:$(peer_port up)"
	wait_ready s
	peer c connect "127.0.0.1:$PORT" rst --send 100000
	peer_done c
	peer_done up 5
	[ "$(jget "$T/up.json" reset)" = true ]
}

@test "faults: forward, upstream never reads: memory bounded" {
	peer up listen 127.0.0.1:0 noread --hold 8
	bg_xport s tcp-server 127.0.0.1:0 --forward "127.0.0.1:$(peer_port up)"
	wait_ready s
	rss_watch "$BG_PID" "$T/rss"
	head -c 67108864 /dev/zero >"$T/zero"
	peer c connect "127.0.0.1:$PORT" noread --send-file "$T/zero" --hold 3 &
	sleep 3
	[ "$(rss_max "$T/rss")" -lt 40000 ] || { echo "RSS $(rss_max "$T/rss") kB"; false; }
}

# ---- pipe -----------------------------------------------------------------

@test "faults: pipe - tcp:, peer resets: exit 1 within 2 s" {
	peer p listen 127.0.0.1:0 rst --send 100000
	silent_stdin in
	xrun x "$T/in" "cat >/dev/null" pipe - "tcp:127.0.0.1:$(peer_port p)"
	peer_done p
	xexit x
	expect_status 1 x
	within 2 "$(jget "$T/p.json" event)" "$XEND"
}

@test "faults: pipe tcp-listen: tcp:, one side resets: the other sees a reset, exit 1" {
	peer up listen 127.0.0.1:0 drain --hold 10
	xrun x /dev/null "cat" pipe tcp-listen:127.0.0.1:0 "tcp:127.0.0.1:$(peer_port up)" \
		--port-file "$T/xp"
	wait_for_line "$T/x.err" '^listening on '
	peer c connect "127.0.0.1:$(cat "$T/xp")" rst --send 100000
	peer_done c
	xexit x
	expect_status 1 x
	within 2 "$(jget "$T/c.json" event)" "$XEND"
	peer_done up 5
	[ "$(jget "$T/up.json" reset)" = true ]
}

@test "faults: pipe - unix:, peer sends and closes: exit 0, bytes exact" {
	peer p listen "unix:$T/sock" close --send 2000000
	n=250
	while [ ! -S "$T/sock" ] && [ $n -gt 0 ]; do sleep 0.02; n=$((n - 1)); done
	xrun x /dev/null "cat >$T/x.out" pipe - "unix:$T/sock"
	xexit x
	expect_status 0 x
	[ "$(stat -c %s "$T/x.out")" -eq 2000000 ]
}

@test "faults: pipe - exec:, child fails: its status" {
	xrun x /dev/null "cat >/dev/null" pipe - exec:'exit 3'
	xexit x
	expect_status 3 x
	xrun y /dev/null "cat >/dev/null" pipe - exec:'kill -9 $$'
	xexit y
	expect_status 137 y
}

@test "faults: pipe tls-listen:, close_notify then garbage: bounded, clean end" {
	xrun x /dev/null "cat >/dev/null" pipe tls-listen:127.0.0.1:0 - --port-file "$T/xp"
	wait_for_line "$T/x.err" '^listening on '
	rss_watch "$XPID" "$T/rss"
	peer p connect "127.0.0.1:$(cat "$T/xp")" tlsgarbage --tls --hold 3
	peer_done p 10
	xexit x 10
	expect_status 0 x
	[ "$(rss_max "$T/rss")" -lt 40000 ] || { echo "RSS $(rss_max "$T/rss") kB"; false; }
	[ "$(jget "$T/p.json" sent)" -lt 33554432 ]
}

# ---- subprocess -----------------------------------------------------------

@test "faults: subprocess --connect, peer resets: child gets SIGTERM, its status" {
	peer p listen 127.0.0.1:0 rst --send 100000 --after "$T/trapped"
	xrun x /dev/null "cat >/dev/null" subprocess --connect "127.0.0.1:$(peer_port p)" -- \
		sh -c "trap 'exit 7' TERM; : >$T/trapped; while :; do sleep 0.1; done"
	peer_done p
	xexit x
	expect_status 7 x
	within 2 "$(jget "$T/p.json" event)" "$XEND"
}

@test "faults: subprocess --connect, child exits: peer gets EOF, child's status" {
	peer p listen 127.0.0.1:0 drain --hold 10
	xrun x /dev/null "cat >/dev/null" subprocess --connect "127.0.0.1:$(peer_port p)" -- \
		sh -c 'echo out; exit 4'
	xexit x
	expect_status 4 x
	peer_done p 5
	[ "$(jget "$T/p.json" eof)" = true ]
	[ "$(jget "$T/p.json" received)" -eq 4 ]
}

@test "faults: subprocess --listen, child never reads and the client resets: SIGTERM" {
	xrun x /dev/null "cat >/dev/null" subprocess --listen 127.0.0.1:0 --port-file "$T/xp" -- \
		sh -c "trap 'exit 0' TERM; while :; do sleep 0.1; done"
	wait_for_line "$T/x.err" '^listening on '
	peer p connect "127.0.0.1:$(cat "$T/xp")" pushrst
	peer_done p
	xexit x
	expect_status 0 x
	within 2 "$(jget "$T/p.json" event)" "$XEND"
}
