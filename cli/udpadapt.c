// SPDX-License-Identifier: MIT
/*
 * udpadapt.c - a datagram peer as one end of a relay: a connected UDP or
 * Unix datagram socket (udp:, unixgram:), or one sender of a listening
 * socket (udp-listen:, unixgram-listen:, see dglisten.c).
 *
 * The relay joins byte streams, so the peer is bridged through a
 * SOCK_SEQPACKET socket pair: the relay's end is a stream transport on
 * one side of the pair, and this adapter sits on the other, turning each
 * packet (each chunk the relay writes) into one datagram and each
 * datagram received into one packet.  Packets keep their boundaries, so
 * "each chunk read from the other side is one datagram" holds, except
 * that a chunk over the largest datagram (65507 bytes) is split.
 *
 * A datagram that cannot be sent (EMSGSIZE, ECONNREFUSED from the peer's
 * port unreachable, ...) ends the relay with an error, never a silent
 * drop.  The socket's send queue is bounded: when it is full the pair is
 * no longer read, so the relay stops reading its other end.
 *
 * Datagrams have no EOF: when the other side ends, replies are still
 * accepted for `linger` seconds (--eof-timeout, default 0.5 s, like socat
 * -t; 0: until the run stops), then the adapter closes and the relay sees
 * its EOF, a clean end.  The relay runs no EOF timer of its own for such
 * an end (cmd_pipe.c): this linger is that wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "run.h"

struct cli_dgpeer {
	struct cli_dgpeer *next; /* all adapters, for cli_udp_stop() */
	xp_protocol dp, sp;	 /* datagram side, pair side */
	xp_transport *dt, *st;
	struct cli_run *run;
	struct cli_dgsender *snd; /* a listener's sender: dt is not ours */
	unsigned char *first;	  /* its first datagram, until st is made */
	size_t first_len;
	double linger;
	xp_handle *timer;
	int refs;
	int ending;
	int failed;	    /* the socket could not be made */
	int send_failed;    /* a datagram could not be sent: the relay ends */
	int replies_held;   /* the listener's send queue is full */
	int congested;	    /* the pair is full: the relay is behind */
	unsigned long conn; /* the relay's connection (cli_run_conn_find) */
	int end;	    /* our end of that relay */
	char name[300];	    /* "udp:HOST:PORT", "unixgram:PATH" */
};

/* The largest UDP payload over IPv4 (65535 - 8 - 20). */
#define UDP_MAX 65507

static struct cli_dgpeer *all;

static void put(struct cli_dgpeer *u)
{
	if (--u->refs == 0) {
		struct cli_dgpeer **pu;

		if (u->timer)
			xp_handle_cancel(u->timer);
		for (pu = &all; *pu; pu = &(*pu)->next)
			if (*pu == u) {
				*pu = u->next;
				break;
			}
		if (u->snd)
			cli_dgl_gone(u->snd);
		free(u->first);
		free(u);
	}
}

/* ---- the pair side ---- */

static void sp_made(xp_protocol *p, xp_transport *t)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, sp);

	u->st = t;
	/* Nothing queued behind a packet: a flush of several would send
	 * them as one, which the relay reads cut at its read size. */
	xp_transport_set_write_buffer_limits(t, 0, 0);
	if (u->failed) {
		xp_transport_abort(t);
		return;
	}
	if (u->snd) {
		/* The listener held its reading for this: the first
		 * datagram goes first, the ones after it follow. */
		if (u->first)
			xp_transport_write(t, u->first, u->first_len);
		free(u->first);
		u->first = NULL;
		if (u->replies_held)
			xp_transport_pause_reading(t);
		cli_dgl_hold(u->snd, -1);
	} else if (!u->dt) {
		xp_transport_pause_reading(t); /* until the socket exists */
	}
}

static void linger_end(struct cli_dgpeer *u)
{
	if (u->dt && !u->snd)
		xp_transport_close(u->dt);
	if (u->st)
		xp_transport_close(u->st);
}

/* The one failure line (the relay's stats end may be the other side, so
 * the adapter names itself), then the relay ends with the error: its
 * other end is closed as after an EOF, what it read is written out. */
static void send_failed(struct cli_dgpeer *u, int err)
{
	struct cli_run *r = u->run;
	struct cli_conn *c;

	if (u->send_failed)
		return;
	u->send_failed = 1;
	if (r->single && !r->status_set && !r->stopping) {
		cli_err("%s: %s", u->name, cli_strerror(err));
		cli_run_fail(r, CLI_EXIT_FAIL);
	}
	c = cli_run_conn_find(r, u->conn);
	if (c && c->relay)
		xp_relay_fail_end(c->relay, u->end, err);
	linger_end(u);
}

void cli_dgpeer_failed(struct cli_dgpeer *u, int err)
{
	send_failed(u, err);
}

static int sp_data(xp_protocol *p, const void *data, size_t len)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, sp);
	const char *b = data;

	while (len && (u->dt || u->snd) && !u->send_failed) {
		size_t n = len < UDP_MAX ? len : UDP_MAX;
		int err = u->snd ? cli_dgl_sendto(u->snd, b, n)
				 : xp_transport_sendto(u->dt, b, n, NULL, 0);

		if (err < 0)
			send_failed(u, err);
		b += n;
		len -= n;
	}
	return 0;
}

static int linger_cb(void *arg)
{
	struct cli_dgpeer *u = arg;

	u->timer = NULL;
	linger_end(u);
	return 0;
}

void cli_udp_stop(struct cli_run *run)
{
	for (struct cli_dgpeer *u = all; u; u = u->next)
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
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, sp);

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

/* The relay is slow (on): leave datagrams in the kernel (UDP may drop
 * them there) rather than merging them in our queue.  A listener decides
 * for its sender (dglisten.c). */
static void set_congested(struct cli_dgpeer *u, int on)
{
	u->congested = on;
	if (u->snd)
		cli_dgl_congested(u->snd, on);
	else if (u->dt && on)
		xp_transport_pause_reading(u->dt);
	else if (u->dt)
		xp_transport_resume_reading(u->dt);
}

static void sp_pause_writing(xp_protocol *p)
{
	set_congested(XP_CONTAINER_OF(p, struct cli_dgpeer, sp), 1);
}

static void sp_resume_writing(xp_protocol *p)
{
	set_congested(XP_CONTAINER_OF(p, struct cli_dgpeer, sp), 0);
}

static void sp_lost(xp_protocol *p, int err)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, sp);

	u->st = NULL;
	if (u->snd && u->congested)
		set_congested(u, 0);
	if (u->dt && !u->snd)
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

/* ---- a listener's sender ---- */

/* One datagram from the sender; -EAGAIN when the relay is behind (the
 * listener drops it or has paused, see dglisten.c). */
int cli_dgpeer_input(struct cli_dgpeer *u, const void *data, size_t len)
{
	/* Past the other side's EOF too: those are the replies. */
	if (u->send_failed || !len)
		return 0;
	if (!u->st) {
		if (u->first)
			return -EAGAIN;
		u->first = malloc(len);
		if (!u->first)
			return -ENOMEM;
		memcpy(u->first, data, len);
		u->first_len = len;
		return 0;
	}
	if (u->congested || xp_transport_is_closing(u->st) > 0)
		return -EAGAIN;
	return xp_transport_write(u->st, data, len);
}

/* The listener's send queue is full (or has room again): stop (resume)
 * taking chunks from the relay. */
void cli_dgpeer_hold_replies(struct cli_dgpeer *u, int on)
{
	u->replies_held = on;
	if (!u->st)
		return;
	if (on)
		xp_transport_pause_reading(u->st);
	else if (!u->send_failed)
		xp_transport_resume_reading(u->st);
}

/* ---- the connected socket's side ---- */

static void dp_made(xp_protocol *p, xp_transport *t)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, dp);

	u->dt = t;
	cli_log(1, "%s ready", u->name);
	if (u->st)
		xp_transport_resume_reading(u->st);
}

static int dp_datagram(xp_protocol *p, const void *data, size_t len, const struct sockaddr *sa,
		       socklen_t alen)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, dp);

	if (u->st)
		xp_transport_write(u->st, data, len);
	return 0;
}

/* A send failed now (EMSGSIZE) or the peer refused an earlier datagram
 * (ECONNREFUSED, reported on a later send or read). */
static void dp_error(xp_protocol *p, int err)
{
	send_failed(XP_CONTAINER_OF(p, struct cli_dgpeer, dp), err);
}

static void dp_pause_writing(xp_protocol *p)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, dp);

	if (u->st)
		xp_transport_pause_reading(u->st);
}

static void dp_resume_writing(xp_protocol *p)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, dp);

	if (u->st && !u->send_failed)
		xp_transport_resume_reading(u->st);
}

static void dp_lost(xp_protocol *p, int err)
{
	struct cli_dgpeer *u = XP_CONTAINER_OF(p, struct cli_dgpeer, dp);

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
	return &((struct cli_dgpeer *)arg)->dp;
}

static xp_protocol *sp_factory(void *arg)
{
	return &((struct cli_dgpeer *)arg)->sp;
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
	struct cli_dgpeer *u = arg;
	int err = xp_future_error(f);

	if (err) {
		cli_err("%s: %s", u->name, cli_strerror(err));
		cli_run_fail(u->run, cli_connect_status(err));
		/* The datagram side will never come; the pair side (made or
		 * still to come) is aborted and drops the last reference. */
		u->failed = 1;
		u->refs--;
		if (u->st)
			xp_transport_abort(u->st);
	}
	xp_future_release(f);
}

/* The adapter and its socket pair, the relay's end on one side of it;
 * refs: 1 for the pair side, 1 more for a socket of our own. */
static struct cli_dgpeer *adapter_new(struct cli_run *run, xp_relay *r, int end, int refs,
				      const char *name, double linger)
{
	struct cli_dgpeer *u = calloc(1, sizeof(*u));
	struct rfact *rf = calloc(1, sizeof(*rf));
	struct cli_conn *c;
	xp_future *f1, *f2;
	int sv[2];

	if (!u || !rf || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(u);
		free(rf);
		xp_relay_fail_end(r, end, -ENOMEM);
		return NULL;
	}
	u->dp.ops = &dp_ops;
	u->sp.ops = &sp_ops;
	u->run = run;
	u->linger = linger;
	u->refs = refs;
	u->end = end;
	if ((c = cli_run_conn_of_relay(run, r)) != NULL)
		u->conn = c->id;
	u->next = all;
	all = u;
	snprintf(u->name, sizeof(u->name), "%s", name);
	rf->r = r;
	rf->end = end;
	f1 = xp_connect_accepted_socket(run->loop, relay_factory, rf, sv[0], NULL);
	f2 = xp_connect_accepted_socket(run->loop, sp_factory, u, sv[1], NULL);
	if (f1)
		xp_future_add_done_callback(f1, relay_side_done, NULL);
	if (f2)
		xp_future_add_done_callback(f2, release_fut, NULL);
	return u;
}

struct cli_dgpeer *cli_dgpeer_session(struct cli_run *run, xp_relay *r, int end,
				      struct cli_dgsender *snd, const char *name, double linger)
{
	struct cli_dgpeer *u = adapter_new(run, r, end, 1, name, linger);

	if (u)
		u->snd = snd;
	return u;
}

static void attach(struct cli_run *run, struct cli_dgpeer *u, const xp_datagram_opts *o)
{
	xp_future *f = xp_create_datagram_endpoint(run->loop, dp_factory, u, o);

	if (f) {
		xp_future_add_done_callback(f, dgram_done, u);
	} else {
		cli_err("%s: %s", u->name, strerror(errno));
		cli_run_fail(run, CLI_EXIT_FAIL);
	}
}

int cli_udp_attach(struct cli_run *run, xp_relay *r, int end, const struct cli_addr *a,
		   double linger)
{
	char name[300], addr[280];
	struct cli_dgpeer *u;
	xp_datagram_opts o;

	cli_conn_name(run->cli, a, addr, sizeof(addr));
	snprintf(name, sizeof(name), "udp:%s", addr);
	u = adapter_new(run, r, end, 2, name, linger);
	if (!u)
		return -ENOMEM;
	memset(&o, 0, sizeof(o));
	o.remote_host = cli_client_host(a, run->cli->family);
	o.remote_port = a->port;
	o.family = run->cli->family;
	if (run->cli->has_source) {
		/* The library binds the source of each target's family. */
		o.local_host = run->cli->source.host[0] ? run->cli->source.host : NULL;
		o.local_port = run->cli->source.port[0] ? run->cli->source.port : "0";
	}
	attach(run, u, &o);
	return 0;
}

/* A socket with an address of its own (an abstract one the kernel picks)
 * so that replies can come back, connected to the peer; the fd or -errno. */
static int unixgram_socket(const struct cli_addr *a)
{
	struct sockaddr_un self = {.sun_family = AF_UNIX};
	xp_sockaddr peer;
	int fd, err;

	if (cli_unix_sockaddr(a, &peer) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0 ||
	    connect(fd, &peer.u.sa, peer.len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int cli_unixgram_attach(struct cli_run *run, xp_relay *r, int end, const struct cli_addr *a,
			double linger)
{
	char name[300];
	struct cli_dgpeer *u;
	xp_datagram_opts o;
	int fd;

	snprintf(name, sizeof(name), "unixgram:%s%s", a->kind == CLI_ADDR_UNIX_ABSTRACT ? "@" : "",
		 a->path);
	fd = unixgram_socket(a);
	if (fd < 0) {
		cli_err("connect %s: %s", name, cli_strerror(fd));
		/* A path that is a stream socket: nothing to connect to. */
		cli_run_fail(run,
			     fd == -EPROTOTYPE ? CLI_EXIT_UNAVAILABLE : cli_connect_status(fd));
		xp_relay_fail_end(r, end, fd);
		return fd;
	}
	u = adapter_new(run, r, end, 2, name, linger);
	if (!u) {
		close(fd);
		return -ENOMEM;
	}
	memset(&o, 0, sizeof(o));
	o.use_sock = 1;
	o.sock = fd;
	attach(run, u, &o);
	return 0;
}
