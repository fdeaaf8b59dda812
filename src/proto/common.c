// SPDX-License-Identifier: MIT
/*
 * common.c - helpers shared by the built-in protocols: the lazy idle timer,
 * stats with their hooks, and applying the stream options.
 */
#include "proto/common.h"

#include <stdio.h>

/* ---- idle timer ------------------------------------------------------ */

static int idle_cb(void *arg)
{
	struct xp__idle *i = arg;
	double due = i->last + i->timeout;

	xp_handle_release(i->h);
	i->h = NULL;
	/* Traffic moved the deadline: sleep again instead of firing. */
	if (xp_loop_time(i->loop) + 1e-3 < due) {
		i->h = xp_handle_retain(xp_call_at(i->loop, due, idle_cb, i));
		return 0;
	}
	i->fire(i->arg);
	return 0;
}

void xp__idle_start(struct xp__idle *i, xp_loop *loop, double timeout, void (*fire)(void *),
		    void *arg)
{
	i->loop = loop;
	i->timeout = timeout;
	i->fire = fire;
	i->arg = arg;
	i->h = NULL;
	if (timeout <= 0)
		return;
	i->last = xp_loop_time(loop);
	i->h = xp__timer_start(loop, timeout, idle_cb, i);
}

void xp__idle_stop(struct xp__idle *i)
{
	xp__timer_cancel(&i->h);
}

/* ---- stats ----------------------------------------------------------- */

const char *xp__end_for_err(int err)
{
	if (!err)
		return "eof";
	if (err == -ECONNRESET || err == -EPIPE)
		return "reset";
	return "error";
}

void xp__peer_label(xp_transport *t, const char *label, char *buf, size_t size)
{
	const xp_sockaddr *sa = t ? xp_transport_get_extra_info(t, "peername", NULL) : NULL;
	int r = sa && sa->len > 0 ? xp_sockaddr_format(&sa->u.sa, sa->len, buf, size) : -EINVAL;

	/* A long escaped Unix name is cut short, which beats no name at all. */
	if ((r == 0 || r == -ENOSPC) && *buf)
		return;
	snprintf(buf, size, "%s", label);
}

void xp__proto_apply(xp_transport *t, const xp_proto_opts *o, bool reader, bool writer)
{
	if (!t)
		return;
	if (writer && (o->has_limits || o->high || o->low))
		xp_transport_set_write_buffer_limits(t, (long long)o->high, (long long)o->low);
	if (reader && o->read_size)
		xp_transport_set_read_size(t, o->read_size);
}

/* ---- one connection of a simple protocol ------------------------------- */

static void pc_idle_fire(void *arg)
{
	struct xp__pconn *pc = arg;

	if (!pc->t)
		return;
	if (!pc->reason) {
		pc->reason = "timeout";
		pc->reason_err = -ETIMEDOUT;
	}
	/* A clean close when nothing is queued; a stuck queue would keep a
	 * graceful close waiting forever. */
	if (xp_transport_get_write_buffer_size(pc->t))
		xp_transport_abort(pc->t);
	else
		xp_transport_close(pc->t);
}

void xp__pc_init(struct xp__pconn *pc, const xp_proto_opts *o)
{
	memset(pc, 0, sizeof(*pc));
	if (o)
		pc->o = *o;
	pc->st.end = "open";
}

void xp__pc_made(struct xp__pconn *pc, xp_transport *t)
{
	pc->t = t;
	pc->loop = xp_transport_get_loop(t);
	xp__proto_apply(t, &pc->o, true, true);
	xp__peer_label(t, "peer", pc->st.peer, sizeof(pc->st.peer));
	pc->st.started = xp_loop_time(pc->loop);
	pc->started = true;
	if (pc->o.hooks.on_start)
		pc->o.hooks.on_start(pc->o.hooks.arg, &pc->st);
	xp__idle_start(&pc->idle, pc->loop, pc->o.idle_timeout, pc_idle_fire, pc);
}

void xp__pc_rx(struct xp__pconn *pc, const void *data, size_t len)
{
	pc->st.received += len;
	xp__idle_touch(&pc->idle);
	if (pc->o.hooks.on_data)
		pc->o.hooks.on_data(pc->o.hooks.arg, &pc->st, '<', data, len);
}

void xp__pc_tx(struct xp__pconn *pc, const void *data, size_t len)
{
	pc->st.sent += len;
	xp__idle_touch(&pc->idle);
	if (pc->o.hooks.on_data)
		pc->o.hooks.on_data(pc->o.hooks.arg, &pc->st, '>', data, len);
}

void xp__pc_lost(struct xp__pconn *pc, int err)
{
	xp__idle_stop(&pc->idle);
	pc->t = NULL;
	if (pc->reason) {
		pc->st.end = pc->reason;
		pc->st.error = pc->reason_err;
	} else if (err) {
		pc->st.end = xp__end_for_err(err);
		pc->st.error = err;
	} else {
		/* Closed without the peer's EOF: someone on our side did it. */
		pc->st.end = pc->eof ? "eof" : "closed";
	}
	if (!pc->started)
		return;
	pc->st.seconds = xp_loop_time(pc->loop) - pc->st.started;
	if (pc->o.hooks.on_end)
		pc->o.hooks.on_end(pc->o.hooks.arg, &pc->st);
}
