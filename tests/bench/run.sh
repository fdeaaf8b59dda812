#!/usr/bin/env bash
# `make bench`: xport against the anchors of ../shared/bench (hand-written C,
# uvloop, asyncio, socat, ncat), every workload of the performance issue in
# one invocation, targets interleaved, medians of 3 runs.  Prints the ratio
# tables and writes them to tests/bench/out/ (RESULTS.md is the curated
# copy).  Timing is never asserted here: this prints numbers.
#
#   tests/bench/run.sh [SECTION...]   sections: echo relay udp connect idle
#                                     subprocess workers (default: all)
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
section() { printf '\n### %s\n\n' "$*" | tee -a "$log"; }

want() {
	[[ $# -eq 0 || " $SECTIONS " == *" $1 "* ]]
}
SECTIONS=${*:-echo relay udp connect idle subprocess workers}

if want echo; then
	for w in "1k 10" "10k 10" "100k 10" "1k 100"; do
		set -- $w
		section "echo $1 x $2 connections"
		bench -b xport \
			-t xport="$X -q tcp-server 127.0.0.1:{port} --proto echo" \
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
	bench -b xport \
		-t xport="$X -q pipe tcp-listen:127.0.0.1:{port} tcp:127.0.0.1:{sink}" \
		-t c_rw="$REF/relay_rw {port} 127.0.0.1 {sink}" \
		-t c_splice="$REF/relay_splice {port} 127.0.0.1 {sink}" \
		-t socat="socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		-t socat_b128k="socat -b 131072 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		relay -n 2g
	section "relay 1 GiB both ways at once"
	bench -b xport \
		-t xport="$X -q pipe tcp-listen:127.0.0.1:{port} tcp:127.0.0.1:{sink}" \
		-t c_rw="$REF/relay_rw {port} 127.0.0.1 {sink}" \
		-t socat="socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		-t socat_b128k="socat -b 131072 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{sink}" \
		relay -n 1g -d bidi
fi

if want udp; then
	for w in "64 10" "1k 10" "64 100" "1k 100"; do
		set -- $w
		section "udp echo $1 B x $2 flows"
		bench -b xport \
			-t xport="$X -q udp-echo 127.0.0.1:{port}" \
			-t c_ref="$REF/udp_echo {port} 127.0.0.1 64" \
			-t uvloop="$PYECHO {port} --udp --uvloop" \
			-t asyncio="$PYECHO {port} --udp" \
			-t socat="socat UDP-RECVFROM:{port},bind=127.0.0.1,fork PIPE" \
			udp -c "$2" -s "$1" -t "$SECS"
	done
fi

if want connect; then
	section "connection rate, 1-byte echo, 10 loops, --linger0"
	bench -b xport \
		-t xport="$X -q tcp-server 127.0.0.1:{port} --proto echo" \
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

echo
echo "bench: every line is in $log"
