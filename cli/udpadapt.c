// SPDX-License-Identifier: MIT
/*
 * udpadapt.c - a connected UDP socket as one end of a relay.
 *
 * The relay joins byte streams, so the datagram socket is bridged through
 * a SOCK_SEQPACKET socket pair: the relay's end is a stream transport on
 * one side of the pair, and this adapter sits on the other, turning each
 * packet (each chunk the relay writes) into one datagram and each
 * datagram received into one packet.  Packets keep their boundaries, so
 * "each chunk read from the other side is one datagram" holds.
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
	int failed; /* the UDP socket could not be made */
	char name[300];
};

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
	if (u->failed)
		xp_transport_abort(t);
	else if (!u->dt)
		xp_transport_pause_reading(t); /* until the UDP socket exists */
}

static int sp_data(xp_protocol *p, const void *data, size_t len)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, sp);

	if (u->dt)
		xp_transport_sendto(u->dt, data, len, NULL, 0);
	return 0;
}

static void linger_end(struct udpa *u)
{
	if (u->dt)
		xp_transport_close(u->dt);
	if (u->st)
		xp_transport_close(u->st);
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

	if (!u->st)
		return 0;
	/* A reader that does not keep up loses datagrams, as UDP may. */
	if (xp_transport_get_write_buffer_size(u->st) > 4u * 1024 * 1024)
		return 0;
	xp_transport_write(u->st, data, len);
	return 0;
}

static void dp_error(xp_protocol *p, int err)
{
	struct udpa *u = XP_CONTAINER_OF(p, struct udpa, dp);

	xp_log(1, "udp %s: %s", u->name, xp_cli_strerror(err));
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
	u->next = all;
	all = u;
	xp_cli_addr_str(a, 0, u->name, sizeof(u->name));
	rf->r = r;
	rf->end = end;
	f1 = xp_connect_accepted_socket(loop, relay_factory, rf, sv[0], NULL);
	f2 = xp_connect_accepted_socket(loop, sp_factory, u, sv[1], NULL);
	memset(&o, 0, sizeof(o));
	o.remote_host = a->host[0] ? a->host : "localhost";
	o.remote_port = a->port;
	f3 = xp_create_datagram_endpoint(loop, dp_factory, u, &o);
	if (f1)
		xp_future_add_done_callback(f1, release_fut, NULL);
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
