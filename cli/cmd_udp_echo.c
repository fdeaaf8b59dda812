// SPDX-License-Identifier: MIT
/*
 * cmd_udp_echo.c - `xport udp-echo ADDR`: one datagram socket serving
 * every peer at once; each datagram goes back to its sender.  A peer that
 * disappears (ICMP port unreachable -> error_received) changes nothing.
 * Peers are remembered (bounded) for -v's "new peer" line, SIGUSR1 and
 * --stats, one line per peer.
 *
 * An echo server answers whoever the source address names, and a source
 * address can be forged: one datagram "from" the server itself, or from
 * another service that answers everything, would bounce for ever at full
 * speed.  So no datagram from our own address, from port 0 or from a
 * classic UDP reflector port is answered; they are counted and logged.
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
	struct cli_run run;
	xp_protocol proto;
	const struct cli_config *cli;
	xp_transport *t;
	struct peer *peers;
	unsigned int npeers;
	int paused;
	unsigned long dropped;
	unsigned long refused; /* datagrams from sources never answered */
	xp_sockaddr self;      /* our bound address, v4-mapped as IPv4 */
	int self_any;	       /* bound to a wildcard address */
};

/* echo, daytime, qotd, chargen, time: they answer anything. */
static const unsigned short reflector_ports[] = {7, 13, 17, 19, 37};

/* One form to compare: a v4-mapped IPv6 address (dual-stack socket) as
 * the IPv4 address it is. */
static void plain_addr(const struct sockaddr *sa, socklen_t len, xp_sockaddr *out)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6 && len >= sizeof(*s6) &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->u.ss;

		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		out->len = sizeof(*s4);
		return;
	}
	if (len > sizeof(out->u.ss))
		len = sizeof(out->u.ss);
	memcpy(&out->u.ss, sa, len);
	out->len = len;
}

static unsigned int addr_port(const xp_sockaddr *a)
{
	if (a->u.sa.sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->u.ss)->sin_port);
	if (a->u.sa.sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->u.ss)->sin6_port);
	return 0;
}

/* The address bytes (4 or 16) of an IP address, NULL for anything else. */
static const void *addr_bytes(const xp_sockaddr *a, size_t *n)
{
	*n = a->u.sa.sa_family == AF_INET ? 4 : 16;
	if (a->u.sa.sa_family == AF_INET)
		return &((const struct sockaddr_in *)&a->u.ss)->sin_addr;
	if (a->u.sa.sa_family == AF_INET6)
		return &((const struct sockaddr_in6 *)&a->u.ss)->sin6_addr;
	return NULL;
}

static int is_wildcard(const xp_sockaddr *a)
{
	static const unsigned char zero[16];
	size_t n;
	const void *b = addr_bytes(a, &n);

	return b && !memcmp(b, zero, n);
}

/* Is this one of the host's own addresses (any interface, all of
 * 127/8)?  The kernel lets a socket bind to exactly those. */
static int is_local_addr(const xp_sockaddr *a)
{
	xp_sockaddr b = *a;
	int fd, ok;

	if (b.u.sa.sa_family == AF_INET)
		((struct sockaddr_in *)&b.u.ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&b.u.ss)->sin6_port = 0;
	fd = socket(b.u.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ok = bind(fd, &b.u.sa, b.len) == 0;
	close(fd);
	return ok;
}

/* Would a reply to src come back to this very socket? */
static int is_self(const struct udp *u, const xp_sockaddr *src)
{
	const void *x, *y;
	size_t nx, ny;

	if (addr_port(src) != addr_port(&u->self))
		return 0;
	if (u->self_any)
		return is_local_addr(src);
	x = addr_bytes(src, &nx);
	y = addr_bytes(&u->self, &ny);
	return x && y && src->u.sa.sa_family == u->self.u.sa.sa_family && !memcmp(x, y, nx);
}

/* Why a datagram from sa must not be answered; NULL if it may be. */
static const char *refusal(const struct udp *u, const struct sockaddr *sa, socklen_t len)
{
	xp_sockaddr src;
	unsigned int port;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return NULL;
	plain_addr(sa, len, &src);
	port = addr_port(&src);
	if (port == 0)
		return "source port 0";
	for (size_t i = 0; i < sizeof(reflector_ports) / sizeof(reflector_ports[0]); i++)
		if (port == reflector_ports[i])
			return "source port of a UDP reflector service";
	if (is_self(u, &src))
		return "source is this server";
	return NULL;
}

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
	cli_sockaddr_str(sa, len, p->st.peer, sizeof(p->st.peer));
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
	const struct cli_config *c = u->cli;

	const xp_sockaddr *self = xp_transport_get_extra_info(t, "sockname", NULL);

	u->t = t;
	if (self) {
		plain_addr(&self->u.sa, self->len, &u->self);
		u->self_any = is_wildcard(&u->self);
	}
	xp_transport_set_write_buffer_limits(t, (long long)c->high_water, (long long)c->low_water);
	xp_transport_set_read_size(t, c->read_size);
}

static int udp_datagram(xp_protocol *pr, const void *data, size_t len, const struct sockaddr *sa,
			socklen_t alen)
{
	struct udp *u = XP_CONTAINER_OF(pr, struct udp, proto);
	struct peer *p;
	const char *why;
	char name[160];
	int isnew;

	cli_sockaddr_str(sa, alen, name, sizeof(name));
	if (sa && (why = refusal(u, sa, alen)) != NULL) {
		u->refused++;
		cli_log(1, "dropped %zu bytes from %s: %s", len, name, why);
		return 0;
	}
	if (!cli_peer_allowed(u->cli, sa, alen)) {
		cli_log(2, "dropped %zu bytes from %s: --allow/--deny", len, name);
		return 0;
	}
	p = peer_find(u, sa, alen, &isnew);
	if (isnew)
		cli_log(1, "new peer %s (%zu bytes)", name, len);
	cli_log(2, "datagram from %s: %zu bytes", name, len);
	if (u->cli->hexdump)
		cli_hexdump('<', data, len);
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
		cli_hexdump('>', data, len);
	cli_progress_add(len, len);
	if (p)
		p->st.sent += len;
	return 0;
}

static void udp_error(xp_protocol *pr, int err)
{
	/* A peer went away (ICMP unreachable): keep serving the others. */
	cli_log(2, "ignored: %s", cli_strerror(err));
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
		cli_err("udp socket: %s", cli_strerror(err));
		cli_run_fail(&u->run, CLI_EXIT_FAIL);
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

static void udp_usr1(struct cli_run *r)
{
	struct udp *u = XP_CONTAINER_OF(r, struct udp, run);
	struct cli_config c2 = *u->cli;

	if (c2.stats == CLI_STATS_OFF)
		c2.stats = CLI_STATS_TEXT;
	for (struct peer *p = u->peers; p; p = p->next)
		cli_stats_line(&c2, &p->st, "open", xp_loop_time(r->loop) - p->st.started);
}

static void udp_stop(struct cli_run *r)
{
	struct udp *u = XP_CONTAINER_OF(r, struct udp, run);

	if (u->t)
		xp_transport_close(u->t);
	else
		xp_loop_stop(r->loop);
}

static int udp_open(struct udp *u)
{
	const struct cli_config *c = u->cli;
	xp_datagram_opts o;
	xp_future *f;
	char name[300];
	int err = 0, fd = -1;

	memset(&o, 0, sizeof(o));
	o.reuse_port = c->reuse_port;
	o.family = c->family;
	if (c->addr.host[0] || c->family == AF_INET) {
		o.local_host = c->addr.host[0] ? c->addr.host : "0.0.0.0";
		o.local_port = c->addr.port;
	} else {
		o.family = 0; /* use_sock takes no address options */
		err = cli_udp_any_socket(c->addr.port, c->family, c->reuse_port, &fd);
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
		cli_addr_str(&c->addr, 1, name, sizeof(name));
		cli_err("listen %s (udp): %s", name, cli_strerror(err));
		return cli_listen_status(err);
	}
	return 0;
}

int cli_cmd_udp_echo(const struct cli_config *cli)
{
	static struct udp u;
	const xp_sockaddr *sa;
	int st;

	memset(&u, 0, sizeof(u));
	u.cli = cli;
	u.proto.ops = &udp_ops;
	if ((st = cli_run_init(&u.run, cli)) != 0)
		return st;
	u.run.on_usr1 = udp_usr1;
	u.run.on_stop = udp_stop;
	if ((st = cli_run_signals(&u.run)) != 0)
		return st;
	if ((st = udp_open(&u)) != 0)
		return st;
	sa = xp_transport_get_extra_info(u.t, "sockname", NULL);
	if (sa && (st = cli_ready(cli, sa, 1)) != 0)
		return st;
	st = cli_run_loop(&u.run);
	if (u.refused)
		cli_log(1, "dropped %lu datagrams from sources never answered", u.refused);
	if (cli->stats)
		for (struct peer *p = u.peers; p; p = p->next)
			cli_stats_line(cli, &p->st, "closed",
				       xp_loop_time(u.run.loop) - p->st.started);
	while (u.peers) {
		struct peer *p = u.peers;

		u.peers = p->next;
		free(p);
	}
	cli_run_finish(&u.run);
	return st;
}
