# Common helpers for the xport CLI bats tests.
#
# The binary under test is $XPORT (default: build/xport of this checkout).
# Tests that only need the parser use the hidden --parse-only option, which
# validates the whole command line and prints the resolved configuration
# instead of running the command, so they never open a socket.

XPORT="${XPORT:-$BATS_TEST_DIRNAME/../../build/xport}"
REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"

setup_xport() {
	if [ ! -x "$XPORT" ]; then
		echo "xport binary not found at $XPORT (build it or set XPORT)" >&2
		return 1
	fi
}

# xp ARGS...: run xport; sets $status, $out (stdout) and $err (stderr).
xp() {
	local o="$BATS_TEST_TMPDIR/stdout" e="$BATS_TEST_TMPDIR/stderr"
	status=0
	# A valid command line would run the command: never let it hang.
	timeout 20 "$XPORT" "$@" >"$o" 2>"$e" </dev/null || status=$?
	out="$(cat "$o")"
	err="$(cat "$e")"
}

# usage_error_problem ARGS...: empty if xport rejects ARGS the xport(1)
# way (exit 64, nothing on stdout, exactly one stderr line "xport: ...");
# otherwise a description of what went wrong.
usage_error_problem() {
	xp "$@"
	local lines
	lines="$(printf '%s\n' "$err" | grep -c '')"
	if [ "$status" -ne 64 ]; then
		echo "exit $status, not 64 (stderr: $err)"
	elif [ -n "$out" ]; then
		echo "wrote to stdout: $out"
	elif [ -z "$err" ] || [ "$lines" -ne 1 ]; then
		echo "expected one stderr line, got $lines: $err"
	elif [[ "$err" != "xport: "* ]]; then
		echo "stderr does not start with 'xport: ': $err"
	fi
}

# Read a table on stdin: one shell-quoted argument list per line (blank
# lines and # comments skipped).  Each must be a usage error.
check_usage_table() {
	local line problem failed=0
	while IFS= read -r line; do
		[[ -z "${line// }" || "$line" == \#* ]] && continue
		eval "set -- $line"
		problem="$(usage_error_problem "$@")"
		if [ -n "$problem" ]; then
			echo "xport $line: $problem"
			failed=1
		fi
	done
	return "$failed"
}

# Read a table on stdin: "ARGS => EXPECTED", where ARGS is a shell-quoted
# argument list given to `xport --parse-only` and EXPECTED a fixed string
# that must appear in the printed configuration.
check_parse_table() {
	local line args want failed=0
	while IFS= read -r line; do
		[[ -z "${line// }" || "$line" == \#* ]] && continue
		args="${line%% => *}"
		want="${line#* => }"
		eval "set -- $args"
		xp --parse-only "$@"
		if [ "$status" -ne 0 ]; then
			echo "xport $args: exit $status: $err"
			failed=1
		elif [[ "$out" != *"$want"* ]]; then
			echo "xport $args: no '$want' in:"
			printf '%s\n' "$out" | sed 's/^/    /'
			failed=1
		fi
	done
	return "$failed"
}

# Commands of xport, from the option table itself.
xport_commands() {
	"$XPORT" --dump-options | awk -F'\t' '$1 == "xport" && $3 == "cmd" &&
		$2 != "help" { print $2 }'
}
