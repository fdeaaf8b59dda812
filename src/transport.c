// SPDX-License-Identifier: MIT
/*
 * transport.c - what every transport kind shares: the public methods
 * (validated here, carried out by the kind's vtable), the lifecycle
 * (connection_made once, connection_lost exactly once, then nothing), the
 * protocol calls with their failure handling, and write flow control.
 */
#include "internal.h"

#include <signal.h>
#include <unistd.h>

#define DEFAULT_HIGH (64 * 1024)
#define DEFAULT_LOW (16 * 1024)
#define DEFAULT_READ_SIZE (64 * 1024)

xp_transport *xp__transport_new(size_t size, const struct xp_transport_vt *vt, xp_loop *loop,
				xp_protocol *protocol)
{
	xp_transport *t = calloc(1, size);
	if (!t)
		return NULL;
	t->vt = vt;
	t->loop = loop;
	t->protocol = protocol;
	t->high = DEFAULT_HIGH;
	t->low = DEFAULT_LOW;
	t->read_size = DEFAULT_READ_SIZE;
	t->reading = true;
	t->refs = 1;
	xp_list_init(&t->owner_node);
	t->tracked.what = vt->name;
	xp__loop_track(loop, &t->tracked);
	return t;
}

xp_transport *xp_transport_retain(xp_transport *t)
{
	if (t)
		t->refs++;
	return t;
}

void xp_transport_release(xp_transport *t)
{
	if (t && --t->refs == 0)
		free(t);
}

/* ---- lifecycle ------------------------------------------------------ */

/* The future keeps the transport's memory alive while the caller holds
 * the future, even if connection_lost came first. */
static void release_transport(void *t)
{
	xp_transport_release(t);
}

static int start_cb(void *arg)
{
	xp_transport *t = arg;
	xp_future *waiter = t->waiter;
	t->waiter = NULL;
	/* Refused by its factory (xp__transport_start_with): nothing to make. */
	bool refused = !t->protocol && t->lost_scheduled;
	if (!t->lost && !refused) {
		t->made = true;
		xp_protocol *p = t->protocol;
		if (p && p->ops && p->ops->connection_made)
			p->ops->connection_made(p, t);
		/* The descriptor is watched only once connection_made returned. */
		if (!t->closing && t->vt->made)
			t->vt->made(t);
	}
	if (waiter) {
		if (xp_future_cancelled(waiter))
			xp_transport_close(t);
		else if (t->lost || refused)
			xp_future_set_error(waiter, t->lost_err ? t->lost_err : XP_ECLOSED);
		else if (xp_future_set_result_owned(waiter, xp_transport_retain(t),
						    release_transport) < 0)
			xp_transport_release(t);
		xp_future_release(waiter);
	}
	xp_transport_release(t);
	return 0;
}

int xp__transport_start(xp_transport *t, xp_future *waiter)
{
	t->waiter = xp_future_retain(waiter);
	xp_transport_retain(t);
	if (!xp_call_soon(t->loop, start_cb, t)) {
		t->waiter = NULL;
		xp_future_release(waiter);
		xp_transport_release(t);
		return XP_ECLOSED;
	}
	return 0;
}

int xp__transport_start_with(xp_transport *t, xp_future *waiter, xp_protocol_factory factory,
			     void *arg)
{
	int err = xp__transport_start(t, waiter);

	if (err < 0) {
		xp_transport_abort(t); /* no protocol yet: no callback, fd closed */
		return err;
	}
	t->protocol = factory(arg);
	if (!t->protocol)
		xp__transport_fatal(t, XP_ECALLBACK, NULL);
	return 0;
}

static int lost_cb(void *arg)
{
	xp_transport *t = arg;
	xp_protocol *p = t->protocol;
	/* A transport that never delivered connection_made owes no
	 * connection_lost either. */
	if (t->made && p && p->ops && p->ops->connection_lost)
		p->ops->connection_lost(p, t->lost_err);
	t->lost = true;
	t->protocol = NULL;
	if (t->gone) {
		void (*gone)(xp_transport *) = t->gone;

		t->gone = NULL;
		gone(t);
	}
	xp_list_remove(&t->tracked.node);
	if (t->vt->destroy)
		t->vt->destroy(t);
	xp_transport_release(t);
	return 0;
}

void xp__transport_lost(xp_transport *t, int err)
{
	if (t->lost_scheduled)
		return;
	t->lost_scheduled = true;
	t->closing = true;
	t->lost_err = err;
	if (!xp_call_soon(t->loop, lost_cb, t))
		lost_cb(t); /* closed loop: nothing can run later */
}

void xp__transport_fatal(xp_transport *t, int err, const char *msg)
{
	if (t->lost_scheduled)
		return;
	if (msg)
		xp__loop_report(t->loop, msg, err, t, t->protocol);
	t->closing = true;
	t->vt->force_close(t, err);
}

/* ---- protocol calls ------------------------------------------------- */

static int fail(xp_transport *t, int r, const char *msg)
{
	if (r >= 0)
		r = XP_ECALLBACK;
	xp__transport_fatal(t, r, msg);
	return r;
}

/* Copy in-memory data through get_buffer/buffer_updated. */
static int feed_buffered(xp_transport *t, const char *data, size_t len)
{
	while (len > 0 && !t->lost_scheduled) {
		xp_protocol *p = t->protocol;
		void *buf = NULL;
		size_t cap = 0;
		int r = p->ops->get_buffer(p, (ssize_t)len, &buf, &cap);
		if (r < 0 || !buf || cap == 0)
			return fail(t, r, "Fatal error: protocol.get_buffer() call failed.");
		size_t n = cap < len ? cap : len;
		memcpy(buf, data, n);
		r = p->ops->buffer_updated ? p->ops->buffer_updated(p, n) : 0;
		if (r < 0)
			return fail(t, r, "Fatal error: protocol.buffer_updated() call failed.");
		data += n;
		len -= n;
	}
	return 0;
}

int xp__proto_data(xp_transport *t, const void *data, size_t len)
{
	xp_protocol *p = t->protocol;
	if (!p || !p->ops || t->eof || t->lost_scheduled)
		return 0;
	if (p->ops->get_buffer)
		return feed_buffered(t, data, len);
	if (!p->ops->data_received)
		return 0;
	int r = p->ops->data_received(p, data, len);
	if (r < 0)
		return fail(t, r, "Fatal error: protocol.data_received() call failed.");
	return 0;
}

int xp__proto_eof(xp_transport *t)
{
	xp_protocol *p = t->protocol;
	if (t->eof || t->lost_scheduled)
		return 0;
	t->eof = true;
	if (!p || !p->ops || !p->ops->eof_received)
		return 0;
	int r = p->ops->eof_received(p);
	if (r < 0)
		return fail(t, r, "Fatal error: protocol.eof_received() call failed.");
	return r > 0;
}

ssize_t xp__proto_read_into(xp_transport *t, int fd)
{
	xp_protocol *p = t->protocol;
	void *buf = NULL;
	size_t cap = 0;
	int r = p->ops->get_buffer(p, -1, &buf, &cap);
	if (r < 0 || !buf || cap == 0)
		return fail(t, r, "Fatal error: protocol.get_buffer() call failed.");
	ssize_t n = read(fd, buf, cap);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	r = p->ops->buffer_updated ? p->ops->buffer_updated(p, (size_t)n) : 0;
	if (r < 0)
		return fail(t, r, "Fatal error: protocol.buffer_updated() call failed.");
	return n;
}

/* ---- flow control --------------------------------------------------- */

static size_t buffered(const xp_transport *t)
{
	return t->vt->get_write_buffer_size ? t->vt->get_write_buffer_size(t) : 0;
}

/* Pause strictly over high, resume at or below low; the single flag makes
 * the two strictly alternate. */
void xp__fc_check_pause(xp_transport *t)
{
	if (t->proto_paused || t->lost || buffered(t) <= t->high)
		return;
	t->proto_paused = true;
	xp_protocol *p = t->protocol;
	if (p && p->ops && p->ops->pause_writing)
		p->ops->pause_writing(p);
}

void xp__fc_check_resume(xp_transport *t)
{
	if (!t->proto_paused || t->lost || buffered(t) > t->low)
		return;
	t->proto_paused = false;
	xp_protocol *p = t->protocol;
	if (p && p->ops && p->ops->resume_writing)
		p->ops->resume_writing(p);
}

/* The kinds that buffer what they send. */
static bool has_write_buffer(const xp_transport *t)
{
	return t->vt->get_write_buffer_size != NULL;
}

void xp_transport_get_write_buffer_limits(const xp_transport *t, size_t *low, size_t *high)
{
	bool has = has_write_buffer(t);
	if (low)
		*low = has ? t->low : 0;
	if (high)
		*high = has ? t->high : 0;
}

int xp_transport_set_write_buffer_limits(xp_transport *t, long long high, long long low)
{
	if (!has_write_buffer(t))
		return -ENOTSUP;
	if (high < 0)
		high = low < 0 ? DEFAULT_HIGH : 4 * low;
	if (low < 0)
		low = high / 4;
	if (low > high)
		return -EINVAL;
	t->high = (size_t)high;
	t->low = (size_t)low;
	xp__fc_check_pause(t);
	xp__fc_check_resume(t);
	return 0;
}

size_t xp_transport_get_write_buffer_size(const xp_transport *t)
{
	return t->lost ? 0 : buffered(t);
}

/* ---- the public methods --------------------------------------------- */

int xp_transport_kind(const xp_transport *t)
{
	return t->vt->kind;
}

xp_loop *xp_transport_get_loop(const xp_transport *t)
{
	return t->loop;
}

void xp_transport_close(xp_transport *t)
{
	if (t->closing)
		return;
	t->closing = true;
	if (t->vt->close)
		t->vt->close(t);
	else
		xp__transport_lost(t, 0);
}

void xp_transport_abort(xp_transport *t)
{
	if (t->lost_scheduled)
		return;
	t->closing = true;
	t->vt->force_close(t, 0);
}

int xp_transport_is_closing(const xp_transport *t)
{
	return t->closing;
}

void xp_transport_set_protocol(xp_transport *t, xp_protocol *p)
{
	if (!t->lost)
		t->protocol = p;
}

xp_protocol *xp_transport_get_protocol(const xp_transport *t)
{
	return t->protocol;
}

const void *xp_transport_get_extra_info(xp_transport *t, const char *key, const void *dflt)
{
	if (t->lost || !key || !t->vt->get_extra_info)
		return dflt;
	return t->vt->get_extra_info(t, key, dflt);
}

int xp_transport_is_reading(const xp_transport *t)
{
	if (!t->vt->update_reading)
		return -ENOTSUP;
	return t->reading && !t->closing && !t->eof;
}

void xp_transport_pause_reading(xp_transport *t)
{
	if (!t->vt->update_reading || t->closing || t->eof || !t->reading)
		return;
	t->reading = false;
	t->vt->update_reading(t);
}

void xp_transport_resume_reading(xp_transport *t)
{
	if (!t->vt->update_reading || t->closing || t->eof || t->reading)
		return;
	t->reading = true;
	t->vt->update_reading(t);
}

int xp_transport_write(xp_transport *t, const void *data, size_t len)
{
	struct iovec iov = {(void *)data, len};
	return xp_transport_writelines(t, &iov, 1);
}

int xp_transport_writelines(xp_transport *t, const struct iovec *iov, int iovcnt)
{
	if (!t->vt->write)
		return -ENOTSUP;
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL; /* asyncio's TypeError for non-bytes */
		len += iov[i].iov_len;
	}
	if (len == 0 || t->closing)
		return 0; /* asyncio drops writes to a closing transport */
	return t->vt->write(t, iov, iovcnt, len);
}

int xp_transport_write_eof(xp_transport *t)
{
	if (!t->vt->write_eof)
		return -ENOTSUP;
	if (t->closing)
		return 0;
	return t->vt->write_eof(t);
}

int xp_transport_can_write_eof(xp_transport *t)
{
	if (!t->vt->can_write_eof)
		return t->vt->write_eof ? 1 : -ENOTSUP;
	return t->vt->can_write_eof(t);
}

int xp_transport_set_read_size(xp_transport *t, size_t size)
{
	/* A datagram is always read whole. */
	if (!t->vt->update_reading || t->vt->kind == XP_TRANSPORT_DATAGRAM)
		return -ENOTSUP;
	if (size == 0)
		return -EINVAL;
	t->read_size = size;
	return 0;
}

int xp_transport_sendto(xp_transport *t, const void *data, size_t len, const struct sockaddr *addr,
			socklen_t addrlen)
{
	if (!t->vt->sendto)
		return -ENOTSUP;
	if (t->closing)
		return 0;
	return t->vt->sendto(t, data, len, addr, addrlen);
}

int xp_transport_get_pid(const xp_transport *t, pid_t *pid)
{
	if (!t->vt->get_pid)
		return -ENOTSUP;
	if (pid)
		*pid = t->vt->get_pid(t);
	return 0;
}

xp_transport *xp_transport_get_pipe_transport(xp_transport *t, int fd)
{
	if (!t->vt->get_pipe_transport) {
		errno = ENOTSUP;
		return NULL;
	}
	if (t->lost)
		return NULL;
	return t->vt->get_pipe_transport(t, fd);
}

int xp_transport_get_returncode(const xp_transport *t, int *code)
{
	return t->vt->get_returncode ? t->vt->get_returncode(t, code) : -ENOTSUP;
}

int xp_transport_send_signal(xp_transport *t, int sig)
{
	if (!t->vt->send_signal)
		return -ENOTSUP;
	if (t->lost)
		return -ESRCH;
	return t->vt->send_signal(t, sig);
}

int xp_transport_terminate(xp_transport *t)
{
	return xp_transport_send_signal(t, SIGTERM);
}

int xp_transport_kill(xp_transport *t)
{
	return xp_transport_send_signal(t, SIGKILL);
}
