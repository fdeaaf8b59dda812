// SPDX-License-Identifier: MIT
/*
 * dgram.c - datagram endpoints (UDP and Unix SOCK_DGRAM sockets).
 *
 * The transport reads with recvmmsg() into the loop's shared read buffer,
 * cut into one slot per datagram, and flushes its send queue with
 * sendmmsg().  sendto() tries the socket at once and only queues when the
 * kernel says EAGAIN.  Buffer accounting is symmetric: a queued datagram
 * adds its length, and the same length comes off when it is sent or
 * dropped.
 *
 * Errors the socket reports (ECONNREFUSED from an ICMP port unreachable,
 * EMSGSIZE...) go to the protocol's error_received() and the endpoint stays
 * open, as asyncio does.
 *
 * An unconnected Unix socket whose receiver's queue is full gets EAGAIN,
 * yet poll() calls it writable (only a connected one is told about its
 * peer's queue): waiting for POLLOUT would spin, so such a queue is retried
 * on a timer, backing off from 1 ms to 50 ms.
 */
#include "internal.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DG_BATCH 32   /* datagrams per recvmmsg/sendmmsg call */
#define DG_SLOT 65536 /* receive slot: the largest UDP payload fits */
#define DG_ROUNDS 8   /* recvmmsg calls per wakeup, to be fair */
#define DG_RETRY_MIN 0.001
#define DG_RETRY_MAX 0.05

/* A datagram we hold: queued for sending, or received while paused. */
struct dg_pkt {
	struct xp_list node;
	size_t len;
	socklen_t addrlen;
	struct sockaddr_storage addr;
	unsigned char data[];
};

struct dgram {
	xp_transport base; /* first: transport.c frees the whole struct */
	int fd;
	int family;
	struct xp_io io;
	struct xp_list queue; /* struct dg_pkt, to send */
	size_t qbytes;	      /* sum of queued lengths */
	struct xp_list held;  /* received, not yet delivered (paused mid-batch) */
	xp_handle *held_h;    /* pending delivery of held datagrams */
	xp_handle *retry_h;   /* pending flush (no POLLOUT to wait for) */
	double retry_delay;
	bool connected;
	bool has_sockname;
	xp_sockaddr peer;
	xp_sockaddr sockname;
};

static inline struct dgram *to_dg(xp_transport *t)
{
	return (struct dgram *)t;
}

/* ---- packets --------------------------------------------------------- */

static struct dg_pkt *pkt_new(const void *data, size_t len, const struct sockaddr *addr,
			      socklen_t addrlen)
{
	struct dg_pkt *p = malloc(sizeof(*p) + len);

	if (!p)
		return NULL;
	p->len = len;
	p->addrlen = addr ? addrlen : 0;
	if (addr && addrlen)
		memcpy(&p->addr, addr, addrlen);
	if (len)
		memcpy(p->data, data, len);
	xp_list_init(&p->node);
	return p;
}

static void pkt_list_free(struct xp_list *l)
{
	while (!xp_list_empty(l)) {
		struct dg_pkt *p = xp_list_entry(l->next, struct dg_pkt, node);

		xp_list_remove(&p->node);
		free(p);
	}
}

/* ---- protocol calls -------------------------------------------------- */

static void dg_error_received(struct dgram *d, int err)
{
	xp_protocol *p = d->base.protocol;

	if (d->base.lost_scheduled || !p || !p->ops || !p->ops->error_received)
		return;
	p->ops->error_received(p, err);
}

/* Is the protocol ready for another datagram right now? */
static bool dg_can_deliver(const struct dgram *d)
{
	return d->base.reading && !d->base.closing && !d->base.lost_scheduled;
}

/* Returns false when the transport failed because of the protocol. */
static bool dg_deliver(struct dgram *d, const void *data, size_t len, const struct sockaddr *sa,
		       socklen_t salen)
{
	xp_protocol *p = d->base.protocol;
	int ret;

	if (!p || !p->ops || !p->ops->datagram_received)
		return true;
	ret = p->ops->datagram_received(p, data, len, salen ? sa : NULL, salen);
	if (ret < 0) {
		xp__transport_fatal(&d->base, ret,
				    "Fatal error: protocol.datagram_received() call failed.");
		return false;
	}
	return true;
}

/* Deliver datagrams held back by a pause; true when none are left. */
static bool dg_deliver_held(struct dgram *d)
{
	while (!xp_list_empty(&d->held) && dg_can_deliver(d)) {
		struct dg_pkt *p = xp_list_entry(d->held.next, struct dg_pkt, node);
		bool ok;

		xp_list_remove(&p->node);
		ok = dg_deliver(d, p->data, p->len, (struct sockaddr *)&p->addr, p->addrlen);
		free(p);
		if (!ok)
			return false;
	}
	return xp_list_empty(&d->held);
}

static int dg_held_cb(void *arg)
{
	struct dgram *d = arg;

	xp_handle_release(d->held_h);
	d->held_h = NULL;
	dg_deliver_held(d);
	return 0;
}

static void dg_cancel_held(struct dgram *d)
{
	xp__timer_cancel(&d->held_h);
	pkt_list_free(&d->held);
}

/* ---- reading --------------------------------------------------------- */

/* The protocol paused inside a batch: keep the rest for resume_reading. */
static void dg_hold(struct dgram *d, struct mmsghdr *msgs, int from, int got)
{
	for (int i = from; i < got; i++) {
		struct msghdr *h = &msgs[i].msg_hdr;
		size_t len = msgs[i].msg_len;
		struct dg_pkt *p;

		if (len > h->msg_iov->iov_len)
			len = h->msg_iov->iov_len;
		p = pkt_new(h->msg_iov->iov_base, len, h->msg_name, h->msg_namelen);
		if (!p) {
			dg_error_received(d, -ENOMEM);
			return;
		}
		xp_list_insert_tail(&d->held, &p->node);
	}
}

/* Deliver one recvmmsg batch; false when delivery has to stop. */
static bool dg_deliver_batch(struct dgram *d, struct mmsghdr *msgs, int got)
{
	for (int i = 0; i < got; i++) {
		struct msghdr *h = &msgs[i].msg_hdr;
		size_t len = msgs[i].msg_len;

		if (!dg_can_deliver(d)) {
			if (!d->base.closing && !d->base.lost_scheduled)
				dg_hold(d, msgs, i, got);
			return false;
		}
		/* Longer than the slot only for oversized Unix datagrams. */
		if (len > h->msg_iov->iov_len)
			len = h->msg_iov->iov_len;
		if (!dg_deliver(d, h->msg_iov->iov_base, len, h->msg_name, h->msg_namelen))
			return false;
	}
	return true;
}

static void dg_read(struct dgram *d)
{
	struct mmsghdr msgs[DG_BATCH];
	struct iovec iov[DG_BATCH];
	struct sockaddr_storage addrs[DG_BATCH];
	size_t blen, slot;
	unsigned char *buf;
	unsigned n;

	if (!dg_deliver_held(d))
		return;
	buf = xp__loop_read_buffer(d->base.loop, &blen);
	if (!buf) {
		dg_error_received(d, -ENOMEM);
		return;
	}
	/* Unix datagrams may exceed 64 KiB: give them the whole buffer. */
	slot = d->family == AF_UNIX || blen < DG_SLOT ? blen : DG_SLOT;
	n = (unsigned)(blen / slot);
	if (n > DG_BATCH)
		n = DG_BATCH;

	for (int round = 0; round < DG_ROUNDS && dg_can_deliver(d); round++) {
		int got;

		memset(msgs, 0, sizeof(msgs[0]) * n);
		for (unsigned i = 0; i < n; i++) {
			iov[i].iov_base = buf + i * slot;
			iov[i].iov_len = slot;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
		got = recvmmsg(d->fd, msgs, n, MSG_DONTWAIT, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				dg_error_received(d, -errno);
			return;
		}
		if (!dg_deliver_batch(d, msgs, got) || (unsigned)got < n)
			return;
	}
}

/* ---- writing --------------------------------------------------------- */

static void dg_pop(struct dgram *d, struct dg_pkt *p)
{
	xp_list_remove(&p->node);
	d->qbytes -= p->len;
	free(p);
}

/* After the queue shrank: resume the protocol, finish a close. */
static void dg_after_flush(struct dgram *d)
{
	xp_transport *t = &d->base;

	if (t->lost_scheduled)
		return;
	xp__fc_check_resume(t);
	if (!xp_list_empty(&d->queue) || t->lost_scheduled)
		return;
	xp__io_stop(t->loop, &d->io, XP_IO_WRITE);
	if (t->closing) {
		xp__io_stop(t->loop, &d->io, XP_IO_READ | XP_IO_WRITE | XP_IO_WATCH);
		xp__transport_lost(t, 0);
	}
}

/* One sendmmsg over the head of the queue; returns false to stop. */
static bool dg_flush_batch(struct dgram *d)
{
	struct mmsghdr msgs[DG_BATCH];
	struct iovec iov[DG_BATCH];
	struct xp_list *n = d->queue.next;
	unsigned cnt = 0;
	int sent;

	memset(msgs, 0, sizeof(msgs));
	for (; n != &d->queue && cnt < DG_BATCH; n = n->next, cnt++) {
		struct dg_pkt *p = xp_list_entry(n, struct dg_pkt, node);

		iov[cnt].iov_base = p->data;
		iov[cnt].iov_len = p->len;
		msgs[cnt].msg_hdr.msg_iov = &iov[cnt];
		msgs[cnt].msg_hdr.msg_iovlen = 1;
		if (!d->connected && p->addrlen) {
			msgs[cnt].msg_hdr.msg_name = &p->addr;
			msgs[cnt].msg_hdr.msg_namelen = p->addrlen;
		}
	}
	sent = sendmmsg(d->fd, msgs, cnt, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent < 0) {
		int err = -errno;

		if (err == -EINTR)
			return true;
		if (err == -EAGAIN || err == -EWOULDBLOCK)
			return false;
		/* The head datagram failed: drop it and tell the protocol. */
		dg_pop(d, xp_list_entry(d->queue.next, struct dg_pkt, node));
		dg_error_received(d, err);
		return !d->base.lost_scheduled;
	}
	for (int i = 0; i < sent; i++)
		dg_pop(d, xp_list_entry(d->queue.next, struct dg_pkt, node));
	return true;
}

static void dg_flush(struct dgram *d);

static int dg_retry_cb(void *arg)
{
	struct dgram *d = arg;

	xp_handle_release(d->retry_h);
	d->retry_h = NULL;
	dg_flush(d);
	return 0;
}

/* Will poll() report room at the receiver?  Not for an unconnected Unix
 * socket (see the top of the file). */
static bool dg_polls_for_room(const struct dgram *d)
{
	return d->family != AF_UNIX || d->connected;
}

static void dg_retry_later(struct dgram *d)
{
	xp__io_stop(d->base.loop, &d->io, XP_IO_WRITE);
	if (d->retry_h)
		return;
	d->retry_delay = d->retry_delay * 2 > DG_RETRY_MIN ? d->retry_delay * 2 : DG_RETRY_MIN;
	if (d->retry_delay > DG_RETRY_MAX)
		d->retry_delay = DG_RETRY_MAX;
	d->retry_h = xp__timer_start(d->base.loop, d->retry_delay, dg_retry_cb, d);
	if (!d->retry_h)
		xp__io_start(d->base.loop, &d->io, XP_IO_WRITE); /* spin rather than stall */
}

static void dg_flush(struct dgram *d)
{
	while (!xp_list_empty(&d->queue) && dg_flush_batch(d))
		;
	dg_after_flush(d);
	if (xp_list_empty(&d->queue))
		d->retry_delay = 0;
	else if (!d->base.lost_scheduled && !dg_polls_for_room(d))
		dg_retry_later(d);
}

static bool dg_same_addr(const struct sockaddr *a, socklen_t alen, const xp_sockaddr *b)
{
	const struct sockaddr *s = &b->u.sa;

	if (alen < sizeof(sa_family_t) || a->sa_family != s->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)s;

		return alen >= sizeof(*x) && x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)s;

		return alen >= sizeof(*x) && x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
		       x->sin6_scope_id == y->sin6_scope_id;
	}
	default:
		return alen == b->len && !memcmp(a, s, alen);
	}
}

static int dg_queue(struct dgram *d, const void *data, size_t len, const struct sockaddr *addr,
		    socklen_t addrlen)
{
	struct dg_pkt *p = pkt_new(data, len, addr, addrlen);

	if (!p)
		return -ENOMEM;
	xp_list_insert_tail(&d->queue, &p->node);
	d->qbytes += len;
	if (!d->retry_h)
		xp__io_start(d->base.loop, &d->io, XP_IO_WRITE);
	xp__fc_check_pause(&d->base);
	return 0;
}

static int dg_sendto(xp_transport *t, const void *data, size_t len, const struct sockaddr *addr,
		     socklen_t addrlen)
{
	struct dgram *d = to_dg(t);
	ssize_t r;

	if (t->closing || t->lost_scheduled)
		return 0; /* dropped silently, like writes */
	if (addr && (addrlen < sizeof(sa_family_t) || addrlen > sizeof(struct sockaddr_storage)))
		return -EINVAL;
	if (d->connected) {
		if (addr && !dg_same_addr(addr, addrlen, &d->peer))
			return -EINVAL;
		addr = NULL;
		addrlen = 0;
	} else if (!addr) {
		return -EDESTADDRREQ;
	}
	if (!xp_list_empty(&d->queue))
		return dg_queue(d, data, len, addr, addrlen);
	do
		r = sendto(d->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addrlen);
	while (r < 0 && errno == EINTR);
	if (r >= 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return dg_queue(d, data, len, addr, addrlen);
	/* ECONNREFUSED, EMSGSIZE, ENOBUFS...: reported, endpoint stays open. */
	dg_error_received(d, -errno);
	return 0;
}

/* ---- the io callback ------------------------------------------------- */

/* An error nobody asked about (no read or write interest): consume it so
 * the backend does not report it again and again. */
static void dg_take_so_error(struct dgram *d)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		dg_error_received(d, -err);
}

static void dg_io_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct dgram *d = XP_CONTAINER_OF(w, struct dgram, io);
	bool handled = false;

	/* The transport stays allocated until connection_lost has run (a
	 * later callback), so d is valid throughout. */
	if ((w->events & XP_IO_WRITE) && (revents & (XP_IO_WRITE | XP_IO_ERR | XP_IO_HUP))) {
		dg_flush(d);
		handled = true;
	}
	if (d->base.lost_scheduled)
		return;
	if ((w->events & XP_IO_READ) && (revents & (XP_IO_READ | XP_IO_ERR | XP_IO_HUP))) {
		dg_read(d);
		handled = true;
	}
	if (!handled && (revents & XP_IO_ERR))
		dg_take_so_error(d);
	else if (!handled && (revents & XP_IO_HUP))
		xp__io_stop(loop, w, XP_IO_WATCH); /* shut down: nothing more to hear */
}

/* ---- vtable ---------------------------------------------------------- */

static void dg_made(xp_transport *t)
{
	struct dgram *d = to_dg(t);

	/* Paused, an ICMP error (ECONNREFUSED...) still reaches
	 * error_received: the socket stays watched for errors. */
	xp__io_start(t->loop, &d->io,
		     t->reading && !t->closing ? XP_IO_READ | XP_IO_WATCH : XP_IO_WATCH);
}

static void dg_update_reading(xp_transport *t)
{
	struct dgram *d = to_dg(t);

	if (!t->reading || t->closing || t->lost_scheduled) {
		xp__io_stop(t->loop, &d->io, XP_IO_READ);
		return;
	}
	xp__io_start(t->loop, &d->io, XP_IO_READ);
	/* Datagrams held back by an earlier pause come first, on a later
	 * iteration: never from inside resume_reading(). */
	if (!xp_list_empty(&d->held) && !d->held_h) {
		d->held_h = xp_call_soon(t->loop, dg_held_cb, d);
		if (d->held_h)
			xp_handle_retain(d->held_h);
	}
}

static void dg_close(xp_transport *t)
{
	struct dgram *d = to_dg(t);

	xp__io_stop(t->loop, &d->io, XP_IO_READ);
	dg_cancel_held(d);
	if (xp_list_empty(&d->queue)) {
		xp__io_stop(t->loop, &d->io, XP_IO_READ | XP_IO_WRITE | XP_IO_WATCH);
		xp__transport_lost(t, 0);
	}
	/* Otherwise dg_flush finishes the close once the queue is empty. */
}

static void dg_force_close(xp_transport *t, int err)
{
	struct dgram *d = to_dg(t);

	if (t->lost_scheduled)
		return;
	pkt_list_free(&d->queue);
	d->qbytes = 0;
	dg_cancel_held(d);
	xp__timer_cancel(&d->retry_h);
	xp__io_stop(t->loop, &d->io, XP_IO_READ | XP_IO_WRITE | XP_IO_WATCH);
	xp__transport_lost(t, err);
}

static size_t dg_get_write_buffer_size(const xp_transport *t)
{
	return ((const struct dgram *)t)->qbytes;
}

static const void *dg_get_extra_info(xp_transport *t, const char *key, const void *dflt)
{
	struct dgram *d = to_dg(t);

	if (!strcmp(key, "peername"))
		return d->connected ? (const void *)&d->peer : dflt;
	if (!strcmp(key, "sockname"))
		return d->has_sockname ? (const void *)&d->sockname : dflt;
	if (!strcmp(key, "socket"))
		return &d->fd;
	return dflt;
}

static void dg_destroy(xp_transport *t)
{
	struct dgram *d = to_dg(t);

	dg_cancel_held(d);
	xp__timer_cancel(&d->retry_h);
	pkt_list_free(&d->queue);
	d->qbytes = 0;
	xp__io_close(t->loop, &d->io);
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static const struct xp_transport_vt dgram_vt = {
    .kind = XP_TRANSPORT_DATAGRAM,
    .name = "datagram",
    .made = dg_made,
    .close = dg_close,
    .force_close = dg_force_close,
    .update_reading = dg_update_reading,
    .get_write_buffer_size = dg_get_write_buffer_size,
    .get_extra_info = dg_get_extra_info,
    .sendto = dg_sendto,
    .destroy = dg_destroy,
};

/* Wrap fd (ours from now on) in a started transport; waiter gets it. */
static int dg_wrap(xp_loop *loop, int fd, xp_protocol_factory factory, void *arg, xp_future *waiter)
{
	struct dgram *d;

	d = (struct dgram *)xp__transport_new(sizeof(*d), &dgram_vt, loop, NULL);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	xp__io_init(&d->io, fd, dg_io_cb);
	xp_list_init(&d->queue);
	xp_list_init(&d->held);
	d->has_sockname = xp__sockaddr_from_fd(fd, false, &d->sockname) == 0;
	d->family = d->has_sockname ? d->sockname.u.sa.sa_family : AF_UNSPEC;
	d->connected = xp__sockaddr_from_fd(fd, true, &d->peer) == 0;
	return xp__transport_start_with(&d->base, waiter, factory, arg);
}

/* ---- creating endpoints ---------------------------------------------- */

struct dg_create {
	xp_loop *loop;
	xp_protocol_factory factory;
	void *arg;
	xp_future *result;  /* our reference */
	xp_future *lf, *rf; /* pending resolutions */
	struct addrinfo *lai, *rai;
	int lerr, rerr;
	int pending;
	bool want_local, want_remote;
	int family, reuse_port, allow_broadcast;
};

static void dc_free(struct dg_create *c)
{
	if (c->lai)
		freeaddrinfo(c->lai);
	if (c->rai)
		freeaddrinfo(c->rai);
	xp_future_release(c->result);
	free(c);
}

static int dg_setopts(int fd, const struct dg_create *c)
{
	int one = 1;

	if (c->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return -errno;
	if (c->allow_broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

/* A socket of family bound to local and connected to remote (either may
 * be NULL); the fd or -errno. */
static int dg_open(const struct dg_create *c, int family, const struct addrinfo *local,
		   const struct addrinfo *remote)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	err = dg_setopts(fd, c);
	if (!err && local && bind(fd, local->ai_addr, local->ai_addrlen) < 0)
		err = -errno;
	if (!err && remote && connect(fd, remote->ai_addr, remote->ai_addrlen) < 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static const struct addrinfo *ai_of_family(const struct addrinfo *ai, int family)
{
	for (; ai; ai = ai->ai_next)
		if (ai->ai_family == family)
			return ai;
	return NULL;
}

/* Try the resolved candidates in order, as asyncio does: every remote
 * address (with a local one of the same family), or every local one. */
static int dg_open_any(const struct dg_create *c)
{
	const struct addrinfo *list = c->want_remote ? c->rai : c->lai;
	int err = -EADDRNOTAVAIL;

	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		const struct addrinfo *local = c->want_remote ? NULL : ai;
		const struct addrinfo *remote = c->want_remote ? ai : NULL;
		int fd;

		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (c->want_local && c->want_remote) {
			local = ai_of_family(c->lai, ai->ai_family);
			if (!local)
				continue;
		}
		fd = dg_open(c, ai->ai_family, local, remote);
		if (fd >= 0)
			return fd;
		err = fd;
	}
	return err;
}

static void dc_finish(struct dg_create *c)
{
	int fd, err;

	if (xp_future_done(c->result)) /* cancelled meanwhile */
		goto out;
	err = c->lerr ? c->lerr : c->rerr;
	if (!err) {
		fd = dg_open_any(c);
		err = fd < 0 ? fd : dg_wrap(c->loop, fd, c->factory, c->arg, c->result);
	}
	if (err)
		xp_future_set_error(c->result, err);
out:
	dc_free(c);
}

static void dc_resolved(xp_future *f, void *arg)
{
	struct dg_create *c = arg;
	bool local = f == c->lf;
	int err = xp_future_error(f);

	if (local) {
		c->lerr = err;
		c->lai = err ? NULL : xp_future_take_result(f);
		c->lf = NULL;
	} else {
		c->rerr = err;
		c->rai = err ? NULL : xp_future_take_result(f);
		c->rf = NULL;
	}
	xp_future_release(f);
	if (--c->pending == 0)
		dc_finish(c);
}

/* Numeric addresses resolve here and now; names go to the executor. */
static int dc_resolve(struct dg_create *c, const char *host, const char *port, bool local,
		      struct addrinfo **out, xp_future **fut)
{
	struct addrinfo hints = {
	    .ai_family = c->family, .ai_socktype = SOCK_DGRAM, .ai_flags = local ? AI_PASSIVE : 0};
	int r = xp__resolve(c->loop, host, port ? port : "0", &hints, out, fut);

	if (r == 0 && *fut)
		c->pending++;
	return r;
}

/* AF_UNIX endpoints: paths need no resolution.  Like asyncio, a stale
 * socket file at the local path is removed first (never another file). */
static int dg_open_unix(const struct dg_create *c, const xp_datagram_opts *o)
{
	xp_sockaddr la, ra;
	struct addrinfo lai = {0}, rai = {0};
	struct stat st;
	int err;

	if (o->local_host) {
		err = xp__unix_addr(o->local_host, &la);
		if (err)
			return err;
		if (o->local_host[0] != '@' && stat(o->local_host, &st) == 0 &&
		    S_ISSOCK(st.st_mode))
			unlink(o->local_host);
		lai.ai_addr = &la.u.sa;
		lai.ai_addrlen = la.len;
	}
	if (o->remote_host) {
		err = xp__unix_addr(o->remote_host, &ra);
		if (err)
			return err;
		rai.ai_addr = &ra.u.sa;
		rai.ai_addrlen = ra.len;
	}
	return dg_open(c, AF_UNIX, o->local_host ? &lai : NULL, o->remote_host ? &rai : NULL);
}

/* Wrap an existing datagram socket (use_sock). */
static int dg_check_sock(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_DGRAM)
		return -EINVAL;
	return xp__set_nonblock(fd, true);
}

static bool dg_has_addr_opts(const xp_datagram_opts *o)
{
	return o->local_host || o->local_port || o->remote_host || o->remote_port || o->family ||
	       o->reuse_port || o->allow_broadcast;
}

/* Everything that completes without waiting; 1 when c must wait for the
 * resolver, 0 when c->result is done, else an error. */
static int dc_start(struct dg_create *c, const xp_datagram_opts *o)
{
	int err, fd;

	if (o->use_sock) {
		if (dg_has_addr_opts(o))
			return -EINVAL;
		err = dg_check_sock(o->sock);
		return err ? err : dg_wrap(c->loop, o->sock, c->factory, c->arg, c->result);
	}
	c->want_local = o->local_host || o->local_port;
	c->want_remote = o->remote_host || o->remote_port;
	if (o->family == AF_UNIX) {
		if (o->local_port || o->remote_port)
			return -EINVAL;
		fd = dg_open_unix(c, o);
		return fd < 0 ? fd : dg_wrap(c->loop, fd, c->factory, c->arg, c->result);
	}
	if (!c->want_local && !c->want_remote) {
		/* An unbound socket needs a family to be created with. */
		if (o->family != AF_INET && o->family != AF_INET6)
			return -EINVAL;
		fd = dg_open(c, o->family, NULL, NULL);
		return fd < 0 ? fd : dg_wrap(c->loop, fd, c->factory, c->arg, c->result);
	}
	if (c->want_local) {
		err = dc_resolve(c, o->local_host, o->local_port, true, &c->lai, &c->lf);
		if (err)
			return err;
	}
	if (c->want_remote) {
		err = dc_resolve(c, o->remote_host, o->remote_port, false, &c->rai, &c->rf);
		if (err)
			return err;
	}
	return 1;
}

xp_future *xp_create_datagram_endpoint(xp_loop *loop, xp_protocol_factory factory, void *arg,
				       const xp_datagram_opts *opts)
{
	static const xp_datagram_opts none;
	struct dg_create *c;
	xp_future *fut;
	int err;

	fut = xp__future_begin(loop, factory != NULL);
	if (!fut)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		xp_future_set_error(fut, -ENOMEM);
		return fut;
	}
	if (!opts)
		opts = &none;
	c->loop = loop;
	c->factory = factory;
	c->arg = arg;
	c->result = xp_future_retain(fut);
	c->family = opts->family;
	c->reuse_port = opts->reuse_port;
	c->allow_broadcast = opts->allow_broadcast;

	err = dc_start(c, opts);
	if (err < 0 && !c->pending) {
		xp_future_set_error(fut, err);
		dc_free(c);
		return fut;
	}
	if (err < 0) /* a resolution is in flight: fail when it lands */
		c->rerr = err;
	if (!c->pending) {
		if (err == 1)
			dc_finish(c);
		else
			dc_free(c);
		return fut;
	}
	/* Callbacks run on later iterations, so pending is final here. */
	if (c->lf)
		xp_future_add_done_callback(c->lf, dc_resolved, c);
	if (c->rf)
		xp_future_add_done_callback(c->rf, dc_resolved, c);
	return fut;
}
