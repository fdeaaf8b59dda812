// SPDX-License-Identifier: MIT
/*
 * tunnel.c - what the proxy servers (socks5.c, http_proxy.c) share:
 * reading the request exactly (a buffered protocol asking for what the
 * kind still needs, so bytes a client sends right after its request stay
 * in the socket for the relay), resolving the target without blocking the
 * loop, offering every address to allow_target, connecting, answering and
 * handing both streams to a relay.
 *
 * The relay is made when the connect starts (its end 1 is the target) but
 * carries the client (end 0) only after the success answer was queued, so
 * nothing relayed can overtake the answer.  Until that hand-over the
 * tunnel reports the connection itself (relay.on_done with r NULL) when
 * the client's transport is lost; the relay reports only once it carries
 * the client.
 *
 * A refusal is queued, our side shut down, and the client's bytes read and
 * dropped until its EOF (at most DRAIN_TIME): closing with unread bytes in
 * the socket would reset the connection and could destroy the answer.
 */
#include "proto/common.h"

#define DRAIN_TIME 5.0

static void tn_unref(struct xp__tunnel *tn)
{
	if (--tn->refs)
		return;
	xp__idle_stop(&tn->idle);
	xp__timer_cancel(&tn->drain_timer);
	free(tn->addrs);
	free(tn->user);
	free(tn->password);
	free(tn);
}

static struct xp__tunnel *TN(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct xp__tunnel, base);
}

static void set_reason(struct xp__tunnel *tn, const char *reason, int err)
{
	if (tn->reason)
		return;
	tn->reason = reason;
	tn->reason_err = err;
}

void xp__tunnel_send(struct xp__tunnel *tn, const void *data, size_t len)
{
	if (!tn->t)
		return;
	tn->st.sent += len;
	xp_transport_write(tn->t, data, len);
}

static int drain_cb(void *arg)
{
	struct xp__tunnel *tn = arg;

	xp_handle_release(tn->drain_timer);
	tn->drain_timer = NULL;
	if (tn->t)
		xp_transport_abort(tn->t);
	return 0;
}

int xp__tunnel_refuse(struct xp__tunnel *tn, int err)
{
	set_reason(tn, "error", err);
	if (!tn->t || tn->drain)
		return -1;
	tn->drain = true;
	tn->have = 0;
	tn->need = XP__TUNNEL_BUF;
	if (xp_transport_can_write_eof(tn->t) <= 0 || xp_transport_write_eof(tn->t) < 0) {
		xp_transport_close(tn->t);
		return -1;
	}
	xp_transport_resume_reading(tn->t);
	tn->drain_timer = xp__timer_start(tn->loop, DRAIN_TIME, drain_cb, tn);
	return -1;
}

/* ---- the target ------------------------------------------------------- */

static void fail_target(struct xp__tunnel *tn, int err)
{
	if (tn->t)
		tn->kind->answer(tn, err, NULL);
}

static void relay_done(xp_relay *r, const xp_conn_stats *st, void *arg)
{
	struct xp__tunnel *tn = arg;

	if (tn->handed && tn->o.relay.on_done)
		tn->o.relay.on_done(r, st, tn->o.relay.arg);
	tn_unref(tn);
}

static xp_protocol *target_factory(void *arg)
{
	struct xp__tunnel *tn = arg;

	return tn->t ? xp_relay_stream_protocol(tn->r, 1) : NULL;
}

/* The success answer is queued before the relay may write to the client. */
static void hand_over(struct xp__tunnel *tn, xp_transport *target)
{
	xp_transport *t = tn->t;
	xp_protocol *p0;

	tn->kind->answer(tn, 0, xp_transport_get_extra_info(target, "sockname", NULL));
	tn->handed = true;
	tn->t = NULL;
	xp__idle_stop(&tn->idle);
	p0 = xp_relay_stream_protocol(tn->r, 0);
	xp_transport_set_protocol(t, p0);
	p0->ops->connection_made(p0, t);
	tn_unref(tn); /* the client protocol's reference */
}

static void connected(xp_future *f, void *arg)
{
	struct xp__tunnel *tn = arg;
	int err = xp_future_error(f);

	tn->connect = NULL;
	if (!err && !tn->t)
		err = -ECONNRESET; /* the client left meanwhile */
	if (err) {
		if (!xp__relay_end_made(tn->r, 1))
			xp_relay_fail_end(tn->r, 1, err);
		xp_relay_fail_end(tn->r, 0, err);
		fail_target(tn, err);
	} else {
		hand_over(tn, xp_future_result(f));
	}
	xp_future_release(f);
	tn_unref(tn);
}

static size_t allowed(struct xp__tunnel *tn, xp_sockaddr *a, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n; i++)
		if (!tn->o.allow_target ||
		    tn->o.allow_target(tn->o.allow_arg, &a[i].u.sa, a[i].len))
			a[j++] = a[i];
	return j;
}

static int start_connect(struct xp__tunnel *tn, size_t n)
{
	xp_relay_opts ro = tn->o.relay;
	xp_connect_opts co = tn->o.connect;

	ro.on_done = relay_done;
	ro.arg = tn;
	tn->r = xp_relay_new(tn->loop, &ro);
	if (!tn->r)
		return -ENOMEM;
	tn->refs++; /* relay_done */
	co.tls = NULL;
	co.server_hostname = NULL;
	co.tls_handshake_timeout = 0;
	co.proxy = NULL;
	tn->connect = xp__connect_addrs(tn->loop, target_factory, tn, tn->addrs, n, NULL, &co);
	if (!tn->connect) {
		xp_relay_fail_end(tn->r, 1, -ENOMEM);
		xp_relay_fail_end(tn->r, 0, -ENOMEM);
		return -ENOMEM;
	}
	tn->refs++;
	xp_future_add_done_callback(tn->connect, connected, tn);
	return 0;
}

static void got_addrs(struct xp__tunnel *tn, const struct addrinfo *ai)
{
	size_t n = 0;
	int r;

	for (const struct addrinfo *p = ai; p; p = p->ai_next)
		n++;
	tn->addrs = calloc(n ? n : 1, sizeof(*tn->addrs));
	if (!tn->addrs) {
		fail_target(tn, -ENOMEM);
		return;
	}
	n = allowed(tn, tn->addrs, xp__connect_interleave(ai, tn->addrs, n));
	r = n ? start_connect(tn, n) : -EACCES;
	if (r < 0)
		fail_target(tn, r);
}

static void resolved(xp_future *f, void *arg)
{
	struct xp__tunnel *tn = arg;
	int err = xp_future_error(f);

	tn->resolve = NULL;
	if (tn->t && err)
		fail_target(tn, err);
	else if (tn->t)
		got_addrs(tn, xp_future_result(f));
	xp_future_release(f);
	tn_unref(tn);
}

static void begin(struct xp__tunnel *tn)
{
	struct addrinfo hints = {.ai_family = tn->o.connect.family, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int r;

	xp_transport_pause_reading(tn->t);
	r = xp__resolve(tn->loop, tn->host, tn->port, &hints, &ai, &tn->resolve);
	if (r < 0) {
		fail_target(tn, r);
	} else if (ai) {
		got_addrs(tn, ai);
		freeaddrinfo(ai);
	} else {
		tn->refs++;
		xp_future_add_done_callback(tn->resolve, resolved, tn);
	}
}

/* ---- the client's protocol until the hand-over ----------------------- */

static void idle_fire(void *arg)
{
	struct xp__tunnel *tn = arg;

	set_reason(tn, "timeout", -ETIMEDOUT);
	if (tn->t)
		xp_transport_abort(tn->t);
}

static void tn_made(xp_protocol *p, xp_transport *t)
{
	struct xp__tunnel *tn = TN(p);

	tn->t = t;
	xp__peer_label(t, "peer", tn->st.peer, sizeof(tn->st.peer));
	tn->st.started = xp_loop_time(tn->loop);
	tn->st.end = "open";
	xp__idle_start(&tn->idle, tn->loop, tn->o.relay.proto.idle_timeout, idle_fire, tn);
	tn->kind->start(tn);
}

static int tn_get_buffer(xp_protocol *p, ssize_t hint, void **buf, size_t *len)
{
	struct xp__tunnel *tn = TN(p);

	*buf = tn->buf + tn->have;
	*len = tn->need - tn->have;
	return 0;
}

static int tn_buffer_updated(xp_protocol *p, size_t n)
{
	struct xp__tunnel *tn = TN(p);

	tn->st.received += n;
	xp__idle_touch(&tn->idle);
	if (tn->drain) {
		tn->have = 0;
		return 0;
	}
	tn->have += n;
	if (tn->have == tn->need && tn->kind->step(tn) == 0)
		begin(tn);
	return 0;
}

static int tn_eof(xp_protocol *p)
{
	set_reason(TN(p), "eof", 0);
	return 0;
}

static void tn_lost(xp_protocol *p, int err)
{
	struct xp__tunnel *tn = TN(p);

	tn->t = NULL;
	xp__idle_stop(&tn->idle);
	xp__timer_cancel(&tn->drain_timer);
	if (tn->resolve)
		xp_future_cancel(tn->resolve);
	if (tn->connect)
		xp_future_cancel(tn->connect);
	set_reason(tn, err ? xp__end_for_err(err) : "closed", err);
	tn->st.end = tn->reason;
	tn->st.error = tn->reason_err;
	tn->st.seconds = xp_loop_time(tn->loop) - tn->st.started;
	if (tn->o.relay.on_done)
		tn->o.relay.on_done(NULL, &tn->st, tn->o.relay.arg);
	tn_unref(tn);
}

static const xp_protocol_ops tunnel_ops = {
    .connection_made = tn_made,
    .connection_lost = tn_lost,
    .get_buffer = tn_get_buffer,
    .buffer_updated = tn_buffer_updated,
    .eof_received = tn_eof,
};

/* RFC 1929 carries each credential behind a length byte; the HTTP proxy
 * keeps the same limit so both servers accept the same options. */
static bool credential_ok(const char *s)
{
	return !s || strlen(s) <= 255;
}

xp_protocol *xp__tunnel_new(xp_loop *loop, const xp_proxy_server_opts *o,
			    const struct xp__tunnel_kind *kind)
{
	struct xp__tunnel *tn;

	if (!loop || !o || !o->user != !o->password || !credential_ok(o->user) ||
	    !credential_ok(o->password) || o->connect.tls || o->connect.proxy ||
	    o->connect.use_sock || o->connect.local_addrlen > sizeof(tn->local.u)) {
		errno = EINVAL;
		return NULL;
	}
	tn = calloc(1, sizeof(*tn));
	if (!tn)
		return NULL;
	tn->base.ops = &tunnel_ops;
	tn->kind = kind;
	tn->loop = loop;
	tn->o = *o;
	tn->refs = 1; /* the client protocol: until connection_lost or hand-over */
	if (xp__dup_str(&tn->user, o->user) || xp__dup_str(&tn->password, o->password)) {
		tn_unref(tn);
		errno = ENOMEM;
		return NULL;
	}
	tn->o.user = tn->user;
	tn->o.password = tn->password;
	if (o->connect.local_addr) {
		memcpy(&tn->local.u, o->connect.local_addr, o->connect.local_addrlen);
		tn->o.connect.local_addr = &tn->local.u.sa;
	}
	return &tn->base;
}
