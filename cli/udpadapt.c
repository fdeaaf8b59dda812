// SPDX-License-Identifier: MIT
/*
 * udpadapt.c - a connected UDP socket as one end of a relay.
 *
 * The relay joins byte streams, so the datagram socket is bridged through
 * a SOCK_SEQPACKET socket pair: the relay's end is a stream transport on
 * one side of the pair, and this adapter sits on the other, turning each
 * packet (each chunk the relay writes) into one datagram and each
 * datagram received into one packet.  Packets keep their boundaries, so
 * "each chunk read from the other side is one datagram" holds, except
 * that a chunk over the largest datagram (65507 bytes) is split.
 *
 * A datagram that cannot be sent (EMSGSIZE, ECONNREFUSED from the peer's
 * port unreachable, ...) ends the relay with an error, never a silent
 * drop.  The UDP socket's send queue is bounded: when it is full the pair
 * is no longer read, so the relay stops reading its other end.
 *
 * UDP has no EOF: when the other side ends, replies are still accepted
 * for `linger` seconds (--eof-timeout, default 0.5 s, like socat -t; 0:
 * until the run stops), then the adapter closes and the relay sees its
 * EOF, a clean end.  The relay runs no EOF timer of its own for a udp:
 * end (cmd_pipe.c): this linger is that wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "run.h"

struct udpa {
	struct udpa *next;  /* all adapters, for xp_cli_udp_stop() */
	xp_protocol dp, sp; /* datagram side, pair side */
	xp_transport *dt, *st;
	struct xp_run *run;
	double linger;
	xp_handle *timer;
	int refs;
	int ending;
	int failed;	    /* the UDP socket could not be made */
	int send_failed;    /* a datagram could not be sent: the relay ends */
	unsigned long conn; /* the relay's connection (xp_run_conn_find) */
	int end;	    /* our end of that relay */
	char name[300];
};

/* The largest UDP payload over IPv4 (65535 - 8 - 20). */
#define UDP_MAX 65507

static struct udpa *all;

static void put(struct udpa *u)
{
	if (--u->refs == 0) {
		struct udpa **pu;

		if (u->timer)
			xp_handle_cancel(u->timer);
		for (pu = &all; *pu; pu = &(*pu)->next)
			if (*pu == u) {
				*pu = u->next;
				break;
			}
		free(u);
	}
}

/* ---- the pair side ---- */

static void sp_made(xp_protocol *p, xp_transport *t)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);

	u->st = t;
	/* Nothing queued behind a packet: a flush of several would send
	 * them as one, which the relay reads cut at its read size. */
	xp_transport_set_write_buffer_limits(t, 0, 0);
	if (u->failed)
		xp_transport_abort(t);
	else if (!u->dt)
		xp_transport_pause_reading(t); /* until the UDP socket exists */
}

static void linger_end(struct udpa *u)
{
	if (u->dt)
		xp_transport_close(u->dt);
	if (u->st)
		xp_transport_close(u->st);
}

/* The one failure line (the relay's stats end may be the other side, so
 * the adapter names itself), then the relay ends with the error: its
 * other end is closed as after an EOF, what it read is written out. */
static void send_failed(struct udpa *u, int err)
{
	struct xp_run *r = u->run;
	struct xp_conn *c;

	if (u->send_failed)
		return;
	u->send_failed = 1;
	if (r->single && !r->status_set && !r->stopping) {
		xp_err("udp:%s: %s", u->name, xp_cli_strerror(err));
		xp_run_fail(r, XP_EXIT_FAIL);
	}
	c = xp_run_conn_find(r, u->conn);
	if (c && c->relay)
		xp_relay_fail_end(c->relay, u->end, err);
	linger_end(u);
}

static int sp_data(xp_protocol *p, const void *data, size_t len)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);
	const char *b = data;

	while (len && u->dt && !u->send_failed) {
		size_t n = len < UDP_MAX ? len : UDP_MAX;
		int err = xp_transport_sendto(u->dt, b, n, NULL, 0);

		if (err < 0)
			send_failed(u, err);
		b += n;
		len -= n;
	}
	return 0;
}

static int linger_cb(void *arg)
{
	struct udpa *u = arg;

	u->timer = NULL;
	linger_end(u);
	return 0;
}

void xp_cli_udp_stop(struct xp_run *run)
{
	for (struct udpa *u = all; u; u = u->next)
		if (u->run == run && u->ending) {
			if (u->timer) {
				xp_handle_cancel(u->timer);
				u->timer = NULL;
			}
			linger_end(u);
		}
}

static int sp_eof(xp_protocol *p)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);

	if (!u->ending) {
		u->ending = 1;
		if (u->linger > 0)
			u->timer =
			    xp_call_later(xp_transport_get_loop(u->st), u->linger, linger_cb, u);
		else if (u->run->stopping)
			linger_end(u);
		/* else for ever: until a signal stops the run */
	}
	return 1; /* keep writing replies until the linger ends */
}

/* The relay is slow: leave datagrams in the kernel (UDP may drop them
 * there) rather than merging them in our queue. */
static void sp_pause_writing(xp_protocol *p)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);

	if (u->dt)
		xp_transport_pause_reading(u->dt);
}

static void sp_resume_writing(xp_protocol *p)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);

	if (u->dt)
		xp_transport_resume_reading(u->dt);
}

static void sp_lost(xp_protocol *p, int err)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);

	u->st = NULL;
	if (u->dt)
		xp_transport_close(u->dt);
	put(u);
}

static const xp_protocol_ops sp_ops = {
    .connection_made = sp_made,
    .connection_lost = sp_lost,
    .data_received = sp_data,
    .eof_received = sp_eof,
    .pause_writing = sp_pause_writing,
    .resume_writing = sp_resume_writing,
};

/* ---- the datagram side ---- */

static void dp_made(xp_protocol *p, xp_transport *t)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, dp);

	u->dt = t;
	xp_log(1, "udp %s ready", u->name);
	if (u->st)
		xp_transport_resume_reading(u->st);
}

static int dp_datagram(xp_protocol *p, const void *data, size_t len, const struct sockaddr *sa,
		       socklen_t alen)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, dp);

	if (u->st)
		xp_transport_write(u->st, data, len);
	return 0;
}

/* A send failed now (EMSGSIZE) or the peer refused an earlier datagram
 * (ECONNREFUSED, reported on a later send or read). */
static void dp_error(xp_protocol *p, int err)
{
	send_failed(XP_CONTAINER_OF(p, struct udpa, dp), err);
}

static void dp_pause_writing(xp_protocol *p)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, dp);

	if (u->st)
		xp_transport_pause_reading(u->st);
}

static void dp_resume_writing(xp_protocol *p)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, dp);

	if (u->st && !u->send_failed)
		xp_transport_resume_reading(u->st);
}

static void dp_lost(xp_protocol *p, int err)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, dp);

	u->dt = NULL;
	if (u->st) {
		if (err)
			xp_transport_abort(u->st);
		else
			xp_transport_close(u->st);
	}
	put(u);
}

static const xp_protocol_ops dp_ops = {
    .connection_made = dp_made,
    .connection_lost = dp_lost,
    .datagram_received = dp_datagram,
    .error_received = dp_error,
    .pause_writing = dp_pause_writing,
    .resume_writing = dp_resume_writing,
};

static xp_protocol *dp_factory(void *arg)
{
	return &((struct udpa *)arg)->dp;
}

static xp_protocol *sp_factory(void *arg)
{
	return &((struct udpa *)arg)->sp;
}

struct rfact {
	xp_relay *r;
	int end;
};

static xp_protocol *relay_factory(void *arg)
{
	struct rfact *f = arg;
	xp_protocol *p = xp_relay_stream_protocol(f->r, f->end);

	free(f);
	return p;
}

static void release_fut(xp_future *f, void *arg)
{
	xp_future_release(f);
}

/* The relay's side of the pair: one chunk per packet, as sp_made does
 * for ours (the relay set its watermarks in connection_made, before). */
static void relay_side_done(xp_future *f, void *arg)
{
	if (!xp_future_error(f))
		xp_transport_set_write_buffer_limits(xp_future_result(f), 0, 0);
	xp_future_release(f);
}

static void dgram_done(xp_future *f, void *arg)
{
	struct udpa *u = arg;
	int err = xp_future_error(f);

	if (err) {
		xp_err("udp %s: %s", u->name, xp_cli_strerror(err));
		xp_run_fail(u->run, xp_cli_connect_status(err));
		/* The datagram side will never come; the pair side (made or
		 * still to come) is aborted and drops the last reference. */
		u->failed = 1;
		u->refs--;
		if (u->st)
			xp_transport_abort(u->st);
	}
	xp_future_release(f);
}

int xp_cli_udp_attach(struct xp_run *run, xp_relay *r, int end, const struct xp_cli_addr *a,
		      double linger)
{
	xp_loop *loop = run->loop;
	struct udpa *u = calloc(1, sizeof(*u));
	struct rfact *rf = calloc(1, sizeof(*rf));
	xp_datagram_opts o;
	xp_future *f1, *f2, *f3;
	struct xp_conn *c;
	int sv[2];

	if (!u || !rf || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(u);
		free(rf);
		xp_relay_fail_end(r, end, -ENOMEM);
		return -ENOMEM;
	}
	u->dp.ops = &dp_ops;
	u->sp.ops = &sp_ops;
	u->run = run;
	u->linger = linger;
	u->refs = 2;
	u->end = end;
	if ((c = xp_run_conn_of_relay(run, r)) != NULL)
		u->conn = c->id;
	u->next = all;
	all = u;
	xp_cli_conn_name(run->cli, a, u->name, sizeof(u->name));
	rf->r = r;
	rf->end = end;
	f1 = xp_connect_accepted_socket(loop, relay_factory, rf, sv[0], NULL);
	f2 = xp_connect_accepted_socket(loop, sp_factory, u, sv[1], NULL);
	memset(&o, 0, sizeof(o));
	o.remote_host = xp_cli_client_host(a, run->cli->family);
	o.remote_port = a->port;
	o.family = run->cli->family;
	if (run->cli->has_source) {
		/* The library binds the source of each target's family. */
		o.local_host = run->cli->source.host[0] ? run->cli->source.host : NULL;
		o.local_port = run->cli->source.port[0] ? run->cli->source.port : "0";
	}
	f3 = xp_create_datagram_endpoint(loop, dp_factory, u, &o);
	if (f1)
		xp_future_add_done_callback(f1, relay_side_done, NULL);
	if (f2)
		xp_future_add_done_callback(f2, release_fut, NULL);
	if (f3) {
		xp_future_add_done_callback(f3, dgram_done, u);
	} else {
		xp_err("udp %s: %s", u->name, strerror(errno));
		xp_run_fail(run, XP_EXIT_FAIL);
	}
	return 0;
}
