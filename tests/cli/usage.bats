#!/usr/bin/env bats
# Usage errors (exit 64, one `xport:` line on stderr), help and version.

load helpers

setup() {
	setup_xport
}

# ------------------------------------------------------------ usage errors

@test "missing and unknown commands" {
	check_usage_table <<'EOF_T'
''
foo
TCP-SERVER
tcp
-
-v
--grace 1
help foo
help pipe extra
EOF_T
}

@test "unknown options" {
	check_usage_table <<'EOF_T'
--frobnicate tcp-server :0
-z tcp-server :0
tcp-server --frobnicate :0
tcp-server -z :0
tcp-server --high :0
tcp-server --HIGH-WATER 1 :0
tcp-client -xz localhost:1
tcp-client --=x localhost:1
EOF_T
}

@test "missing option values" {
	check_usage_table <<'EOF_T'
tcp-server :0 --high-water
tcp-server :0 --low-water
tcp-server :0 --read-size
tcp-server :0 --eof-timeout
tcp-server :0 --idle-timeout
tcp-server :0 --connect-timeout
tcp-server :0 --grace
tcp-server :0 --proto
tcp-server :0 -e
tcp-server :0 --exec
tcp-server :0 --forward
tcp-server :0 --max-conns
tcp-server :0 --backlog
tcp-server :0 --workers
tcp-server :0 --allow
tcp-server :0 --deny
tcp-server :0 --port-file
tcp-server :0 --port-file=
tcp-server :0 --tls --cert
tcp-server :0 --tls --cert=
tcp-client localhost:1 --tls --key
tcp-client localhost:1 --tls --ca
tcp-client localhost:1 --tls --pin
tcp-client localhost:1 --tls --servername
tcp-client localhost:1 --tls --servername=
tcp-client localhost:1 --tls --alpn
tcp-client localhost:1 --wait-for
subprocess --connect
subprocess --listen
subprocess --stderr
subprocess --signal
subprocess --kill-after
--grace
EOF_T
}

@test "flags given a value" {
	check_usage_table <<'EOF_T'
tcp-client --tls=yes localhost:1
tcp-client --check=1 localhost:1
tcp-server --keep-open=1 :0
tcp-server --half-close=no :0
tcp-server --hexdump=1 :0
--verbose=2 tcp-server :0
EOF_T
}

@test "malformed sizes" {
	check_usage_table <<'EOF_T'
tcp-server :0 --high-water ''
tcp-server :0 --high-water x
tcp-server :0 --high-water 1x
tcp-server :0 --high-water -1
tcp-server :0 --high-water +1
tcp-server :0 --high-water ' 1'
tcp-server :0 --high-water '1 '
tcp-server :0 --high-water 1.5K
tcp-server :0 --high-water 1KK
tcp-server :0 --high-water 1T
tcp-server :0 --high-water K
tcp-server :0 --high-water 0x10
tcp-server :0 --high-water 18446744073709551616
tcp-server :0 --high-water 99999999999999999999999
tcp-server :0 --high-water 17179869184G
tcp-server :0 --low-water -5
tcp-server :0 --low-water 4611686018427387904
tcp-server :0 --read-size 0
tcp-server :0 --read-size 2G
tcp-server :0 --read-size=-1
pipe - tcp:localhost:1 --high-water=abc
EOF_T
}

@test "low watermark above high watermark" {
	check_usage_table <<'EOF_T'
tcp-server :0 --high-water 1K --low-water 2K
tcp-server :0 --low-water 1025 --high-water 1K
tcp-server :0 --high-water 0 --low-water 1
pipe - tcp:localhost:1 --high-water 10 --low-water 11
EOF_T
}

@test "malformed durations" {
	check_usage_table <<'EOF_T'
tcp-server :0 --eof-timeout -1
tcp-server :0 --eof-timeout x
tcp-server :0 --eof-timeout ''
tcp-server :0 --eof-timeout .
tcp-server :0 --eof-timeout 1e3
tcp-server :0 --eof-timeout inf
tcp-server :0 --eof-timeout nan
tcp-server :0 --eof-timeout 5s
tcp-server :0 --eof-timeout 1,5
tcp-server :0 --idle-timeout -0.5
tcp-server :0 --connect-timeout 1..2
tcp-server :0 --grace -1
--grace abc tcp-server :0
tcp-client localhost:1 --wait-for -3
tcp-client localhost:1 --wait-for 99999999999
subprocess --kill-after x -- true
EOF_T
}

@test "malformed ports and addresses" {
	check_usage_table <<'EOF_T'
tcp-server
tcp-server ''
tcp-server 65536
tcp-server 99999
tcp-server -1
tcp-server :
tcp-server :x
tcp-server :http
tcp-server : 80
tcp-server :+80
tcp-server ':80 '
tcp-server 123456
tcp-server localhost
tcp-server host:
tcp-server host:65536
tcp-server ::1:80
tcp-server fe80::1
tcp-server [::1]
tcp-server [::1]80
tcp-server []:80
tcp-server [::1:80
tcp-server [zz::1]:80
tcp-server [1.2.3.4]:80
tcp-server 999.1.1.1:80
tcp-server 1.2.3:80
tcp-server 'bad host:80'
tcp-server 'a/b:80'
tcp-server unix:
tcp-server unix:@
tcp-server "unix:$(printf 'p%.0s' {1..108})"
tcp-server :0 :1
tcp-client
tcp-client :0
tcp-client 0
tcp-client localhost:0
tcp-client localhost
tcp-client localhost:1 extra
udp-echo
udp-echo x
udp-echo 70000
tcp-server --forward localhost:0 :0
tcp-server --forward nope :0
subprocess --connect localhost:0 -- true
subprocess --connect '' -- true
subprocess --listen '[::1]' -- true
EOF_T
}

@test "malformed pipe endpoints" {
	check_usage_table <<'EOF_T'
pipe
pipe -
pipe - stdio extra
pipe - -
pipe stdio stdio
pipe stdio -
pipe - foo
pipe - foo:bar
pipe - tcp:
pipe - tcp:localhost
pipe - tcp:localhost:0
pipe - tcp:localhost:65536
pipe - tcp:unix:/tmp/x
pipe - tcp-listen:
pipe - tcp-listen:host
pipe - tcp-listen:unix:/tmp/x
pipe - tls:host
pipe - tls-listen:x:y
pipe - unix:
pipe - unix-listen:
pipe - unix:@
pipe - udp:host
pipe - udp:host:0
pipe - exec:
pipe - 'exec:   '
pipe - fd:
pipe - fd:x
pipe - fd:-1
pipe - fd:99999999999
pipe - 'tcp:[::1]'
EOF_T
}

@test "malformed TLS options" {
	check_usage_table <<'EOF_T'
tcp-client --tls --pin 00 localhost:1
tcp-client --tls --pin sha256: localhost:1
tcp-client --tls --pin sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde localhost:1
tcp-client --tls --pin sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0 localhost:1
tcp-client --tls --pin sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg localhost:1
tcp-client --tls --pin md5:0123456789abcdef0123456789abcdef localhost:1
tcp-client --tls --alpn '' localhost:1
tcp-client --tls --alpn h2, localhost:1
tcp-client --tls --alpn ,h2 localhost:1
tcp-client --tls --alpn h2,,http/1.1 localhost:1
EOF_T
}

@test "malformed server options" {
	check_usage_table <<'EOF_T'
tcp-server --max-conns 0 :0
tcp-server --max-conns -1 :0
tcp-server --max-conns x :0
tcp-server --max-conns 99999999999 :0
tcp-server --backlog 0 :0
tcp-server --backlog 65536 :0
tcp-server --workers 0 --proto echo :0
tcp-server --workers 1025 --proto echo :0
tcp-server --allow x/8 :0
tcp-server --allow -x :0
tcp-server --allow-file '' :0
tcp-server --allow 10.0.0.0/33 :0
tcp-server --allow ::/129 :0
tcp-server --allow 10.0.0.0/ :0
tcp-server --allow 10.0.0.0/-1 :0
tcp-server --allow 10.0.0.0/8/8 :0
tcp-server --deny 256.0.0.0/8 :0
tcp-server --deny 1.2.3 :0
tcp-server --deny local:host :0
tcp-server --proto nope :0
tcp-server --proto ECHO :0
tcp-server --proto '' :0
EOF_T
}

@test "malformed subprocess options" {
	check_usage_table <<'EOF_T'
subprocess
subprocess --
subprocess -- ''
subprocess --stderr both -- true
subprocess --stderr '' -- true
subprocess --signal FOO -- true
subprocess --signal SIG -- true
subprocess --signal 0 -- true
subprocess --signal -15 -- true
subprocess --signal 65 -- true
subprocess --signal SIG15 -- true
subprocess --signal 1.5 -- true
EOF_T
}

@test "options not valid for the command" {
	check_usage_table <<'EOF_T'
tcp-client --forward localhost:2 localhost:1
tcp-client --proto echo localhost:1
tcp-client -e cat localhost:1
tcp-client -k localhost:1
tcp-client --once localhost:1
tcp-client --port-file f localhost:1
tcp-client --workers 2 localhost:1
tcp-client --stderr merge localhost:1
tcp-server --wait-for 1 :0
tcp-server --check :0
udp-echo --crlf :0
tcp-server --no-readline :0
tcp-server --connect localhost:1 :0
tcp-server --signal TERM :0
tcp-server --tls --servername x :0
udp-echo --tls :0
udp-echo --half-close :0
udp-echo --once :0
udp-echo --max-conns 3 :0
udp-echo --workers 2 :0
udp-echo --progress :0
udp-echo --eof-timeout 1 :0
subprocess -k -- true
subprocess --once -- true
subprocess --workers 2 -- true
subprocess --proto echo -- true
pipe --tls - tcp:localhost:1
pipe --forward localhost:1 - tcp:localhost:1
pipe --workers 2 - tcp-listen:0
pipe --check - tcp:localhost:1
--high-water 1K tcp-server :0
--tls tcp-client localhost:1
-k tcp-server :0
-x tcp-server :0
EOF_T
}

@test "conflicting options" {
	check_usage_table <<'EOF_T'
subprocess --connect localhost:1 --listen :0 -- true
tcp-server --once -k :0
tcp-server -k --once --proto echo :0
pipe -k --once tcp-listen:0 -
tcp-server --proto exec :0
tcp-server --proto forward :0
tcp-server --proto echo -e cat :0
tcp-server --proto exec --forward localhost:1 :0
tcp-server -e cat --forward localhost:1 :0
tcp-server --proto chargen --forward localhost:1 :0
tcp-server --workers 2 :0
tcp-server --workers 2 --proto stdio :0
-q -v tcp-server --proto echo :0
tcp-server -qv --proto echo :0
tcp-client --quiet --verbose localhost:1
tcp-client --tls --insecure --pin sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef localhost:1
tcp-client --tls --insecure --ca ca.pem localhost:1
EOF_T
}

@test "options that need another option or endpoint" {
	check_usage_table <<'EOF_T'
tcp-client --cert c.pem localhost:1
tcp-client --ca ca.pem localhost:1
tcp-client --insecure localhost:1
tcp-client --servername x localhost:1
tcp-client --alpn h2 localhost:1
tcp-client --pin sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef localhost:1
tcp-server --key k.pem :0
tcp-server --tls --key k.pem :0
subprocess --tls -- true
subprocess --port-file f -- true
subprocess --connect localhost:1 --allow 10.0.0.0/8 -- true
subprocess --listen unix:/tmp/s --port-file f -- true
pipe --cert c.pem - tcp:localhost:1
pipe --insecure - tcp-listen:0
pipe -k - tcp:localhost:1
pipe --once - tcp:localhost:1
pipe --port-file f - tcp:localhost:1
pipe --port-file f - unix-listen:/tmp/s
pipe --allow 10.0.0.0/8 - unix-listen:/tmp/s
pipe --backlog 5 - exec:cat
pipe -k tcp-listen:0 tcp-listen:1
tcp-server --port-file f unix:/tmp/s
tcp-server --allow 10.0.0.0/8 unix:@x
udp-echo --port-file f unix:/tmp/s
EOF_T
}

@test "a usage error names the offending input" {
	xp tcp-server --high-water 12Q :0
	[ "$status" -eq 64 ]
	[[ "$err" == *"--high-water"* && "$err" == *"12Q"* ]]
	xp tcp-client --forward x:1 localhost:1
	[[ "$err" == *"--forward"* ]]
	xp pipe - bogus:thing
	[[ "$err" == *"bogus:thing"* ]]
	xp frob
	[[ "$err" == *"frob"* ]]
}

@test "help and version options inside a bad command line still win" {
	xp tcp-client not-an-address --help
	[ "$status" -eq 0 ]
	[[ "$out" == Usage:* ]]
	[ -z "$err" ]
}

# ------------------------------------------------------------ valid input

@test "watermarks and sizes resolve as xport(1) says" {
	check_parse_table <<'EOF_T'
tcp-server :0 => high_water=65536 low_water=16384 read_size=65536
tcp-server :0 --high-water 100 => high_water=100 low_water=25
tcp-server :0 --high-water 0 => high_water=0 low_water=0
tcp-server :0 --high-water=1K => high_water=1024 low_water=256
tcp-server :0 --low-water 1K => high_water=4096 low_water=1024
tcp-server :0 --low-water 0 => high_water=0 low_water=0
tcp-server :0 --high-water 2M --low-water 2M => high_water=2097152 low_water=2097152
tcp-server :0 --high-water 1G --low-water 1k => high_water=1073741824 low_water=1024
tcp-server :0 --low-water 1m => high_water=4194304 low_water=1048576
tcp-server :0 --read-size 1 => read_size=1
tcp-server :0 --read-size 1G => read_size=1073741824
pipe - tcp:h:1 --high-water 007 => high_water=7 low_water=1
EOF_T
}

@test "addresses parse into host, port and kind" {
	check_parse_table <<'EOF_T'
tcp-server 8080 => addr=hostport host= port=8080 path= v6=0
tcp-server :0 => addr=hostport host= port=0 path= v6=0
tcp-server 127.0.0.1:65535 => addr=hostport host=127.0.0.1 port=65535
tcp-server [::]:80 => addr=hostport host=:: port=80 path= v6=1
tcp-server '[fe80::1%lo]:80' => addr=hostport host=fe80::1%lo port=80
tcp-client example.com:443 => addr=hostport host=example.com port=443
tcp-client :7 => addr=hostport host= port=7
tcp-client [::1]:7 => host=::1 port=7 path= v6=1
tcp-client unix:/tmp/x.sock => addr=unix host= port= path=/tmp/x.sock
tcp-server unix:@name => addr=abstract host= port= path=name
udp-echo :0 => addr=hostport host= port=0
tcp-server --forward [::1]:22 :0 => forward=hostport host=::1 port=22
tcp-server --forward 22 :0 => forward=hostport host= port=22
subprocess --listen :0 -- cat => sub_addr=hostport host= port=0
subprocess --connect unix:@a -- cat => sub_addr=abstract host= port= path=a
EOF_T
}

@test "pipe endpoints" {
	check_parse_table <<'EOF_T'
pipe - tcp:localhost:80 => ep0=stdio
pipe - tcp:localhost:80 => ep1.addr=hostport host=localhost port=80
pipe stdio tcp:[::1]:80 => ep1.addr=hostport host=::1 port=80 path= v6=1
pipe tcp-listen:0 tcp:h:1 => ep0.addr=hostport host= port=0
pipe tcp-listen:127.0.0.1:9 - => ep0=tcp-listen
pipe tcp-listen:9 stdio => ep1=stdio
pipe tls:h:443 - => ep0=tls
pipe tls-listen::0 - => ep0=tls-listen
pipe unix:/s - => ep0.addr=unix host= port= path=/s
pipe unix-listen:@n - => ep0.addr=abstract host= port= path=n
pipe - udp:h:53 => ep1=udp
pipe - 'exec:cat -n' => ep1=exec command=cat -n
pipe - fd:3 => ep1=fd command= fd=3
pipe -- - tcp:h:1 => ep0=stdio
pipe tcp-listen:0 exec:cat -k => ep1=exec command=cat
pipe tcp:h:1 - => ep1=stdio
pipe tcp:h:1 stdio => ep1=stdio
EOF_T
}

@test "protocols, keep-open defaults and server options" {
	check_parse_table <<'EOF_T'
tcp-server :0 => proto=0
tcp-server :0 => keep_open=-1 resolved_keep_open=0
tcp-server --proto echo :0 => proto=1
tcp-server --proto echo :0 => resolved_keep_open=1
tcp-server --proto echo --once :0 => resolved_keep_open=0
tcp-server -k :0 => keep_open=1 resolved_keep_open=1
tcp-server --proto discard :0 => proto=2
tcp-server --proto chargen :0 => proto=3
tcp-server -e cat :0 => proto=4 exec=cat
tcp-server -ecat :0 => proto=4 exec=cat
tcp-server --exec='tr a-z A-Z' :0 => exec=tr a-z A-Z
tcp-server --proto exec -e cat :0 => proto=4
tcp-server --forward h:1 :0 => proto=5
tcp-server --proto forward --forward h:1 :0 => proto=5
tcp-server --proto echo --workers 4 --max-conns 10 --backlog 5 --reuse-port :0 => max_conns=10 backlog=5 reuse_port=1 workers=4
tcp-server --port-file /tmp/p :0 => port_file=/tmp/p
tcp-server --allow 10.1.2.3/8 --deny ::1 --allow ::/0 :0 => rule=allow 10.0.0.0/8
tcp-server --allow 10.1.2.3/8 --deny ::1 --allow ::/0 :0 => rule=deny ::1/128
tcp-server --allow 10.1.2.3/8 --deny ::1 --allow ::/0 :0 => rule=allow ::/0
udp-echo :0 => resolved_keep_open=1
udp-echo -k --reuse-port --allow 127.0.0.1 :0 => rule=allow 127.0.0.1/32
tcp-server --allow localhost --deny-file f --allow-file g :0 => rule=allow host localhost
tcp-server --allow localhost --deny-file f --allow-file g :0 => rule=deny file f
tcp-server --allow localhost --deny-file f --allow-file g :0 => rule=allow file g
tcp-client -4 127.0.0.1:1 => family=2
tcp-client -s 127.0.0.2:7 127.0.0.1:1 => source=hostport host=127.0.0.2 port=7 path= v6=0
pipe -6 -s :7 - tcp:x:1 => source=hostport host= port=7 path= v6=0
pipe tcp-listen:0 - => resolved_keep_open=0
pipe -k tcp-listen:0 exec:cat => resolved_keep_open=1
pipe tcp-listen:0 exec:cat -k => resolved_keep_open=1
pipe --once unix-listen:/s - => once=1
EOF_T
}

@test "stream, TLS and global options" {
	check_parse_table <<'EOF_T'
tcp-client h:1 => half_close=1 eof_timeout=-1 idle_timeout=-1 connect_timeout=30
tcp-client h:1 --no-half-close => half_close=0
tcp-client h:1 --no-half-close --half-close => half_close=1
tcp-client h:1 --eof-timeout 0 => eof_timeout=0
tcp-client h:1 --eof-timeout 1.5 --idle-timeout .25 => eof_timeout=1.5 idle_timeout=0.25
tcp-client h:1 --idle-timeout 0 --connect-timeout 0 => idle_timeout=-1 connect_timeout=-1
tcp-client h:1 --connect-timeout 2. => connect_timeout=2
tcp-client h:1 -x --stats --progress => hexdump=1 stats=1 progress=1
tcp-client h:1 --stats=json => stats=2
tcp-client h:1 --stats=text => stats=1
tcp-client h:1 --hexdump => hexdump=1
tcp-client --tls h:1 => tls=1
tcp-client --tls --ca ca.pem --cert c.pem --key k.pem h:1 => cert=c.pem key=k.pem ca=ca.pem insecure=0
tcp-client --tls --insecure h:1 => insecure=1
tcp-client --tls --pin sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef h:1 => pin=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
tcp-client --tls --pin 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef h:1 => pin=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
tcp-client --tls --servername example.org --alpn h2,http/1.1 h:1 => servername=example.org alpn=h2,http/1.1
tcp-server --tls :0 => tls=1
pipe --cert c.pem tls-listen:0 - => cert=c.pem
pipe --servername x - tls:h:1 => servername=x
tcp-client h:1 => grace=5 verbosity=0 quiet=0
-v tcp-client h:1 => verbosity=1
-vv tcp-client h:1 -v => verbosity=3
--verbose tcp-client h:1 --verbose => verbosity=2
-q tcp-client h:1 => quiet=1
tcp-client h:1 --quiet => quiet=1
--grace 0.5 tcp-client h:1 => grace=0.5
tcp-client --grace=0 h:1 => grace=0
-- tcp-client h:1 => command=tcp-client
tcp-client --wait-for 10 --check --crlf --no-readline h:1 => wait_for=10 check=1 crlf=1 no_readline=1
tcp-client -- h:1 => addr=hostport host=h port=1
EOF_T
}

@test "subprocess command line" {
	check_parse_table <<'EOF_T'
subprocess -- ls -l => argc=2
subprocess -- ls -l => argv[1]=-l
subprocess ls -l --help => argv[2]=--help
subprocess --connect h:1 -- sh -c 'echo hi' => argv[2]=echo hi
subprocess --stderr separate -- true => stderr=1
subprocess --stderr inherit -- true => stderr=2
subprocess -- true => stderr=0 signal=15 kill_after=-1
subprocess --signal TERM -- true => signal=15
subprocess --signal SIGTERM -- true => signal=15
subprocess --signal 15 -- true => signal=15
subprocess --signal sighup -- true => signal=1
subprocess --signal KILL --kill-after 2 -- true => signal=9 kill_after=2
subprocess --signal USR1 -- true => signal=10
subprocess --connect h:1 --tls --insecure -- true => sub_mode=1
subprocess --listen :0 --port-file p --allow ::1 -- true => sub_mode=2
subprocess -- -x => argv[0]=-x
EOF_T
}

# ------------------------------------------------------------ help

@test "--help and -h print the full usage on stdout" {
	xp --help
	[ "$status" -eq 0 ]
	[ -z "$err" ]
	[[ "$out" == "Usage: xport "* ]]
	local full="$out"
	for cmd in $(xport_commands); do
		[[ "$full" == *"$cmd"* ]]
	done
	xp -h
	[ "$status" -eq 0 ]
	[ "$out" = "$full" ]
	xp help
	[ "$status" -eq 0 ]
	[ "$out" = "$full" ]
	xp -v --help
	[ "$out" = "$full" ]
}

@test "help COMMAND, COMMAND --help and COMMAND -h print the same text" {
	local cmd ref
	for cmd in $(xport_commands); do
		xp help "$cmd"
		[ "$status" -eq 0 ]
		[ -z "$err" ]
		[[ "$out" == "Usage: xport [GLOBAL OPTIONS] $cmd "* ]]
		ref="$out"
		xp "$cmd" --help
		[ "$status" -eq 0 ] && [ -z "$err" ] && [ "$out" = "$ref" ]
		xp "$cmd" -h
		[ "$status" -eq 0 ] && [ "$out" = "$ref" ]
		xp -q "$cmd" --help
		[ "$status" -eq 0 ] && [ "$out" = "$ref" ]
	done
}

@test "every option of a command appears in its help and in the full help" {
	local cmd opt failed=0
	xp --help
	local full="$out"
	while IFS=$'\t' read -r cmd opt _; do
		[ "$cmd" = xport ] && continue
		xp help "$cmd"
		if ! grep -qF -e "$opt" <<<"$out"; then
			echo "$opt missing from 'xport help $cmd'"
			failed=1
		fi
		if ! grep -qF -e "$opt" <<<"$full"; then
			echo "$opt missing from 'xport --help'"
			failed=1
		fi
	done < <("$XPORT" --dump-options)
	[ "$failed" -eq 0 ]
}

@test "help lines fit in 80 columns" {
	local cmd
	for cmd in "" $(xport_commands); do
		if [ -n "$cmd" ]; then xp help "$cmd"; else xp --help; fi
		! awk 'length > 79 { print; bad = 1 } END { exit !bad }' <<<"$out"
	done
}

@test "--version and -V" {
	xp --version
	[ "$status" -eq 0 ]
	[ -z "$err" ]
	local first
	first="$(head -n1 <<<"$out")"
	[[ "$first" =~ ^xport\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	grep -q '^libxport [0-9]' <<<"$out"
	grep -q 'OpenSSL [0-9]' <<<"$out"
	local ref="$out"
	xp -V
	[ "$status" -eq 0 ] && [ "$out" = "$ref" ]
	xp tcp-server --version
	[ "$status" -eq 0 ] && [ "$out" = "$ref" ]
}

@test "help to a full stdout is an error, not silence" {
	[ -w /dev/full ] || skip "no /dev/full"
	local rc=0
	"$XPORT" --help >/dev/full 2>"$BATS_TEST_TMPDIR/e" || rc=$?
	[ "$rc" -ne 0 ]
	grep -q '^xport: ' "$BATS_TEST_TMPDIR/e"
}

@test "--dump-options is machine-readable and lists every command" {
	xp --dump-options
	[ "$status" -eq 0 ]
	# every line has six tab-separated fields
	! awk -F'\t' 'NF != 6 { print; bad = 1 } END { exit !bad }' <<<"$out"
	[ "$(xport_commands | tr '\n' ' ')" = "tcp-server tcp-client udp-echo subprocess pipe " ]
	grep -qP '^pipe\t--high-water\t1\t' <<<"$out"
	grep -qP '^tcp-server\t-x\t0\t' <<<"$out"
	grep -qP '^tcp-client\t--stats\t=\t' <<<"$out"
	! grep -qP '\t--(dump-options|parse-only)\t' <<<"$out"
}
