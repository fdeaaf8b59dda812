/* SPDX-License-Identifier: MIT */
/*
 * common.h - what the built-in protocols (src/proto/) share: connection
 * stats with their hooks, the idle timer, applying xp_proto_opts to a
 * transport, and the relay's internal entry points for exec and forward.
 */
#ifndef XP_PROTO_COMMON_H
#define XP_PROTO_COMMON_H

#include "proto_iface.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- idle timer ------------------------------------------------------ */

/*
 * Fires once `timeout` seconds passed without a touch.  Touching only
 * stores the time; the timer re-arms itself lazily when it finds a later
 * deadline, so traffic costs no timer operations.
 */
struct xp__idle {
	xp_loop *loop;
	double timeout, last;
	xp_handle *h; /* retained */
	void (*fire)(void *arg);
	void *arg;
};

void xp__idle_start(struct xp__idle *i, xp_loop *loop, double timeout, void (*fire)(void *),
		    void *arg);
void xp__idle_stop(struct xp__idle *i);
static inline void xp__idle_touch(struct xp__idle *i)
{
	if (i->h)
		i->last = xp_loop_time(i->loop);
}

/* ---- stats and hooks --------------------------------------------------- */

/* "eof" for 0, "reset" for -ECONNRESET/-EPIPE, else "error". */
const char *xp__end_for_err(int err);
/* The peer's address, or label when the transport has none. */
void xp__peer_label(xp_transport *t, const char *label, char *buf, size_t size);
/* Watermarks on a writer, read size on a reader, as the options say. */
void xp__proto_apply(xp_transport *t, const xp_proto_opts *o, bool reader, bool writer);

/* One connection of echo, discard or chargen. */
struct xp__pconn {
	xp_loop *loop;
	xp_transport *t; /* from connection_made to connection_lost */
	xp_proto_opts o;
	xp_conn_stats st;
	struct xp__idle idle;
	const char *reason; /* first explicit reason for the end, if any */
	int reason_err;
	bool eof; /* the peer's EOF arrived */
	bool started;
};

void xp__pc_init(struct xp__pconn *pc, const xp_proto_opts *o);
/* connection_made: options, stats, on_start, idle timer. */
void xp__pc_made(struct xp__pconn *pc, xp_transport *t);
void xp__pc_rx(struct xp__pconn *pc, const void *data, size_t len);
void xp__pc_tx(struct xp__pconn *pc, const void *data, size_t len);
/* connection_lost: final stats and on_end. */
void xp__pc_lost(struct xp__pconn *pc, int err);

/* ---- relay internals (relay.c) for exec.c and forward.c ------------------ */

/* Keep the relay's memory while a future that refers to it is pending. */
void xp__relay_ref(xp_relay *r);
void xp__relay_unref(xp_relay *r);
/* fd-2 data of a subprocess end goes to fd (plain write) instead of the
 * other end. */
/* A future creating the end's transport: cancelled if the relay winds
 * down first.  Not retained; clear it (NULL) before releasing it. */
void xp__relay_set_pending(xp_relay *r, int end, xp_future *fut);
/* connection_made was delivered to a protocol of that end. */
bool xp__relay_end_made(const xp_relay *r, int end);

/* ---- proxy servers (tunnel.c) for socks5.c and http_proxy.c ------------- */

struct xp__tunnel;

/* What differs between the proxy protocols: reading the request and
 * answering it. */
struct xp__tunnel_kind {
	/* connection_made: set tn->need for the first read. */
	void (*start)(struct xp__tunnel *tn);
	/* tn->buf holds tn->need bytes: 1 to read more (tn->need raised),
	 * 0 when tn->host and tn->port name the target, or the result of
	 * xp__tunnel_refuse. */
	int (*step)(struct xp__tunnel *tn);
	/* The target is connected (err 0, bound: our address toward it) or
	 * could not be (err: -EACCES when no address was allowed, else the
	 * connect or resolve error).  Returns 0 or xp__tunnel_refuse's. */
	int (*answer)(struct xp__tunnel *tn, int err, const xp_sockaddr *bound);
};

#define XP__TUNNEL_BUF 8192

struct xp__tunnel {
	xp_protocol base;
	const struct xp__tunnel_kind *kind;
	xp_loop *loop;
	xp_proxy_server_opts o;
	char *user, *password;
	xp_sockaddr local; /* o.connect.local_addr points here */
	xp_transport *t;   /* the client, until it is lost or handed over */
	unsigned char buf[XP__TUNNEL_BUF + 1];
	size_t have, need;
	int stage;  /* the kind's */
	bool drain; /* refused: reading and dropping until the client's EOF */
	char host[256], port[8];
	xp_future *resolve, *connect;
	xp_sockaddr *addrs;
	xp_relay *r;
	bool handed, lost;
	xp_conn_stats st; /* until the hand-over */
	const char *reason;
	int reason_err;
	struct xp__idle idle;
	xp_handle *drain_timer;
	int refs;
};

xp_protocol *xp__tunnel_new(xp_loop *loop, const xp_proxy_server_opts *o,
			    const struct xp__tunnel_kind *kind);
/* Queue bytes for the client. */
void xp__tunnel_send(struct xp__tunnel *tn, const void *data, size_t len);
/* After the refusal was queued: end with err (an XP_EPROXY* code) once
 * the client has it.  Returns -1 (for step and answer to pass on). */
int xp__tunnel_refuse(struct xp__tunnel *tn, int err);

#endif
