// SPDX-License-Identifier: MIT
/*
 * connect.c - outgoing stream connections.
 *
 * xp_create_connection resolves the host (numeric literals without the
 * executor), orders the addresses for Happy Eyeballs (RFC 8305: families
 * alternate, starting with the family getaddrinfo put first) and races
 * non-blocking connects: the next attempt starts after happy_eyeballs_delay
 * or as soon as the previous one fails.  The first socket to connect wins;
 * the others are closed.  Only then is the protocol factory called, so it
 * runs once per connection, not once per attempt.
 *
 * A `struct conn` lives while anything can still call back into it: the
 * caller's future (its done callback notices cancellation), the resolver's
 * future and the connection work itself each hold a reference.  Timers and
 * io watchers need none: they are cancelled/closed when the work finishes.
 */
#include "internal.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/un.h>
#include <unistd.h>

#define HAPPY_EYEBALLS_DELAY 0.25
/* A Unix connect to a full backlog fails with EAGAIN and there is nothing
 * to poll for (the socket is always writable): retry on a short timer. */
#define UNIX_RETRY_DELAY 0.01

/* ---- TLS chaining ----------------------------------------------------- */

/* Copies the TLS wrapper's outcome to the caller's future; cancelling the
 * caller's future cancels the handshake.  One reference per done callback. */
struct chain {
	xp_future *user, *inner;
	int refs;
};

static void chain_unref(struct chain *ch)
{
	if (--ch->refs)
		return;
	xp_future_release(ch->user);
	xp_future_release(ch->inner);
	free(ch);
}

static void chain_user_done(xp_future *user, void *arg);

static void release_transport(void *t)
{
	xp_transport_release(t);
}

static void chain_inner_done(xp_future *inner, void *arg)
{
	struct chain *ch = arg;

	if (xp_future_remove_done_callback(ch->user, chain_user_done, ch))
		ch->refs--;
	if (!xp_future_done(ch->user)) {
		int err = xp_future_error(inner);
		xp_transport *t = err ? NULL : xp_future_result(inner);

		/* The caller's future holds its own reference, as documented
		 * (the inner one drops its reference when released). */
		if (err)
			xp_future_set_error(ch->user, err);
		else if (xp_future_set_result_owned(ch->user, xp_transport_retain(t),
						    release_transport) < 0)
			xp_transport_release(t);
	}
	chain_unref(ch);
}

static void chain_user_done(xp_future *user, void *arg)
{
	struct chain *ch = arg;

	if (xp_future_cancelled(user) && !xp_future_done(ch->inner))
		xp_future_cancel(ch->inner);
	chain_unref(ch);
}

void xp__chain_futures(xp_future *user, xp_future *inner)
{
	struct chain *ch = calloc(1, sizeof(*ch));

	if (!ch) {
		xp_future_cancel(inner);
		xp_future_release(inner);
		xp_future_set_error(user, -ENOMEM);
		return;
	}
	ch->user = xp_future_retain(user);
	ch->inner = inner;
	ch->refs = 2;
	xp_future_add_done_callback(inner, chain_inner_done, ch);
	xp_future_add_done_callback(user, chain_user_done, ch);
}

/* ---- turning a connected socket into a transport ---------------------- */

struct wrap_args {
	xp_protocol_factory factory;
	void *arg;
	xp_tls_ctx *tls;
	int server_side;
	const char *hostname;
	double handshake_timeout;
	/* The address connected to: a peer that resets at once leaves
	 * getpeername() nothing to tell, and messages name the peer. */
	const xp_sockaddr *peer;
};

/* Takes fd.  Completes fut (after connection_made) or fails it. */
static void wrap_fd(xp_loop *loop, xp_future *fut, int fd, const struct wrap_args *w)
{
	/* With TLS the protocol is made once the handshake succeeded, so a
	 * failed handshake leaves no protocol that never saw a callback. */
	xp_transport *t = w->peer ? xp__stream_new_accepted(loop, fd, NULL, w->peer)
				  : xp__stream_new(loop, fd, NULL);

	if (!t) {
		int err = errno ? -errno : -ENOMEM;

		close(fd);
		xp_future_set_error(fut, err);
		return;
	}
	if (w->tls) {
		xp_future *inner =
		    xp__tls_wrap(loop, t, NULL, w->factory, w->arg, w->tls, w->server_side,
				 w->hostname, w->handshake_timeout, NULL);

		if (!inner) {
			xp_future_set_error(fut, errno ? -errno : -ENOMEM);
			return;
		}
		xp__chain_futures(fut, inner);
		return;
	}
	int r = xp__transport_start_with(t, fut, w->factory, w->arg);

	if (r < 0)
		xp_future_set_error(fut, r);
}

/* ---- one connection being set up -------------------------------------- */

struct conn;

struct attempt {
	struct xp_io io;
	struct conn *c;
	struct xp_list node;
	xp_handle *retry; /* Unix EAGAIN retry timer */
	const xp_sockaddr *addr;
};

struct conn {
	xp_loop *loop;
	xp_future *fut; /* the caller's */
	xp_protocol_factory factory;
	void *arg;
	char *host;
	xp_connect_opts opts;
	xp_sockaddr laddr; /* opts.local_addr points here */
	xp_future *resolve;
	xp_sockaddr *addrs;
	size_t naddr, next;
	struct xp_list attempts;
	xp_handle *stagger, *deadline;
	double deadline_at;
	int first_err;
	bool mixed_errs, refused;
	bool finished;
	int refs;
};

static void conn_unref(struct conn *c)
{
	if (--c->refs)
		return;
	xp_future_release(c->fut);
	free(c->addrs);
	free(c->host);
	free(c);
}

static void user_done(xp_future *fut, void *arg);
static void resolved(xp_future *f, void *arg);

static void cancel_timer(xp_handle **h)
{
	if (*h) {
		xp_handle_cancel(*h);
		*h = NULL;
	}
}

static void attempt_free(struct attempt *a, bool close_fd)
{
	cancel_timer(&a->retry);
	xp__io_close(a->c->loop, &a->io);
	if (close_fd)
		close(a->io.fd);
	xp_list_remove(&a->node);
	free(a);
}

/* The final error when every attempt failed: the common one, else the most
 * telling (asyncio raises one error if all agree, a combined one if not). */
static int conn_final_err(const struct conn *c)
{
	if (!c->first_err)
		return -ECONNREFUSED;
	if (c->mixed_errs && c->refused)
		return -ECONNREFUSED;
	return c->first_err;
}

static void conn_record_err(struct conn *c, int err)
{
	if (!c->first_err)
		c->first_err = err;
	else if (err != c->first_err)
		c->mixed_errs = true;
	if (err == -ECONNREFUSED)
		c->refused = true;
}

/* Stop all connect work; fail the caller's future with err unless it is
 * done already (or err is 0).  Drops the work's reference. */
static void conn_finish(struct conn *c, int err)
{
	if (c->finished)
		return;
	c->finished = true;
	cancel_timer(&c->stagger);
	cancel_timer(&c->deadline);
	while (!xp_list_empty(&c->attempts))
		attempt_free(xp_list_entry(c->attempts.next, struct attempt, node), true);
	if (c->resolve && xp_future_remove_done_callback(c->resolve, resolved, c)) {
		xp_future_cancel(c->resolve);
		xp_future_release(c->resolve);
		c->resolve = NULL;
		c->refs--;
	}
	/* Cancellation no longer concerns us (once a transport exists,
	 * transport.c closes it if the caller cancelled).  Unhook now rather
	 * than rely on a queued callback the loop may never run. */
	if (xp_future_remove_done_callback(c->fut, user_done, c))
		c->refs--;
	if (err && !xp_future_done(c->fut))
		xp_future_set_error(c->fut, err);
	conn_unref(c);
}

static double conn_handshake_timeout(const struct conn *c)
{
	double hs = c->opts.tls_handshake_timeout;

	if (c->opts.timeout > 0) {
		double left = c->deadline_at - xp_loop_time(c->loop);

		if (left < 0.001)
			left = 0.001;
		if (hs <= 0 || left < hs)
			hs = left;
	}
	return hs;
}

static void conn_won(struct conn *c, struct attempt *a)
{
	int fd = a->io.fd;
	struct wrap_args w = {
	    .factory = c->factory,
	    .arg = c->arg,
	    .tls = c->opts.tls,
	    .hostname = c->opts.server_hostname ? c->opts.server_hostname : c->host,
	    .handshake_timeout = conn_handshake_timeout(c),
	    .peer = a->addr,
	};

	attempt_free(a, false);
	c->refs++; /* keep host alive for wrap_fd */
	conn_finish(c, 0);
	if (!xp_future_done(c->fut))
		wrap_fd(c->loop, c->fut, fd, &w);
	else
		close(fd);
	conn_unref(c);
}

static void conn_try_next(struct conn *c);

static void attempt_failed(struct attempt *a, int err)
{
	struct conn *c = a->c;

	conn_record_err(c, err);
	attempt_free(a, true);
	/* RFC 8305 §5: a failure starts the next attempt at once. */
	cancel_timer(&c->stagger);
	conn_try_next(c);
}

static void attempt_io(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct attempt *a = XP_CONTAINER_OF(w, struct attempt, io);
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY || err == EINTR)
		return;
	if (err)
		attempt_failed(a, -err);
	else
		conn_won(a->c, a);
}

static int attempt_retry_cb(void *arg)
{
	struct attempt *a = arg;
	const xp_sockaddr *sa = a->addr;

	a->retry = NULL;
	if (connect(a->io.fd, &sa->u.sa, sa->len) == 0) {
		conn_won(a->c, a);
	} else if (errno == EAGAIN || errno == EINTR) {
		a->retry = xp_call_later(a->c->loop, UNIX_RETRY_DELAY, attempt_retry_cb, a);
		if (!a->retry)
			attempt_failed(a, -ENOMEM);
	} else {
		attempt_failed(a, -errno);
	}
	return 0;
}

/* Start one attempt.  Returns 1 if it is in progress, 0 if it already
 * finished (won or failed: the caller must not touch c then). */
static int attempt_start(struct conn *c, const xp_sockaddr *sa)
{
	struct attempt *a;
	int fd = xp__socket(sa->u.sa.sa_family, SOCK_STREAM, 0);

	if (fd < 0) {
		conn_record_err(c, fd);
		return -1;
	}
	if (c->opts.local_addr && bind(fd, c->opts.local_addr, c->opts.local_addrlen) < 0) {
		conn_record_err(c, -errno);
		close(fd);
		return -1;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		conn_record_err(c, -ENOMEM);
		close(fd);
		return -1;
	}
	a->c = c;
	a->addr = sa;
	xp__io_init(&a->io, fd, attempt_io);
	xp_list_insert_tail(&c->attempts, &a->node);
	while (connect(fd, &sa->u.sa, sa->len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS) {
			int r = xp__io_start(c->loop, &a->io, XP_IO_WRITE);

			if (r < 0) {
				conn_record_err(c, r);
				attempt_free(a, true);
				return -1;
			}
			return 1;
		}
		if (errno == EAGAIN && sa->u.sa.sa_family == AF_UNIX) {
			a->retry = xp_call_later(c->loop, UNIX_RETRY_DELAY, attempt_retry_cb, a);
			if (a->retry)
				return 1;
			errno = ENOMEM;
		}
		conn_record_err(c, -errno);
		attempt_free(a, true);
		return -1;
	}
	conn_won(c, a);
	return 0;
}

static int stagger_cb(void *arg)
{
	struct conn *c = arg;

	c->stagger = NULL;
	conn_try_next(c);
	return 0;
}

/* Start attempts until one is in flight; arm the stagger timer if more
 * addresses are waiting; fail when nothing is left. */
static void conn_try_next(struct conn *c)
{
	double delay = c->opts.happy_eyeballs_delay;

	if (delay == 0)
		delay = HAPPY_EYEBALLS_DELAY;
	/* One at a time: the next waits for the current one to fail. */
	if (delay < 0 && !xp_list_empty(&c->attempts))
		return;
	while (c->next < c->naddr) {
		int r = attempt_start(c, &c->addrs[c->next++]);

		if (r == 0)
			return;
		if (r > 0) {
			if (delay > 0 && c->next < c->naddr && !c->stagger) {
				c->stagger = xp_call_later(c->loop, delay, stagger_cb, c);
				if (!c->stagger)
					conn_finish(c, -ENOMEM);
			}
			return;
		}
	}
	if (xp_list_empty(&c->attempts))
		conn_finish(c, conn_final_err(c));
}

static int deadline_cb(void *arg)
{
	struct conn *c = arg;

	c->deadline = NULL;
	conn_finish(c, -ETIMEDOUT);
	return 0;
}

static void user_done(xp_future *fut, void *arg)
{
	struct conn *c = arg;

	/* Cancelled (or timed out) by the caller: abort the attempts. */
	conn_finish(c, 0);
	conn_unref(c);
}

static struct conn *conn_new(xp_loop *loop, xp_protocol_factory factory, void *arg,
			     const char *host, const xp_connect_opts *opts)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fut = xp_future_new(loop);
	if (!c->fut || (host && !(c->host = strdup(host)))) {
		if (c->fut)
			xp_future_release(c->fut);
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->factory = factory;
	c->arg = arg;
	if (opts)
		c->opts = *opts;
	if (c->opts.local_addr) {
		if (c->opts.local_addrlen > sizeof(c->laddr.u)) {
			c->opts.local_addrlen = sizeof(c->laddr.u);
		}
		memcpy(&c->laddr.u, c->opts.local_addr, c->opts.local_addrlen);
		c->laddr.len = c->opts.local_addrlen;
		c->opts.local_addr = &c->laddr.u.sa;
	}
	xp_list_init(&c->attempts);
	c->refs = 2; /* the work, the caller's future's done callback */
	if (xp_future_add_done_callback(c->fut, user_done, c) < 0) {
		xp_future_release(c->fut);
		free(c->host);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	if (c->opts.timeout > 0) {
		c->deadline_at = xp_loop_time(loop) + c->opts.timeout;
		c->deadline = xp_call_later(loop, c->opts.timeout, deadline_cb, c);
	}
	return c;
}

/* Hand the caller its future (retained) and drop nothing else. */
static xp_future *conn_result(struct conn *c)
{
	return xp_future_retain(c->fut);
}

/* ---- address ordering --------------------------------------------------- */

size_t xp__connect_interleave(const struct addrinfo *ai, xp_sockaddr *out, size_t max)
{
	/* Families in order of first appearance; then round robin. */
	int fams[8];
	size_t nfam = 0, n = 0, total = 0;
	const struct addrinfo *p;

	for (p = ai; p; p = p->ai_next) {
		size_t i;

		if (p->ai_addrlen > sizeof(out->u))
			continue;
		total++;
		for (i = 0; i < nfam && fams[i] != p->ai_family; i++)
			;
		if (i == nfam && nfam < 8)
			fams[nfam++] = p->ai_family;
	}
	for (size_t round = 0; n < max && n < total; round++) {
		bool any = false;

		for (size_t f = 0; f < nfam && n < max; f++) {
			size_t k = 0;

			for (p = ai; p; p = p->ai_next) {
				if (p->ai_family != fams[f] || p->ai_addrlen > sizeof(out->u))
					continue;
				if (k++ == round) {
					memcpy(&out[n].u, p->ai_addr, p->ai_addrlen);
					out[n].len = p->ai_addrlen;
					n++;
					any = true;
					break;
				}
			}
		}
		if (!any)
			break;
	}
	return n;
}

/* Keep only addresses local_addr can bind for. */
static void conn_filter_family(struct conn *c)
{
	size_t j = 0;

	if (!c->opts.local_addr)
		return;
	for (size_t i = 0; i < c->naddr; i++)
		if (c->addrs[i].u.sa.sa_family == c->opts.local_addr->sa_family)
			c->addrs[j++] = c->addrs[i];
	c->naddr = j;
	if (!j)
		conn_record_err(c, -EADDRNOTAVAIL);
}

static void conn_start_ai(struct conn *c, const struct addrinfo *ai)
{
	size_t n = 0;

	for (const struct addrinfo *p = ai; p; p = p->ai_next)
		n++;
	c->addrs = calloc(n ? n : 1, sizeof(*c->addrs));
	if (!c->addrs) {
		conn_finish(c, -ENOMEM);
		return;
	}
	c->naddr = xp__connect_interleave(ai, c->addrs, n);
	conn_filter_family(c);
	conn_try_next(c);
}

static void resolved(xp_future *f, void *arg)
{
	struct conn *c = arg;
	int err = xp_future_error(f);

	c->resolve = NULL;
	if (!c->finished) {
		if (err)
			conn_finish(c, err);
		else
			conn_start_ai(c, xp_future_result(f));
	}
	xp_future_release(f);
	conn_unref(c);
}

static void conn_resolve(struct conn *c, const char *host, const char *port)
{
	struct addrinfo hints = {.ai_family = c->opts.family, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	int r = xp__resolve(c->loop, host, port, &hints, &ai, &c->resolve);

	if (r < 0) {
		conn_finish(c, r);
	} else if (ai) {
		conn_start_ai(c, ai);
		freeaddrinfo(ai);
	} else {
		c->refs++;
		xp_future_add_done_callback(c->resolve, resolved, c);
	}
}

/* ---- public ------------------------------------------------------------- */

static int take_sock(int fd)
{
	int r = xp__set_nonblock(fd, true);

	if (r == 0)
		r = xp__set_cloexec(fd);
	return r;
}

static xp_future *wrap_existing(xp_loop *loop, xp_protocol_factory factory, void *arg, int fd,
				const xp_connect_opts *opts, int server_side)
{
	xp_future *fut = xp_future_new(loop);
	struct wrap_args w = {
	    .factory = factory,
	    .arg = arg,
	    .tls = opts ? opts->tls : NULL,
	    .server_side = server_side,
	    .hostname = opts ? opts->server_hostname : NULL,
	    .handshake_timeout = opts ? opts->tls_handshake_timeout : 0,
	};
	int r;

	if (!fut)
		return NULL;
	r = take_sock(fd);
	if (r < 0) {
		close(fd);
		xp_future_set_error(fut, r);
		return fut;
	}
	wrap_fd(loop, fut, fd, &w);
	return fut;
}

static int check_opts(xp_loop *loop, xp_protocol_factory factory, const xp_connect_opts *opts)
{
	if (!loop || !factory)
		return -EINVAL;
	if (opts && opts->server_hostname && !opts->tls)
		return -EINVAL;
	if (opts && opts->tls_handshake_timeout && !opts->tls)
		return -EINVAL;
	if (opts && (opts->timeout < 0 || opts->tls_handshake_timeout < 0))
		return -EINVAL;
	return 0;
}

xp_future *xp_create_connection(xp_loop *loop, xp_protocol_factory factory, void *arg,
				const char *host, const char *port, const xp_connect_opts *opts)
{
	struct conn *c;
	xp_future *fut;
	int r;

	r = check_opts(loop, factory, opts);
	if (r < 0)
		return xp__future_failed(loop, r);
	if (opts && opts->proxy && opts->proxy->kind != XP_PROXY_NONE) {
		if (opts->use_sock)
			return xp__future_failed(loop, -EINVAL);
		return xp__proxy_connect(loop, factory, arg, host, port, opts);
	}
	if (opts && opts->use_sock) {
		/* asyncio: host/port and sock are exclusive (ValueError). */
		if (host || port || opts->local_addr) {
			close(opts->sock);
			return xp__future_failed(loop, -EINVAL);
		}
		return wrap_existing(loop, factory, arg, opts->sock, opts, 0);
	}
	c = conn_new(loop, factory, arg, host, opts);
	if (!c)
		return NULL;
	fut = conn_result(c);
	conn_resolve(c, host, port);
	return fut;
}

xp_future *xp__connect_addrs(xp_loop *loop, xp_protocol_factory factory, void *arg,
			     const xp_sockaddr *addrs, size_t n, const char *host,
			     const xp_connect_opts *opts)
{
	struct conn *c;
	xp_future *fut;
	int r = check_opts(loop, factory, opts);

	if (r < 0)
		return xp__future_failed(loop, r);
	c = conn_new(loop, factory, arg, host, opts);
	if (!c)
		return NULL;
	fut = conn_result(c);
	c->addrs = calloc(n ? n : 1, sizeof(*c->addrs));
	if (!c->addrs) {
		conn_finish(c, -ENOMEM);
		return fut;
	}
	memcpy(c->addrs, addrs, n * sizeof(*addrs));
	c->naddr = n;
	conn_filter_family(c);
	conn_try_next(c);
	return fut;
}

/* Fill a sockaddr_un; "@name" is an abstract name.  Returns 0 or -errno. */
xp_future *xp_create_unix_connection(xp_loop *loop, xp_protocol_factory factory, void *arg,
				     const char *path, const xp_connect_opts *opts)
{
	xp_connect_opts o = {0};
	xp_sockaddr sa;
	int r;

	r = check_opts(loop, factory, opts);
	if (r < 0)
		return xp__future_failed(loop, r);
	if (opts)
		o = *opts;
	/* A proxy reaches TCP targets only. */
	if (o.proxy && o.proxy->kind != XP_PROXY_NONE)
		return xp__future_failed(loop, -EINVAL);
	if (o.use_sock) {
		if (path) {
			close(o.sock);
			return xp__future_failed(loop, -EINVAL);
		}
		return wrap_existing(loop, factory, arg, o.sock, &o, 0);
	}
	/* asyncio: TLS over Unix sockets needs an explicit server_hostname. */
	if (o.tls && !o.server_hostname)
		return xp__future_failed(loop, -EINVAL);
	r = xp__unix_addr(path, &sa);
	if (r < 0)
		return xp__future_failed(loop, r);
	o.local_addr = NULL;
	o.happy_eyeballs_delay = -1;
	return xp__connect_addrs(loop, factory, arg, &sa, 1, NULL, &o);
}

xp_future *xp_connect_accepted_socket(xp_loop *loop, xp_protocol_factory factory, void *arg,
				      int sock, const xp_connect_opts *opts)
{
	int r;

	if (!loop) {
		errno = EINVAL;
		return NULL;
	}
	r = factory ? 0 : -EINVAL;
	if (r == 0 && sock < 0)
		r = -EBADF;
	if (r < 0) {
		if (sock >= 0)
			close(sock);
		return xp__future_failed(loop, r);
	}
	return wrap_existing(loop, factory, arg, sock, opts, 1);
}
