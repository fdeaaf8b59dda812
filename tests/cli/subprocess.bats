#!/usr/bin/env bats
# subprocess: local stdio, --connect, --listen, stderr modes, exit status.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

@test "local: relays our stdin/stdout to the child's" {
	echo hello | timeout 5 "$XPORT" subprocess -- tr a-z A-Z >"$T/o"
	[ "$(cat "$T/o")" = HELLO ]
}

@test "exit status is the child's; 128+N when killed by signal N" {
	run_xp 5 subprocess -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	[ -z "$err" ]
	run_xp 5 subprocess -- sh -c 'kill -9 $$'
	[ "$status" -eq 137 ]
	run_xp 5 subprocess -- sh -c 'kill -TERM $$'
	[ "$status" -eq 143 ]
}

@test "command not found: 127, not executable: 126, with one line naming it" {
	run_xp 5 subprocess -- /nonexistent/cmd
	[ "$status" -eq 127 ]
	one_error_line "/nonexistent/cmd: command not found"
	printf 'echo x\n' >"$T/noexec"
	chmod 644 "$T/noexec"
	run_xp 5 subprocess -- "$T/noexec"
	[ "$status" -eq 126 ]
	one_error_line "$T/noexec: Permission denied"
}

@test "--stderr merge (default), separate and inherit" {
	run_xp 5 subprocess -- sh -c 'echo out; echo err >&2'
	[ "$(cat "$T/fg.out")" = "$(printf 'out\nerr')" ] && [ -z "$err" ]
	run_xp 5 subprocess --stderr separate -- sh -c 'echo out; echo err >&2'
	[ "$(cat "$T/fg.out")" = out ] && [ "$err" = err ]
	run_xp 5 subprocess --stderr inherit -- sh -c 'echo out; echo err >&2; ls -l /proc/self/fd/2 >&2'
	[ "$(cat "$T/fg.out")" = out ]
	grep -qx err "$T/fg.err"
	grep -q "fg.err" "$T/fg.err"
}

@test "--connect: 16 MiB byte-exact with half-close passing EOF both ways" {
	big_file
	bg_xport s tcp-server 127.0.0.1:0
	wait_ready s
	cp "$T/big" "$T/s2.in"
	# the child sends the file to the server and writes what it receives
	timeout 30 "$XPORT" subprocess --connect "127.0.0.1:$PORT" -- sh -c "cat '$T/big'; exec 1>&-; " 
	wait_exit "$BG_PID" 20
	[ "$RC" -eq 0 ]
	[ "$(sha "$T/s.out")" = "$(sha "$T/big")" ]
	# and the other way: the server's stdin reaches the child's stdin
	bg_xport s2 tcp-server 127.0.0.1:0
	wait_ready s2
	timeout 30 "$XPORT" subprocess --connect "127.0.0.1:$PORT" -- sh -c "cat >'$T/got'"
	[ "$(sha "$T/got")" = "$(sha "$T/big")" ]
	wait_exit "$BG_PID" 20
	[ "$RC" -eq 0 ]
}

@test "--connect refused: exit 69, the command is not run" {
	run_xp 5 subprocess --connect "127.0.0.1:$(closed_port)" -- touch "$T/ran"
	[ "$status" -eq 69 ]
	one_error_line "Connection refused"
	[ ! -e "$T/ran" ]
}

@test "--connect: a reset just after the connection is made is not 69" {
	reset_server now
	for i in 1 2 3 4 5; do
		run_xp 5 subprocess --connect "127.0.0.1:$PORT" -- cat
		# 1 when the child never ran; else it got SIGTERM for the reset
		[ "$status" -eq 1 ] || [ "$status" -eq 143 ] ||
			{ echo "try $i: exit $status: $err"; return 1; }
		one_error_line "127\.0\.0\.1:$PORT: Connection reset by peer"
	done
}

@test "--listen: one client; exit status is the child's" {
	bg_xport l subprocess --listen 127.0.0.1:0 -- sh -c 'read x; echo "got $x"; exit 7'
	wait_ready l
	echo ping | timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = "got ping" ]
	wait_exit "$BG_PID"
	[ "$RC" -eq 7 ]
}

@test "--listen -k: one child per client" {
	bg_xport l subprocess -k --listen 127.0.0.1:0 --port-file "$T/port" -- sh -c 'echo "pid $$"'
	wait_ready l
	[ "$(cat "$T/port")" = "$PORT" ]
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/o1"
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/o2"
	grep -q '^pid [0-9]' "$T/o1" && grep -q '^pid [0-9]' "$T/o2"
	[ "$(cat "$T/o1")" != "$(cat "$T/o2")" ]
	kill -TERM "$BG_PID"
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}

@test "--signal/--kill-after: a reset connection signals the child" {
	bg_xport l subprocess --listen 127.0.0.1:0 --signal USR1 --kill-after 0.5 -- sh -c "trap 'echo usr1 >$T/trap' USR1; while :; do sleep 0.05; done"
	wait_ready l
	$PY - "$PORT" <<'PYEOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PYEOF
	wait_exit "$BG_PID" 10
	# the trap ran (USR1), then SIGKILL after --kill-after
	[ "$(cat "$T/trap")" = usr1 ]
	[ "$RC" -eq 137 ]
}

@test "an EOF from the peer only closes the child's stdin" {
	bg_xport l subprocess --listen 127.0.0.1:0 -- sh -c 'cat >/dev/null; echo after-eof'
	wait_ready l
	timeout 5 "$XPORT" tcp-client "127.0.0.1:$PORT" </dev/null >"$T/o"
	[ "$(cat "$T/o")" = after-eof ]
	wait_exit "$BG_PID"
	[ "$RC" -eq 0 ]
}
