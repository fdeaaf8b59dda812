#!/usr/bin/env bash
# Replays every file of tests/fuzz/corpus/NAME/ through BINDIR/NAME (built
# with tests/fuzz/driver.c) as one TAP stream: one test per corpus file.
#   tests/fuzz/replay.sh BINDIR NAME...
set -uo pipefail
cd "$(dirname "$0")/../.."

bindir=$1
shift
total=0
for name in "$@"; do
	n=$(find "tests/fuzz/corpus/$name" -type f 2>/dev/null | wc -l)
	total=$((total + n))
done
echo "1..$total"

# A harness that crashes outside a file (or is missing) leaves its numbers
# out; the plan then counts them as failures.
num=1
rc=0
for name in "$@"; do
	dir=tests/fuzz/corpus/$name
	n=$(find "$dir" -type f 2>/dev/null | wc -l)
	((n == 0)) && continue
	"$bindir/$name" -n "$num" "$dir" || rc=1
	num=$((num + n))
done
exit $rc
