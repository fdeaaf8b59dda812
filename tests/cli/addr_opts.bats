#!/usr/bin/env bats
# Address options against real peers: -4/-6, --source, --allow/--deny
# with host names and rule files, --verify-client, pipe --wait-for.

load net_helpers

setup() { net_setup; }
teardown() { net_teardown; }

# ---- -4 / -6 ----------------------------------------------------------

@test "-4/-6: a literal of the other family is a usage error" {
	local args
	for args in "tcp-client -4 [::1]:80" "tcp-client -6 127.0.0.1:80" \
		"tcp-server -6 127.0.0.1:0" "udp-echo -4 [::1]:0" \
		"tcp-server -4 --forward [::1]:9 :0" "pipe -6 - tcp:127.0.0.1:9" \
		"subprocess -4 --connect [::1]:9 -- true" "tcp-client -4 -6 x:1"; do
		# shellcheck disable=SC2086 # word splitting wanted
		run_xp 5 $args
		[ "$status" -eq 64 ] || { echo "$args: $status $err"; return 1; }
		one_error_line '' || { echo "$args"; return 1; }
	done
	run_xp 5 tcp-client -4 --parse-only 127.0.0.1:80
	[ "$status" -eq 0 ]
}

@test "-6 listener on :PORT refuses an IPv4 client, serves an IPv6 one" {
	have_ipv6 || skip "no IPv6"
	bg_xport srv tcp-server -6 --proto echo :0
	wait_ready srv
	grep -qx "listening on \[::\]:$PORT" "$T/srv.err"
	[ "$(grep -c '^listening on' "$T/srv.err")" -eq 1 ]
	run $PY -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)' "$PORT"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Connection refused"* ]]
	out=$(echo six | timeout 5 nc -6 -N ::1 "$PORT")
	[ "$out" = six ]
}

@test "-4 listener on :PORT binds IPv4 only; -4/-6 clients pick localhost of their family" {
	bg_xport srv tcp-server -4 --proto echo :0
	wait_ready srv
	grep -qx "listening on 0.0.0.0:$PORT" "$T/srv.err"
	[ "$(grep -c '^listening on' "$T/srv.err")" -eq 1 ]
	out=$(echo four | timeout 5 "$XPORT" tcp-client -4 ":$PORT")
	[ "$out" = four ]
	if have_ipv6; then
		run_xp 5 tcp-client -6 ":$PORT" </dev/null
		[ "$status" -eq 69 ]
		one_error_line 'refused'
	fi
}

# peer_server FAMILY HOST FILE: accept one connection, send back "peer ADDR"
# (the address the server saw); the port goes to FILE.
peer_server() {
	$PY - "$@" <<'PYEOF' &
import socket, sys, os
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
l = socket.socket(fam)
if fam == socket.AF_INET6:
    l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
l.bind((sys.argv[2], 0)); l.listen(5)
open(sys.argv[3] + ".t", "w").write("%d\n" % l.getsockname()[1])
os.rename(sys.argv[3] + ".t", sys.argv[3])
l.settimeout(20)
while True:
    c, a = l.accept()
    c.sendall(("peer %s %d\n" % (a[0], a[1])).encode())
    c.close()
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$3" '^[0-9]+$'
	PORT=$(cat "$3")
}

@test "-4/-6 are resolution hints for names (localhost)" {
	peer_server 4 127.0.0.1 "$T/p4"
	out=$(timeout 5 "$XPORT" tcp-client -4 "localhost:$PORT" </dev/null)
	[[ "$out" == "peer 127.0.0.1 "* ]]
	# localhost has no IPv6 address here, or one nobody listens on.
	run_xp 5 tcp-client -6 "localhost:$PORT" </dev/null
	[ "$status" -eq 69 ]
	one_error_line 'localhost'
	if have_ipv6 && getent ahostsv6 localhost | grep -q '^::1 '; then
		peer_server 6 ::1 "$T/p6"
		out=$(timeout 5 "$XPORT" tcp-client -6 "localhost:$PORT" </dev/null)
		[[ "$out" == "peer ::1 "* ]]
	fi
}

@test "-4/-6 udp: udp-echo -6 on :PORT ignores IPv4, pipe udp: -4 reaches it over IPv4" {
	have_ipv6 || skip "no IPv6"
	bg_xport u6 udp-echo -6 :0
	wait_ready u6
	grep -qx "listening on \[::\]:$PORT" "$T/u6.err"
	out=$(echo dgram | timeout 5 "$XPORT" pipe -6 - "udp::$PORT")
	[ "$out" = dgram ]
	run_xp 5 pipe -4 - "udp::$PORT" <<<"lost"
	[ -z "$(cat "$T/fg.out")" ]
	bg_xport u4 udp-echo -4 :0
	wait_ready u4
	grep -qx "listening on 0.0.0.0:$PORT" "$T/u4.err"
	out=$(echo four | timeout 5 "$XPORT" pipe -4 - "udp::$PORT")
	[ "$out" = four ]
}

# ---- --source ----------------------------------------------------------

@test "--source: the server sees the source address and port (tcp-client, nc and socat agree)" {
	peer_server 4 127.0.0.1 "$T/p"
	out=$(timeout 5 "$XPORT" tcp-client --source 127.0.0.2 "127.0.0.1:$PORT" </dev/null)
	[[ "$out" == "peer 127.0.0.2 "* ]]
	sport=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); print(s.getsockname()[1])')
	out=$(timeout 5 "$XPORT" tcp-client -s "127.0.0.2:$sport" "127.0.0.1:$PORT" </dev/null)
	[ "$out" = "peer 127.0.0.2 $sport" ]
	# The same job with nc and socat gives the same answer.
	out=$(timeout 5 nc -s 127.0.0.2 127.0.0.1 "$PORT" </dev/null)
	[[ "$out" == "peer 127.0.0.2 "* ]]
	out=$(timeout 5 socat -u "TCP:127.0.0.1:$PORT,bind=127.0.0.2" - </dev/null)
	[[ "$out" == "peer 127.0.0.2 "* ]]
	# :PORT keeps the kernel's address, a name resolves.
	sport=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	out=$(timeout 5 "$XPORT" tcp-client -s ":$sport" "127.0.0.1:$PORT" </dev/null)
	[ "$out" = "peer 127.0.0.1 $sport" ]
	out=$(timeout 5 "$XPORT" tcp-client -s localhost "127.0.0.1:$PORT" </dev/null)
	[[ "$out" == "peer 127.0.0.1 "* ]]
}

@test "--source applies to pipe tcp:/udp:, subprocess --connect and --forward" {
	peer_server 4 127.0.0.1 "$T/p"
	out=$(timeout 5 "$XPORT" pipe -s 127.0.0.3 - "tcp:127.0.0.1:$PORT" </dev/null)
	[[ "$out" == "peer 127.0.0.3 "* ]]
	# the peer's line goes to the child's stdin
	timeout 5 "$XPORT" subprocess -s 127.0.0.4 --connect "127.0.0.1:$PORT" -- \
		sh -c "cat >'$T/child'"
	[[ "$(cat "$T/child")" == "peer 127.0.0.4 "* ]]
	bg_xport fwd tcp-server --source 127.0.0.5 --forward "127.0.0.1:$PORT" 127.0.0.1:0
	wait_ready fwd
	out=$(timeout 5 "$XPORT" tcp-client "127.0.0.1:$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/fwd.err")" </dev/null)
	[[ "$out" == "peer 127.0.0.5 "* ]]
	# udp: a python server answers with the sender's address
	$PY - "$T/up" <<'PYEOF' &
import socket, sys, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".t", "w").write("%d\n" % s.getsockname()[1]); os.rename(sys.argv[1] + ".t", sys.argv[1])
s.settimeout(20)
d, a = s.recvfrom(100); s.sendto(("peer %s %d\n" % a).encode(), a)
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$T/up" '^[0-9]+$'
	out=$(echo x | timeout 5 "$XPORT" pipe -s 127.0.0.6:0 - "udp:127.0.0.1:$(cat "$T/up")")
	[[ "$out" == "peer 127.0.0.6 "* ]]
}

@test "--source failures: address in use and not local are exit 69, one line; wrong family 64" {
	peer_server 4 127.0.0.1 "$T/p"
	$PY - "$T/busy" <<'PYEOF' &
import socket, sys, os, time
s = socket.socket(); s.bind(("127.0.0.2", 0)); s.listen(1)
open(sys.argv[1] + ".t", "w").write("%d\n" % s.getsockname()[1]); os.rename(sys.argv[1] + ".t", sys.argv[1])
time.sleep(30)
PYEOF
	BG_PIDS+=("$!")
	wait_for_line "$T/busy" '^[0-9]+$'
	run_xp 5 tcp-client -s "127.0.0.2:$(cat "$T/busy")" "127.0.0.1:$PORT" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "from 127.0.0.2:$(cat "$T/busy"): Address already in use"
	run_xp 5 pipe -s 192.0.2.1 - "tcp:127.0.0.1:$PORT" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "from 192.0.2.1: Cannot assign requested address"
	run_xp 5 tcp-client -s ::1 "127.0.0.1:$PORT"
	[ "$status" -eq 64 ]
	one_error_line "is an IPv6 address, 127.0.0.1 is IPv4"
	run_xp 5 tcp-client -s nosuch.invalid "127.0.0.1:$PORT"
	[ "$status" -eq 69 ]
	one_error_line "nosuch.invalid"
	run_xp 5 tcp-server -s 127.0.0.1 :0
	[ "$status" -eq 64 ]
	run_xp 5 pipe -s 127.0.0.1 - unix:/nonexistent
	[ "$status" -eq 64 ]
	one_error_line "requires a TCP or UDP address"
}

# ---- --allow / --deny: host names and rule files -------------------------

# try_from SOURCE: echo through the server at $SPORT from SOURCE; sets out
try_from() {
	out=$(echo "from $1" | timeout 5 "$XPORT" tcp-client -s "$1" "127.0.0.1:$SPORT" 2>/dev/null) || true
}

@test "rule files: comments, blank lines, CIDRs and host names; deny wins over allow" {
	printf '# who may connect\n\n  127.0.0.0/8   # loopback\n\t127.0.0.9\n' >"$T/allow"
	printf 'localhost # the name, resolved at start\n' >"$T/deny"
	bg_xport srv tcp-server -v --proto echo --allow-file "$T/allow" --deny-file "$T/deny" \
		--deny 127.0.0.3 127.0.0.1:0
	wait_ready srv
	SPORT=$PORT
	try_from 127.0.0.2
	[ "$out" = "from 127.0.0.2" ]
	try_from 127.0.0.1
	[ -z "$out" ]
	try_from 127.0.0.3
	[ -z "$out" ]
	wait_for_count "$T/srv.err" 'refused 127.0.0.(1|3):.*--allow/--deny' 2
}

@test "--allow HOST: a host name on the command line is its addresses" {
	bg_xport srv tcp-server --proto echo --allow localhost 127.0.0.1:0
	wait_ready srv
	SPORT=$PORT
	try_from 127.0.0.1
	[ "$out" = "from 127.0.0.1" ]
	try_from 127.0.0.2
	[ -z "$out" ]
	# socat as the client is refused the same way (a reset, before a byte)
	run timeout 5 socat -u - "TCP:127.0.0.1:$SPORT,bind=127.0.0.2" <<<"x"
	[ -z "$output" ] || [[ "$output" == *reset* ]] || [[ "$output" == *"Broken pipe"* ]]
}

@test "rule files: missing is 66, malformed is 64 naming file:line, unknown name 69" {
	run_xp 5 tcp-server --allow-file "$T/none" :0
	[ "$status" -eq 66 ]
	one_error_line "--allow-file $T/none: No such file or directory"
	printf '10.0.0.0/8\n# fine\n10.1.2.3 10.4.5.6\n' >"$T/bad"
	run_xp 5 udp-echo --deny-file "$T/bad" :0
	[ "$status" -eq 64 ]
	one_error_line "$T/bad:3: invalid rule '10.1.2.3 10.4.5.6'"
	printf '300.0.0.1\n' >"$T/bad"
	run_xp 5 pipe --allow-file "$T/bad" tcp-listen:0 -
	[ "$status" -eq 64 ]
	one_error_line "$T/bad:1: invalid rule '300.0.0.1'"
	printf 'nosuch.invalid\n' >"$T/bad"
	run_xp 5 tcp-server --deny-file "$T/bad" :0
	[ "$status" -eq 69 ]
	one_error_line "$T/bad:1: nosuch.invalid"
	run_xp 5 tcp-server --allow nosuch.invalid :0
	[ "$status" -eq 69 ]
	one_error_line "--allow nosuch.invalid"
	run_xp 5 tcp-server --allow 'a/b' :0
	[ "$status" -eq 64 ]
	run_xp 5 tcp-server --allow-file "$T" :0
	[ "$status" -eq 66 ]
	run_xp 5 tcp-server --allow-file "$T/none" unix:"$T/s"
	[ "$status" -eq 64 ]
}

@test "an empty --allow-file is an allow list that lets nobody in" {
	printf '# nobody\n' >"$T/empty"
	bg_xport srv tcp-server --proto echo --allow-file "$T/empty" 127.0.0.1:0
	wait_ready srv
	SPORT=$PORT
	try_from 127.0.0.1
	[ -z "$out" ]
}

# ---- --verify-client: mutual TLS -----------------------------------------

# A CA, a client certificate it signed, and a self-signed (rogue) one.
make_client_pki() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
		-days 2 -subj "/CN=xport test CA" >/dev/null 2>&1
	openssl req -newkey rsa:2048 -nodes -keyout "$T/client.key" -out "$T/client.csr" \
		-subj /CN=client >/dev/null 2>&1
	openssl x509 -req -in "$T/client.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -days 2 -out "$T/client.pem" >/dev/null 2>&1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/rogue.key" -out "$T/rogue.pem" \
		-days 2 -subj /CN=client >/dev/null 2>&1
}

# s_client [NAME]: connect with openssl s_client (with NAME.pem/NAME.key
# as client certificate if given); sets out to what the server sent.
s_client() {
	local cert=()
	[ -n "${1:-}" ] && cert=(-cert "$T/$1.pem" -key "$T/$1.key")
	out=$(timeout 10 openssl s_client -quiet -connect "127.0.0.1:$PORT" "${cert[@]}" \
		</dev/null 2>/dev/null) || true
}

@test "--ca on a TLS server requires a valid client certificate (openssl s_client)" {
	make_client_pki
	bg_xport srv tcp-server -v --tls --ca "$T/ca.pem" -e 'echo welcome' 127.0.0.1:0
	wait_ready srv
	s_client client
	[ "$out" = welcome ]
	s_client
	[ -z "$out" ]
	s_client rogue
	[ -z "$out" ]
	# xport's own client with --cert/--key is let in too
	out=$(timeout 10 "$XPORT" tcp-client --tls --insecure --cert "$T/client.pem" \
		--key "$T/client.key" "127.0.0.1:$PORT" </dev/null)
	[ "$out" = welcome ]
	run_xp 10 tcp-client --tls --insecure "127.0.0.1:$PORT" </dev/null
	[ -z "$(cat "$T/fg.out")" ]
	[ "$status" -ne 0 ]
}

@test "--verify-client optional: no certificate is fine, a bad one is refused" {
	make_client_pki
	bg_xport srv tcp-server --tls --ca "$T/ca.pem" --verify-client optional \
		-e 'echo welcome' 127.0.0.1:0
	wait_ready srv
	s_client
	[ "$out" = welcome ]
	s_client client
	[ "$out" = welcome ]
	s_client rogue
	[ -z "$out" ]
	# pipe's tls-listen: takes it as well
	bg_xport p pipe --ca "$T/ca.pem" --verify-client optional -k tls-listen:127.0.0.1:0 \
		'exec:echo piped'
	wait_ready p
	s_client
	[ "$out" = piped ]
	s_client rogue
	[ -z "$out" ]
}

@test "--pin on a TLS server pins the client certificate; optional lets none in" {
	make_client_pki
	local fp
	fp=$(openssl x509 -in "$T/client.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
	bg_xport srv tcp-server --tls --pin "sha256:$fp" -e 'echo welcome' 127.0.0.1:0
	wait_ready srv
	s_client client
	[ "$out" = welcome ]
	s_client rogue
	[ -z "$out" ]
	s_client
	[ -z "$out" ]
	bg_xport opt tcp-server --tls --pin "sha256:$fp" --verify-client optional \
		-e 'echo welcome' 127.0.0.1:0
	wait_ready opt
	s_client
	[ "$out" = welcome ]
	s_client rogue
	[ -z "$out" ]
}

@test "--verify-client needs a TLS server and --ca or --pin" {
	run_xp 5 tcp-server --tls --verify-client optional :0
	[ "$status" -eq 64 ]
	one_error_line "requires --ca or --pin"
	run_xp 5 tcp-client --tls --ca /dev/null --verify-client optional 127.0.0.1:1
	[ "$status" -eq 64 ]
	run_xp 5 pipe --ca /dev/null --verify-client optional - tls:127.0.0.1:1
	[ "$status" -eq 64 ]
	one_error_line "requires a tls-listen: endpoint"
	run_xp 5 tcp-server --tls --ca /dev/null --verify-client sometimes :0
	[ "$status" -eq 64 ]
}

# ---- pipe --wait-for ------------------------------------------------------

@test "pipe --wait-for: tcp: against a server started 1 s later (echo back, exit 0)" {
	local p
	p=$(closed_port)
	echo "late hello" >"$T/pw.in"
	bg_xport pw pipe -v --wait-for 10 - "tcp:127.0.0.1:$p"
	local pid=$BG_PID
	sleep 1
	kill -0 "$pid" # still trying
	bg_xport srv tcp-server --proto echo "127.0.0.1:$p"
	wait_exit "$pid" 15
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/pw.out")" = "late hello" ]
	grep -q "retrying" "$T/pw.err"
}

@test "pipe --wait-for: unix: and tls: endpoints retry too, --source binds every retry" {
	echo "to unix" >"$T/pu.in"
	bg_xport pu pipe --wait-for 10 - "unix:$T/sock"
	local pid=$BG_PID
	sleep 1
	bg_xport usrv tcp-server --proto echo "unix:$T/sock"
	wait_exit "$pid" 15
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/pu.out")" = "to unix" ]

	local p
	p=$(closed_port)
	echo "over tls" >"$T/pt.in"
	bg_xport pt pipe --wait-for 10 --insecure - "tls:127.0.0.1:$p"
	pid=$BG_PID
	sleep 1
	bg_xport tsrv tcp-server --tls --proto echo "127.0.0.1:$p"
	wait_exit "$pid" 15
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/pt.out")" = "over tls" ]

	p=$(closed_port)
	bg_xport ps pipe --wait-for 10 -s 127.0.0.7 - "tcp:127.0.0.1:$p"
	pid=$BG_PID
	sleep 1
	$PY - "$p" <<'PYEOF' &
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(5); l.settimeout(20)
c, a = l.accept(); c.sendall(("peer %s\n" % a[0]).encode()); c.close()
PYEOF
	BG_PIDS+=("$!")
	wait_exit "$pid" 15
	[ "$RC" -eq 0 ]
	[ "$(cat "$T/ps.out")" = "peer 127.0.0.7" ]
}

@test "pipe --wait-for spent: exit 75 and one line; only for connecting endpoints" {
	local p
	p=$(closed_port)
	run_xp 10 pipe --wait-for 1 - "tcp:127.0.0.1:$p" </dev/null
	[ "$status" -eq 75 ]
	one_error_line "connect 127.0.0.1:$p: not reachable within 1 s: Connection refused"
	run_xp 10 pipe --wait-for 1 - "unix:$T/nothing" </dev/null
	[ "$status" -eq 75 ]
	one_error_line "not reachable within 1 s"
	run_xp 5 pipe --wait-for 1 - exec:cat
	[ "$status" -eq 64 ]
	one_error_line "requires a tcp:, tls: or unix: endpoint"
	# without --wait-for a refusal is still 69 at once
	run_xp 5 pipe - "tcp:127.0.0.1:$p" </dev/null
	[ "$status" -eq 69 ]
}
