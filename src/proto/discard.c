// SPDX-License-Identifier: MIT
/*
 * discard.c - RFC 863 discard: read, count and drop; close after the
 * peer's EOF.
 */
#include "proto/common.h"

struct discard {
	xp_protocol base;
	struct xp__pconn pc;
};

static struct discard *D(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct discard, base);
}

static void discard_made(xp_protocol *p, xp_transport *t)
{
	xp__pc_made(&D(p)->pc, t);
}

static void discard_lost(xp_protocol *p, int err)
{
	struct discard *d = D(p);

	xp__pc_lost(&d->pc, err);
	free(d);
}

static int discard_data(xp_protocol *p, const void *data, size_t len)
{
	xp__pc_rx(&D(p)->pc, data, len);
	return 0;
}

static int discard_eof(xp_protocol *p)
{
	D(p)->pc.eof = true;
	return 0; /* the transport closes */
}

static const xp_protocol_ops discard_ops = {
    .connection_made = discard_made,
    .connection_lost = discard_lost,
    .data_received = discard_data,
    .eof_received = discard_eof,
};

xp_protocol *xp_discard_new(const xp_proto_opts *opts)
{
	struct discard *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->base.ops = &discard_ops;
	xp__pc_init(&d->pc, opts);
	return &d->base;
}
