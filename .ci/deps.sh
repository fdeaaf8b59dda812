#!/usr/bin/env bash
# Ensure the Debian packages needed to build and test xport are installed.
#   .ci/deps.sh         build + test dependencies
#   .ci/deps.sh bench   also the benchmark dependencies
#   .ci/deps.sh fuzz    also clang's libFuzzer (make fuzz; make test needs none)
# Silent and fast when everything is present. As root, installs what is
# missing; otherwise prints the apt-get line to run and exits 1.
set -euo pipefail

pkgs=(gcc make pkg-config libssl-dev libreadline-dev bats valgrind python3
      socat ncat openssl tmux procps zsh fish groff-base clang-format)
case "${1:-}" in
"") ;;
bench) pkgs+=(python3-uvloop socat ncat stunnel4 haproxy nginx libnginx-mod-stream) ;;
fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
*) echo "usage: $0 [bench|fuzz]" >&2; exit 64 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; make sure these are installed: ${pkgs[*]}" >&2
	exit 0
fi

# One query for all; unknown packages only produce a message on stderr.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null |
	awk '$2 ~ /^ii/ { print $1 }' || true)

missing=()
for p in "${pkgs[@]}"; do
	if ! grep -qxF -- "$p" <<<"$installed" && [[ " ${missing[*]} " != *" $p "* ]]; then
		missing+=("$p")
	fi
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -eq 0 ]]; then
	echo "deps.sh: installing ${missing[*]}" >&2
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
	# The TLS bench starts its own nginx/haproxy/stunnel per run; the
	# services the packages start would only compete for the two cores.
	if [[ ${1:-} == bench ]] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now nginx haproxy stunnel4 >/dev/null 2>&1 || true
	fi
else
	echo "deps.sh: missing packages; run:" >&2
	echo "sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
