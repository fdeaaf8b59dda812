// SPDX-License-Identifier: MIT
/*
 * sendfile.c - loop.sendfile() (xp_loop_sendfile), and the one copy loop
 * every sendfile path falls back to.
 *
 * A stream transport sends a file itself (xp__stream_sendfile: sendfile(2),
 * or a copy when its buffer is not empty or the file cannot be sent that
 * way).  Other kinds (TLS, write pipes) get asyncio's fallback: a proxy
 * protocol stands in for the application's while the file is copied.  The
 * one-shot xp_sock_sendfile (sockops.c) copies with the same helpers, so
 * that every path agrees on which failures fall back and how a file that
 * cannot seek is read.
 */
#include "internal.h"

#include <unistd.h>

bool xp__sendfile_falls_back(int err, size_t sent)
{
	/* EINVAL/ENOSYS: not a file sendfile(2) reads (a pipe, a socket);
	 * ESPIPE/EOVERFLOW: one it cannot seek in.  Only before any byte
	 * went, so that the copy starts where the file does. */
	return sent == 0 && (err == EINVAL || err == ENOSYS || err == ESPIPE || err == EOVERFLOW);
}

ssize_t xp__sendfile_read(int fd, void *buf, size_t want, off_t *offset, bool *unseekable)
{
	for (;;) {
		ssize_t n = *unseekable ? read(fd, buf, want) : pread(fd, buf, want, *offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ESPIPE && !*unseekable) {
			*unseekable = true; /* a pipe: read from where it is */
			continue;
		}
		if (n < 0)
			return -errno;
		*offset += n;
		return n;
	}
}

/* ---- sendfile over other kinds (TLS, write pipes) ------------------
 *
 * As asyncio's _SendfileFallbackProtocol: a proxy protocol stands in for
 * the application's while the file is copied, so that pause_writing and
 * resume_writing drive the copy.  Data, EOF and connection_lost are passed
 * on to the application's protocol.  Writes the application makes
 * meanwhile are not held back on these kinds (they have no hook for it).
 */
struct sf_proxy {
	xp_protocol proto;
	xp_protocol *app;
	xp_transport *t;
	xp_future *fut;
	int file_fd;
	off_t start, offset;
	size_t count, sent;
	bool unseekable;
	bool paused;	 /* the transport paused the proxy */
	bool app_paused; /* the app had pause_writing without resume */
};

static struct sf_proxy *to_px(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct sf_proxy, proto);
}

/* Give the protocol back, with pause/resume balanced for it. */
static void px_finish(struct sf_proxy *px, int err)
{
	xp_transport *t = px->t;
	xp_protocol *app = px->app;

	if (t && !t->lost)
		xp_transport_set_protocol(t, app);
	if (t && !t->lost_scheduled && app && app->ops) {
		if (px->app_paused && !t->proto_paused && app->ops->resume_writing)
			app->ops->resume_writing(app);
		else if (!px->app_paused && t->proto_paused && app->ops->pause_writing)
			app->ops->pause_writing(app);
	}
	if (px->sent && !px->unseekable)
		lseek(px->file_fd, px->start + (off_t)px->sent, SEEK_SET);
	if (err)
		xp_future_set_error(px->fut, err);
	else
		xp_future_set_result_num(px->fut, (long long)px->sent);
	xp_future_release(px->fut);
	free(px);
}

static void px_pump(struct sf_proxy *px)
{
	xp_transport *t = px->t;
	size_t cap;
	void *buf = xp__loop_read_buffer(t->loop, &cap);

	while (!px->paused) {
		if (px->count && px->sent >= px->count)
			break;
		if (t->closing) {
			px_finish(px, XP_ECLOSED);
			return;
		}
		size_t want = XP_SENDFILE_COPY_CHUNK;
		if (px->count && px->count - px->sent < want)
			want = px->count - px->sent;
		ssize_t n = xp__sendfile_read(px->file_fd, buf, want, &px->offset, &px->unseekable);
		if (n < 0) {
			px_finish(px, (int)n);
			return;
		}
		if (n == 0)
			break;
		int r = xp_transport_write(t, buf, (size_t)n);
		if (r < 0) {
			px_finish(px, r);
			return;
		}
		px->sent += (size_t)n;
	}
	if (!px->paused)
		px_finish(px, 0);
}

static void px_pause(xp_protocol *p)
{
	to_px(p)->paused = true;
}

static void px_resume(xp_protocol *p)
{
	to_px(p)->paused = false;
	px_pump(to_px(p));
}

static void px_lost(xp_protocol *p, int err)
{
	struct sf_proxy *px = to_px(p);
	xp_protocol *app = px->app;

	px->t = NULL;
	px->app = NULL;
	px_finish(px, err ? err : -ECONNABORTED);
	if (app && app->ops && app->ops->connection_lost)
		app->ops->connection_lost(app, err);
}

static int px_data(xp_protocol *p, const void *data, size_t len)
{
	xp_protocol *app = to_px(p)->app;
	return app->ops->data_received ? app->ops->data_received(app, data, len) : 0;
}

static int px_eof(xp_protocol *p)
{
	xp_protocol *app = to_px(p)->app;
	return app->ops->eof_received ? app->ops->eof_received(app) : 0;
}

static int px_get_buffer(xp_protocol *p, ssize_t hint, void **buf, size_t *len)
{
	xp_protocol *app = to_px(p)->app;
	return app->ops->get_buffer(app, hint, buf, len);
}

static int px_buffer_updated(xp_protocol *p, size_t n)
{
	xp_protocol *app = to_px(p)->app;
	return app->ops->buffer_updated ? app->ops->buffer_updated(app, n) : 0;
}

static const xp_protocol_ops px_ops = {
    .connection_lost = px_lost,
    .pause_writing = px_pause,
    .resume_writing = px_resume,
    .data_received = px_data,
    .eof_received = px_eof,
};

static const xp_protocol_ops px_buffered_ops = {
    .connection_lost = px_lost,
    .pause_writing = px_pause,
    .resume_writing = px_resume,
    .eof_received = px_eof,
    .get_buffer = px_get_buffer,
    .buffer_updated = px_buffer_updated,
};

static xp_future *sendfile_generic(xp_transport *t, int file_fd, off_t offset, size_t count)
{
	xp_protocol *app = t->protocol;
	struct sf_proxy *px;

	if (!t->vt->write)
		return xp__future_failed(t->loop, -ENOTSUP);
	if (app && (app->ops == &px_ops || app->ops == &px_buffered_ops))
		return xp__future_failed(t->loop, -EBUSY);
	px = calloc(1, sizeof(*px));
	if (!px)
		return NULL;
	px->fut = xp_future_new(t->loop);
	if (!px->fut) {
		free(px);
		return NULL;
	}
	px->proto.ops = app && app->ops && app->ops->get_buffer ? &px_buffered_ops : &px_ops;
	px->app = app;
	px->t = t;
	px->file_fd = file_fd;
	px->start = px->offset = offset;
	px->count = count;
	px->paused = px->app_paused = t->proto_paused;
	xp_transport_set_protocol(t, &px->proto);
	xp_future *fut = xp_future_retain(px->fut);
	if (!px->paused)
		px_pump(px);
	return fut;
}

xp_future *xp_loop_sendfile(xp_loop *loop, xp_transport *t, int file_fd, off_t offset, size_t count)
{
	xp_future *fut = NULL;
	int err;

	if (!loop || !t || t->loop != loop || file_fd < 0 || offset < 0) {
		errno = EINVAL;
		return NULL;
	}
	if (t->closing || t->lost_scheduled)
		return xp__future_failed(loop, XP_ECLOSED);
	err = xp__stream_sendfile(t, file_fd, offset, count, &fut);
	if (err == -ENOTSUP)
		return sendfile_generic(t, file_fd, offset, count);
	if (err == -ENOMEM) {
		errno = ENOMEM;
		return NULL;
	}
	return err ? xp__future_failed(loop, err) : fut;
}
