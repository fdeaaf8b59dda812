#!/usr/bin/env bash
# `make demo`: a tour of xport's everyday jobs, on loopback, printing what
# goes back and forth.  Every server uses port 0 and tells its port through
# --port-file, so nothing sleeps waiting for a port.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${BUILDDIR:-build}
X=$B/xport
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
# runsh 'SHELL LINE': show it as typed, then run it ($X reads as xport).
runsh() { printf '$ %s\n' "${1//\$X/xport}"; eval "$1"; }

# start NAME ARGS...: run `xport ARGS --port-file F` in the background and
# set $port once it is listening.
start() {
	local name=$1
	shift
	rm -f "$tmp/$name.port"
	printf '$ xport %s &\n' "$*"
	"$X" "$@" --port-file "$tmp/$name.port" 2>"$tmp/$name.err" &
	pids+=($!)
	for _ in $(seq 100); do
		[[ -s $tmp/$name.port ]] && break
		sleep 0.05
	done
	port=$(cat "$tmp/$name.port" 2>/dev/null)
	[[ -n $port ]] || { echo "demo: $name did not start:"; cat "$tmp/$name.err"; exit 1; }
	sed 's/^/  (stderr) /' "$tmp/$name.err"
}

if [[ ! -x $X ]]; then
	echo "demo: $X is not built"
	exit 1
fi

say "An echo server on a free port (RFC 862), talked to with tcp-client"
start echo tcp-server 127.0.0.1:0 --proto echo
echo_port=$port
runsh "printf 'hello, echo\\n' | \$X tcp-client 127.0.0.1:$echo_port"

say "CI's job: wait for a port, then check it"
run "$X" tcp-client --wait-for 5 --check "127.0.0.1:$echo_port" && echo "reachable (exit 0)"
"$X" tcp-client --check 127.0.0.1:1 2>&1
echo "unreachable (exit $?)"

say "A TCP proxy in front of the echo server"
start fwd tcp-server 127.0.0.1:0 --forward "127.0.0.1:$echo_port"
runsh "printf 'through the proxy\\n' | \$X tcp-client 127.0.0.1:$port"

say "A command per connection, with the peer in its environment"
start exec tcp-server 127.0.0.1:0 --exec 'echo "peer port $XPORT_PEER_PORT"; tr a-z A-Z'
runsh "printf 'shout this\\n' | \$X tcp-client 127.0.0.1:$port"

say "Streaming a process's output over TCP (subprocess --connect)"
start sink tcp-server 127.0.0.1:0 --once
sink_port=$port
echo "(the sink, tcp-server --once, prints what it receives)"
runsh "\$X subprocess --connect 127.0.0.1:$sink_port -- sh -c 'for i in 1 2 3; do echo build step \$i; done'"
wait "${pids[-1]}" 2>/dev/null

say "pipe: relay stdin to the echo server, 1 MiB byte-exact, with stats"
head -c 1048576 /dev/urandom >"$tmp/blob"
runsh "\$X pipe --stats - tcp:127.0.0.1:$echo_port <\$tmp/blob >\$tmp/back"
cmp "$tmp/blob" "$tmp/back" && echo "1 MiB went out and came back identical"

say "UDP echo for many peers at once"
start udp udp-echo 127.0.0.1:0
python3 - "$port" <<'EOF'
import socket, sys
port = int(sys.argv[1])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for i, s in enumerate(socks):
    s.settimeout(2)
    s.sendto(b"datagram %d" % i, ("127.0.0.1", port))
for i, s in enumerate(socks):
    print("peer", i, "got", s.recvfrom(100)[0].decode())
EOF

say "TLS: an echo server with an ephemeral certificate, a client pinning it"
start tls tcp-server 127.0.0.1:0 --proto echo --tls
fp=$(grep -o 'sha256:[0-9a-f]*' "$tmp/tls.err" | head -n 1)
runsh "printf 'secret\\n' | \$X tcp-client --tls --pin $fp 127.0.0.1:$port"

say "Hexdump of a short exchange (-x)"
runsh "printf 'xport\\n' | \$X tcp-client -x 127.0.0.1:$echo_port"

echo
echo "demo: done"
