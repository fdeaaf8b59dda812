// SPDX-License-Identifier: MIT
/*
 * pipe.c - read and write pipe transports (asyncio's _UnixReadPipeTransport
 * and _UnixWritePipeTransport).
 *
 * The descriptor may be a pipe, a FIFO, a socket, a terminal, a regular file
 * or /dev/null.  The loop treats descriptors epoll refuses as always ready,
 * so a regular file simply reads to its end and writes never wait.
 */
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#define PIPE_READS_PER_WAKEUP 4
#define PIPE_FLUSH_IOV 64

struct pipe {
	xp_transport base;
	struct xp_io io;
	int fd; /* -1 once closed */
	bool writer;
	bool watch_peer;    /* writer on a FIFO/socket: readable means reader gone */
	bool eof_pending;   /* write_eof/close: end once the buffer drained */
	bool started;	    /* vt->made ran: reading may begin */
	bool ended;	    /* io stopped, connection_lost queued */
	bool hup_seen;	    /* hung up while paused: unwatched until read */
	bool pty;	    /* a pseudo-terminal master (see xp__pipe_set_pty) */
	bool wrote;	    /* pty writer: some byte was accepted */
	unsigned char last; /* pty writer: the last byte accepted */
	struct xp_wbuf wbuf;
};

static struct pipe *to_pipe(const xp_transport *t)
{
	return XP_CONTAINER_OF(t, struct pipe, base);
}

/* ---- descriptor helpers --------------------------------------------- */

/*
 * writev() that never raises SIGPIPE: pipes have no MSG_NOSIGNAL.  Block the
 * signal for this thread; if the write provoked it, consume it before
 * unblocking.  When the caller already blocks SIGPIPE (e.g. a signalfd
 * handler for it) leave everything as it is.
 */
static ssize_t pipe_writev(int fd, const struct iovec *iov, int iovcnt)
{
	sigset_t set, old;
	ssize_t n;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	do
		n = writev(fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	err = errno;
	if (n < 0 && err == EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		/* Not pending before (it was unblocked), so it is ours. */
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* The io interest this pipe wants now. */
static unsigned pipe_wanted(const struct pipe *pp)
{
	const xp_transport *t = &pp->base;
	unsigned ev = 0;

	if (pp->ended)
		return 0;
	/* Paused is "not reading", never "not watching" (see pipe_idle_event). */
	if (pp->started && !pp->hup_seen)
		ev |= XP_IO_WATCH;
	if (pp->writer) {
		if (pp->watch_peer)
			ev |= XP_IO_READ;
		if (xp__wbuf_size(&pp->wbuf))
			ev |= XP_IO_WRITE;
	} else if (pp->started && t->reading && !t->closing && !t->eof) {
		ev |= XP_IO_READ;
	}
	return ev;
}

static void pipe_update_io(struct pipe *pp)
{
	unsigned want, drop;

	if (pp->fd < 0)
		return;
	want = pipe_wanted(pp);
	drop = (XP_IO_RW | XP_IO_WATCH) & ~want;
	if (drop & pp->io.events)
		xp__io_stop(pp->base.loop, &pp->io, drop);
	if (want & ~pp->io.events)
		xp__io_start(pp->base.loop, &pp->io, want);
}

static void pipe_close_fd(struct pipe *pp)
{
	if (pp->fd < 0)
		return;
	xp__io_close(pp->base.loop, &pp->io);
	close(pp->fd);
	pp->fd = -1;
}

/* ---- the end of a pipe ------------------------------------------------ */

/* Stop everything and queue connection_lost(err).  Idempotent. */
static void pipe_end(struct pipe *pp, int err)
{
	if (pp->ended)
		return;
	pp->ended = true;
	xp__wbuf_clear(&pp->wbuf);
	if (pp->fd >= 0)
		xp__io_stop(pp->base.loop, &pp->io, XP_IO_RW | XP_IO_WATCH);
	xp__transport_lost(&pp->base, err);
}

/* ---- reading ------------------------------------------------------------ */

static void rpipe_eof(struct pipe *pp)
{
	/* Whatever eof_received returns, a read pipe closes (sem 22). */
	if (xp__proto_eof(&pp->base) < 0)
		return; /* failed: already force-closed */
	pipe_end(pp, 0);
}

/* A pty master reads EIO once no slave descriptor is left: the child's
 * end of the terminal is gone, which is its EOF, not a failure. */
static bool rpipe_is_eof(const struct pipe *pp, ssize_t n)
{
	return n == 0 || (pp->pty && n == -EIO);
}

static bool rpipe_can_read(const struct pipe *pp)
{
	const xp_transport *t = &pp->base;

	return !pp->ended && pp->fd >= 0 && t->reading && !t->closing && !t->eof;
}

/* One read for a BufferedProtocol; true to go on reading. */
static bool rpipe_read_buffered(struct pipe *pp)
{
	ssize_t n = xp__proto_read_into(&pp->base, pp->fd);

	/* Sizes are the protocol's: one read per wakeup.  Once ended, n is a
	 * protocol failure's code, whatever its value. */
	if (n > 0)
		return false;
	if (rpipe_is_eof(pp, n) && !pp->ended)
		rpipe_eof(pp);
	else if (!would_block((int)-n) && !pp->ended)
		xp__transport_fatal(&pp->base, (int)n, NULL);
	return false;
}

/* One read for a plain Protocol; true if the buffer filled up. */
static bool rpipe_read_plain(struct pipe *pp)
{
	xp_transport *t = &pp->base;
	size_t len, want;
	void *buf = xp__loop_read_buffer(t->loop, &len);
	ssize_t n;

	want = t->read_size ? t->read_size : 65536;
	if (want > len)
		want = len;
	n = read(pp->fd, buf, want);
	if (rpipe_is_eof(pp, n < 0 ? -errno : n)) {
		rpipe_eof(pp);
		return false;
	}
	if (n < 0) {
		/* OS errors go to connection_lost only, as asyncio does. */
		if (!would_block(errno))
			xp__transport_fatal(t, -errno, NULL);
		return false;
	}
	if (xp__proto_data(t, buf, (size_t)n) < 0)
		return false;
	return (size_t)n == want;
}

static void rpipe_ready(struct pipe *pp)
{
	/* A few reads per wakeup while data keeps filling the buffer, so one
	 * busy pipe cannot starve the others. */
	for (int i = 0; i < PIPE_READS_PER_WAKEUP && rpipe_can_read(pp); i++) {
		bool more = xp__proto_is_buffered(&pp->base) ? rpipe_read_buffered(pp)
							     : rpipe_read_plain(pp);
		if (!more)
			break;
	}
}

/* ---- writing ------------------------------------------------------------ */

static void wpipe_flush(struct pipe *pp)
{
	struct iovec iov[PIPE_FLUSH_IOV];
	int cnt = xp__wbuf_peek(&pp->wbuf, iov, PIPE_FLUSH_IOV);
	ssize_t n;

	if (cnt <= 0)
		return;
	n = pipe_writev(pp->fd, iov, cnt);
	if (n < 0) {
		if (!would_block(errno))
			xp__transport_fatal(&pp->base, -errno, NULL);
		return;
	}
	xp__wbuf_consume(&pp->wbuf, (size_t)n);
	pipe_update_io(pp);
	/* resume_writing may write, close or abort: look again after it */
	xp__fc_check_resume(&pp->base);
	if (!pp->ended && pp->eof_pending && !xp__wbuf_size(&pp->wbuf))
		pipe_end(pp, 0);
}

/*
 * The reader went away (a FIFO/socket write end polls readable or reports
 * an error).  Like asyncio: a broken pipe if data was still queued, else a
 * clean close.
 */
static void wpipe_peer_gone(struct pipe *pp)
{
	if (xp__wbuf_size(&pp->wbuf)) {
		xp__transport_fatal(&pp->base, -EPIPE, NULL);
		return;
	}
	pipe_end(pp, 0);
}

static void wpipe_ready(struct pipe *pp, unsigned revents)
{
	bool gone = pp->watch_peer && (revents & (XP_IO_READ | XP_IO_ERR | XP_IO_HUP));

	if (xp__wbuf_size(&pp->wbuf) && (revents & (XP_IO_WRITE | XP_IO_ERR | XP_IO_HUP)))
		wpipe_flush(pp);
	if (gone && !pp->ended)
		wpipe_peer_gone(pp);
}

/*
 * An error or hang-up while neither reading nor writing.  A writer's
 * reader is gone (a terminal hung up, a socket peer left): as when a FIFO
 * reader leaves.  A reader with an error (a socket reset, a terminal hung
 * up) fails at once.  A reader's hang-up alone is its writer leaving: the
 * bytes still in the pipe come first, so it waits for the next read, and
 * the interest is dropped until then (level-triggered, it would repeat).
 */
static void pipe_idle_event(struct pipe *pp, unsigned revents)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (pp->writer) {
		wpipe_peer_gone(pp);
		return;
	}
	if (revents & XP_IO_ERR) {
		if (getsockopt(pp->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || !err)
			err = EIO;
		xp__transport_fatal(&pp->base, -err, NULL);
		return;
	}
	pp->hup_seen = true;
	pipe_update_io(pp);
}

static void pipe_io_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct pipe *pp = XP_CONTAINER_OF(w, struct pipe, io);

	if (pp->ended)
		return;
	if (!(w->events & XP_IO_RW)) {
		pipe_idle_event(pp, revents);
		return;
	}
	if (pp->writer)
		wpipe_ready(pp, revents);
	else
		rpipe_ready(pp);
}

/* ---- vtable ------------------------------------------------------------- */

static void pipe_made(xp_transport *t)
{
	struct pipe *pp = to_pipe(t);

	pp->started = true;
	pipe_update_io(pp);
}

static void pipe_force_close(xp_transport *t, int err)
{
	pipe_end(to_pipe(t), err);
}

static void rpipe_close(xp_transport *t)
{
	pipe_end(to_pipe(t), 0);
}

static void rpipe_update_reading(xp_transport *t)
{
	struct pipe *pp = to_pipe(t);

	if (t->reading)
		pp->hup_seen = false; /* the next read reports what the hang-up left */
	pipe_update_io(pp);
}

/*
 * A terminal has no EOF of its own: the end of input is the VEOF character
 * (^D), which the line discipline turns into a read of 0 at the start of a
 * line.  After a partial line, a first VEOF only hands that line over, so
 * a second one follows.  Queued behind what is still buffered.
 */
static void wpipe_queue_veof(struct pipe *pp)
{
	unsigned char eof[2] = {4, 4};
	bool canon = true, line_start = !pp->wrote || pp->last == '\n';
	struct termios tio;

	if (tcgetattr(pp->fd, &tio) == 0) {
		if (tio.c_cc[VEOF] != _POSIX_VDISABLE)
			eof[0] = eof[1] = tio.c_cc[VEOF];
		canon = tio.c_lflag & ICANON;
		if (pp->last == '\r' && (tio.c_iflag & ICRNL))
			line_start = true;
	}
	if (xp__wbuf_append(&pp->wbuf, eof, canon && !line_start ? 2 : 1) == 0)
		pipe_update_io(pp);
}

/* Close after the buffer drained (a write pipe's close and write_eof). */
static void wpipe_close(xp_transport *t)
{
	struct pipe *pp = to_pipe(t);

	if (pp->pty && !pp->eof_pending && !pp->ended)
		wpipe_queue_veof(pp);
	pp->eof_pending = true;
	if (!xp__wbuf_size(&pp->wbuf))
		pipe_end(pp, 0);
}

static int wpipe_write_eof(xp_transport *t)
{
	struct pipe *pp = to_pipe(t);

	if (pp->eof_pending || pp->ended)
		return 0;
	t->closing = true; /* sem 29: is_closing() is true at once */
	wpipe_close(t);
	return 0;
}

static int wpipe_can_write_eof(xp_transport *t)
{
	return 1;
}

static int wpipe_write(xp_transport *t, const struct iovec *iov, int iovcnt, size_t len)
{
	struct pipe *pp = to_pipe(t);
	size_t sent = 0;

	/* After write_eof/close the transport is closing and transport.c
	 * drops writes silently, as asyncio's pipes do. */
	if (pp->ended || pp->eof_pending)
		return 0;
	for (int i = iovcnt - 1; pp->pty && i >= 0; i--) {
		if (iov[i].iov_len) {
			pp->last = ((const unsigned char *)iov[i].iov_base)[iov[i].iov_len - 1];
			pp->wrote = true;
			break;
		}
	}
	if (!xp__wbuf_size(&pp->wbuf)) {
		ssize_t n = pipe_writev(pp->fd, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
		if (n < 0 && !would_block(errno)) {
			/* EPIPE & co: connection_lost(err), write() itself succeeds */
			xp__transport_fatal(t, -errno, NULL);
			return 0;
		}
		sent = n > 0 ? (size_t)n : 0;
		if (sent == len)
			return 0;
	}
	if (xp__wbuf_appendv(&pp->wbuf, iov, iovcnt, sent) < 0) {
		/* Part may be written already: the stream is corrupt now, so
		 * the transport fails, as a stream transport does. */
		xp__transport_fatal(t, -ENOMEM, "Fatal error: out of memory buffering a write");
		return -ENOMEM;
	}
	pipe_update_io(pp);
	xp__fc_check_pause(t);
	return 0;
}

static size_t wpipe_get_write_buffer_size(const xp_transport *t)
{
	return xp__wbuf_size(&to_pipe(t)->wbuf);
}

static const void *pipe_get_extra_info(xp_transport *t, const char *key, const void *dflt)
{
	struct pipe *pp = to_pipe(t);

	if (key && !strcmp(key, "pipe"))
		return &pp->fd;
	return dflt;
}

static void pipe_destroy(xp_transport *t)
{
	struct pipe *pp = to_pipe(t);

	pipe_close_fd(pp);
	xp__wbuf_clear(&pp->wbuf);
}

static const struct xp_transport_vt rpipe_vt = {
    .kind = XP_TRANSPORT_READ_PIPE,
    .name = "read pipe",
    .made = pipe_made,
    .close = rpipe_close,
    .force_close = pipe_force_close,
    .update_reading = rpipe_update_reading,
    .get_extra_info = pipe_get_extra_info,
    .destroy = pipe_destroy,
};

static const struct xp_transport_vt wpipe_vt = {
    .kind = XP_TRANSPORT_WRITE_PIPE,
    .name = "write pipe",
    .made = pipe_made,
    .close = wpipe_close,
    .force_close = pipe_force_close,
    .write = wpipe_write,
    .write_eof = wpipe_write_eof,
    .can_write_eof = wpipe_can_write_eof,
    .get_write_buffer_size = wpipe_get_write_buffer_size,
    .get_extra_info = pipe_get_extra_info,
    .destroy = pipe_destroy,
};

/* ---- construction ------------------------------------------------------- */

xp_transport *xp__pipe_new(xp_loop *loop, int fd, bool writer, xp_protocol *p)
{
	struct stat st;
	struct pipe *pp;
	xp_transport *t;

	if (fstat(fd, &st) < 0)
		return NULL;
	t = xp__transport_new(sizeof(*pp), writer ? &wpipe_vt : &rpipe_vt, loop, p);
	if (!t)
		return NULL;
	pp = to_pipe(t);
	pp->fd = fd;
	pp->writer = writer;
	/* asyncio on Linux: a write end of a FIFO or socket turns readable
	 * (or errors) when the reader goes away.  Never for files or ttys,
	 * which would always look readable. */
	pp->watch_peer = writer && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
	if (writer)
		t->reading = false; /* not a ReadTransport */
	xp__wbuf_init(&pp->wbuf);
	xp__io_init(&pp->io, fd, pipe_io_cb);
	xp__set_nonblock(fd, true);
	return t;
}

void xp__pipe_set_pty(xp_transport *t)
{
	to_pipe(t)->pty = true;
}

static xp_future *pipe_connect(xp_loop *loop, xp_protocol_factory factory, void *arg, int fd,
			       bool writer)
{
	struct stat st;
	xp_future *fut;
	xp_transport *t;
	int err;

	fut = xp__future_begin(loop, factory != NULL);
	if (!fut)
		return NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		xp_future_set_error(fut, -EBADF);
		return fut;
	}
	t = xp__pipe_new(loop, fd, writer, NULL);
	if (!t) {
		close(fd);
		xp_future_set_error(fut, -ENOMEM);
		return fut;
	}
	err = xp__transport_start_with(t, fut, factory, arg);
	if (err < 0)
		xp_future_set_error(fut, err);
	return fut;
}

xp_future *xp_connect_read_pipe(xp_loop *loop, xp_protocol_factory factory, void *arg, int fd)
{
	return pipe_connect(loop, factory, arg, fd, false);
}

xp_future *xp_connect_write_pipe(xp_loop *loop, xp_protocol_factory factory, void *arg, int fd)
{
	return pipe_connect(loop, factory, arg, fd, true);
}
