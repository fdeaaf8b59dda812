#!/usr/bin/env bash
# Which cases of ../shared/spec/semantics.md have a unit test?  A test
# covers case N when its name (or a comment on it) carries sem_N.
# Prints the uncovered cases and one TAP-ish line per case for run.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
spec=${XP_SEMANTICS:-../shared/spec/semantics.md}
if [[ ! -f $spec ]]; then
	echo "sem_coverage: $spec not found; skipped"
	exit 0
fi
cases=$(grep -oE '^[0-9]+\.' "$spec" | tr -d . | sort -n | uniq)
covered=$(grep -ohE 'sem_[0-9]+(_[0-9]+)*' tests/unit/*.c | sed 's/^sem_//' | tr _ '\n' | sed 's/^0*\([0-9]\)/\1/' | sort -n | uniq)
n=0
for c in $cases; do
	n=$((n + 1))
	if grep -qx "$c" <<<"$covered"; then
		echo "ok $n sem_$c"
	else
		echo "not ok $n sem_$c has no test"
	fi
done
echo "1..$n"
