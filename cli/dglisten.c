// SPDX-License-Identifier: MIT
/*
 * dglisten.c - udp-listen: and unixgram-listen:, one bound datagram socket
 * whose senders become relay ends (udpadapt.c), as `nc -ul` (the first
 * sender only) or socat's UDP-LISTEN,fork (-k: one relay per sender).
 *
 * Senders are told apart by their source address on this one socket, in
 * our own table: no per-sender connected socket, so no datagram can reach
 * the wrong relay or be lost between a bind and a connect.  A new sender's
 * relay end is a socket pair made on the next loop iteration; until then
 * the socket is not read (datagrams wait in the kernel), so its first
 * datagram is followed by the next ones in order.
 *
 * A relay that is behind: without -k the socket stops being read (the
 * kernel's queue is the buffer, as for udp:); with -k that sender's
 * datagrams are dropped and logged at -v, so one stalled relay does not
 * stop the others.  Replies share the socket's send queue: when it fills,
 * every relay stops sending until it drains.  The datagrams in the queue
 * are then all one sender's (the one whose send filled it), so an error
 * reported later for them is that sender's.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "run.h"

struct cli_dgsender {
	struct cli_dgsender *next;
	struct cli_dgl *l;
	struct cli_dgpeer *u;
	xp_sockaddr addr; /* len 0: an unnamed Unix socket */
	char name[160];
};

struct cli_dgl {
	xp_protocol proto;
	struct cli_dgl_cfg cfg;
	const struct cli_config *cli;
	xp_transport *t;
	struct cli_dgsender *senders;
	struct cli_dgsender *sending; /* in cli_dgl_sendto() */
	struct cli_dgsender *owner;   /* its datagrams fill the send queue */
	unsigned int nsenders;
	int holds; /* reasons not to read the socket */
	int used;  /* single: the one sender came */
	int stopped;
	const char *kind; /* "udp", "unixgram" */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	dev_t dev;
	ino_t ino;
};

int cli_unix_sockaddr(const struct cli_addr *a, xp_sockaddr *out)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->u.ss;
	int abstract = a->kind == CLI_ADDR_UNIX_ABSTRACT;
	size_t n = strlen(a->path);

	memset(out, 0, sizeof(*out));
	if (n + 1 > sizeof(un->sun_path))
		return -ENAMETOOLONG;
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path + abstract, a->path, n);
	out->len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + n + (abstract ? 0 : 1));
	return 0;
}

/* ---- senders ---- */

static int same_addr(const xp_sockaddr *a, const struct sockaddr *sa, socklen_t len)
{
	if (a->len != len)
		return 0;
	if (len && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->u.ss, *y = (const void *)sa;

		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(y->sin6_addr));
	}
	if (len && sa->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->u.ss, *y = (const void *)sa;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	return !len || !memcmp(&a->u.ss, sa, len);
}

static struct cli_dgsender *sender_find(struct cli_dgl *l, const struct sockaddr *sa, socklen_t len)
{
	for (struct cli_dgsender *s = l->senders; s; s = s->next)
		if (same_addr(&s->addr, sa, len))
			return s;
	return NULL;
}

/* "udp:1.2.3.4:5", "unixgram:/path", "unixgram:@name", "unixgram:unnamed" */
static void sender_name(const struct cli_dgl *l, const struct sockaddr *sa, socklen_t len,
			char *buf, size_t size)
{
	char a[140];

	if (!len) {
		snprintf(buf, size, "%s:unnamed", l->kind);
		return;
	}
	cli_sockaddr_str(sa, len, a, sizeof(a));
	snprintf(buf, size, "%s:%s", l->kind, strncmp(a, "unix:", 5) ? a : a + 5);
}

static void set_reading(struct cli_dgl *l)
{
	if (!l->t)
		return;
	if (l->holds > 0)
		xp_transport_pause_reading(l->t);
	else
		xp_transport_resume_reading(l->t);
}

void cli_dgl_hold(struct cli_dgsender *s, int delta)
{
	s->l->holds += delta;
	set_reading(s->l);
}

void cli_dgl_congested(struct cli_dgsender *s, int on)
{
	if (s->l->cfg.single)
		cli_dgl_hold(s, on ? 1 : -1);
}

static void dgl_close(struct cli_dgl *l)
{
	struct stat st;

	if (l->t)
		xp_transport_close(l->t);
	/* Only our own socket file: someone may have replaced it since. */
	if (l->path[0] && lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		unlink(l->path);
	l->path[0] = '\0';
}

void cli_dgl_gone(struct cli_dgsender *s)
{
	struct cli_dgl *l = s->l;
	struct cli_dgsender **ps;

	for (ps = &l->senders; *ps; ps = &(*ps)->next)
		if (*ps == s) {
			*ps = s->next;
			break;
		}
	l->nsenders--;
	if (l->owner == s)
		l->owner = NULL;
	if (l->sending == s)
		l->sending = NULL;
	cli_log(1, "%s: relay ended", s->name);
	free(s);
	if (!l->nsenders && (l->stopped || l->cfg.single))
		dgl_close(l);
}

int cli_dgl_sendto(struct cli_dgsender *s, const void *data, size_t len)
{
	struct cli_dgl *l = s->l;
	int err;

	if (!l->t)
		return -EBADF;
	if (!s->addr.len)
		return -EDESTADDRREQ; /* an unbound Unix socket cannot be answered */
	l->sending = s;
	err = xp_transport_sendto(l->t, data, len, &s->addr.u.sa, s->addr.len);
	l->sending = NULL;
	return err;
}

static void sender_start(struct cli_dgl *l, const struct sockaddr *sa, socklen_t len,
			 const char *name, const void *data, size_t dlen)
{
	struct cli_dgsender *s = calloc(1, sizeof(*s));
	struct cli_conn *c;
	xp_relay *r;

	if (!s || !(r = l->cfg.start(l->cfg.arg))) {
		cli_err("%s: %s", name, cli_strerror(-ENOMEM));
		free(s);
		return;
	}
	l->used = 1;
	s->l = l;
	s->addr.len = len;
	if (len)
		memcpy(&s->addr.u.ss, sa, len);
	snprintf(s->name, sizeof(s->name), "%s", name);
	/* The relay's stats and log lines name the sender. */
	if ((c = cli_run_conn_of_relay(l->cfg.run, r)) != NULL)
		snprintf(c->label, sizeof(c->label), "%.120s", name);
	s->u = cli_dgpeer_session(l->cfg.run, r, l->cfg.end, s, name, l->cfg.linger);
	if (!s->u) {
		free(s);
		return;
	}
	s->next = l->senders;
	l->senders = s;
	l->nsenders++;
	cli_log(1, "new peer %s (%zu bytes)", name, dlen);
	/* Released when its pair side is made (udpadapt.c). */
	cli_dgl_hold(s, 1);
	if (l->owner)
		cli_dgpeer_hold_replies(s->u, 1);
	cli_dgpeer_input(s->u, data, dlen);
}

/* ---- the socket's protocol ---- */

static int dgl_datagram(xp_protocol *p, const void *data, size_t len, const struct sockaddr *sa,
			socklen_t alen)
{
	struct cli_dgl *l = XP_CONTAINER_OF(p, struct cli_dgl, proto);
	struct cli_dgsender *s;
	char name[160];

	if (!sa)
		alen = 0;
	s = sender_find(l, sa, alen);
	if (s) {
		if (cli_dgpeer_input(s->u, data, len) < 0)
			cli_log(1, "dropped %zu bytes from %s: its relay is behind", len, s->name);
		return 0;
	}
	sender_name(l, sa, alen, name, sizeof(name));
	if (alen && !cli_peer_allowed(l->cli, sa, alen))
		cli_log(1, "dropped %zu bytes from %s: --allow/--deny", len, name);
	else if (l->stopped)
		cli_log(1, "dropped %zu bytes from %s: not accepting any more", len, name);
	else if (l->cfg.single && l->used)
		cli_log(1, "dropped %zu bytes from %s: not the peer", len, name);
	else if (l->cli->max_conns && l->nsenders >= l->cli->max_conns)
		cli_log(1, "dropped %zu bytes from %s: over --max-conns %u", len, name,
			l->cli->max_conns);
	else
		sender_start(l, sa, alen, name, data, len);
	return 0;
}

/* Synchronous from a send, else for the datagrams waiting in the queue. */
static void dgl_error(xp_protocol *p, int err)
{
	struct cli_dgl *l = XP_CONTAINER_OF(p, struct cli_dgl, proto);
	struct cli_dgsender *s = l->sending ? l->sending : l->owner;

	if (s)
		cli_dgpeer_failed(s->u, err);
	else
		cli_log(2, "%s socket: ignored: %s", l->kind, cli_strerror(err));
}

static void dgl_pause_writing(xp_protocol *p)
{
	struct cli_dgl *l = XP_CONTAINER_OF(p, struct cli_dgl, proto);

	l->owner = l->sending;
	for (struct cli_dgsender *s = l->senders; s; s = s->next)
		cli_dgpeer_hold_replies(s->u, 1);
}

static void dgl_resume_writing(xp_protocol *p)
{
	struct cli_dgl *l = XP_CONTAINER_OF(p, struct cli_dgl, proto);

	l->owner = NULL;
	for (struct cli_dgsender *s = l->senders; s; s = s->next)
		cli_dgpeer_hold_replies(s->u, 0);
}

static void dgl_made(xp_protocol *p, xp_transport *t)
{
	struct cli_dgl *l = XP_CONTAINER_OF(p, struct cli_dgl, proto);

	l->t = t;
	/* Paused as soon as a datagram has to wait: see dgl_pause_writing. */
	xp_transport_set_write_buffer_limits(t, 0, 0);
}

static void dgl_lost(xp_protocol *p, int err)
{
	struct cli_dgl *l = XP_CONTAINER_OF(p, struct cli_dgl, proto);

	l->t = NULL;
	if (err && !l->cfg.run->stopping) {
		cli_err("%s socket: %s", l->kind, cli_strerror(err));
		cli_run_fail(l->cfg.run, CLI_EXIT_FAIL);
	}
	for (struct cli_dgsender *s = l->senders; s; s = s->next)
		cli_dgpeer_failed(s->u, err ? err : -EPIPE);
}

static const xp_protocol_ops dgl_ops = {
    .connection_made = dgl_made,
    .connection_lost = dgl_lost,
    .datagram_received = dgl_datagram,
    .error_received = dgl_error,
    .pause_writing = dgl_pause_writing,
    .resume_writing = dgl_resume_writing,
};

static xp_protocol *dgl_factory(void *arg)
{
	return &((struct cli_dgl *)arg)->proto;
}

/* ---- binding ---- */

/* All interfaces: one dual-stack IPv6 socket (IPv4 peers arrive
 * v4-mapped); 1 where IPv6 is missing, to bind IPv4 alone.  AF_INET6
 * (-6): IPv6 alone, and no IPv4 fallback. */
int cli_udp_any_socket(const char *port, int family, int reuse_port, int *fdp)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	int fd, v6only = family == AF_INET6, on = 1;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno == EAFNOSUPPORT && !v6only ? 1 : -errno;
	a6.sin6_port = htons((uint16_t)atoi(port));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	if (reuse_port)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) < 0) {
		int e = errno;

		close(fd);
		return e == EADDRNOTAVAIL && !v6only ? 1 : -e;
	}
	*fdp = fd;
	return 0;
}

/* A socket file left by a dead listener is removed (nothing answers at
 * it); a live one or any other file means the address is in use. */
static int remove_stale(const xp_sockaddr *sa, const char *path)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return -EADDRINUSE;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, &sa->u.sa, sa->len);
	if (r < 0 && errno == ECONNREFUSED)
		r = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	else
		r = -EADDRINUSE;
	close(fd);
	return r;
}

static int unixgram_bind(struct cli_dgl *l, const struct cli_addr *a, int *fdp)
{
	xp_sockaddr sa;
	struct stat st;
	int fd, err;

	if (cli_unix_sockaddr(a, &sa) < 0)
		return -ENAMETOOLONG;
	if (a->kind == CLI_ADDR_UNIX && (err = remove_stale(&sa, a->path)) < 0)
		return err;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, &sa.u.sa, sa.len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (a->kind == CLI_ADDR_UNIX && stat(a->path, &st) == 0) {
		snprintf(l->path, sizeof(l->path), "%s", a->path);
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	*fdp = fd;
	return 0;
}

static int dgl_bind(struct cli_dgl *l, const struct cli_addr *a, xp_datagram_opts *o)
{
	int fd = -1, err;

	memset(o, 0, sizeof(*o));
	if (a->kind != CLI_ADDR_HOSTPORT) {
		err = unixgram_bind(l, a, &fd);
	} else if (a->host[0] || l->cli->family == AF_INET) {
		o->local_host = a->host[0] ? a->host : "0.0.0.0";
		o->local_port = a->port;
		o->reuse_port = l->cli->reuse_port;
		o->family = l->cli->family;
		return 0;
	} else if ((err = cli_udp_any_socket(a->port, l->cli->family, l->cli->reuse_port, &fd)) >
		   0) {
		o->local_host = "0.0.0.0";
		o->local_port = a->port;
		o->reuse_port = l->cli->reuse_port;
		return 0;
	}
	if (err < 0)
		return err;
	o->use_sock = 1;
	o->sock = fd;
	return 0;
}

int cli_dgl_open(const struct cli_dgl_cfg *cfg, struct cli_dgl **out, xp_sockaddr *addr)
{
	struct cli_dgl *l = calloc(1, sizeof(*l));
	const xp_sockaddr *sa;
	xp_datagram_opts o;
	xp_future *f = NULL;
	char name[300];
	int err;

	if (!l) {
		cli_err("%s", cli_strerror(-ENOMEM));
		return CLI_EXIT_FAIL;
	}
	l->cfg = *cfg;
	l->cli = cfg->run->cli;
	l->proto.ops = &dgl_ops;
	l->kind = cfg->ep->addr.kind == CLI_ADDR_HOSTPORT ? "udp" : "unixgram";
	err = dgl_bind(l, &cfg->ep->addr, &o);
	if (!err) {
		f = xp_create_datagram_endpoint(cfg->run->loop, dgl_factory, l, &o);
		err = f ? xp_loop_run_until_complete(cfg->run->loop, f) : -errno;
		if (f)
			xp_future_release(f);
	}
	if (err < 0) {
		cli_addr_str(&cfg->ep->addr, 1, name, sizeof(name));
		cli_err("listen %s (%s): %s", name, l->kind, cli_strerror(err));
		dgl_close(l);
		free(l);
		return cli_listen_status(err);
	}
	sa = xp_transport_get_extra_info(l->t, "sockname", NULL);
	if (sa)
		*addr = *sa;
	else
		memset(addr, 0, sizeof(*addr));
	*out = l;
	return 0;
}

void cli_dgl_stop(struct cli_dgl *l)
{
	l->stopped = 1;
	if (!l->nsenders)
		dgl_close(l);
}

void cli_dgl_free(struct cli_dgl *l)
{
	if (!l)
		return;
	/* l itself stays: adapters of senders still open point at it. */
	dgl_close(l);
}
