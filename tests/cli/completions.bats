#!/usr/bin/env bats
# Shell completions: generated from `xport --dump-options` by
# completions/gen.sh; the committed files must match a fresh run, and the
# bash one must actually complete.

load helpers

setup() {
	setup_xport
	COMPLETIONS="$REPO_ROOT/completions"
}

# complete LINE: run the bash completion as if <TAB> was pressed at the
# end of LINE; prints COMPREPLY one per line.  The line is split into
# COMP_WORDS the way bash does with its default COMP_WORDBREAKS: at blanks,
# and around runs of ":" and "=".
complete_line() {
	local tok
	# shellcheck source=/dev/null
	source "$COMPLETIONS/xport.bash"
	COMP_LINE="$1"
	COMP_POINT=${#COMP_LINE}
	COMP_WORDS=()
	for tok in $COMP_LINE; do
		while [[ $tok =~ ^([^:=]+|[:=]+)(.*)$ ]]; do
			COMP_WORDS+=("${BASH_REMATCH[1]}")
			tok=${BASH_REMATCH[2]}
		done
	done
	[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_xport
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "committed completions match a fresh generation" {
	local tmp="$BATS_TEST_TMPDIR/gen" f
	mkdir -p "$tmp"
	"$COMPLETIONS/gen.sh" "$XPORT" "$tmp"
	for f in xport.bash _xport xport.fish; do
		diff -u "$COMPLETIONS/$f" "$tmp/$f"
	done
}

@test "bash: the completion is registered for xport" {
	source "$COMPLETIONS/xport.bash"
	run complete -p xport
	[ "$status" -eq 0 ]
	[[ "$output" == *"-F _xport"* ]]
}

@test "bash: xport pipe --hi<TAB> offers --high-water" {
	run complete_line "xport pipe --hi"
	[ "$status" -eq 0 ]
	[ "$output" = "--high-water" ]
}

@test "bash: commands, options and values" {
	run complete_line "xport tcp-s"
	[ "$output" = "tcp-server" ]
	run complete_line "xport "
	[[ "$output" == *tcp-client* && "$output" == *udp-echo* && "$output" == *help* ]]
	run complete_line "xport -v --ver"
	[[ "$output" == *--verbose* && "$output" == *--version* ]]
	run complete_line "xport help pi"
	[ "$output" = "pipe" ]
	run complete_line "xport tcp-server --proto e"
	[ "$output" = "$(printf 'echo\nexec')" ]
	run complete_line "xport subprocess --stderr s"
	[ "$output" = "separate" ]
	run complete_line "xport subprocess --signal T"
	[ "$output" = "TERM" ]
	# --opt=VALUE ("=" is split off, as bash does by default)
	run complete_line "xport tcp-client --stats=j"
	[ "$output" = "json" ]
	run complete_line "xport tcp-server --proto=ch"
	[ "$output" = "chargen" ]
	# HOST:PORT split at its colons must not confuse the command's words
	run complete_line "xport tcp-server :0 --prog"
	[ "$output" = "--progress" ]
	run complete_line "xport tcp-server :0 --prot"
	[ "$output" = "--proto" ]
	run complete_line "xport subprocess --connect [::1]:80 bas"
	[[ "$output" == *bash* ]]
	run complete_line "xport pipe tcp:localhost:80 st"
	[ "$output" = "stdio" ]
	# --stats alone is a flag: the next word is an option again
	run complete_line "xport tcp-client --stats --no-r"
	[ "$output" = "--no-readline" ]
	# a value that cannot be guessed: no suggestions
	run complete_line "xport pipe --high-water "
	[ -z "$output" ]
}

@test "bash: options are offered only to the commands that accept them" {
	run complete_line "xport tcp-client --fo"
	[ -z "$output" ]
	run complete_line "xport tcp-server --forw"
	[ "$output" = "$(printf -- '--forward-allow\n--forward')" ] ||
		[ "$output" = "$(printf -- '--forward\n--forward-allow')" ]
	run complete_line "xport tcp-client --proxy-"
	[ -z "$output" ]
	run complete_line "xport tcp-server --proxy-"
	[ "$output" = "--proxy-auth" ]
	run complete_line "xport --hi"
	[ -z "$output" ]
}

@test "bash: every option of every command is offered" {
	local cmd opt failed=0 got
	for cmd in $(xport_commands); do
		got="$(complete_line "xport $cmd -")"
		while IFS=$'\t' read -r c opt takes _; do
			[ "$c" = "$cmd" ] || continue
			[[ "$takes" == [01=] ]] || continue
			if ! grep -qxF -e "$opt" <<<"$got"; then
				echo "$cmd: $opt not offered"
				failed=1
			fi
		done < <("$XPORT" --dump-options)
	done
	[ "$failed" -eq 0 ]
}

@test "bash: pipe endpoints and subprocess commands" {
	run complete_line "xport pipe - tc"
	[ "$output" = "$(printf 'tcp:\ntcp-listen:')" ]
	run complete_line "xport pipe st"
	[ "$output" = "stdio" ]
	run complete_line "xport subprocess -- bas"
	[[ "$output" == *bash* ]]
	run complete_line "xport subprocess --connect h:1 bas"
	[[ "$output" == *bash* ]]
}

@test "zsh completion parses" {
	command -v zsh >/dev/null || skip "zsh not installed"
	zsh -n "$COMPLETIONS/_xport"
}

@test "fish completion parses" {
	command -v fish >/dev/null || skip "fish not installed"
	fish --no-execute "$COMPLETIONS/xport.fish"
}

@test "fish completion offers --high-water for pipe" {
	command -v fish >/dev/null || skip "fish not installed"
	run fish --no-config -c "source '$COMPLETIONS/xport.fish'; complete -C 'xport pipe --hi'"
	[ "$status" -eq 0 ]
	[[ "$output" == --high-water* ]]
}
