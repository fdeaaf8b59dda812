#!/usr/bin/env bats
# The C examples against the asyncio examples of the same documentation
# page (tests/examples/*.py): C server with the Python client and the
# reverse, for TCP and UDP; the examples without a peer are run beside their
# Python versions and must print the same things.

load helpers

EX=${XPORT_BUILDDIR:-$BATS_TEST_DIRNAME/../../build}/examples
PY=/usr/bin/python3
PYEX=$BATS_TEST_DIRNAME/../examples

setup() {
	[[ -x $PY ]] || skip "Debian's python3 is not installed"
	tmp=$(mktemp -d)
}

teardown() {
	[[ -n ${spid:-} ]] && kill "$spid" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$tmp"
}

# wait_port FILE REGEX: wait (5 s at most) for a line giving the port.
wait_port() {
	local i
	for i in $(seq 100); do
		port=$(grep -oE "$2" "$1" 2>/dev/null | grep -oE '[0-9]+$' | head -n 1)
		[[ -n $port ]] && return 0
		sleep 0.05
	done
	cat "$1" >&2
	return 1
}

# wait_udp_bound PORT: until something is bound there (5 s at most).
wait_udp_bound() {
	local i
	for i in $(seq 100); do
		$PY -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

free_udp_port() {
	$PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

@test "examples: C tcp_echo_server with asyncio's TCP echo client" {
	"$EX/tcp_echo_server" 0 >"$tmp/srv" 2>&1 &
	spid=$!
	wait_port "$tmp/srv" 'Serving on 127\.0\.0\.1:[0-9]+'
	run timeout 10 $PY "$PYEX/tcp_echo_client.py" "$port"
	[ "$status" -eq 0 ]
	[[ $output == *"Data sent: 'Hello World!'"* ]]
	[[ $output == *"Data received: 'Hello World!'"* ]]
	[[ $output == *"The server closed the connection"* ]]
	grep -q "Data received: 'Hello World!'" "$tmp/srv"
	grep -q "Close the client socket" "$tmp/srv"
}

@test "examples: asyncio's TCP echo server with C tcp_echo_client" {
	$PY "$PYEX/tcp_echo_server.py" 0 >"$tmp/srv" 2>&1 &
	spid=$!
	wait_port "$tmp/srv" 'listening on 127\.0\.0\.1:[0-9]+'
	run timeout 10 "$EX/tcp_echo_client" "$port"
	[ "$status" -eq 0 ]
	[[ $output == *"Data sent: 'Hello World!'"* ]]
	[[ $output == *"Data received: 'Hello World!'"* ]]
	[[ $output == *"The server closed the connection"* ]]
}

@test "examples: C udp_echo_server with asyncio's UDP echo client" {
	p=$(free_udp_port)
	"$EX/udp_echo_server" "$p" >"$tmp/srv" 2>&1 &
	spid=$!
	wait_udp_bound "$p"
	run timeout 10 $PY "$PYEX/udp_echo_client.py" "$p"
	[ "$status" -eq 0 ]
	[[ $output == *"Received: Hello World!"* ]]
	[[ $output == *"Connection closed"* ]]
	grep -q "Received 'Hello World!' from ('127.0.0.1', " "$tmp/srv"
}

@test "examples: asyncio's UDP echo server with C udp_echo_client" {
	p=$(free_udp_port)
	$PY "$PYEX/udp_echo_server.py" "$p" >"$tmp/srv" 2>&1 &
	spid=$!
	wait_port "$tmp/srv" 'listening on 127\.0\.0\.1:[0-9]+'
	run timeout 10 "$EX/udp_echo_client" "$p"
	[ "$status" -eq 0 ]
	[[ $output == *"Send: Hello World!"* ]]
	[[ $output == *"Received: Hello World!"* ]]
	[[ $output == *"Connection closed"* ]]
}

@test "examples: connect_existing_sockets prints what asyncio's version prints" {
	run timeout 10 "$EX/connect_existing_sockets"
	[ "$status" -eq 0 ]
	[[ $output == *"Received: abc"* ]]
}

@test "examples: subprocess_output reports the child's output and exit" {
	run timeout 10 "$EX/subprocess_output"
	[ "$status" -eq 0 ]
	[[ $output == *"Current date: "[0-9][0-9][0-9][0-9]-* ]]
}
