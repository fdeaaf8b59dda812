#!/usr/bin/env bats
# TLS: self-signed servers with fingerprints, --cert/--key/--ca, --pin,
# --insecure, --servername, --alpn, tls:/tls-listen: endpoints.

load net_helpers

setup() {
	net_setup
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
		>/dev/null 2>&1
}
teardown() { net_teardown; }

fp_of() {
	sed -n 's/^fingerprint \(sha256:[0-9a-f]*\)$/\1/p' "$1"
}

@test "a server without --cert prints its fingerprint before the readiness line" {
	bg_xport s tcp-server --tls --proto echo 127.0.0.1:0
	wait_ready s
	grep -Eqx 'fingerprint sha256:[0-9a-f]{64}' "$T/s.err"
	[ "$(sed -n 1p "$T/s.err" | cut -c1-12)" = "fingerprint " ]
	[ "$(sed -n 2p "$T/s.err" | cut -c1-13)" = "listening on " ]
	# the fingerprint is the certificate's SHA-256
	local fp want
	fp=$(fp_of "$T/s.err")
	want=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:$PORT" 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
	[ "$fp" = "sha256:$want" ]
}

@test "tcp-client --tls: --pin accepts, the default verification refuses (exit 1)" {
	bg_xport s tcp-server --tls --proto echo 127.0.0.1:0
	wait_ready s
	local fp
	fp=$(fp_of "$T/s.err")
	echo pinned | timeout 5 "$XPORT" tcp-client --tls --pin "$fp" "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = pinned ]
	# pins in upper case with colons are the same pin
	local up
	up=$(echo "${fp#sha256:}" | tr a-f A-F | sed 's/../&:/g; s/:$//')
	echo colons | timeout 5 "$XPORT" tcp-client --tls --pin "sha256:$up" "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = colons ]
	run_xp 5 tcp-client --tls "127.0.0.1:$PORT"
	[ "$status" -eq 1 ]
	one_error_line "connect 127.0.0.1:$PORT: "
	run_xp 5 tcp-client --tls --pin "sha256:$(printf '0%.0s' $(seq 64))" "127.0.0.1:$PORT"
	[ "$status" -eq 1 ]
	one_error_line "connect 127.0.0.1:$PORT: "
	echo insecure | timeout 5 "$XPORT" tcp-client --tls --insecure "127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = insecure ]
}

@test "--cert/--key server, --ca client with --servername; 1 MiB echo over TLS with half-close" {
	big_file 1048576
	bg_xport s tcp-server --tls --cert "$T/cert.pem" --key "$T/key.pem" --proto echo 127.0.0.1:0
	wait_ready s
	! grep -q '^fingerprint' "$T/s.err"
	timeout 20 "$XPORT" tcp-client --tls --ca "$T/cert.pem" --servername localhost \
		"127.0.0.1:$PORT" <"$T/big" >"$T/o"
	[ "$(sha "$T/o")" = "$(sha "$T/big")" ]
	# the host of ADDR is the default name verified
	echo byname | timeout 5 "$XPORT" tcp-client --tls --ca "$T/cert.pem" "localhost:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = byname ]
	run_xp 5 tcp-client --tls --ca "$T/cert.pem" --servername wrong.example "127.0.0.1:$PORT"
	[ "$status" -eq 1 ]
}

@test "unreadable --ca, --cert or --key: exit 66 with one line" {
	run_xp 5 tcp-client --tls --ca "$T/missing.pem" 127.0.0.1:1
	[ "$status" -eq 66 ]
	one_error_line "missing.pem"
	run_xp 5 tcp-server --tls --cert "$T/missing.pem" 127.0.0.1:0
	[ "$status" -eq 66 ]
	one_error_line "missing.pem"
	run_xp 5 tcp-server --tls --cert "$T/cert.pem" --key "$T/nokey.pem" 127.0.0.1:0
	[ "$status" -eq 66 ]
	one_error_line "nokey.pem"
	echo garbage >"$T/bad.pem"
	run_xp 5 tcp-server --tls --cert "$T/bad.pem" 127.0.0.1:0
	[ "$status" -eq 66 ]
	one_error_line "bad.pem"
}

@test "-q: no fingerprint, no readiness line" {
	bg_xport s -q tcp-server --tls --proto echo 127.0.0.1:0 --port-file "$T/port"
	wait_for_line "$T/port" '^[0-9]+$'
	echo q | timeout 5 "$XPORT" tcp-client --tls --insecure "127.0.0.1:$(cat "$T/port")" >"$T/o"
	[ "$(cat "$T/o")" = q ]
	[ ! -s "$T/s.err" ]
}

@test "--alpn is offered and accepted" {
	bg_xport s tcp-server --tls --alpn h2,http/1.1 --proto echo 127.0.0.1:0
	wait_ready s
	echo | timeout 5 openssl s_client -alpn http/1.1 -connect "127.0.0.1:$PORT" >"$T/o" 2>&1 || true
	grep -q 'ALPN protocol: http/1.1' "$T/o"
}

@test "TLS 1.3 servers issue one session ticket, and it resumes" {
	bg_xport s tcp-server -k --tls --cert "$T/cert.pem" --key "$T/key.pem" --proto echo 127.0.0.1:0
	wait_ready s
	(echo one; sleep 1) | timeout 5 openssl s_client -msg -connect "127.0.0.1:$PORT" \
		-sess_out "$T/sess" >"$T/o1" 2>&1 || true
	grep -q '^one$' "$T/o1"
	[ "$(grep -c '<<< TLS 1.3, Handshake.*NewSessionTicket' "$T/o1")" -eq 1 ]
	(echo two; sleep 1) | timeout 5 openssl s_client -connect "127.0.0.1:$PORT" \
		-sess_in "$T/sess" >"$T/o2" 2>&1 || true
	grep -q '^Reused, TLSv1.3' "$T/o2"
	grep -q '^two$' "$T/o2"
}

@test "openssl s_server and s_client interoperate" {
	bg_xport s tcp-server --tls --cert "$T/cert.pem" --key "$T/key.pem" --proto echo 127.0.0.1:0
	wait_ready s
	(echo interop; sleep 1) | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$PORT" >"$T/o" 2>/dev/null || true
	grep -qx interop "$T/o"
	local p
	p=$(closed_port)
	timeout 10 openssl s_server -quiet -naccept 1 -accept "$p" -cert "$T/cert.pem" -key "$T/key.pem" </dev/null >"$T/srv" 2>&1 &
	local spid=$!
	BG_PIDS+=("$spid")
	run_xp 8 tcp-client --tls --ca "$T/cert.pem" --servername localhost --wait-for 5 --check "127.0.0.1:$p"
	[ "$status" -eq 0 ]
}

@test "pipe: tls-listen: and tls: endpoints" {
	bg_xport l pipe tls-listen:127.0.0.1:0 exec:cat
	wait_ready l
	local fp
	fp=$(fp_of "$T/l.err")
	echo over-tls | timeout 5 "$XPORT" pipe --pin "$fp" - "tls:127.0.0.1:$PORT" >"$T/o"
	[ "$(cat "$T/o")" = over-tls ]
}

@test "subprocess --tls --connect and --listen" {
	bg_xport s tcp-server --tls --proto echo 127.0.0.1:0
	wait_ready s
	local fp
	fp=$(fp_of "$T/s.err")
	run_xp 5 subprocess --tls --pin "$fp" --connect "127.0.0.1:$PORT" -- sh -c 'echo via-sub; read x; echo "$x" >&2'
	[ "$status" -eq 0 ]
	[ "$err" = via-sub ] || [ -z "$err" ]
	bg_xport l subprocess --tls --listen 127.0.0.1:0 -- echo listened
	wait_ready l
	fp=$(fp_of "$T/l.err")
	timeout 5 "$XPORT" tcp-client --tls --pin "$fp" "127.0.0.1:$PORT" </dev/null >"$T/o"
	[ "$(cat "$T/o")" = listened ]
}

@test "an established TLS connection reset by the peer: exit 1, not 69" {
	reset_server now "$T/cert.pem" "$T/key.pem"
	for i in 1 2 3; do
		run_xp 5 tcp-client --tls --insecure "127.0.0.1:$PORT" < <(sleep 5)
		[ "$status" -eq 1 ] || { echo "try $i: exit $status: $err"; return 1; }
		one_error_line "Connection reset by peer"
	done
	run_xp 5 pipe --insecure - "tls:127.0.0.1:$PORT" < <(sleep 5)
	[ "$status" -eq 1 ]
	one_error_line "Connection reset by peer"
}

@test "TLS reset after bytes came: exit 1, the bytes delivered" {
	reset_server after-data "$T/cert.pem" "$T/key.pem"
	rm -f "$T/fg.out"
	run_xp 10 tcp-client --tls --insecure "127.0.0.1:$PORT" < <(ack_after_hello "$T/fg.out")
	[ "$status" -eq 1 ]
	[ "$(cat "$T/fg.out")" = hello ]
	one_error_line "Connection reset by peer"
}
