#!/usr/bin/env bash
# Demo, run by `make demo` after a build. Placeholder: runs the TCP echo
# example server and client against each other when both exist.
# Assumed interface: tcp_echo_server HOST:PORT, tcp_echo_client HOST:PORT.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${BUILDDIR:-build}
server=$B/examples/tcp_echo_server
client=$B/examples/tcp_echo_client

if [[ ! -x $server || ! -x $client ]]; then
	echo "demo: $server and $client not built yet; nothing to show"
	exit 0
fi

port=$((20000 + RANDOM % 20000))
echo "demo: starting $server 127.0.0.1:$port"
"$server" "127.0.0.1:$port" &
spid=$!
trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null' EXIT

# Wait up to 5 s for the port to accept connections.
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

echo "demo: running $client 127.0.0.1:$port"
printf 'hello from the xport demo\n' | timeout 10 "$client" "127.0.0.1:$port"
rc=$?
echo "demo: client exited with status $rc"
exit $rc
