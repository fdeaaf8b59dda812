// SPDX-License-Identifier: MIT
/*
 * sockops.c - one-shot socket operations (loop.sock_recv() and friends).
 *
 * Each operation tries its syscall at once and completes its future if that
 * worked.  Otherwise it waits for the fd with the public xp_add_reader /
 * xp_add_writer, which keep one reader and one writer per fd.  So that two
 * operations in the same direction on one fd do not replace each other,
 * waiting operations form a FIFO per (loop, fd, direction): the reader or
 * writer callback always serves the head of its queue, and is moved on to
 * the next operation once the head is done.
 *
 * Cancelling the future stops the wait: the operation leaves its queue at
 * the next readiness or when the future's done callback runs, whichever
 * comes first.  An operation is freed by that done callback, which is
 * always scheduled exactly once.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

enum sop_kind {
	SOP_RECV,
	SOP_RECVFROM,
	SOP_SENDALL,
	SOP_SENDTO,
	SOP_CONNECT,
	SOP_ACCEPT,
	SOP_SENDFILE,
};

#define SENDFILE_CHUNK (1u << 30) /* per sendfile(2) call */

struct sop {
	struct xp_list node; /* on `waiting` while linked */
	bool linked;
	bool write; /* waits for writability */
	enum sop_kind kind;
	xp_loop *loop;
	int fd;
	xp_future *fut;	    /* our reference */
	unsigned char *buf; /* recv: the caller's; send: our copy */
	size_t len, done;
	xp_sockaddr *from; /* recvfrom, accept */
	struct sockaddr_storage to;
	socklen_t tolen;
	int file_fd; /* sendfile */
	off_t offset;
	size_t count;	       /* 0: to end of file */
	bool fallback;	       /* sendfile: read + send */
	bool unseekable;       /* sendfile copy: the file is a pipe */
	size_t fb_len, fb_off; /* fallback chunk in buf */
};

/* Waiting operations of every loop.  Loops may run in different threads,
 * hence the lock; it is never held across a callback into user code. */
static struct xp_list waiting = {&waiting, &waiting};
static pthread_mutex_t waiting_lock = PTHREAD_MUTEX_INITIALIZER;

static int sop_ready(void *arg);

/* ---- completion ------------------------------------------------------ */

static void sop_free(struct sop *op)
{
	xp_future_release(op->fut);
	if (op->kind != SOP_RECV && op->kind != SOP_RECVFROM)
		free(op->buf);
	free(op);
}

/* First waiting operation of (loop, fd, direction), lock held. */
static struct sop *head_locked(xp_loop *loop, int fd, bool write)
{
	for (struct xp_list *n = waiting.next; n != &waiting; n = n->next) {
		struct sop *op = xp_list_entry(n, struct sop, node);

		if (op->loop == loop && op->fd == fd && op->write == write)
			return op;
	}
	return NULL;
}

/* Point the fd's reader or writer at the head of its queue, or remove it. */
static void sop_rearm(xp_loop *loop, int fd, bool write)
{
	struct sop *next;

	pthread_mutex_lock(&waiting_lock);
	next = head_locked(loop, fd, write);
	pthread_mutex_unlock(&waiting_lock);
	if (write)
		next ? xp_add_writer(loop, fd, sop_ready, next) : xp_remove_writer(loop, fd);
	else
		next ? xp_add_reader(loop, fd, sop_ready, next) : xp_remove_reader(loop, fd);
}

/* Leave the queue; the op itself is freed by its done callback. */
static void sop_unlink(struct sop *op)
{
	bool was_head;

	pthread_mutex_lock(&waiting_lock);
	if (!op->linked) {
		pthread_mutex_unlock(&waiting_lock);
		return;
	}
	was_head = head_locked(op->loop, op->fd, op->write) == op;
	xp_list_remove(&op->node);
	op->linked = false;
	pthread_mutex_unlock(&waiting_lock);
	if (was_head)
		sop_rearm(op->loop, op->fd, op->write);
}

static void sop_done_cb(xp_future *fut, void *arg)
{
	struct sop *op = arg;

	sop_unlink(op); /* cancelled while waiting */
	sop_free(op);
}

/* ---- the syscalls ---------------------------------------------------- */

/* Each returns 1 when the operation finished (result or error set on the
 * future), 0 to wait for readiness. */

static int sop_finish(struct sop *op, long long n)
{
	xp_future_set_result_num(op->fut, n);
	return 1;
}

static int sop_fail(struct sop *op, int err)
{
	xp_future_set_error(op->fut, err);
	return 1;
}

static bool would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

static int do_recv(struct sop *op)
{
	struct sockaddr *sa = op->from ? &op->from->u.sa : NULL;
	socklen_t len = sizeof(struct sockaddr_storage);
	ssize_t r;

	do
		r = recvfrom(op->fd, op->buf, op->len, 0, sa, sa ? &len : NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return would_block(errno) ? 0 : sop_fail(op, -errno);
	if (op->from)
		op->from->len = len;
	return sop_finish(op, r);
}

static int do_sendall(struct sop *op)
{
	while (op->done < op->len) {
		ssize_t r = send(op->fd, op->buf + op->done, op->len - op->done, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return would_block(errno) ? 0 : sop_fail(op, -errno);
		}
		op->done += (size_t)r;
	}
	return sop_finish(op, (long long)op->len);
}

static int do_sendto(struct sop *op)
{
	ssize_t r;

	do
		r = sendto(op->fd, op->buf, op->len, MSG_NOSIGNAL,
			   op->tolen ? (struct sockaddr *)&op->to : NULL, op->tolen);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return would_block(errno) ? 0 : sop_fail(op, -errno);
	return sop_finish(op, r);
}

/* Called when the socket turned writable after EINPROGRESS. */
static int do_connect_done(struct sop *op)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return sop_fail(op, -errno);
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	return err ? sop_fail(op, -err) : sop_finish(op, 0);
}

static int do_accept(struct sop *op)
{
	struct sockaddr *sa = op->from ? &op->from->u.sa : NULL;
	socklen_t len = sizeof(struct sockaddr_storage);
	int fd;

	do
		fd = accept4(op->fd, sa, sa ? &len : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return would_block(errno) ? 0 : sop_fail(op, -errno);
	if (op->from)
		op->from->len = len;
	return sop_finish(op, fd);
}

static size_t sf_want(const struct sop *op, size_t cap)
{
	size_t left = op->count ? op->count - op->done : cap;

	return left < cap ? left : cap;
}

/* Like asyncio, leave the file position after the bytes sent. */
static int sf_finish(struct sop *op, int err)
{
	if (op->done)
		lseek(op->file_fd, op->offset + (off_t)op->done, SEEK_SET);
	return err ? sop_fail(op, err) : sop_finish(op, (long long)op->done);
}

/* read + send, for files sendfile(2) refuses (pipes...) */
static int sf_fallback(struct sop *op)
{
	for (;;) {
		ssize_t r;

		if (op->fb_off == op->fb_len) {
			size_t want = sf_want(op, XP_SENDFILE_COPY_CHUNK);

			if (!want)
				return sf_finish(op, 0);
			off_t at = op->offset + (off_t)op->done;

			r = xp__sendfile_read(op->file_fd, op->buf, want, &at, &op->unseekable);
			if (r < 0)
				return sf_finish(op, (int)r);
			if (r == 0)
				return sf_finish(op, 0);
			op->fb_len = (size_t)r;
			op->fb_off = 0;
		}
		r = send(op->fd, op->buf + op->fb_off, op->fb_len - op->fb_off, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return would_block(errno) ? 0 : sf_finish(op, -errno);
		}
		op->fb_off += (size_t)r;
		op->done += (size_t)r;
	}
}

static int sf_start_fallback(struct sop *op)
{
	op->fallback = true;
	op->buf = malloc(XP_SENDFILE_COPY_CHUNK);
	if (!op->buf)
		return sf_finish(op, -ENOMEM);
	return sf_fallback(op);
}

static int do_sendfile(struct sop *op)
{
	if (op->fallback)
		return sf_fallback(op);
	for (;;) {
		size_t want = sf_want(op, SENDFILE_CHUNK);
		off_t off = op->offset + (off_t)op->done;
		ssize_t r;

		if (!want)
			return sf_finish(op, 0);
		r = sendfile(op->fd, op->file_fd, &off, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (would_block(errno))
				return 0;
			if (xp__sendfile_falls_back(errno, op->done))
				return sf_start_fallback(op);
			return sf_finish(op, -errno);
		}
		if (r == 0)
			return sf_finish(op, 0);
		op->done += (size_t)r;
	}
}

static int sop_try(struct sop *op)
{
	switch (op->kind) {
	case SOP_RECV:
	case SOP_RECVFROM:
		return do_recv(op);
	case SOP_SENDALL:
		return do_sendall(op);
	case SOP_SENDTO:
		return do_sendto(op);
	case SOP_CONNECT:
		return do_connect_done(op);
	case SOP_ACCEPT:
		return do_accept(op);
	case SOP_SENDFILE:
		return do_sendfile(op);
	}
	return sop_fail(op, -EINVAL);
}

/* ---- waiting --------------------------------------------------------- */

/* The reader or writer callback of an fd: serve the head of its queue. */
static int sop_ready(void *arg)
{
	struct sop *op = arg;

	/* A cancelled head whose done callback has not run yet. */
	if (xp_future_done(op->fut) || sop_try(op))
		sop_unlink(op);
	return 0;
}

static int sop_wait(struct sop *op)
{
	bool first;
	int err;

	pthread_mutex_lock(&waiting_lock);
	first = !head_locked(op->loop, op->fd, op->write);
	xp_list_insert_tail(&waiting, &op->node);
	op->linked = true;
	pthread_mutex_unlock(&waiting_lock);
	if (!first)
		return 0;
	err = op->write ? xp_add_writer(op->loop, op->fd, sop_ready, op)
			: xp_add_reader(op->loop, op->fd, sop_ready, op);
	if (err < 0) {
		sop_unlink(op);
		xp_future_set_error(op->fut, err);
	}
	return 0;
}

/* Try now; wait only if the syscall would block.  Operations already
 * waiting on the fd in the same direction keep their turn.  Returns the
 * caller's reference to the future. */
static xp_future *sop_start(struct sop *op)
{
	xp_future *fut = xp_future_retain(op->fut);
	bool queued;

	pthread_mutex_lock(&waiting_lock);
	queued = head_locked(op->loop, op->fd, op->write) != NULL;
	pthread_mutex_unlock(&waiting_lock);
	if (queued || !sop_try(op))
		sop_wait(op);
	xp_future_add_done_callback(fut, sop_done_cb, op);
	return fut;
}

static int check_sock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return fl & O_NONBLOCK ? 0 : -EINVAL; /* it must not block the loop */
}

/* A new operation, or NULL with errno set; a future failing with the
 * argument error when the socket is unusable. */
static struct sop *sop_new(xp_loop *loop, int fd, enum sop_kind kind, bool write,
			   xp_future **failed)
{
	xp_future *fut;
	struct sop *op;
	int err;

	*failed = NULL;
	fut = xp__future_begin(loop, true);
	if (!fut)
		return NULL;
	err = check_sock(fd);
	op = err ? NULL : calloc(1, sizeof(*op));
	if (!op) {
		xp_future_set_error(fut, err ? err : -ENOMEM);
		*failed = fut;
		return NULL;
	}
	xp_list_init(&op->node);
	op->loop = loop;
	op->fd = fd;
	op->kind = kind;
	op->write = write;
	op->fut = fut; /* the op's reference; sop_start makes the caller's */
	return op;
}

/* ---- public ---------------------------------------------------------- */

static xp_future *sock_recv(xp_loop *loop, int sock, void *buf, size_t len, xp_sockaddr *from,
			    enum sop_kind kind)
{
	xp_future *failed;
	struct sop *op = sop_new(loop, sock, kind, false, &failed);

	if (!op)
		return failed;
	op->buf = buf;
	op->len = len;
	op->from = from;
	return sop_start(op);
}

xp_future *xp_sock_recv(xp_loop *loop, int sock, void *buf, size_t len)
{
	return sock_recv(loop, sock, buf, len, NULL, SOP_RECV);
}

xp_future *xp_sock_recv_into(xp_loop *loop, int sock, void *buf, size_t len)
{
	return sock_recv(loop, sock, buf, len, NULL, SOP_RECV);
}

xp_future *xp_sock_recvfrom(xp_loop *loop, int sock, void *buf, size_t len, xp_sockaddr *from)
{
	return sock_recv(loop, sock, buf, len, from, SOP_RECVFROM);
}

xp_future *xp_sock_recvfrom_into(xp_loop *loop, int sock, void *buf, size_t len, xp_sockaddr *from)
{
	return sock_recv(loop, sock, buf, len, from, SOP_RECVFROM);
}

/* Copy the caller's bytes: the send variants may complete later. */
static xp_future *sock_send(xp_loop *loop, int sock, const void *data, size_t len,
			    const struct sockaddr *to, socklen_t tolen, enum sop_kind kind)
{
	xp_future *failed;
	struct sop *op;

	if (to && (tolen > sizeof(struct sockaddr_storage) || tolen < sizeof(sa_family_t))) {
		errno = EINVAL;
		return NULL;
	}
	op = sop_new(loop, sock, kind, true, &failed);
	if (!op)
		return failed;
	op->buf = malloc(len ? len : 1);
	if (!op->buf) {
		failed = op->fut;
		free(op);
		xp_future_set_error(failed, -ENOMEM);
		return failed;
	}
	if (len)
		memcpy(op->buf, data, len);
	op->len = len;
	if (to) {
		memcpy(&op->to, to, tolen);
		op->tolen = tolen;
	}
	return sop_start(op);
}

xp_future *xp_sock_sendall(xp_loop *loop, int sock, const void *data, size_t len)
{
	return sock_send(loop, sock, data, len, NULL, 0, SOP_SENDALL);
}

xp_future *xp_sock_sendto(xp_loop *loop, int sock, const void *data, size_t len,
			  const struct sockaddr *to, socklen_t tolen)
{
	return sock_send(loop, sock, data, len, to, tolen, SOP_SENDTO);
}

xp_future *xp_sock_connect(xp_loop *loop, int sock, const struct sockaddr *addr, socklen_t len)
{
	xp_future *failed;
	struct sop *op = sop_new(loop, sock, SOP_CONNECT, true, &failed);
	xp_future *fut;

	if (!op)
		return failed;
	fut = xp_future_retain(op->fut);
	if (connect(sock, addr, len) == 0)
		sop_finish(op, 0);
	else if (errno == EINPROGRESS || errno == EINTR || errno == EAGAIN)
		sop_wait(op); /* EINTR too: the connect goes on in the background */
	else
		sop_fail(op, -errno);
	xp_future_add_done_callback(fut, sop_done_cb, op);
	return fut;
}

xp_future *xp_sock_accept(xp_loop *loop, int sock, xp_sockaddr *peer)
{
	xp_future *failed;
	struct sop *op = sop_new(loop, sock, SOP_ACCEPT, false, &failed);

	if (!op)
		return failed;
	op->from = peer;
	return sop_start(op);
}

xp_future *xp_sock_sendfile(xp_loop *loop, int sock, int file_fd, off_t offset, size_t count)
{
	xp_future *failed;
	struct sop *op;

	if (offset < 0) {
		errno = EINVAL;
		return NULL;
	}
	op = sop_new(loop, sock, SOP_SENDFILE, true, &failed);
	if (!op)
		return failed;
	op->file_fd = file_fd;
	op->offset = offset;
	op->count = count;
	return sop_start(op);
}
