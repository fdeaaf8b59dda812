#!/usr/bin/env bash
# libFuzzer campaigns, one harness at a time (the machine is shared).
#   tests/fuzz/campaign.sh BUILDDIR NAME...          fuzz FUZZ_SECONDS each
#   tests/fuzz/campaign.sh -merge BUILDDIR NAME...   keep what adds coverage
# A campaign works on a copy of the checked-in corpus (BUILDDIR/corpus/NAME);
# crashes land in BUILDDIR/artifacts/NAME/.  -merge adds to
# tests/fuzz/corpus/NAME only the inputs of that copy that reach new
# coverage (libFuzzer's -merge=1), so the corpus stays small.
set -uo pipefail
cd "$(dirname "$0")/../.."

merge=0
if [[ ${1:-} == -merge ]]; then
	merge=1
	shift
fi
builddir=$1
shift
seconds=${FUZZ_SECONDS:-60}
rc=0
for name in "$@"; do
	bin=$builddir/fuzz/$name
	seeds=tests/fuzz/corpus/$name
	work=$builddir/corpus/$name
	if [[ ! -x $bin ]]; then
		echo "campaign: $bin missing (run 'make fuzz' first)" >&2
		rc=1
		continue
	fi
	if ((merge)); then
		"$bin" -merge=1 "$seeds" "$work" || rc=1
		continue
	fi
	mkdir -p "$work" "$builddir/artifacts/$name"
	cp -n "$seeds"/* "$work"/ 2>/dev/null
	echo "=== fuzz $name for ${seconds}s"
	"$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
		-artifact_prefix="$builddir/artifacts/$name/" -print_final_stats=1 \
		"$work" 2>&1 | tee "$builddir/fuzz-$name.log" | grep -E '^#|ERROR|SUMMARY|^stat' | tail -n 12
	[[ ${PIPESTATUS[0]} -eq 0 ]] || rc=1
done
exit $rc
