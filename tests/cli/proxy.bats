#!/usr/bin/env bats
# Proxies: --proxy URL on every outgoing connection (HTTP CONNECT, SOCKS5,
# SOCKS4a), and the socks5 / http-proxy protocols of tcp-server with
# --proxy-auth and --forward-allow.  Peers: curl, ncat, python3, openssl
# and xport itself.

load net_helpers

setup() {
	net_setup
}
teardown() { net_teardown; }

# An xport echo server as the target; sets EP.
echo_target() {
	bg_xport echo tcp-server --proto echo 127.0.0.1:0
	wait_ready echo
	EP=$PORT
}

# socks NAME ARGS...: an xport proxy server; sets PP.
proxy_server() {
	local name=$1
	shift
	bg_xport "$name" tcp-server "$@" 127.0.0.1:0
	wait_ready "$name"
	PP=$PORT
}

# A python3 HTTP server with a file; sets HP.
http_target() {
	mkdir -p "$T/www"
	printf 'served through the tunnel\n' >"$T/www/page.txt"
	(cd "$T/www" && exec $PY -u -m http.server --bind 127.0.0.1 0 >"$T/http.out" 2>&1) &
	BG_PIDS+=("$!")
	wait_for_line "$T/http.out" 'Serving HTTP on .* port [0-9]+'
	HP=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$T/http.out" | head -n1)
}

@test "socks5 server: curl --socks5-hostname fetches a page, names resolved by xport" {
	http_target
	proxy_server p --proto socks5
	run timeout 10 curl -sS --socks5-hostname "127.0.0.1:$PP" "http://localhost:$HP/page.txt"
	[ "$status" -eq 0 ]
	[ "$output" = "served through the tunnel" ]
	# with RFC 1929 user/password
	proxy_server pa --proto socks5 --proxy-auth alice:s3cret
	run timeout 10 curl -sS -x "socks5h://alice:s3cret@127.0.0.1:$PP" "http://localhost:$HP/page.txt"
	[ "$status" -eq 0 ]
	[ "$output" = "served through the tunnel" ]
	run timeout 10 curl -sS -x "socks5h://alice:wrong@127.0.0.1:$PP" "http://localhost:$HP/page.txt"
	[ "$status" -ne 0 ]
	wait_for_line "$T/pa.err" 'SOCKS5: authentication failed'
}

@test "http-proxy server: curl -p -x http:// tunnels, Basic auth, 407 and 405" {
	http_target
	proxy_server p --proto http-proxy --proxy-auth bob:pw
	run timeout 10 curl -sS -p -x "http://bob:pw@127.0.0.1:$PP" "http://127.0.0.1:$HP/page.txt"
	[ "$status" -eq 0 ]
	[ "$output" = "served through the tunnel" ]
	# no credentials: 407 with a Basic challenge
	run timeout 10 curl -sS -v -p -x "http://127.0.0.1:$PP" "http://127.0.0.1:$HP/page.txt"
	[ "$status" -ne 0 ]
	[[ "$output" == *"HTTP/1.1 407 Proxy Authentication Required"* ]]
	[[ "$output" == *"Proxy-Authenticate: Basic"* ]]
	# a plain proxy request (GET, not CONNECT): 405
	run timeout 10 curl -sS -o /dev/null -w '%{http_code}' -x "http://bob:pw@127.0.0.1:$PP" \
		"http://127.0.0.1:$HP/page.txt"
	[ "$output" = 405 ]
}

@test "ncat --proxy-type socks5 and http, with credentials, as clients of our servers" {
	echo_target
	proxy_server s --proto socks5 --proxy-auth u:p
	run bash -c "echo via-socks5 | timeout 10 ncat --proxy 127.0.0.1:$PP --proxy-type socks5 \
		--proxy-auth u:p 127.0.0.1 $EP"
	[ "$status" -eq 0 ]
	[ "$output" = via-socks5 ]
	proxy_server h --proto http-proxy --proxy-auth u:p
	run bash -c "echo via-http | timeout 10 ncat --proxy 127.0.0.1:$PP --proxy-type http \
		--proxy-auth u:p localhost $EP"
	[ "$status" -eq 0 ]
	[ "$output" = via-http ]
}

@test "our client through ncat -l --proxy-type http" {
	# ncat's proxy closes both ways at the first EOF (no half-close), so
	# the client's input stays open while the answer comes back.
	bg_xport ex tcp-server -k -e 'read -r l; echo "got $l"' 127.0.0.1:0
	wait_ready ex
	local np
	np=$(closed_port)
	ncat -v -l 127.0.0.1 "$np" --proxy-type http >"$T/ncat.out" 2>"$T/ncat.err" &
	BG_PIDS+=("$!")
	wait_for_line "$T/ncat.err" 'Listening on (0\.0\.0\.0|127\.0\.0\.1):'
	{ echo through-ncat; sleep 20; } | "$XPORT" tcp-client --proxy "http://127.0.0.1:$np" \
		"127.0.0.1:$PORT" >"$T/o" 2>"$T/c.err" &
	BG_PIDS+=("$!")
	wait_for_line "$T/o" '^got through-ncat$'
}

@test "xport to xport: 1 MiB each way through socks5 and http-proxy, half-close" {
	echo_target
	big_file 1048576
	proxy_server s --proto socks5
	local sp=$PP
	timeout 20 "$XPORT" tcp-client --proxy "socks5://127.0.0.1:$sp" "localhost:$EP" \
		<"$T/big" >"$T/o"
	[ "$(sha "$T/o")" = "$(sha "$T/big")" ]
	proxy_server h --proto http-proxy
	timeout 20 "$XPORT" tcp-client --proxy "http://127.0.0.1:$PP/" "127.0.0.1:$EP" \
		<"$T/big" >"$T/o"
	[ "$(sha "$T/o")" = "$(sha "$T/big")" ]
	if have_ipv6; then
		# the echo target listens on 127.0.0.1 only: refused, with the answer
		run_xp 10 tcp-client --proxy "socks5://127.0.0.1:$sp" "[::1]:$EP" </dev/null
		[ "$status" -eq 69 ]
		one_error_line "SOCKS5: connection refused by destination host"
	fi
}

@test "socks4a through a python3 SOCKS4a proxy: the name goes to the proxy" {
	echo_target
	cat >"$T/s4.py" <<-'EOF'
		import socket, sys
		s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
		print(s.getsockname()[1], flush=True)
		c, _ = s.accept()
		h = c.recv(8)
		assert h[:2] == b"\x04\x01" and h[4:8] == b"\x00\x00\x00\x01", h
		rest = b""
		while rest.count(b"\x00") < 2:
		    rest += c.recv(1)
		uid, name, _ = rest.split(b"\x00")
		assert uid == b"ci" and name == b"localhost", rest
		t = socket.create_connection(("127.0.0.1", int.from_bytes(h[2:4], "big")))
		c.sendall(b"\x00\x5a" + b"\x00" * 6)
		t.sendall(c.recv(100)); c.sendall(t.recv(100))
	EOF
	$PY -u "$T/s4.py" >"$T/s4.out" &
	BG_PIDS+=("$!")
	wait_for_line "$T/s4.out" '^[0-9]+$'
	echo four-a | timeout 10 "$XPORT" tcp-client \
		--proxy "socks4a://ci@127.0.0.1:$(cat "$T/s4.out")" "localhost:$EP" >"$T/o"
	[ "$(cat "$T/o")" = four-a ]
}

@test "TLS end to end through the tunnel: the target's name is verified" {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1
	bg_xport t tcp-server --tls --cert "$T/cert.pem" --key "$T/key.pem" --proto echo 127.0.0.1:0
	wait_ready t
	local tp=$PORT
	proxy_server s --proto socks5
	echo secret | timeout 10 "$XPORT" tcp-client --tls --ca "$T/cert.pem" \
		--proxy "socks5://127.0.0.1:$PP" "localhost:$tp" >"$T/o"
	[ "$(cat "$T/o")" = secret ]
	# 127.0.0.1 (the proxy's address) is not in the certificate: had the
	# proxy's name been checked, the line above would have failed; a wrong
	# target name fails.
	run_xp 10 tcp-client --tls --ca "$T/cert.pem" --servername wrong.example \
		--proxy "socks5://127.0.0.1:$PP" "localhost:$tp" </dev/null
	[ "$status" -eq 1 ]
	one_error_line "verif"
	# openssl s_server (-rev: answers each line reversed) behind an
	# http-proxy, pinned; it reports the server name we sent
	(sleep 30 | exec timeout 30 openssl s_server -rev -accept 0 -naccept 1 \
		-cert "$T/cert.pem" -key "$T/key.pem" -servername localhost \
		-cert2 "$T/cert.pem" -key2 "$T/key.pem" >"$T/ossl.out" 2>&1) &
	BG_PIDS+=("$!")
	wait_for_line "$T/ossl.out" '^ACCEPT'
	local op fp
	op=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/ossl.out" | head -n1)
	fp="sha256:$(openssl x509 -in "$T/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g')"
	proxy_server h --proto http-proxy
	echo to-openssl | timeout 10 "$XPORT" tcp-client --tls --pin "$fp" \
		--proxy "http://127.0.0.1:$PP" "localhost:$op" >"$T/o"
	[ "$(cat "$T/o")" = lssnepo-ot ]
	grep -q 'Hostname in TLS extension: "localhost"' "$T/ossl.out"
}

@test "malformed proxy URLs and misplaced proxy options: usage error 64, one line" {
	local u
	for u in ftp://h:1 http://h http://:1080 socks5://h:99999 socks4a://u:p@h:1 \
		'http://u%zz@h:1' 'http://@h:1' 'socks5://h:1/path' 'http://[::1:1080'; do
		run_xp 5 tcp-client --proxy "$u" 127.0.0.1:1
		[ "$status" -eq 64 ] || { echo "$u: $status"; return 1; }
		one_error_line "--proxy"
	done
	run_xp 5 tcp-client --proxy http://127.0.0.1:1 unix:/tmp/x
	[ "$status" -eq 64 ]
	one_error_line "--proxy requires a HOST:PORT address"
	run_xp 5 tcp-server --proto echo --proxy http://127.0.0.1:1 :0
	[ "$status" -eq 64 ]
	one_error_line "--proxy requires --forward"
	run_xp 5 pipe --proxy http://127.0.0.1:1 - unix:/tmp/x
	[ "$status" -eq 64 ]
	run_xp 5 tcp-server --proxy-auth a:b --proto echo :0
	[ "$status" -eq 64 ]
	one_error_line "--proxy-auth requires --proto socks5 or http-proxy"
	run_xp 5 tcp-server --proto socks5 --proxy-auth nocolon :0
	[ "$status" -eq 64 ]
	one_error_line "USER:PASS"
	run_xp 5 tcp-server --proto socks5 --forward-allow 10.0.0.0/33 :0
	[ "$status" -eq 64 ]
	one_error_line "invalid CIDR"
	run_xp 5 tcp-client --forward-allow 10.0.0.0/8 127.0.0.1:1
	[ "$status" -eq 64 ]
	# user and password are %-decoded
	run "$XPORT" --parse-only tcp-client --proxy 'socks5://a%40b:p%3Aw@127.0.0.1:1080' x:1
	[ "$status" -eq 0 ]
	[[ "$output" == *"proxy=2 127.0.0.1:1080 user=a@b password=p:w"* ]]
}

@test "refusals are exit 69 with the proxy's answer" {
	echo_target
	local dead
	dead=$(closed_port)
	proxy_server s --proto socks5 --forward-allow 10.0.0.0/8 --forward-allow ::1
	run_xp 10 tcp-client --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy 127.0.0.1:$PP: SOCKS5: connection not allowed by ruleset"
	wait_for_line "$T/s.err" 'SOCKS5: connection not allowed by ruleset'
	proxy_server h --proto http-proxy --forward-allow 10.0.0.0/8
	run_xp 10 tcp-client --proxy "http://127.0.0.1:$PP" "localhost:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy 127.0.0.1:$PP: 403 Forbidden"
	proxy_server s2 --proto socks5
	run_xp 10 tcp-client --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$dead" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy 127.0.0.1:$PP: SOCKS5: connection refused by destination host"
	run_xp 10 tcp-client --proxy "socks5://127.0.0.1:$PP" "no-such-host.invalid:80" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "SOCKS5: host unreachable"
	proxy_server h2 --proto http-proxy
	run_xp 10 tcp-client --proxy "http://127.0.0.1:$PP" "127.0.0.1:$dead" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy 127.0.0.1:$PP: 502 Bad Gateway"
	# the proxy itself unreachable
	run_xp 10 tcp-client --proxy "http://127.0.0.1:$dead" "127.0.0.1:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "connect 127.0.0.1:$EP via proxy 127.0.0.1:$dead: Connection refused"
	# --allow/--deny apply to the proxy's clients
	proxy_server d --proto socks5 --deny 127.0.0.0/8
	run_xp 10 tcp-client --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy"
}

@test "wrong or missing credentials: exit 69 naming the proxy's refusal" {
	echo_target
	proxy_server s --proto socks5 --proxy-auth alice:s3cret
	run_xp 10 tcp-client --proxy "socks5://alice:nope@127.0.0.1:$PP" "127.0.0.1:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy 127.0.0.1:$PP: SOCKS5: authentication failed"
	run_xp 10 tcp-client --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "SOCKS5: no acceptable authentication method"
	echo ok | timeout 10 "$XPORT" tcp-client --proxy "socks5://alice:s3cret@127.0.0.1:$PP" \
		"127.0.0.1:$EP" >"$T/o"
	[ "$(cat "$T/o")" = ok ]
	proxy_server h --proto http-proxy --proxy-auth alice:s3cret
	run_xp 10 tcp-client --proxy "http://alice:nope@127.0.0.1:$PP" "127.0.0.1:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "proxy 127.0.0.1:$PP: 407 Proxy Authentication Required"
}

@test "--check, --wait-for, pipe tcp:, subprocess --connect and --forward go through the proxy" {
	echo_target
	local dead
	dead=$(closed_port)
	proxy_server s --proto socks5 --forward-allow 127.0.0.1
	run_xp 10 tcp-client --check --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$EP"
	[ "$status" -eq 0 ]
	run_xp 10 tcp-client --check --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$dead"
	[ "$status" -eq 69 ]
	run_xp 10 tcp-client --wait-for 0.6 --proxy "socks5://127.0.0.1:$PP" "127.0.0.1:$dead"
	[ "$status" -eq 75 ]
	one_error_line "not reachable within"
	# only the proxy connects: a target it refuses proves the tunnel is used
	echo piped | timeout 10 "$XPORT" pipe --proxy "socks5://127.0.0.1:$PP" - "tcp:127.0.0.1:$EP" \
		>"$T/o"
	[ "$(cat "$T/o")" = piped ]
	run_xp 10 pipe --proxy "socks5://127.0.0.1:$PP" - "tcp:127.0.0.2:$EP" </dev/null
	[ "$status" -eq 69 ]
	one_error_line "SOCKS5: connection not allowed by ruleset"
	timeout 10 "$XPORT" subprocess --stderr inherit --proxy "socks5://127.0.0.1:$PP" \
		--connect "127.0.0.1:$EP" -- sh -c 'echo from-child; read -r line; echo "$line" >&2' 2>"$T/sub.err"
	grep -qx from-child "$T/sub.err"
	bg_xport f tcp-server --forward "127.0.0.1:$EP" --proxy "socks5://127.0.0.1:$PP" 127.0.0.1:0
	wait_ready f
	echo forwarded | timeout 10 "$XPORT" tcp-client "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = forwarded ]
	# and the forward really went through the proxy
	bg_xport f2 tcp-server --forward "127.0.0.2:$EP" --proxy "socks5://127.0.0.1:$PP" 127.0.0.1:0
	wait_ready f2
	run_xp 10 tcp-client "127.0.0.1:$PORT" </dev/null
	wait_for_line "$T/f2.err" "proxy 127.0.0.1:$PP: SOCKS5: connection not allowed by ruleset|SOCKS5: connection not allowed"
}

@test "OpenBSD nc -X 5 / -X connect and socat PROXY: as clients of our servers" {
	echo_target
	proxy_server s --proto socks5
	run bash -c "echo nc-socks5 | timeout 10 nc -N -X 5 -x 127.0.0.1:$PP 127.0.0.1 $EP"
	[ "$status" -eq 0 ]
	[ "$output" = nc-socks5 ]
	proxy_server h --proto http-proxy
	run bash -c "echo nc-connect | timeout 10 nc -N -X connect -x 127.0.0.1:$PP 127.0.0.1 $EP"
	[ "$status" -eq 0 ]
	[ "$output" = nc-connect ]
	run bash -c "echo via-socat | timeout 10 socat -t 5 - PROXY:127.0.0.1:127.0.0.1:$EP,proxyport=$PP"
	[ "$status" -eq 0 ]
	[ "$output" = via-socat ]
}
