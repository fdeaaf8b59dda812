/* SPDX-License-Identifier: MIT */
/*
 * fuzz_tls.h - what the two TLS harnesses share: our side of the
 * connection (a TLS transport over one end of a socketpair, as server or
 * as client) and the protocol that runs on it.  Include after fuzz.h.
 */
#ifndef XP_FUZZ_TLS_H
#define XP_FUZZ_TLS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

/* Our protocol: checks what it receives against the peer's pattern and
 * can echo it (so our side also writes while the peer misbehaves). */
struct ours {
	xp_protocol base;
	xp_transport *t;
	bool made, lost, echo, keep_open;
	unsigned peer_salt;
	uint64_t recvd, peer_sent; /* peer_sent: what the peer sent, if known */
	bool check;		   /* the peer sends fz_pattern bytes */
	uint64_t written;	   /* fz_pattern bytes we wrote (not echoed) */
};

static void ours_made(xp_protocol *p, xp_transport *t)
{
	struct ours *o = XP_CONTAINER_OF(p, struct ours, base);

	FZ_CHECK(!o->made);
	o->made = true;
	o->t = t;
}

static void ours_lost(xp_protocol *p, int err)
{
	struct ours *o = XP_CONTAINER_OF(p, struct ours, base);

	FZ_CHECK(o->made && !o->lost);
	o->lost = true;
	o->t = NULL;
}

static int ours_data(xp_protocol *p, const void *data, size_t len)
{
	struct ours *o = XP_CONTAINER_OF(p, struct ours, base);
	const uint8_t *b = data;

	FZ_CHECK(o->made && !o->lost && len > 0);
	if (o->check) {
		for (size_t k = 0; k < len; k++)
			FZ_CHECK(b[k] == fz_pattern(o->recvd + k, o->peer_salt));
		FZ_CHECK(o->recvd + len <= o->peer_sent);
	}
	o->recvd += len;
	if (o->echo && !o->check)
		xp_transport_write(o->t, data, len);
	return 0;
}

static int ours_eof(xp_protocol *p)
{
	struct ours *o = XP_CONTAINER_OF(p, struct ours, base);

	FZ_CHECK(o->made && !o->lost);
	return o->keep_open;
}

static const xp_protocol_ops ours_ops = {
    .connection_made = ours_made,
    .connection_lost = ours_lost,
    .data_received = ours_data,
    .eof_received = ours_eof,
};

static xp_protocol *fz_factory_one(void *arg)
{
	return arg;
}

/* Our TLS side over fd: the future of the transport (done after the
 * handshake, or failed). */
static xp_future *fz_tls_ours(xp_loop *loop, struct ours *o, int fd, xp_tls_ctx *ctx, bool server)
{
	xp_connect_opts co = {.tls = ctx};

	o->base.ops = &ours_ops;
	if (server)
		return xp_connect_accepted_socket(loop, fz_factory_one, &o->base, fd, &co);
	co.use_sock = 1;
	co.sock = fd;
	co.server_hostname = "localhost";
	return xp_create_connection(loop, fz_factory_one, &o->base, NULL, NULL, &co);
}

/* After the peer is gone: the handshake future completes and a made
 * connection is lost within a bounded number of iterations (our protocol
 * closes if it asked to stay half open). */
static void fz_tls_wind_down(xp_loop *loop, struct ours *o, xp_future *fut)
{
	int n;

	for (n = 0; n < 2000; n++) {
		if (xp_future_done(fut) && (!o->made || o->lost))
			break;
		if (n == 200 && o->t)
			xp_transport_close(o->t);
		fz_step(loop);
	}
	if (!(xp_future_done(fut) && (!o->made || o->lost)))
		dprintf(2, "tls: not finished: done %d made %d lost %d\n", xp_future_done(fut),
			o->made, o->lost);
	FZ_CHECK(xp_future_done(fut) && (!o->made || o->lost));
	/* A failed handshake drops the raw transport after the future is
	 * done; what is still open when the loop is freed shows as a leak. */
	for (n = 0; n < 20; n++)
		fz_step(loop);
}

static xp_loop *fz_tls_loop(void)
{
	xp_loop *loop = xp_loop_new();

	FZ_CHECK(loop);
	xp_loop_set_exception_handler(loop, fz_quiet_handler, NULL);
	return loop;
}

static void fz_tls_free(xp_loop *loop, xp_future *fut)
{
	xp_future_release(fut);
	FZ_CHECK(xp_loop_close(loop) == 0);
	xp_loop_free(loop);
}

#endif /* XP_FUZZ_TLS_H */
