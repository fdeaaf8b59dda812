// SPDX-License-Identifier: MIT
/*
 * stream.c - the transport for connected stream sockets (TCP and Unix).
 *
 * asyncio's _SelectorSocketTransport in C.  Writes are tried at once when
 * nothing is queued; what the kernel does not take goes to the write buffer
 * and is flushed on writability with one sendmsg over many chunks.  Reads
 * go through the loop's shared buffer (Protocol) or straight into the
 * protocol's memory (BufferedProtocol).  The state machine (closing,
 * connection_lost exactly once, flow-control alternation) is transport.c's;
 * this file supplies the socket side of it.
 *
 * Also the stream side of loop.sendfile() (xp__stream_sendfile, called by
 * sendfile.c): sendfile(2) when the write buffer is empty, otherwise a copy
 * with the watermarks respected.  Writes the protocol makes meanwhile are
 * held back and queued after the file.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads per wakeup while each one fills the buffer: enough for throughput,
 * few enough that one busy socket does not starve the others. */
#define STREAM_MAX_READS 4
/* Bytes per sendfile(2) call. */
#define SF_CHUNK (1u << 20)

struct sendfile_op {
	xp_future *fut;
	int file_fd;
	off_t start;  /* offset given by the caller */
	off_t offset; /* next byte of the file to send */
	size_t count; /* 0: until end of file */
	size_t sent;
	bool native;	     /* sendfile(2), else pread + write */
	bool waiting;	     /* fallback: buffer over high, waiting to drain to low */
	bool unseekable;     /* fallback on a pipe: read() from where it is */
	struct xp_wbuf held; /* protocol writes made meanwhile, sent after */
};

struct stream {
	xp_transport base;
	struct xp_io io;
	int fd;
	struct xp_wbuf wbuf;
	xp_sockaddr peer, sock;
	bool have_peer, have_sock;
	bool sock_known; /* sockname looked up (lazily: most never ask) */
	bool eof_called; /* write_eof() was called: writes now fail */
	bool shut;	 /* shutdown(SHUT_WR) done */
	struct sendfile_op *sf;
	/* splice forwarding (xp__stream_splice): what this stream reads goes
	 * kernel-side through splice_to's pipe into splice_to's socket. */
	struct stream *splice_to, *splice_from;
	void (*spliced)(void *arg, size_t n);
	void *spliced_arg;
	bool splice_blocked; /* reading stopped: splice_to's pipe is full */
	/* As a splice destination: bytes in our pipe, waiting for our fd;
	 * they count as write buffer. */
	int pipe_rd, pipe_wr;
	size_t piped, pipe_cap;
	bool sigpipe_ignored; /* checked when splicing starts */
};

static const struct xp_transport_vt stream_vt;

static struct stream *to_stream(xp_transport *t)
{
	return XP_CONTAINER_OF(t, struct stream, base);
}

static bool is_conn_error(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN || err == -ETIMEDOUT ||
	       err == -ECONNABORTED || err == -EHOSTUNREACH || err == -ENETUNREACH;
}

/* ---- sending ------------------------------------------------------- */

/* One non-blocking sendmsg; bytes sent, or -errno (-EAGAIN included). */
static ssize_t send_iov(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)(iovcnt > IOV_MAX ? IOV_MAX : iovcnt)};
	ssize_t n;

	do
		n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static void sf_finish(struct stream *s, int err);
static void sf_fallback_run(struct stream *s);

/* The queue is empty: whatever was waiting for that happens now, in
 * asyncio's order (lost if closing, else the deferred shutdown). */
static void stream_drained(struct stream *s)
{
	xp_transport *t = &s->base;

	xp__io_stop(t->loop, &s->io, XP_IO_WRITE);
	if (s->sf)
		return;
	if (t->closing) {
		xp__transport_lost(t, 0);
	} else if (s->eof_called && !s->shut) {
		s->shut = true;
		shutdown(s->fd, SHUT_WR);
	}
}

static bool pipe_flush(struct stream *s);

/* Send what is queued: one sendmsg over up to IOV_MAX chunks, then what
 * waits in the splice pipe. */
static void stream_flush(struct stream *s)
{
	xp_transport *t = &s->base;
	struct iovec iov[IOV_MAX];
	int cnt = xp__wbuf_peek(&s->wbuf, iov, IOV_MAX);
	ssize_t n = cnt ? send_iov(s->fd, iov, cnt) : 0;

	if (!cnt && s->piped) {
		if (pipe_flush(s) && !t->lost_scheduled && !s->piped)
			stream_drained(s);
		return;
	}
	if (n == -EAGAIN)
		return;
	if (n < 0) {
		xp__transport_fatal(t, (int)n, NULL);
		return;
	}
	xp__wbuf_consume(&s->wbuf, (size_t)n);
	xp__fc_check_resume(t);
	if (t->lost_scheduled)
		return;
	if (s->sf && s->sf->waiting && xp__wbuf_size(&s->wbuf) <= t->low) {
		sf_fallback_run(s);
		if (t->lost_scheduled)
			return;
	}
	if (!xp__wbuf_size(&s->wbuf) && (!s->piped || pipe_flush(s)) && !t->lost_scheduled &&
	    !s->piped)
		stream_drained(s);
}

/* Send now if nothing is queued, queue the rest; the core of write(). */
static int stream_send_or_queue(struct stream *s, const struct iovec *iov, int iovcnt, size_t len)
{
	xp_transport *t = &s->base;
	ssize_t n = 0;

	if (!xp__wbuf_size(&s->wbuf) && !s->piped) {
		n = send_iov(s->fd, iov, iovcnt);
		if (n == -EAGAIN) {
			n = 0;
		} else if (n < 0) {
			xp__transport_fatal(t, (int)n, NULL);
			return 0;
		}
		if ((size_t)n == len)
			return 0;
	}
	if (xp__wbuf_appendv(&s->wbuf, iov, iovcnt, (size_t)n) < 0) {
		/* Part may be sent already: the stream is corrupt now. */
		xp__transport_fatal(t, -ENOMEM, "Fatal error: out of memory buffering a write");
		return -ENOMEM;
	}
	xp__io_start(t->loop, &s->io, XP_IO_WRITE);
	xp__fc_check_pause(t);
	return 0;
}

static int stream_write(xp_transport *t, const struct iovec *iov, int iovcnt, size_t len)
{
	struct stream *s = to_stream(t);

	if (s->eof_called)
		return XP_ESTATE; /* XP_E* codes are negative already */
	for (int i = 0; i < iovcnt; i++)
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL; /* asyncio's TypeError: nothing changes */
	if (t->closing || t->lost_scheduled)
		return 0;
	if (s->sf) {
		/* Keep the file's bytes contiguous on the wire. */
		if (xp__wbuf_appendv(&s->sf->held, iov, iovcnt, 0) < 0)
			return -ENOMEM;
		xp__fc_check_pause(t);
		return 0;
	}
	return stream_send_or_queue(s, iov, iovcnt, len);
}

static int stream_write_eof(xp_transport *t)
{
	struct stream *s = to_stream(t);

	if (t->closing || s->eof_called)
		return 0;
	s->eof_called = true;
	if (!xp__wbuf_size(&s->wbuf) && !s->piped && !s->sf) {
		s->shut = true;
		if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
	}
	return 0;
}

static int stream_can_write_eof(xp_transport *t)
{
	return 1;
}

static size_t stream_buffer_size(const xp_transport *t)
{
	const struct stream *s = XP_CONTAINER_OF(t, const struct stream, base);

	return xp__wbuf_size(&s->wbuf) + s->piped + (s->sf ? xp__wbuf_size(&s->sf->held) : 0);
}

/* ---- splice forwarding ---------------------------------------------- */

#define SPLICE_PIPE_SIZE (1024 * 1024)

static bool want_read(const xp_transport *t);

static int pipe_open(struct stream *d)
{
	int p[2];

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	d->pipe_rd = p[0];
	d->pipe_wr = p[1];
	/* A bigger pipe means fewer wake-ups per MiB; the default is kept
	 * if the system caps it lower. */
	int cap = fcntl(p[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
	if (cap < 0)
		cap = fcntl(p[1], F_GETPIPE_SZ);
	d->pipe_cap = cap > 0 ? (size_t)cap : 65536;
	return 0;
}

static void pipe_drop(struct stream *d)
{
	if (d->pipe_rd >= 0) {
		close(d->pipe_rd);
		close(d->pipe_wr);
	}
	d->pipe_rd = d->pipe_wr = -1;
	d->piped = 0;
}

/* The source stopped because our pipe was full: there is room again. */
static void pipe_unblock_source(struct stream *d)
{
	struct stream *src = d->splice_from;

	if (!src || !src->splice_blocked || d->piped >= d->pipe_cap)
		return;
	src->splice_blocked = false;
	if (want_read(&src->base))
		xp__io_start(src->base.loop, &src->io, XP_IO_READ);
}

/* splice(2) into a socket has no MSG_NOSIGNAL.  Unless SIGPIPE is
 * ignored (the xport tool ignores it), block it around the calls and
 * consume one that a reset peer raised, as pipe.c does for writev. */
struct sigpipe_guard {
	sigset_t old;
	bool blocked;
};

static void sigpipe_block(struct stream *d, struct sigpipe_guard *g)
{
	sigset_t set;

	g->blocked = !d->sigpipe_ignored;
	if (!g->blocked)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g, bool epipe)
{
	sigset_t set;
	struct timespec zero = {0, 0};
	int saved = errno;

	if (!g->blocked)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (epipe && !sigismember(&g->old, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

/* Move piped bytes into our socket.  False when the stream failed. */
static bool pipe_flush(struct stream *d)
{
	xp_transport *t = &d->base;
	struct sigpipe_guard g;
	bool epipe = false;

	sigpipe_block(d, &g);
	while (d->piped) {
		ssize_t n = splice(d->pipe_rd, NULL, d->fd, NULL, d->piped,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			xp__io_start(t->loop, &d->io, XP_IO_WRITE);
			break;
		}
		if (n <= 0) {
			int err = n < 0 ? -errno : -EPIPE;
			sigpipe_restore(&g, err == -EPIPE);
			xp__transport_fatal(t, err, NULL);
			return false;
		}
		d->piped -= (size_t)n;
	}
	sigpipe_restore(&g, epipe);
	pipe_unblock_source(d);
	xp__fc_check_resume(t);
	return !t->lost_scheduled;
}

/* One splice from our socket into the destination's pipe, then on to its
 * socket.  Returns what recv() would: bytes, 0 at EOF, or -errno. */
static ssize_t splice_in(struct stream *s, size_t *want)
{
	struct stream *d = s->splice_to;
	xp_transport *dt = &d->base;
	ssize_t n;

	if (d->pipe_rd < 0 && pipe_open(d) < 0)
		return -ENOMEM;
	*want = d->pipe_cap - d->piped;
	if (*want == 0) {
		/* Full: wait for the destination to drain (pipe_flush). */
		s->splice_blocked = true;
		xp__io_stop(s->base.loop, &s->io, XP_IO_READ);
		return -EAGAIN;
	}
	/* One read size at a time, as recv() would: the destination's high
	 * watermark then pauses us within one chunk, not one pipe. */
	if (s->base.read_size && s->base.read_size < *want)
		*want = s->base.read_size;
	do
		n = splice(s->fd, NULL, d->pipe_wr, NULL, *want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	d->piped += (size_t)n;
	if (s->spliced)
		s->spliced(s->spliced_arg, (size_t)n);
	if (!xp__wbuf_size(&d->wbuf))
		pipe_flush(d);
	if (!dt->lost_scheduled)
		xp__fc_check_pause(dt);
	return n;
}

static void splice_unlink(struct stream *s)
{
	if (s->splice_to) {
		s->splice_to->splice_from = NULL;
		s->splice_to = NULL;
	}
	if (s->splice_from) {
		struct stream *src = s->splice_from;
		src->splice_to = NULL;
		s->splice_from = NULL;
		if (src->splice_blocked) {
			src->splice_blocked = false;
			if (want_read(&src->base))
				xp__io_start(src->base.loop, &src->io, XP_IO_READ);
		}
	}
}

static bool is_byte_stream(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

int xp__stream_splice(xp_transport *src, xp_transport *dst, void (*cb)(void *arg, size_t n),
		      void *arg)
{
	if (src->vt != &stream_vt || dst->vt != &stream_vt || src == dst)
		return -ENOTSUP;
	struct stream *s = to_stream(src), *d = to_stream(dst);
	/* Only byte streams: splicing a SEQPACKET socket through a pipe could
	 * cut its records. */
	if (!is_byte_stream(s->fd) || !is_byte_stream(d->fd))
		return -ENOTSUP;
	if (src->lost_scheduled || dst->closing || d->eof_called || s->splice_to ||
	    d->splice_from || d->sf)
		return -EBUSY;
	struct sigaction sa;
	d->sigpipe_ignored = sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
	s->splice_to = d;
	d->splice_from = s;
	s->spliced = cb;
	s->spliced_arg = arg;
	return 0;
}

/* ---- reading ------------------------------------------------------- */

static bool want_read(const xp_transport *t)
{
	const struct stream *s = XP_CONTAINER_OF(t, const struct stream, base);

	return t->reading && !t->closing && !t->eof && !t->lost_scheduled && !s->splice_blocked;
}

static void stream_got_eof(struct stream *s)
{
	xp_transport *t = &s->base;
	int r = xp__proto_eof(t);

	if (r > 0)
		xp__io_stop(t->loop, &s->io, XP_IO_READ);
	else if (r == 0)
		xp_transport_close(t);
}

/* A read failed: a reset is the peer's doing (connection_lost(ECONNRESET),
 * no eof_received); anything else force-closes with the error too.  Either
 * way no exception-handler report: asyncio sends OSErrors to the debug log
 * only. */
static void stream_read_error(struct stream *s, int err)
{
	xp__transport_fatal(&s->base, err, NULL);
}

/* Returns true when another read may be worth trying. */
static bool stream_read_once(struct stream *s)
{
	xp_transport *t = &s->base;
	ssize_t n;
	size_t want;

	if (s->splice_to) {
		n = splice_in(s, &want);
		if (n == -EAGAIN && s->splice_blocked)
			return false;
	} else if (xp__proto_is_buffered(t)) {
		n = xp__proto_read_into(t, s->fd);
		want = 0; /* unknown: one read per wakeup is enough */
	} else {
		size_t cap;
		void *buf = xp__loop_read_buffer(t->loop, &cap);

		want = t->read_size && t->read_size < cap ? t->read_size : cap;
		do
			n = recv(s->fd, buf, want, 0);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		else if (n > 0 && xp__proto_data(t, buf, (size_t)n) < 0)
			return false;
	}
	if (t->lost_scheduled)
		return false;
	if (n == -EAGAIN || n == -EINTR)
		return false; /* level-triggered: the next poll comes back */
	if (n == 0) {
		stream_got_eof(s);
		return false;
	}
	if (n < 0) {
		stream_read_error(s, (int)n);
		return false;
	}
	return want && (size_t)n == want;
}

static void stream_readable(struct stream *s)
{
	for (int i = 0; i < STREAM_MAX_READS && want_read(&s->base); i++)
		if (!stream_read_once(s))
			break;
}

/* ---- sendfile ------------------------------------------------------ */

static void sf_writable(struct stream *s);

/*
 * An error or hang-up while neither reading nor writing (paused, or past
 * EOF with nothing queued).  An error is the end: the peer reset, or the
 * route died.  A hang-up alone is an orderly end of both directions (our
 * shutdown and the peer's, or a Unix peer that closed): unread bytes may
 * still wait in the socket, so it is left for the next read, and the
 * interest is dropped until then, as level-triggered polling would report
 * it on every iteration.
 */
static void stream_idle_event(struct stream *s, unsigned revents)
{
	xp_transport *t = &s->base;
	int err = 0;
	socklen_t len = sizeof(err);

	if ((revents & XP_IO_ERR) && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
	    err) {
		stream_read_error(s, -err);
		return;
	}
	xp__io_stop(t->loop, &s->io, XP_IO_WATCH);
}

static void stream_io_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct stream *s = XP_CONTAINER_OF(w, struct stream, io);
	xp_transport *t = &s->base;
	unsigned wanted = w->events;

	if (!(wanted & XP_IO_RW)) {
		stream_idle_event(s, revents);
		return;
	}

	/* ERR/HUP come with READ or WRITE; the syscall then reports them. */
	if ((revents & (XP_IO_WRITE | XP_IO_ERR | XP_IO_HUP)) && (wanted & XP_IO_WRITE)) {
		if (s->sf && s->sf->native)
			sf_writable(s);
		else
			stream_flush(s);
	}
	if (t->lost_scheduled)
		return;
	if ((revents & (XP_IO_READ | XP_IO_ERR | XP_IO_HUP)) && (wanted & XP_IO_READ) &&
	    want_read(t))
		stream_readable(s);
}

static void sf_free(struct sendfile_op *op)
{
	xp__wbuf_clear(&op->held);
	xp_future_release(op->fut);
	free(op);
}

/* Complete the operation and queue the held writes behind the file data. */
static void sf_finish(struct stream *s, int err)
{
	struct sendfile_op *op = s->sf;
	xp_transport *t = &s->base;

	s->sf = NULL;
	/* asyncio leaves the file position after the last byte sent. */
	if (op->sent && !op->unseekable)
		lseek(op->file_fd, op->start + (off_t)op->sent, SEEK_SET);
	if (err)
		xp_future_set_error(op->fut, err);
	else
		xp_future_set_result_num(op->fut, (long long)op->sent);
	if (!t->lost_scheduled) {
		xp__wbuf_move(&s->wbuf, &op->held);
		if (xp__wbuf_size(&s->wbuf))
			xp__io_start(t->loop, &s->io, XP_IO_WRITE);
		else
			stream_drained(s);
	}
	sf_free(op);
}

static size_t sf_want(const struct sendfile_op *op, size_t chunk)
{
	if (op->count && op->count - op->sent < chunk)
		return op->count - op->sent;
	return chunk;
}

static bool sf_complete(const struct sendfile_op *op)
{
	return op->count && op->sent >= op->count;
}

/* Read the file and write it through the transport until it is done or
 * the buffer goes over the high-water mark. */
static void sf_fallback_run(struct stream *s)
{
	xp_transport *t = &s->base;
	struct sendfile_op *op = s->sf;
	size_t cap;
	void *buf = xp__loop_read_buffer(t->loop, &cap);

	op->waiting = false;
	while (!sf_complete(op)) {
		if (xp__wbuf_size(&s->wbuf) > t->high) {
			op->waiting = true;
			return;
		}
		ssize_t n = xp__sendfile_read(op->file_fd, buf, sf_want(op, XP_SENDFILE_COPY_CHUNK),
					      &op->offset, &op->unseekable);
		if (n < 0) {
			sf_finish(s, (int)n);
			return;
		}
		if (n == 0)
			break;
		op->sent += (size_t)n;
		stream_send_or_queue(s, &(struct iovec){buf, (size_t)n}, 1, (size_t)n);
		if (t->lost_scheduled)
			return; /* force_close failed the future */
	}
	sf_finish(s, 0);
}

/* sendfile(2) until the socket is full, the file ends or count is sent. */
static void sf_writable(struct stream *s)
{
	xp_transport *t = &s->base;
	struct sendfile_op *op = s->sf;

	while (!sf_complete(op)) {
		ssize_t n = sendfile(s->fd, op->file_fd, &op->offset, sf_want(op, SF_CHUNK));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			xp__io_start(t->loop, &s->io, XP_IO_WRITE);
			return;
		}
		if (n < 0 && xp__sendfile_falls_back(errno, op->sent)) {
			/* Not a file sendfile(2) can read: copy it instead. */
			op->native = false;
			sf_fallback_run(s);
			return;
		}
		if (n < 0) {
			int err = -errno;
			sf_finish(s, err);
			if (is_conn_error(err))
				xp__transport_fatal(t, err, NULL);
			return;
		}
		if (n == 0)
			break;
		op->sent += (size_t)n;
	}
	sf_finish(s, 0);
}

int xp__stream_sendfile(xp_transport *t, int file_fd, off_t offset, size_t count, xp_future **out)
{
	struct stream *s;
	struct sendfile_op *op;

	if (t->vt != &stream_vt)
		return -ENOTSUP;
	s = to_stream(t);
	if (s->eof_called)
		return XP_ESTATE;
	if (s->sf)
		return -EBUSY;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->fut = xp_future_new(t->loop);
	if (!op->fut) {
		free(op);
		return -ENOMEM;
	}
	op->file_fd = file_fd;
	op->start = op->offset = offset;
	op->count = count;
	op->native = !xp__wbuf_size(&s->wbuf);
	xp__wbuf_init(&op->held);
	s->sf = op;
	*out = xp_future_retain(op->fut);
	if (op->native)
		sf_writable(s);
	else
		sf_fallback_run(s);
	return 0;
}

/* ---- lifecycle ----------------------------------------------------- */

/* Paused means "not reading", never "not watching": the socket stays
 * registered for errors (XP_IO_WATCH) until the transport is lost. */
static void stream_made(xp_transport *t)
{
	struct stream *s = to_stream(t);

	xp__io_start(t->loop, &s->io, want_read(t) ? XP_IO_READ | XP_IO_WATCH : XP_IO_WATCH);
}

static void stream_update_reading(xp_transport *t)
{
	struct stream *s = to_stream(t);

	if (t->lost_scheduled)
		return;
	if (want_read(t))
		xp__io_start(t->loop, &s->io, XP_IO_READ | XP_IO_WATCH);
	else
		xp__io_stop(t->loop, &s->io, XP_IO_READ);
}

static void stream_close(xp_transport *t)
{
	struct stream *s = to_stream(t);

	xp__io_stop(t->loop, &s->io, XP_IO_READ);
	if (!xp__wbuf_size(&s->wbuf) && !s->piped && !s->sf)
		xp__transport_lost(t, 0);
	/* else stream_drained() finishes the close once the queue is sent */
}

static void stream_force_close(xp_transport *t, int err)
{
	struct stream *s = to_stream(t);

	if (t->lost_scheduled)
		return;
	xp__wbuf_clear(&s->wbuf);
	pipe_drop(s);
	splice_unlink(s);
	xp__io_stop(t->loop, &s->io, XP_IO_READ | XP_IO_WRITE | XP_IO_WATCH);
	if (s->sf) {
		struct sendfile_op *op = s->sf;
		s->sf = NULL;
		xp_future_set_error(op->fut, err ? err : -ECONNABORTED);
		sf_free(op);
	}
	xp__transport_lost(t, err);
}

static const void *stream_extra(xp_transport *t, const char *key, const void *dflt)
{
	struct stream *s = to_stream(t);

	if (!strcmp(key, "peername"))
		return s->have_peer ? &s->peer : dflt;
	if (!strcmp(key, "sockname")) {
		if (!s->sock_known) {
			s->have_sock = xp__sockaddr_from_fd(s->fd, false, &s->sock) == 0;
			s->sock_known = true;
		}
		return s->have_sock ? &s->sock : dflt;
	}
	if (!strcmp(key, "socket"))
		return &s->fd;
	return dflt;
}

static void stream_destroy(xp_transport *t)
{
	struct stream *s = to_stream(t);

	xp__io_close(t->loop, &s->io);
	close(s->fd);
	s->fd = -1;
	xp__wbuf_clear(&s->wbuf);
	pipe_drop(s);
	splice_unlink(s);
	if (s->sf) {
		xp_future_set_error(s->sf->fut, -ECONNABORTED);
		sf_free(s->sf);
		s->sf = NULL;
	}
}

static const struct xp_transport_vt stream_vt = {
    .kind = XP_TRANSPORT_STREAM,
    .name = "stream",
    .made = stream_made,
    .close = stream_close,
    .force_close = stream_force_close,
    .write = stream_write,
    .write_eof = stream_write_eof,
    .can_write_eof = stream_can_write_eof,
    .update_reading = stream_update_reading,
    .get_write_buffer_size = stream_buffer_size,
    .get_extra_info = stream_extra,
    .destroy = stream_destroy,
};

/* peer: the address accept4() gave (saves a getpeername), or NULL. */
static xp_transport *stream_create(xp_loop *loop, int fd, xp_protocol *p, const xp_sockaddr *peer)
{
	xp_transport *t;
	struct stream *s;
	int family;

	if (!peer) { /* accept4 made it non-blocking already */
		int r = xp__set_nonblock(fd, true);
		if (r < 0) {
			errno = -r;
			return NULL;
		}
	}
	t = xp__transport_new(sizeof(*s), &stream_vt, loop, p);
	if (!t)
		return NULL;
	s = to_stream(t);
	s->fd = fd;
	s->pipe_rd = s->pipe_wr = -1;
	xp__wbuf_init(&s->wbuf);
	xp__io_init(&s->io, fd, stream_io_cb);
	if (peer && peer->len) {
		s->peer = *peer;
		s->have_peer = true;
	} else {
		s->have_peer = xp__sockaddr_from_fd(fd, true, &s->peer) == 0;
	}
	/* sockname is looked up when asked for (stream_extra). */
	family = s->have_peer ? s->peer.u.sa.sa_family : AF_UNSPEC;
	if (family == AF_UNSPEC) {
		s->have_sock = xp__sockaddr_from_fd(fd, false, &s->sock) == 0;
		s->sock_known = true;
		family = s->have_sock ? s->sock.u.sa.sa_family : AF_UNSPEC;
	}
	if (family == AF_INET || family == AF_INET6) {
		int one = 1;
		/* Latency over coalescing, as asyncio does; may fail on a
		 * non-TCP inet stream, which is harmless. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return t;
}

xp_transport *xp__stream_new(xp_loop *loop, int fd, xp_protocol *p)
{
	return stream_create(loop, fd, p, NULL);
}

xp_transport *xp__stream_new_accepted(xp_loop *loop, int fd, xp_protocol *p,
				      const xp_sockaddr *peer)
{
	return stream_create(loop, fd, p, peer);
}
