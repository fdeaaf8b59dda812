// SPDX-License-Identifier: MIT
/*
 * server.c - listening stream servers (asyncio.Server).
 *
 * A server owns its listening sockets; each accepted connection becomes a
 * stream (or TLS) transport attached to the server until its
 * connection_lost.  wait_closed() completes once the server is closed and
 * the last attached connection is gone.
 *
 * Lifetime: the caller's xp_server_free() drops the owner reference; every
 * attached connection and every pending serve_forever callback holds one
 * more, so connections outliving the server detach from valid memory.
 */
#include "internal.h"

#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 100
/* asyncio's ACCEPT_RETRY_DELAY: after EMFILE & co. stop accepting this long
 * instead of spinning on a readable listener we cannot accept from. */
#define ACCEPT_RETRY_DELAY 1.0
/* Attempts to find a port free on every family when port 0 is shared. */
#define SHARED_PORT_TRIES 8

struct listener {
	struct xp_io io;
	struct xp_server *s;
	xp_handle *retry;
};

struct xp_server {
	xp_loop *loop;
	xp_protocol_factory factory;
	void *arg;
	xp_tls_ctx *tls;
	double handshake_timeout;
	int (*accept_filter)(void *arg, xp_server *s, int fd, const xp_sockaddr *peer);
	void *accept_filter_arg;
	int backlog;
	struct listener *ls;
	int *fds;
	int nls;
	bool serving, closed;
	bool drained; /* closed and no connections: wait_closed is immediate */
	struct xp_list conns;
	size_t nconns;
	xp_future **waiters;
	size_t nwaiters;
	xp_future *forever;
	int refs;
	/* Unix server: the socket file we created, removed again on close if
	 * it is still ours (same inode). */
	char *path;
	dev_t dev;
	ino_t ino;
};

/* ---- lifetime ----------------------------------------------------------- */

static void server_destroy(struct xp_server *s)
{
	free(s->waiters);
	free(s->ls);
	free(s->fds);
	free(s->path);
	if (s->tls)
		xp_tls_ctx_release(s->tls);
	free(s);
}

static void server_unref(struct xp_server *s)
{
	if (--s->refs == 0)
		server_destroy(s);
}

static struct xp_server *server_new(xp_loop *loop, xp_protocol_factory factory, void *arg,
				    const xp_server_opts *o)
{
	struct xp_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = loop;
	s->factory = factory;
	s->arg = arg;
	s->backlog = o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG;
	s->handshake_timeout = o->tls_handshake_timeout;
	s->accept_filter = o->accept_filter;
	s->accept_filter_arg = o->accept_filter_arg;
	if (o->tls)
		s->tls = xp_tls_ctx_retain(o->tls);
	xp_list_init(&s->conns);
	s->refs = 1;
	return s;
}

/* Complete the wait_closed futures once closed and empty. */
static void server_check_drained(struct xp_server *s)
{
	if (!s->closed || s->nconns || s->drained)
		return;
	s->drained = true;
	for (size_t i = 0; i < s->nwaiters; i++) {
		if (!xp_future_done(s->waiters[i]))
			xp_future_set_result(s->waiters[i], NULL);
		xp_future_release(s->waiters[i]);
	}
	free(s->waiters);
	s->waiters = NULL;
	s->nwaiters = 0;
}

/* A connection is gone: it no longer counts toward wait_closed. */
static void server_conn_gone(xp_transport *t)
{
	xp_server *s = t->owner;

	xp_list_remove(&t->owner_node);
	t->owner = NULL;
	s->nconns--;
	server_check_drained(s);
	server_unref(s);
}

/* Accepted transports (TLS ones once they exist) count toward
 * wait_closed until their connection_lost. */
static void server_attach(xp_server *s, xp_transport *t)
{
	if (t->owner == s)
		return;
	t->owner = s;
	t->gone = server_conn_gone;
	xp_list_insert_tail(&s->conns, &t->owner_node);
	s->nconns++;
	s->refs++;
}

/* ---- accepting ---------------------------------------------------------- */

static void server_report(struct xp_server *s, const char *msg, int err)
{
	xp_context ctx = {.message = msg, .error = err, .server = s};

	xp_loop_call_exception_handler(s->loop, &ctx);
}

static void accept_one(struct xp_server *s, int fd, const xp_sockaddr *peer)
{
	xp_transport *t;

	/* A refused peer costs no transport, no handshake, no read. */
	if (s->accept_filter && s->accept_filter(s->accept_filter_arg, s, fd, peer)) {
		close(fd);
		return;
	}
	t = xp__stream_new_accepted(s->loop, fd, NULL, peer);

	if (!t) {
		server_report(s, "Error creating a transport for an accepted connection",
			      errno ? -errno : -ENOMEM);
		close(fd);
		return;
	}
	if (s->tls) {
		/* TLS makes the protocol after the handshake. */
		xp_transport *tt = NULL;
		xp_future *f = xp__tls_wrap(s->loop, t, NULL, s->factory, s->arg, s->tls, 1, NULL,
					    s->handshake_timeout, &tt);
		if (tt)
			server_attach(s, tt);
		if (f)
			xp_future_release(f);
		return;
	}
	server_attach(s, t);
	xp__transport_start_with(t, NULL, s->factory, s->arg);
}

static int listener_retry(void *arg)
{
	struct listener *l = arg;

	l->retry = NULL;
	if (l->s->serving)
		xp__io_start(l->s->loop, &l->io, XP_IO_READ);
	return 0;
}

static bool accept_resource_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Out of descriptors (or memory): tell the handler, stop watching this
 * listener and look again after ACCEPT_RETRY_DELAY. */
static void listener_backoff(struct listener *l, int err)
{
	struct xp_server *s = l->s;

	server_report(s, "socket.accept() out of system resource", -err);
	if (!s->serving || l->retry)
		return;
	xp__io_stop(s->loop, &l->io, XP_IO_READ);
	l->retry = xp_call_later(s->loop, ACCEPT_RETRY_DELAY, listener_retry, l);
}

/* Accept up to backlog pending connections per wakeup. */
static void listener_io(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct listener *l = XP_CONTAINER_OF(w, struct listener, io);
	struct xp_server *s = l->s;

	s->refs++; /* a factory may free the server */
	for (int i = 0; i < s->backlog && s->serving; i++) {
		xp_sockaddr peer;
		int fd;

		peer.len = sizeof(peer.u.ss);
		fd = accept4(w->fd, &peer.u.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			accept_one(s, fd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (accept_resource_error(errno))
			listener_backoff(l, errno);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			server_report(s, "Error on accepting a connection", -errno);
		break;
	}
	server_unref(s);
}

static void listeners_watch(struct xp_server *s, bool on)
{
	for (int i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];

		if (on && !l->retry)
			xp__io_start(s->loop, &l->io, XP_IO_READ);
		else if (!on)
			xp__io_stop(s->loop, &l->io, XP_IO_READ);
	}
}

/* ---- public methods ----------------------------------------------------- */

xp_loop *xp_server_get_loop(const xp_server *s)
{
	return s ? s->loop : NULL;
}

int xp_server_is_serving(const xp_server *s)
{
	return s && s->serving;
}

int xp_server_start_serving(xp_server *s)
{
	if (!s)
		return -EINVAL;
	if (s->closed)
		return XP_ECLOSED;
	if (!s->serving) {
		s->serving = true;
		listeners_watch(s, true);
	}
	return 0;
}

static void server_unlink_path(struct xp_server *s)
{
	struct stat st;

	/* Only our own socket file: someone may have replaced it since. */
	if (s->path && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		unlink(s->path);
}

static void forever_done(xp_future *f, void *arg);

int xp_server_close(xp_server *s)
{
	if (!s)
		return -EINVAL;
	if (s->closed)
		return 0;
	s->closed = true;
	s->serving = false;
	for (int i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];

		if (l->retry) {
			xp_handle_cancel(l->retry);
			l->retry = NULL;
		}
		xp__io_close(s->loop, &l->io);
		close(l->io.fd);
	}
	s->nls = 0;
	server_unlink_path(s);
	if (s->forever) {
		xp_future *f = s->forever;

		s->forever = NULL;
		/* Closed by us, not cancelled: no need for forever_done. */
		if (xp_future_remove_done_callback(f, forever_done, s))
			s->refs--;
		if (!xp_future_done(f))
			xp_future_set_result(f, NULL);
		xp_future_release(f);
	}
	server_check_drained(s);
	return 0;
}

void xp_server_free(xp_server *s)
{
	if (!s)
		return;
	xp_server_close(s);
	server_unref(s);
}

static void forever_done(xp_future *f, void *arg)
{
	struct xp_server *s = arg;

	/* asyncio: cancelling serve_forever() closes the server. */
	if (xp_future_cancelled(f))
		xp_server_close(s);
	server_unref(s);
}

xp_future *xp_server_serve_forever(xp_server *s)
{
	xp_future *f;

	if (!s) {
		errno = EINVAL;
		return NULL;
	}
	if (s->closed)
		return xp__future_failed(s->loop, XP_ECLOSED);
	if (s->forever)
		return xp__future_failed(s->loop, XP_ESTATE); /* already being served */
	f = xp_future_new(s->loop);
	if (!f)
		return NULL;
	xp_server_start_serving(s);
	s->forever = xp_future_retain(f);
	s->refs++;
	xp_future_add_done_callback(f, forever_done, s);
	return f;
}

xp_future *xp_server_wait_closed(xp_server *s)
{
	xp_future *f, **w;

	if (!s) {
		errno = EINVAL;
		return NULL;
	}
	f = xp_future_new(s->loop);
	if (!f)
		return NULL;
	if (s->drained) {
		xp_future_set_result(f, NULL);
		return f;
	}
	w = realloc(s->waiters, (s->nwaiters + 1) * sizeof(*w));
	if (!w) {
		xp_future_set_error(f, -ENOMEM);
		return f;
	}
	s->waiters = w;
	w[s->nwaiters++] = xp_future_retain(f);
	return f;
}

/* Connections may be removed from the list only on a later iteration
 * (connection_lost is queued), but take the next node first anyway. */
static void server_each_conn(struct xp_server *s, void (*fn)(xp_transport *t))
{
	struct xp_list *n = s->conns.next;

	while (n != &s->conns) {
		struct xp_list *next = n->next;

		fn(xp_list_entry(n, xp_transport, owner_node));
		n = next;
	}
}

void xp_server_close_clients(xp_server *s)
{
	if (s)
		server_each_conn(s, xp_transport_close);
}

void xp_server_abort_clients(xp_server *s)
{
	if (s)
		server_each_conn(s, xp_transport_abort);
}

size_t xp_server_connection_count(const xp_server *s)
{
	return s ? s->nconns : 0;
}

size_t xp_server_pending_count(const xp_server *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (const struct xp_list *l = s->conns.next; l != &s->conns; l = l->next)
		if (!xp_list_entry(l, xp_transport, owner_node)->made)
			n++;
	return n;
}

int xp_server_sockets(const xp_server *s, const int **fds)
{
	if (!s)
		return -EINVAL;
	if (fds)
		*fds = s->fds;
	return s->nls;
}

int xp_server_sockname(const xp_server *s, int i, xp_sockaddr *out)
{
	if (!s || !out || i < 0 || i >= s->nls)
		return -EINVAL;
	return xp__sockaddr_from_fd(s->ls[i].io.fd, false, out);
}

/* ---- setting up the listening sockets ----------------------------------- */

/* A growable set of listening descriptors under construction. */
struct fdset {
	int *fds;
	int n;
};

static void fdset_close(struct fdset *fs)
{
	for (int i = 0; i < fs->n; i++)
		close(fs->fds[i]);
	free(fs->fds);
	fs->fds = NULL;
	fs->n = 0;
}

static int fdset_add(struct fdset *fs, int fd)
{
	int *p = realloc(fs->fds, (fs->n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	fs->fds = p;
	p[fs->n++] = fd;
	return 0;
}

/* Take the listening fds: the server now owns them. */
static int server_adopt(struct xp_server *s, struct fdset *fs)
{
	s->ls = calloc(fs->n ? fs->n : 1, sizeof(*s->ls));
	if (!s->ls)
		return -ENOMEM;
	s->fds = fs->fds;
	s->nls = fs->n;
	for (int i = 0; i < fs->n; i++) {
		s->ls[i].s = s;
		xp__io_init(&s->ls[i].io, fs->fds[i], listener_io);
	}
	fs->fds = NULL;
	fs->n = 0;
	return 0;
}

static int set_port(xp_sockaddr *a, unsigned short port)
{
	if (a->u.sa.sa_family == AF_INET)
		((struct sockaddr_in *)&a->u.ss)->sin_port = htons(port);
	else if (a->u.sa.sa_family == AF_INET6)
		((struct sockaddr_in6 *)&a->u.ss)->sin6_port = htons(port);
	else
		return -EAFNOSUPPORT;
	return 0;
}

static unsigned short get_port(const xp_sockaddr *a)
{
	if (a->u.sa.sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->u.ss)->sin_port);
	if (a->u.sa.sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->u.ss)->sin6_port);
	return 0;
}

static int sockopt_on(int fd, int level, int name)
{
	int one = 1;

	return setsockopt(fd, level, name, &one, sizeof(one)) < 0 ? -errno : 0;
}

/* One listening socket bound to a.  Returns the fd or -errno. */
static int listen_on(const xp_sockaddr *a, const xp_server_opts *o, int backlog)
{
	int fam = a->u.sa.sa_family;
	int fd = xp__socket(fam, SOCK_STREAM, 0);
	int r = 0;

	if (fd < 0)
		return fd;
	if (!o->no_reuse_address && fam != AF_UNIX)
		r = sockopt_on(fd, SOL_SOCKET, SO_REUSEADDR);
	if (r == 0 && o->reuse_port)
		r = sockopt_on(fd, SOL_SOCKET, SO_REUSEPORT);
	/* The IPv4 socket of the same port serves IPv4: keep them apart. */
	if (r == 0 && fam == AF_INET6)
		r = sockopt_on(fd, IPPROTO_IPV6, IPV6_V6ONLY);
	if (r == 0 && bind(fd, &a->u.sa, a->len) < 0)
		r = -errno;
	if (r == 0 && listen(fd, backlog) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* IPv6 missing on this host: skippable when listening on "everything". */
static bool v6_unavailable(const xp_sockaddr *a, int err)
{
	return a->u.sa.sa_family == AF_INET6 &&
	       (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL || err == -EPROTONOSUPPORT);
}

/* Bind every address; with port 0 and several addresses, all share the
 * port the first bind got.  *retry is set when another family had that
 * port taken (worth another go with a fresh port). */
static int bind_all(xp_sockaddr *addrs, size_t n, const xp_server_opts *o, int backlog,
		    bool everywhere, struct fdset *fs, bool *retry)
{
	bool port0 = n > 0 && get_port(&addrs[0]) == 0;
	unsigned short shared = 0;

	*retry = false;
	for (size_t i = 0; i < n; i++) {
		xp_sockaddr a = addrs[i];
		int fd;

		if (port0 && shared)
			set_port(&a, shared);
		fd = listen_on(&a, o, backlog);
		if (fd < 0 && everywhere && v6_unavailable(&a, fd))
			continue;
		if (fd < 0) {
			*retry = port0 && shared && fd == -EADDRINUSE;
			fdset_close(fs);
			return fd;
		}
		if (fdset_add(fs, fd) < 0) {
			close(fd);
			fdset_close(fs);
			return -ENOMEM;
		}
		if (port0 && !shared) {
			xp_sockaddr got;

			if (xp__sockaddr_from_fd(fd, false, &got) == 0)
				shared = get_port(&got);
		}
	}
	return fs->n ? 0 : -EADDRNOTAVAIL;
}

static int bind_with_retries(xp_sockaddr *addrs, size_t n, const xp_server_opts *o, int backlog,
			     bool everywhere, struct fdset *fs)
{
	int r = -EADDRNOTAVAIL;
	bool retry = true;

	for (int i = 0; i < SHARED_PORT_TRIES && retry; i++)
		r = bind_all(addrs, n, o, backlog, everywhere, fs, &retry);
	return r;
}

/* getaddrinfo results as a deduplicated array. */
static size_t collect_addrs(const struct addrinfo *ai, xp_sockaddr **out)
{
	size_t n = 0, k = 0;
	xp_sockaddr *v;

	for (const struct addrinfo *p = ai; p; p = p->ai_next)
		n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return 0;
	for (const struct addrinfo *p = ai; p; p = p->ai_next) {
		size_t j;

		if (p->ai_addrlen > sizeof(v->u))
			continue;
		for (j = 0; j < k; j++)
			if (v[j].len == p->ai_addrlen &&
			    !memcmp(&v[j].u, p->ai_addr, p->ai_addrlen))
				break;
		if (j < k)
			continue;
		memcpy(&v[k].u, p->ai_addr, p->ai_addrlen);
		v[k++].len = p->ai_addrlen;
	}
	*out = v;
	return k;
}

/* Make the server from bound fds and complete fut with it. */
static void server_finish_create(xp_loop *loop, xp_future *fut, xp_protocol_factory factory,
				 void *arg, const xp_server_opts *o, struct fdset *fs,
				 const char *path)
{
	struct xp_server *s = server_new(loop, factory, arg, o);
	int r = s ? server_adopt(s, fs) : -ENOMEM;

	if (r == 0 && path) {
		struct stat st;

		s->path = strdup(path);
		if (s->path && lstat(path, &st) == 0) {
			s->dev = st.st_dev;
			s->ino = st.st_ino;
		}
	}
	if (r < 0) {
		fdset_close(fs);
		if (s)
			server_destroy(s);
		xp_future_set_error(fut, r);
		return;
	}
	if (!o->defer_serving)
		xp_server_start_serving(s);
	xp_future_set_result(fut, s);
}

/* ---- xp_create_server --------------------------------------------------- */

struct screate {
	xp_loop *loop;
	xp_future *fut;
	xp_protocol_factory factory;
	void *arg;
	xp_server_opts opts;
	bool everywhere;
};

static void screate_free(struct screate *sc)
{
	xp_future_release(sc->fut);
	if (sc->opts.tls)
		xp_tls_ctx_release(sc->opts.tls);
	free(sc);
}

static void screate_bind(struct screate *sc, const struct addrinfo *ai)
{
	xp_sockaddr *addrs = NULL;
	size_t n = collect_addrs(ai, &addrs);
	struct fdset fs = {0};
	int backlog = sc->opts.backlog > 0 ? sc->opts.backlog : DEFAULT_BACKLOG;
	int r;

	if (!n) {
		free(addrs);
		xp_future_set_error(sc->fut, ai ? -ENOMEM : XP_ERESOLVE);
		return;
	}
	r = bind_with_retries(addrs, n, &sc->opts, backlog, sc->everywhere, &fs);
	free(addrs);
	if (r < 0) {
		xp_future_set_error(sc->fut, r);
		return;
	}
	server_finish_create(sc->loop, sc->fut, sc->factory, sc->arg, &sc->opts, &fs, NULL);
}

static void screate_resolved(xp_future *f, void *arg)
{
	struct screate *sc = arg;
	int err = xp_future_error(f);

	/* A caller that cancelled the creation no longer wants a server. */
	if (!xp_future_done(sc->fut)) {
		if (err)
			xp_future_set_error(sc->fut, err);
		else
			screate_bind(sc, xp_future_result(f));
	}
	xp_future_release(f);
	screate_free(sc);
}

static void screate_resolve(struct screate *sc, const char *host, const char *port)
{
	struct addrinfo hints = {
	    .ai_family = sc->opts.family, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai;
	xp_future *rf;
	int r = xp__resolve(sc->loop, sc->everywhere ? NULL : host, port ? port : "0", &hints, &ai,
			    &rf);

	if (r < 0) {
		xp_future_set_error(sc->fut, r);
	} else if (ai) {
		screate_bind(sc, ai);
		freeaddrinfo(ai);
	} else {
		xp_future_add_done_callback(rf, screate_resolved, sc);
		return;
	}
	screate_free(sc);
}

static int check_server_opts(xp_protocol_factory factory, const xp_server_opts *o)
{
	if (!factory || o->backlog < 0 || o->tls_handshake_timeout < 0)
		return -EINVAL;
	if (o->tls_handshake_timeout && !o->tls)
		return -EINVAL;
	return 0;
}

/* Both servers' argument checks; *o gets the options (defaults without
 * any).  named: an address was given too, which a sock excludes.  On an
 * error the sock the options hand over is closed, except without a loop:
 * such a call is refused before it takes anything. */
static int server_args(xp_loop *loop, xp_protocol_factory factory, const xp_server_opts *opts,
		       bool named, bool is_unix, xp_server_opts *o)
{
	int r;

	if (!loop)
		return -EINVAL;
	if (opts)
		*o = *opts;
	r = check_server_opts(factory, o);
	if (r == 0 && o->use_sock && named)
		r = -EINVAL;
	if (r == 0 && is_unix && o->reuse_port)
		r = -EINVAL; /* asyncio: not for Unix sockets */
	if (r < 0 && o->use_sock)
		close(o->sock);
	return r;
}

/* Serve an existing listening socket (takes it). */
static xp_future *serve_sock(xp_loop *loop, xp_protocol_factory factory, void *arg,
			     const xp_server_opts *o)
{
	xp_future *fut = xp_future_new(loop);
	struct fdset fs = {0};
	int type = 0, r;
	socklen_t len = sizeof(type);

	if (!fut)
		return NULL;
	r = xp__set_nonblock(o->sock, true);
	if (r == 0)
		r = xp__set_cloexec(o->sock);
	if (r == 0 && getsockopt(o->sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		r = -errno;
	if (r == 0 && type != SOCK_STREAM)
		r = -EINVAL;
	/* asyncio listens again: harmless if listening, needed if not. */
	if (r == 0 && listen(o->sock, o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG) < 0)
		r = -errno;
	if (r == 0)
		r = fdset_add(&fs, o->sock);
	if (r < 0) {
		close(o->sock);
		xp_future_set_error(fut, r);
		return fut;
	}
	server_finish_create(loop, fut, factory, arg, o, &fs, NULL);
	return fut;
}

xp_future *xp_create_server(xp_loop *loop, xp_protocol_factory factory, void *arg, const char *host,
			    const char *port, const xp_server_opts *opts)
{
	xp_server_opts o = {0};
	struct screate *sc;
	xp_future *fut;
	int r;

	r = server_args(loop, factory, opts, (host && *host) || port, false, &o);
	if (r < 0)
		return xp__future_failed(loop, r);
	if (o.use_sock)
		return serve_sock(loop, factory, arg, &o);
	sc = calloc(1, sizeof(*sc));
	fut = xp_future_new(loop);
	if (!sc || !fut) {
		free(sc);
		if (fut)
			xp_future_release(fut);
		return NULL;
	}
	sc->loop = loop;
	sc->fut = xp_future_retain(fut);
	sc->factory = factory;
	sc->arg = arg;
	sc->opts = o;
	if (o.tls)
		xp_tls_ctx_retain(o.tls);
	sc->everywhere = !host || !*host;
	screate_resolve(sc, host, port);
	return fut;
}

/* ---- xp_create_unix_server ---------------------------------------------- */

/* A socket file left behind by a dead server is removed; anything else at
 * the path (a live server, a regular file) means the address is in use. */
static int remove_stale(const xp_sockaddr *sa, const char *path)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return -EADDRINUSE;
	fd = xp__socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	r = connect(fd, &sa->u.sa, sa->len);
	if (r < 0 && errno == ECONNREFUSED) {
		r = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	} else {
		/* Connected, or the backlog is full (EAGAIN): it is alive. */
		r = -EADDRINUSE;
	}
	close(fd);
	return r;
}

xp_future *xp_create_unix_server(xp_loop *loop, xp_protocol_factory factory, void *arg,
				 const char *path, const xp_server_opts *opts)
{
	xp_server_opts o = {0};
	struct fdset fs = {0};
	xp_future *fut;
	xp_sockaddr sa;
	int r, fd;

	r = server_args(loop, factory, opts, path != NULL, true, &o);
	if (r < 0)
		return xp__future_failed(loop, r);
	if (o.use_sock)
		return serve_sock(loop, factory, arg, &o);
	r = xp__unix_addr(path, &sa);
	if (r < 0)
		return xp__future_failed(loop, r);
	fut = xp_future_new(loop);
	if (!fut)
		return NULL;
	if (path[0] != '@') {
		r = remove_stale(&sa, path);
		if (r < 0) {
			xp_future_set_error(fut, r);
			return fut;
		}
	}
	o.no_reuse_address = 1;
	fd = listen_on(&sa, &o, o.backlog > 0 ? o.backlog : DEFAULT_BACKLOG);
	if (fd < 0 || (r = fdset_add(&fs, fd)) < 0) {
		if (fd >= 0)
			close(fd);
		xp_future_set_error(fut, fd < 0 ? fd : r);
		return fut;
	}
	server_finish_create(loop, fut, factory, arg, &o, &fs, path[0] != '@' ? path : NULL);
	return fut;
}
