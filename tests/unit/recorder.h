/* SPDX-License-Identifier: MIT */
/*
 * recorder.h - a protocol for tests that writes down every callback.
 *
 * rec->log reads like "made data:5 eof lost:0", so a test states the whole
 * expected sequence in one CHECK_STR.  Received bytes are kept in rec->in.
 * Behaviour knobs (eof_ret, pause_in_made, ...) cover the spec's cases.
 * Tests include it after test.h; everything is static.
 */
#ifndef XP_TEST_RECORDER_H
#define XP_TEST_RECORDER_H

#include "xport.h"

/* Not every test file uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec {
	xp_protocol base;
	xp_transport *t;
	char log[4096];
	size_t loglen;
	unsigned char *in; /* all bytes received, in order */
	size_t inlen, incap;
	int lost_err;
	int nlost, nmade, neof, npause, nresume;
	/* knobs */
	int eof_ret;	   /* eof_received's return value */
	int data_ret;	   /* data_received / buffer_updated return value */
	int pause_in_made; /* pause_reading() inside connection_made */
	int close_on_data; /* close() inside data_received */
	int stop_on_lost;  /* xp_loop_stop() when connection_lost arrives */
	size_t bufsize;	   /* BufferedProtocol: get_buffer's size */
	unsigned char buf[65536];
	xp_loop *loop;
};

static void rec_log(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rec_log(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	if (r->loglen && r->loglen < sizeof(r->log) - 1)
		r->log[r->loglen++] = ' ';
	va_start(ap, fmt);
	int n = vsnprintf(r->log + r->loglen, sizeof(r->log) - r->loglen, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->loglen += (size_t)n;
	if (r->loglen >= sizeof(r->log))
		r->loglen = sizeof(r->log) - 1;
}

static void rec_keep(struct rec *r, const void *data, size_t len)
{
	if (len == 0)
		return;
	if (r->inlen + len > r->incap) {
		r->incap = (r->inlen + len) * 2 + 64;
		r->in = realloc(r->in, r->incap);
	}
	memcpy(r->in + r->inlen, data, len);
	r->inlen += len;
}

static void rec_made(xp_protocol *p, xp_transport *t)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	r->t = t;
	r->nmade++;
	rec_log(r, "made");
	if (r->pause_in_made)
		xp_transport_pause_reading(t);
}

static void rec_lost(xp_protocol *p, int err)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	r->nlost++;
	r->lost_err = err;
	rec_log(r, "lost:%d", err);
	r->t = NULL;
	if (r->stop_on_lost && r->loop)
		xp_loop_stop(r->loop);
}

static void rec_pause(xp_protocol *p)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	r->npause++;
	rec_log(r, "pause");
}

static void rec_resume(xp_protocol *p)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	r->nresume++;
	rec_log(r, "resume");
}

static int rec_data(xp_protocol *p, const void *data, size_t len)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "data:%zu", len);
	rec_keep(r, data, len);
	if (r->close_on_data)
		xp_transport_close(r->t);
	return r->data_ret;
}

static int rec_eof(xp_protocol *p)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	r->neof++;
	rec_log(r, "eof");
	return r->eof_ret;
}

static int rec_get_buffer(xp_protocol *p, ssize_t hint, void **buf, size_t *len)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "getbuf:%zd", hint);
	*buf = r->buf;
	*len = r->bufsize;
	return 0;
}

static int rec_buffer_updated(xp_protocol *p, size_t n)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "updated:%zu", n);
	rec_keep(r, r->buf, n);
	return r->data_ret;
}

static int rec_datagram(xp_protocol *p, const void *data, size_t len, const struct sockaddr *sa,
			socklen_t salen)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "dgram:%zu", len);
	rec_keep(r, data, len);
	return r->data_ret;
}

static void rec_error(xp_protocol *p, int err)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "error:%d", err);
}

static int rec_pipe_data(xp_protocol *p, int fd, const void *data, size_t len)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "pipedata%d:%zu", fd, len);
	rec_keep(r, data, len);
	return r->data_ret;
}

static void rec_pipe_lost(xp_protocol *p, int fd, int err)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "pipelost%d:%d", fd, err);
}

static void rec_exited(xp_protocol *p)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	rec_log(r, "exited");
}

static const xp_protocol_ops rec_stream_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
    .data_received = rec_data,
    .eof_received = rec_eof,
};

static const xp_protocol_ops rec_buffered_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
    .eof_received = rec_eof,
    .get_buffer = rec_get_buffer,
    .buffer_updated = rec_buffer_updated,
};

static const xp_protocol_ops rec_dgram_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
    .datagram_received = rec_datagram,
    .error_received = rec_error,
};

static const xp_protocol_ops rec_subprocess_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .pipe_data_received = rec_pipe_data,
    .pipe_connection_lost = rec_pipe_lost,
    .process_exited = rec_exited,
};

/* A zeroed recorder with the given ops; free with rec_free. */
static struct rec *rec_new(const xp_protocol_ops *ops, xp_loop *loop)
{
	struct rec *r = calloc(1, sizeof(*r));
	r->base.ops = ops;
	r->loop = loop;
	r->bufsize = sizeof(r->buf);
	return r;
}

static void rec_free(struct rec *r)
{
	free(r->in);
	free(r);
}

/* A factory that hands out one preallocated recorder (for connect calls). */
static xp_protocol *rec_factory_one(void *arg)
{
	return &((struct rec *)arg)->base;
}

/* Run the loop until cond holds or `seconds` pass; returns cond. */
struct rec_wait {
	xp_loop *loop;
	int (*cond)(void *);
	void *arg;
	double deadline;
	xp_handle *next;
};
static int rec_wait_tick(void *a)
{
	struct rec_wait *w = a;
	xp_handle_release(w->next);
	w->next = NULL;
	if (w->cond(w->arg) || xp_loop_time(w->loop) >= w->deadline)
		xp_loop_stop(w->loop);
	else
		w->next = xp_handle_retain(xp_call_later(w->loop, 0.001, rec_wait_tick, w));
	return 0;
}
static int rec_run_until(xp_loop *loop, int (*cond)(void *), void *arg, double seconds)
{
	struct rec_wait w = {loop, cond, arg, xp_loop_time(loop) + seconds, NULL};
	if (cond(arg))
		return 1;
	w.next = xp_handle_retain(xp_call_soon(loop, rec_wait_tick, &w));
	xp_loop_run_forever(loop);
	if (w.next) {
		xp_handle_cancel(w.next);
		xp_handle_release(w.next);
	}
	return cond(arg);
}
static int rec_cond_lost(void *arg)
{
	return ((struct rec *)arg)->nlost > 0;
}

#endif
