// SPDX-License-Identifier: MIT
/*
 * broker.c - ncat's broker mode: every byte a client sends goes to every
 * other client of the same broker, never back to its sender.
 *
 * Flow control pauses the senders, never grows a queue: a client whose
 * write buffer is over its high watermark is congested, and while any
 * client is congested, reading stops from every other client (the ones
 * that feed it) until it has drained to its low watermark.  A client's
 * queue thus stays within its high watermark plus one read of each
 * sender, and a slow client slows everyone down to its pace.
 *
 * A client that stops reading altogether would hold the others for ever;
 * with an idle timeout it is dropped (aborted, as a graceful close would
 * wait for its queue) once nothing was read from it and nothing of what
 * is on its way to it (our queue and the socket's) drained for that
 * long.  Clients held paused for someone else are
 * not idle: they resume, and their clock restarts, once the congested
 * client drained or was dropped.
 *
 * A client's EOF ends that client, as in ncat: what is queued for it is
 * flushed, then it is closed.
 */
#include "proto/common.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

struct xp_broker {
	xp_loop *loop;
	struct xp_list clients; /* struct bclient, connected ones */
	size_t nclients;
	size_t ncongested; /* clients over their high watermark */
	int refs;	   /* the owner's and one per client protocol */
};

struct bclient {
	xp_protocol base;
	xp_broker *b;
	struct xp__pconn pc; /* stats and hooks; its own idle timer unused */
	struct xp__idle idle;
	double idle_timeout;
	size_t idle_wbuf; /* bytes in flight to it when last seen moving */
	struct xp_list node;
	bool linked;
	bool congested; /* over the high watermark: the others wait */
	bool held;	/* reading paused for a congested client */
};

static struct bclient *C(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct bclient, base);
}

static void broker_unref(xp_broker *b)
{
	if (--b->refs == 0)
		free(b);
}

/* ---- flow control ------------------------------------------------------ */

/* Read from a client unless some other client is congested. */
static void hold_set(struct bclient *c)
{
	bool want = c->b->ncongested > (c->congested ? 1u : 0u);

	if (want == c->held || !c->pc.t)
		return;
	c->held = want;
	if (want) {
		xp_transport_pause_reading(c->pc.t);
	} else {
		xp_transport_resume_reading(c->pc.t);
		xp__idle_touch(&c->idle);
	}
}

static void hold_update(xp_broker *b)
{
	struct xp_list *n;

	for (n = b->clients.next; n != &b->clients; n = n->next)
		hold_set(xp_list_entry(n, struct bclient, node));
}

static void congested_set(struct bclient *c, bool on)
{
	if (c->congested == on)
		return;
	c->congested = on;
	if (on)
		c->b->ncongested++;
	else
		c->b->ncongested--;
	hold_update(c->b);
}

/* ---- idle ------------------------------------------------------------- */

/* What is still on its way to the client: our queue and the socket's
 * (SIOCOUTQ), so that a slow reader draining the kernel's queue is seen
 * moving while ours stands still. */
static size_t in_flight(xp_transport *t)
{
	const int *fd = xp_transport_get_extra_info(t, "socket", NULL);
	size_t n = xp_transport_get_write_buffer_size(t);
	int outq = 0;

	if (fd && *fd >= 0 && ioctl(*fd, SIOCOUTQ, &outq) == 0 && outq > 0)
		n += (size_t)outq;
	return n;
}

static void idle_fire(void *arg)
{
	struct bclient *c = arg;
	xp_transport *t = c->pc.t;
	size_t queued;

	if (!t)
		return;
	queued = in_flight(t);
	/* Held for another client, or its queue is still draining. */
	if (c->held || queued < c->idle_wbuf) {
		c->idle_wbuf = queued;
		xp__idle_start(&c->idle, c->b->loop, c->idle_timeout, idle_fire, c);
		return;
	}
	if (!c->pc.reason) {
		c->pc.reason = "timeout";
		c->pc.reason_err = -ETIMEDOUT;
	}
	if (xp_transport_get_write_buffer_size(t))
		xp_transport_abort(t);
	else
		xp_transport_close(t);
}

/* ---- the protocol ---------------------------------------------------- */

static void bc_made(xp_protocol *p, xp_transport *t)
{
	struct bclient *c = C(p);
	xp_broker *b = c->b;

	xp__pc_made(&c->pc, t);
	xp_list_insert_tail(&b->clients, &c->node);
	c->linked = true;
	b->nclients++;
	hold_set(c);
	xp__idle_start(&c->idle, b->loop, c->idle_timeout, idle_fire, c);
}

static void bc_lost(xp_protocol *p, int err)
{
	struct bclient *c = C(p);
	xp_broker *b = c->b;

	xp__idle_stop(&c->idle);
	if (c->linked) {
		xp_list_remove(&c->node);
		c->linked = false;
		b->nclients--;
	}
	xp__pc_lost(&c->pc, err); /* pc.t is NULL from here on */
	congested_set(c, false);  /* the others it held go on */
	broker_unref(b);
	free(c);
}

static void bc_pause(xp_protocol *p)
{
	congested_set(C(p), true);
}

static void bc_resume(xp_protocol *p)
{
	struct bclient *c = C(p);

	xp__idle_touch(&c->idle);
	congested_set(c, false);
}

static void deliver(struct bclient *to, const void *data, size_t len)
{
	xp_transport *t = to->pc.t;

	if (!t || xp_transport_is_closing(t))
		return;
	if (xp_transport_write(t, data, len) < 0)
		return; /* the transport fails and is lost on its own */
	xp__pc_tx(&to->pc, data, len);
	xp__idle_touch(&to->idle);
	if (to->idle_timeout > 0)
		to->idle_wbuf = in_flight(t);
}

static int bc_data(xp_protocol *p, const void *data, size_t len)
{
	struct bclient *c = C(p);
	struct xp_list *n;

	xp__pc_rx(&c->pc, data, len);
	xp__idle_touch(&c->idle);
	for (n = c->b->clients.next; n != &c->b->clients; n = n->next) {
		struct bclient *o = xp_list_entry(n, struct bclient, node);
		if (o != c)
			deliver(o, data, len);
	}
	return 0;
}

static int bc_eof(xp_protocol *p)
{
	struct bclient *c = C(p);

	c->pc.eof = true;
	xp_transport_close(c->pc.t); /* after what is queued for it */
	return 1;
}

static const xp_protocol_ops broker_ops = {
    .connection_made = bc_made,
    .connection_lost = bc_lost,
    .pause_writing = bc_pause,
    .resume_writing = bc_resume,
    .data_received = bc_data,
    .eof_received = bc_eof,
};

/* ---- public ------------------------------------------------------------- */

xp_broker *xp_broker_new(xp_loop *loop)
{
	xp_broker *b;

	if (!loop) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->loop = loop;
	b->refs = 1;
	xp_list_init(&b->clients);
	return b;
}

xp_protocol *xp_broker_protocol(xp_broker *b, const xp_proto_opts *opts)
{
	struct bclient *c;

	if (!b) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base.ops = &broker_ops;
	c->b = b;
	xp__pc_init(&c->pc, opts);
	c->idle_timeout = c->pc.o.idle_timeout;
	c->pc.o.idle_timeout = 0; /* ours knows who is held */
	b->refs++;
	return &c->base;
}

size_t xp_broker_client_count(const xp_broker *b)
{
	return b ? b->nclients : 0;
}

void xp_broker_release(xp_broker *b)
{
	if (b)
		broker_unref(b);
}
