#!/usr/bin/env bats
# make install into a scratch DESTDIR, then build the complete example of
# xport(3) against the installed header, libraries and pkg-config file, and
# run it against a real client.

load helpers

setup() {
	top=$BATS_TEST_DIRNAME/../..
	tmp=$(mktemp -d)
}

teardown() {
	[[ -n ${spid:-} ]] && kill "$spid" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$tmp"
}

@test "install: header, libraries (with soname), pkg-config file, man pages, completions" {
	run make -C "$top" -s install PREFIX=/usr/local DESTDIR="$tmp/root"
	[ "$status" -eq 0 ]
	r=$tmp/root/usr/local
	[ -f "$r/include/xport.h" ]
	[ -f "$r/lib/libxport.a" ]
	[ -L "$r/lib/libxport.so" ]
	[ -L "$r/lib/libxport.so.0" ]
	readelf -d "$r/lib/libxport.so.0."* | grep -q 'SONAME.*libxport.so.0'
	grep -q '^prefix=/usr/local$' "$r/lib/pkgconfig/xport.pc"
	[ -f "$r/share/man/man1/xport.1" ]
	[ -f "$r/share/man/man3/xport.3" ]
	[ -x "$r/bin/xport" ]
	[ -f "$r/share/bash-completion/completions/xport" ]
}

@test "install: the example of xport(3) builds with pkg-config and echoes" {
	make -C "$top" -s install PREFIX=/usr/local DESTDIR="$tmp/root"
	# the first .EX/.EE block of the page, with the port made an argument
	sed -n '/^\.EX$/,/^\.EE$/p' "$top/man/xport.3" | sed '1d' | sed '/^\.EE$/,$d' |
		sed 's/\\e/\\/g; s/\\-/-/g' |
		sed 's/"127.0.0.1", "8888"/"127.0.0.1", getenv("PORT")/' >"$tmp/echo.c"
	export PKG_CONFIG_PATH=$tmp/root/usr/local/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$tmp/root
	run cc -Wall -Werror -o "$tmp/echo" "$tmp/echo.c" $(pkg-config --cflags xport) \
		-L"$tmp/root/usr/local/lib" -Wl,-rpath,"$tmp/root/usr/local/lib" -lxport -lssl -lcrypto -lpthread
	echo "$output"
	[ "$status" -eq 0 ]
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	PORT=$port stdbuf -oL "$tmp/echo" >"$tmp/out" &
	spid=$!
	run timeout 10 "$XPORT" tcp-client --wait-for 5 "127.0.0.1:$port" <<<"hello"
	[ "$status" -eq 0 ]
	[ "$output" = "hello" ]
	grep -q "Data received: hello" "$tmp/out"
}
