// SPDX-License-Identifier: MIT
/*
 * cmd_udp_echo.c - `xport udp-echo ADDR`: one datagram socket serving
 * every peer at once; each datagram goes back to its sender.  A peer that
 * disappears (ICMP port unreachable -> error_received) changes nothing.
 * Peers are remembered (bounded) for -v's "new peer" line, SIGUSR1 and
 * --stats, one line per peer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"
#include "run.h"

#define MAX_PEERS 4096

struct peer {
	struct peer *next;
	xp_sockaddr addr;
	xp_conn_stats st;
};

struct udp {
	struct xp_run run;
	xp_protocol proto;
	const struct xp_cli *cli;
	xp_transport *t;
	struct peer *peers;
	unsigned int npeers;
	int paused;
	unsigned long dropped;
};

static struct peer *peer_find(struct udp *u, const struct sockaddr *sa, socklen_t len, int *isnew)
{
	struct peer *p;

	*isnew = 0;
	for (p = u->peers; p; p = p->next)
		if (p->addr.len == len && !memcmp(&p->addr.u.ss, sa, len))
			return p;
	*isnew = 1;
	if (u->npeers >= MAX_PEERS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->addr.len = len;
	memcpy(&p->addr.u.ss, sa, len);
	xp_cli_sockaddr_str(sa, len, p->st.peer, sizeof(p->st.peer));
	p->st.started = xp_loop_time(u->run.loop);
	p->st.end = "open";
	p->next = u->peers;
	u->peers = p;
	u->npeers++;
	return p;
}

static void udp_made(xp_protocol *pr, xp_transport *t)
{
	struct udp *u = XP_CONTAINER_OF(pr, struct udp, proto);
	const struct xp_cli *c = u->cli;

	u->t = t;
	xp_transport_set_write_buffer_limits(t, (long long)c->high_water, (long long)c->low_water);
	xp_transport_set_read_size(t, c->read_size);
}

static int udp_datagram(xp_protocol *pr, const void *data, size_t len, const struct sockaddr *sa,
			socklen_t alen)
{
	struct udp *u = XP_CONTAINER_OF(pr, struct udp, proto);
	struct peer *p;
	char name[160];
	int isnew;

	xp_cli_sockaddr_str(sa, alen, name, sizeof(name));
	if (!xp_cli_peer_allowed(u->cli, sa, alen)) {
		xp_log(2, "dropped %zu bytes from %s: --allow/--deny", len, name);
		return 0;
	}
	p = peer_find(u, sa, alen, &isnew);
	if (isnew)
		xp_log(1, "new peer %s (%zu bytes)", name, len);
	xp_log(2, "datagram from %s: %zu bytes", name, len);
	if (u->cli->hexdump)
		xp_cli_hexdump('<', data, len);
	if (p)
		p->st.received += len;
	if (u->paused) {
		/* The kernel is not taking replies: drop, as UDP may. */
		u->dropped++;
		return 0;
	}
	if (xp_transport_sendto(u->t, data, len, sa, alen) < 0)
		return 0;
	if (u->cli->hexdump)
		xp_cli_hexdump('>', data, len);
	xp_progress_add(len, len);
	if (p)
		p->st.sent += len;
	return 0;
}

static void udp_error(xp_protocol *pr, int err)
{
	/* A peer went away (ICMP unreachable): keep serving the others. */
	xp_log(2, "ignored: %s", xp_cli_strerror(err));
}

static void udp_pause(xp_protocol *pr)
{
	XP_CONTAINER_OF(pr, struct udp, proto)->paused = 1;
}

static void udp_resume(xp_protocol *pr)
{
	XP_CONTAINER_OF(pr, struct udp, proto)->paused = 0;
}

static void udp_lost(xp_protocol *pr, int err)
{
	struct udp *u = XP_CONTAINER_OF(pr, struct udp, proto);

	u->t = NULL;
	if (err && !u->run.stopping) {
		xp_err("udp socket: %s", xp_cli_strerror(err));
		xp_run_fail(&u->run, XP_EXIT_FAIL);
	}
	u->run.no_more = 1;
	xp_loop_stop(u->run.loop);
}

static const xp_protocol_ops udp_ops = {
    .connection_made = udp_made,
    .connection_lost = udp_lost,
    .datagram_received = udp_datagram,
    .error_received = udp_error,
    .pause_writing = udp_pause,
    .resume_writing = udp_resume,
};

static xp_protocol *udp_factory(void *arg)
{
	return &((struct udp *)arg)->proto;
}

static void udp_usr1(struct xp_run *r)
{
	struct udp *u = XP_CONTAINER_OF(r, struct udp, run);
	struct xp_cli c2 = *u->cli;

	if (c2.stats == XP_STATS_OFF)
		c2.stats = XP_STATS_TEXT;
	for (struct peer *p = u->peers; p; p = p->next)
		xp_cli_stats_line(&c2, &p->st, "open", xp_loop_time(r->loop) - p->st.started);
}

static void udp_stop(struct xp_run *r)
{
	struct udp *u = XP_CONTAINER_OF(r, struct udp, run);

	if (u->t)
		xp_transport_close(u->t);
	else
		xp_loop_stop(r->loop);
}

static int udp_open(struct udp *u)
{
	const struct xp_cli *c = u->cli;
	xp_datagram_opts o;
	xp_future *f;
	char name[300];
	int err = 0, fd = -1;

	memset(&o, 0, sizeof(o));
	o.reuse_port = c->reuse_port;
	if (c->addr.host[0]) {
		o.local_host = c->addr.host;
		o.local_port = c->addr.port;
	} else {
		err = xp_cli_udp_any_socket(c->addr.port, c->reuse_port, &fd);
		if (err == 0) {
			o.use_sock = 1;
			o.sock = fd;
		} else if (err > 0) {
			o.local_host = "0.0.0.0";
			o.local_port = c->addr.port;
			err = 0;
		}
	}
	if (!err) {
		f = xp_create_datagram_endpoint(u->run.loop, udp_factory, u, &o);
		err = f ? xp_loop_run_until_complete(u->run.loop, f) : -errno;
		if (f)
			xp_future_release(f);
	}
	if (err < 0) {
		xp_cli_addr_str(&c->addr, 1, name, sizeof(name));
		xp_err("listen %s (udp): %s", name, xp_cli_strerror(err));
		return xp_cli_listen_status(err);
	}
	return 0;
}

int xp_cmd_udp_echo(const struct xp_cli *cli)
{
	static struct udp u;
	const xp_sockaddr *sa;
	int st;

	memset(&u, 0, sizeof(u));
	u.cli = cli;
	u.proto.ops = &udp_ops;
	if ((st = xp_run_init(&u.run, cli)) != 0)
		return st;
	u.run.on_usr1 = udp_usr1;
	u.run.on_stop = udp_stop;
	if ((st = xp_run_signals(&u.run)) != 0)
		return st;
	if ((st = udp_open(&u)) != 0)
		return st;
	sa = xp_transport_get_extra_info(u.t, "sockname", NULL);
	if (sa && (st = xp_cli_ready(cli, sa, 1)) != 0)
		return st;
	st = xp_run_loop(&u.run);
	if (cli->stats)
		for (struct peer *p = u.peers; p; p = p->next)
			xp_cli_stats_line(cli, &p->st, "closed",
					  xp_loop_time(u.run.loop) - p->st.started);
	while (u.peers) {
		struct peer *p = u.peers;

		u.peers = p->next;
		free(p);
	}
	xp_run_finish(&u.run);
	return st;
}
