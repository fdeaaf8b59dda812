// SPDX-License-Identifier: MIT
/*
 * fuzz_tls_raw.c - the TLS transport, as server or as client, fed raw
 * bytes: the harness is the peer on the other end of a socketpair and
 * writes the input to it in chunks, running the loop in between (and
 * reading whatever our side answers).  Seeds are real ClientHello and
 * ServerHello flights captured from openssl s_client / s_server.
 *
 * Input: a flags byte (bit 0: we are the server; bit 1: the other
 * context (ALPN, pinned client); bit 2: echo; bit 3: stay half open on
 * EOF), then chunks: a length byte L and L bytes (L = 0: shut down the
 * peer's writing side).  Checked: no crash or leak, and the connection
 * ends within a bounded number of iterations once the peer is gone.
 */
#include <errno.h>

#include "fuzz.h"
#include "fuzz_tls.h"

static xp_tls_ctx *srv[2], *cli[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char fp[32];

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 2; i++) {
		srv[i] = xp_tls_ctx_new(1);
		cli[i] = xp_tls_ctx_new(0);
		FZ_CHECK(srv[i] && cli[i]);
		FZ_CHECK(xp_tls_ctx_use_self_signed(srv[i], "localhost", fp) == 0);
	}
	FZ_CHECK(xp_tls_ctx_set_alpn(srv[1], "h2,http/1.1") == 0);
	FZ_CHECK(xp_tls_ctx_set_verify(cli[0], 0) == 0);
	FZ_CHECK(xp_tls_ctx_set_pin(cli[1], fp) == 0);
	FZ_CHECK(xp_tls_ctx_set_alpn(cli[1], "h2") == 0);
	return 0;
}

static void drain(int fd)
{
	char buf[16384];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	unsigned flags = fz_u8(&in);
	bool server = flags & 1;
	struct ours o = {.echo = flags & 4, .keep_open = flags & 8};
	xp_loop *loop = fz_tls_loop();
	xp_future *fut;
	int sv[2];

	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	fut = fz_tls_ours(loop, &o, sv[0], server ? srv[flags >> 1 & 1] : cli[flags >> 1 & 1],
			  server);
	FZ_CHECK(fut);
	fz_step(loop);
	while (in.n) {
		const uint8_t *chunk;
		size_t n = fz_bytes(&in, fz_u8(&in), &chunk);

		if (n == 0)
			shutdown(sv[1], SHUT_WR);
		else if (send(sv[1], chunk, n, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
			break;
		for (int k = 0; k < 3; k++) {
			fz_step(loop);
			drain(sv[1]);
		}
	}
	close(sv[1]);
	fz_tls_wind_down(loop, &o, fut);
	fz_tls_free(loop, fut);
	return 0;
}
