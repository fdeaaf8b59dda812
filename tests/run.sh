#!/usr/bin/env bash
# Full test suite, run by `make test`.
#
# Stages (select with XP_STAGES, default "format coverage unit asan valgrind poll
# fuzz-replay cli"):
#   format    the sources follow .clang-format
#   coverage  every case of doc/semantics.md has a sem_N unit test
#   unit      build/tests/unit
#   asan      the same under ASan+UBSan (build-asan/)
#   valgrind  build/tests/unit under valgrind memcheck
#   poll      the unit tests with the poll backend (build-poll/)
#   fuzz-replay  every tests/fuzz/corpus file through its harness under
#             ASan+UBSan (gcc, build-asan/); one test per corpus file
#   cli       bats --tap tests/cli/*.bats
# Each stage builds what it needs; a stage that fails to build or crashes
# counts as at least one failure. The last line is always "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
STAGES=${XP_STAGES:-format coverage unit asan valgrind poll fuzz-replay cli}
total_pass=0
total_fail=0
summaries=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_stage NAME unit|tap MAKE-TARGET
run_stage() {
	local name=$1 kind=$2 target=$3 rc pass=0 fail=0 planned=0 line
	echo "=== stage $name: make $target"
	$MAKE --no-print-directory -s "$target" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}

	if [[ $kind == unit ]]; then
		line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
		if [[ -n $line ]]; then
			pass=${line%% passed*}
			fail=${line#*, }
			fail=${fail%% failed}
		fi
	else
		pass=$(grep -cE '^ok ' "$log")
		fail=$(grep -cE '^not ok ' "$log")
		planned=$(grep -E '^1\.\.[0-9]+$' "$log" | head -n 1 | cut -d. -f3)
		# A bats run that dies early reports fewer results than planned.
		if [[ -n $planned ]] && ((pass + fail < planned)); then
			fail=$((planned - pass))
		fi
	fi
	if ((rc != 0 && fail == 0)); then
		fail=1
	fi

	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	summaries+=("$(printf '%-11s %4d passed, %4d failed  (exit %d)' "$name" "$pass" "$fail" "$rc")")
}

for stage in $STAGES; do
	case $stage in
	unit) run_stage unit unit test-unit ;;
	asan) run_stage asan unit test-asan ;;
	valgrind) run_stage valgrind unit test-valgrind ;;
	poll) run_stage poll unit test-poll ;;
	fuzz-replay) run_stage fuzz-replay tap test-fuzz-replay ;;
	cli)
		if compgen -G 'tests/cli/*.bats' >/dev/null; then
			run_stage cli tap test-cli
		else
			summaries+=("$(printf '%-11s skipped (no tests/cli/*.bats)' cli)")
		fi
		;;
	coverage) run_stage coverage tap test-coverage ;;
	format) run_stage format unit test-format ;;
	*)
		echo "unknown stage '$stage'" >&2
		summaries+=("$(printf '%-11s unknown stage' "$stage")")
		total_fail=$((total_fail + 1))
		;;
	esac
done

echo "=== summary"
printf '%s\n' "${summaries[@]}"
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
