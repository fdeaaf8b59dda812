// SPDX-License-Identifier: MIT
/*
 * chargen.c - RFC 864 character generator.
 *
 * Line i holds the 72 printable characters (0x20..0x7E, 95 of them) that
 * start at offset i mod 95, then CRLF.  After 95 lines the pattern repeats,
 * so one precomputed cycle of 95 lines serves every batch: a batch is a few
 * whole cycles written with one writelines() (the transport copies what the
 * kernel does not take at once).  Batches go out while the transport is not
 * paused; one per loop iteration, so reads and other connections keep
 * running.  The write buffer therefore never exceeds high + one batch.
 */
#include "proto/common.h"

#include <pthread.h>

#define NPRINT 95
#define LINE_CHARS 72
#define LINE_LEN (LINE_CHARS + 2)
#define CYCLE_LEN (NPRINT * LINE_LEN)
#define BATCH_CYCLES 4 /* 28120 bytes per batch */

static char cycle[CYCLE_LEN];
static pthread_once_t cycle_once = PTHREAD_ONCE_INIT; /* loops on many threads */

static void cycle_init(void)
{
	for (int i = 0; i < NPRINT; i++) {
		char *l = cycle + i * LINE_LEN;
		for (int j = 0; j < LINE_CHARS; j++)
			l[j] = (char)(0x20 + (i + j) % NPRINT);
		l[LINE_CHARS] = '\r';
		l[LINE_CHARS + 1] = '\n';
	}
}

struct chargen {
	xp_protocol base;
	struct xp__pconn pc;
	xp_handle *next; /* the next batch, queued with call_soon */
	bool paused;
};

static struct chargen *C(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct chargen, base);
}

static void chargen_schedule(struct chargen *c);

static int chargen_batch(void *arg)
{
	struct chargen *c = arg;
	xp_transport *t = c->pc.t;
	struct iovec iov[BATCH_CYCLES];

	xp_handle_release(c->next);
	c->next = NULL;
	if (!t || c->paused || xp_transport_is_closing(t))
		return 0;
	for (int i = 0; i < BATCH_CYCLES; i++)
		iov[i] = (struct iovec){cycle, CYCLE_LEN};
	if (xp_transport_writelines(t, iov, BATCH_CYCLES) < 0) {
		xp_transport_abort(t);
		return 0;
	}
	for (int i = 0; i < BATCH_CYCLES; i++)
		xp__pc_tx(&c->pc, cycle, CYCLE_LEN);
	chargen_schedule(c);
	return 0;
}

static void chargen_schedule(struct chargen *c)
{
	if (c->next || c->paused || !c->pc.t || xp_transport_is_closing(c->pc.t))
		return;
	c->next = xp_handle_retain(xp_call_soon(c->pc.loop, chargen_batch, c));
}

static void chargen_made(xp_protocol *p, xp_transport *t)
{
	struct chargen *c = C(p);

	xp__pc_made(&c->pc, t);
	chargen_schedule(c);
}

static void chargen_lost(xp_protocol *p, int err)
{
	struct chargen *c = C(p);

	xp__timer_cancel(&c->next);
	xp__pc_lost(&c->pc, err);
	free(c);
}

static void chargen_pause(xp_protocol *p)
{
	C(p)->paused = true;
}

static void chargen_resume(xp_protocol *p)
{
	struct chargen *c = C(p);

	c->paused = false;
	chargen_schedule(c);
}

static int chargen_data(xp_protocol *p, const void *data, size_t len)
{
	xp__pc_rx(&C(p)->pc, data, len);
	return 0;
}

static int chargen_eof(xp_protocol *p)
{
	C(p)->pc.eof = true;
	return 0; /* the peer is done: flush and close */
}

static const xp_protocol_ops chargen_ops = {
    .connection_made = chargen_made,
    .connection_lost = chargen_lost,
    .pause_writing = chargen_pause,
    .resume_writing = chargen_resume,
    .data_received = chargen_data,
    .eof_received = chargen_eof,
};

xp_protocol *xp_chargen_new(const xp_proto_opts *opts)
{
	struct chargen *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_once(&cycle_once, cycle_init);
	c->base.ops = &chargen_ops;
	xp__pc_init(&c->pc, opts);
	return &c->base;
}
