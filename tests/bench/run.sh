#!/usr/bin/env bash
# `make bench`: xport against the anchors of ../shared/bench (hand-written C,
# uvloop, asyncio, socat, ncat), every workload of the performance issue in
# one invocation, targets interleaved, medians of 3 runs.  Prints the ratio
# tables and writes them to tests/bench/out/ (RESULTS.md is the curated
# copy).  Timing is never asserted here: this prints numbers.
#
#   tests/bench/run.sh [SECTION...]   sections: echo relay udp connect idle
#                                     subprocess workers tls (default: all);
#                                     tls-quick (not in the default) is tls
#                                     for xport and nginx only, 3 repeats,
#                                     5 s handshake windows: about 2 minutes
#
# Environment: XP_BENCH_REPEAT (repeats, default 3), XP_BENCH_SECS (window
# of echo/udp/connect, default 2), XP_BENCH_BASE (another xport binary, e.g.
# a build of the previous commit: its rows appear as "base" beside xport in
# the echo, relay, udp and connect sections, measured in the same run).  The tls sections (../shared/bench/tls,
# the terminator on CPU 1, client and backend on CPU 0):
#   XP_TLS_REPEAT   repeats (default XP_BENCH_REPEAT if set, else 5)
#   XP_TLS_TARGETS  comma list of ref_c xport xport_srv nginx haproxy
#                   stunnel socat ncat (default: all; ref_c, the blocking
#                   one-connection floor, only runs the bulk workloads)
#   XP_TLS_CASES    any of bulk-ecdsa-aes256 bulk-ecdsa-aes128
#                   bulk-rsa-aes256 hs-ecdsa hs-rsa (default: all but aes128)
#   XP_TLS_HS_SECS  measured window of a handshake run (default 10)
#   XP_TLS_RT       1 (default, needs root): SCHED_FIFO for terminator and
#                   load, shielding them from other niced work
#   e.g. XP_TLS_TARGETS=xport,nginx tests/bench/run.sh tls-quick
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
B=${BUILDDIR:-build}
X=$top/$B/xport
SHARED=${XP_SHARED:-$top/../shared}
BENCH=$SHARED/bench
OUT=$top/tests/bench/out
REPEAT=${XP_BENCH_REPEAT:-3}
SECS=${XP_BENCH_SECS:-2}
PY=/usr/bin/python3
mkdir -p "$OUT" "$B/bench"
log=$OUT/bench-$(date +%Y%m%d-%H%M%S).txt

[[ -x $BENCH/run ]] || { echo "bench: $BENCH/run not found"; exit 1; }
[[ -x $X ]] || { echo "bench: $X not built"; exit 1; }

# The anchors, built from ../shared/bench/ref.
for r in c_echo udp_echo relay_rw relay_splice; do
	src=$BENCH/ref/$r.c
	bin=$B/bench/$r
	if [[ ! -x $bin || $src -nt $bin ]]; then
		cc -O2 -o "$bin" "$src" || exit 1
	fi
done
REF=$top/$B/bench
PYECHO="$PY $BENCH/ref/py_echo.py"

bench() { "$BENCH/run" -r "$REPEAT" --out "$log" -q "$@"; }
BASEX=${XP_BENCH_BASE:-}
[[ -z $BASEX || -x $BASEX ]] || { echo "bench: XP_BENCH_BASE=$BASEX is not a program"; exit 1; }
# xt ARGS: the xport target, and the same for the baseline binary if given.
xt() {
	XT=(-t "xport=$X $*")
	[[ -z $BASEX ]] || XT+=(-t "base=$BASEX $*")
}
section() { printf '\n### %s\n\n' "$*" | tee -a "$log"; }

want() {
	[[ $# -eq 0 || " $SECTIONS " == *" $1 "* ]]
}
SECTIONS=${*:-echo relay udp connect idle subprocess workers tls}

if want echo; then
	for w in "1k 10" "10k 10" "100k 10" "1k 100"; do
		set -- $w
		section "echo $1 x $2 connections"
		xt "-q tcp-server 127.0.0.1:{port} --proto echo"
		bench -b xport "${XT[@]}" \
			-t c_ref="$REF/c_echo {port}" \
			-t uvloop="$PYECHO {port} --uvloop" \
			-t asyncio="$PYECHO {port}" \
			-t socat="socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE" \
			-t ncat="ncat -l 127.0.0.1 {port} -k -e /bin/cat" \
			echo -c "$2" -s "$1" -t "$SECS"
	done
fi

if want relay; then
	section "relay 2 GiB one way"
	xt "-q pipe tcp-listen:127.0.0.1:{port} tcp:127.0.0.1:{sink}"
	bench -b xport "${XT[@]}" \
		-t c_rw="$REF/relay_rw {port} 127.0.0.1 {sink}" \
		-t c_splice="$REF/relay_splice {port} 127.0.0.1 {sink}" \
		-t socat="socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		-t socat_b128k="socat -b 131072 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		relay -n 2g
	section "relay 1 GiB both ways at once"
	xt "-q pipe tcp-listen:127.0.0.1:{port} tcp:127.0.0.1:{sink}"
	bench -b xport "${XT[@]}" \
		-t c_rw="$REF/relay_rw {port} 127.0.0.1 {sink}" \
		-t socat="socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		-t socat_b128k="socat -b 131072 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		relay -n 1g -d bidi
fi

if want udp; then
	for w in "64 10" "1k 10" "64 100" "1k 100"; do
		set -- $w
		section "udp echo $1 B x $2 flows"
		xt "-q udp-echo 127.0.0.1:{port}"
		bench -b xport "${XT[@]}" \
			-t c_ref="$REF/udp_echo {port} 127.0.0.1 64" \
			-t uvloop="$PYECHO {port} --udp --uvloop" \
			-t asyncio="$PYECHO {port} --udp" \
			-t socat="socat UDP-RECVFROM:{port},bind=127.0.0.1,fork PIPE" \
			udp -c "$2" -s "$1" -t "$SECS"
	done
fi

if want connect; then
	section "connection rate, 1-byte echo, 10 loops, --linger0"
	xt "-q tcp-server 127.0.0.1:{port} --proto echo"
	bench -b xport "${XT[@]}" \
		-t c_ref="$REF/c_echo {port}" \
		-t uvloop="$PYECHO {port} --uvloop" \
		connect -c 10 -t "$SECS" --linger0
fi

if want workers; then
	section "echo 1k x 100, --workers 2 against 1 worker (unpinned)"
	bench --no-pin -b w1 \
		-t w1="$X -q tcp-server 127.0.0.1:{port} --proto echo" \
		-t w2="$X -q tcp-server 127.0.0.1:{port} --proto echo --workers 2" \
		echo -c 100 -s 1k -t "$SECS"
fi

if want idle; then
	section "10,000 idle connections: server RSS"
	"$PY" "$top/tests/bench/idle.py" --xport "$X" --uvloop-cmd "$PYECHO" -n 10000 | tee -a "$log"
fi

if want subprocess; then
	section "subprocess --connect streaming 1 GiB of head -c, against pipe"
	"$PY" "$top/tests/bench/stream.py" --xport "$X" --repeat "$REPEAT" | tee -a "$log"
fi

# TLS termination: the shared harness (tlsperf.py) against this tree's xport,
# one fresh raw directory per invocation so the summary covers this run only.
tls_bench() { # tls_bench DEFAULT_TARGETS DEFAULT_REPEAT DEFAULT_HS_SECS
	local tdir=$BENCH/tls work=$top/$B/bench/tls
	local repeat=${XP_TLS_REPEAT:-${XP_BENCH_REPEAT:-$2}}
	local targets=${XP_TLS_TARGETS:-$1} hs_secs=${XP_TLS_HS_SECS:-$3}
	local cases=${XP_TLS_CASES:-bulk-ecdsa-aes256 bulk-rsa-aes256 hs-ecdsa hs-rsa}
	local raw harn=("$PY" "$tdir/tlsperf.py") rt=()
	raw=$OUT/tls-$(date +%Y%m%d-%H%M%S)
	[[ -r $tdir/tlsperf.py ]] || { echo "bench: $tdir/tlsperf.py not found"; return 1; }
	mkdir -p "$work" "$raw"
	tls_build "$tdir" "$work" || return 1
	if [[ ${XP_TLS_RT:-1} == 1 ]] && chrt -f 2 true 2>/dev/null; then
		harn=(chrt -f 2 "${harn[@]}") rt=(--rt)
	fi
	# Handshake runs need a server for many connections: the blocking
	# one-connection floor only runs the bulk workloads.
	local hs_targets
	hs_targets=$(tr , '\n' <<<"$targets" | grep -vx ref_c | paste -sd,)
	tls_versions "$raw/versions.txt"
	section "tls: $targets, $repeat repeats, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
	local c args
	for c in $cases; do
		case $c in
		bulk-ecdsa-aes256) args=(bulk --cert ecdsa --suite TLS_AES_256_GCM_SHA384 -n 1g --targets "$targets") ;;
		bulk-ecdsa-aes128) args=(bulk --cert ecdsa --suite TLS_AES_128_GCM_SHA256 -n 1g --targets "$targets") ;;
		bulk-rsa-aes256) args=(bulk --cert rsa --suite TLS_AES_256_GCM_SHA384 -n 1g --targets "$targets") ;;
		hs-ecdsa) args=(hs --cert ecdsa -c 10 -t "$hs_secs" -w 1 --targets "$hs_targets") ;;
		hs-rsa) args=(hs --cert rsa -c 10 -t "$hs_secs" -w 1 --targets "$hs_targets") ;;
		*) echo "bench: unknown XP_TLS_CASES entry $c"; return 1 ;;
		esac
		[[ $c == hs-* && -z $hs_targets ]] && continue
		echo "tls $c: loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
		"${harn[@]}" "${args[@]}" -r "$repeat" "${rt[@]}" --xport "$X" \
			--bin "$work" --certdir "$work/certs" --label "$c" \
			--out "$raw/$c.jsonl" | grep '"summary"' >>"$log"
	done
	"$PY" "$tdir/summarize.py" "$raw" >"$raw.md"
	tee -a "$log" <"$raw.md"
	echo "tls: raw runs in $raw/, table in $raw.md"
}

tls_build() { # tls_build SHARED_TLS_DIR WORKDIR: the client, floor, backend, certificates
	local src bin
	for src in "$1/tlsload.c" "$1/ref_tls_relay.c" "$BENCH/ref/c_echo.c"; do
		bin=$2/$(basename "$src" .c)
		if [[ ! -x $bin || $src -nt $bin ]]; then
			cc -O2 -o "$bin" "$src" -lssl -lcrypto -lpthread || return 1
		fi
	done
	"$1/mkcerts.sh" "$2/certs" >/dev/null
}

tls_versions() { # tls_versions FILE: what was measured
	{
		echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
		grep -m1 "model name" /proc/cpuinfo
		openssl version
		echo "xport: $("$X" --version 2>&1 | head -1) ($(git describe --always --dirty 2>/dev/null))"
		nginx -v 2>&1
		haproxy -v 2>&1 | head -1
		stunnel4 -version 2>&1 | grep -m1 "^stunnel"
		socat -V 2>&1 | grep "socat version"
		ncat --version 2>&1 | head -1
	} >"$1" 2>&1
	tee -a "$log" <"$1"
}

if want tls; then
	tls_bench ref_c,xport,xport_srv,nginx,haproxy,stunnel,socat,ncat 5 10
fi

if want tls-quick; then
	tls_bench xport,nginx 3 5
fi

echo
echo "bench: every line is in $log"
