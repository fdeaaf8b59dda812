// SPDX-License-Identifier: MIT
/*
 * echo.c - RFC 862 echo: every byte goes back to the peer.
 *
 * Flow control closes the loop: when our writes back pile up over the high
 * watermark we stop reading, so a peer that sends without reading cannot
 * grow our memory.  A half-close is honoured: after the peer's EOF the rest
 * of the echo is flushed, then our side is shut down too.
 */
#include "proto/common.h"

struct echo {
	xp_protocol base;
	struct xp__pconn pc;
};

static struct echo *E(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct echo, base);
}

static void echo_made(xp_protocol *p, xp_transport *t)
{
	xp__pc_made(&E(p)->pc, t);
}

static void echo_lost(xp_protocol *p, int err)
{
	struct echo *e = E(p);

	xp__pc_lost(&e->pc, err);
	free(e);
}

static void echo_pause(xp_protocol *p)
{
	xp_transport_pause_reading(E(p)->pc.t);
}

static void echo_resume(xp_protocol *p)
{
	xp_transport_resume_reading(E(p)->pc.t);
}

static int echo_data(xp_protocol *p, const void *data, size_t len)
{
	struct xp__pconn *pc = &E(p)->pc;
	int r;

	xp__pc_rx(pc, data, len);
	r = xp_transport_write(pc->t, data, len);
	if (r < 0)
		return r;
	xp__pc_tx(pc, data, len);
	return 0;
}

static int echo_eof(xp_protocol *p)
{
	struct xp__pconn *pc = &E(p)->pc;

	pc->eof = true;
	/* The stream transport shuts down only once the echo has drained;
	 * close() then waits for the same flush. */
	if (xp_transport_can_write_eof(pc->t) > 0)
		xp_transport_write_eof(pc->t);
	xp_transport_close(pc->t);
	return 1;
}

static const xp_protocol_ops echo_ops = {
    .connection_made = echo_made,
    .connection_lost = echo_lost,
    .pause_writing = echo_pause,
    .resume_writing = echo_resume,
    .data_received = echo_data,
    .eof_received = echo_eof,
};

xp_protocol *xp_echo_new(const xp_proto_opts *opts)
{
	struct echo *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->base.ops = &echo_ops;
	xp__pc_init(&e->pc, opts);
	return &e->base;
}
