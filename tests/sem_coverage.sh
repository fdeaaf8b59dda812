#!/usr/bin/env bash
# Which cases of doc/semantics.md have a unit test?  A test covers case N
# when its name (or a comment on it) carries sem_N.  A case is a paragraph
# of that file that starts with "**N." (its number and title in bold).
# Prints one TAP-ish line per case for run.sh ("not ok" for the uncovered).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
spec=${XP_SEMANTICS:-doc/semantics.md}
if [[ ! -f $spec ]]; then
	echo "not ok 1 $spec not found"
	echo "1..1"
	exit 1
fi
cases=$(grep -oE '^\*\*[0-9]+\.' "$spec" | tr -d '*.' | sort -n | uniq)
if [[ -z $cases ]]; then
	echo "not ok 1 no cases found in $spec"
	echo "1..1"
	exit 1
fi
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
