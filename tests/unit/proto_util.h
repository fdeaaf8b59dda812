/* SPDX-License-Identifier: MIT */
/*
 * proto_util.h - helpers for the built-in protocol tests (test_proto_*.c):
 * connected socket pairs, wrapping a descriptor in a stream transport with
 * a given protocol, hooks that record stats, and payloads.
 * Include after test.h and recorder.h; everything is static.
 */
#ifndef XP_TEST_PROTO_UTIL_H
#define XP_TEST_PROTO_UTIL_H

#include "xport.h"

#include <signal.h>
#include <sys/socket.h>

/* A connected loopback TCP pair, both non-blocking. 0 or -1. */
static int pu_tcp_pair(int *client, int *server)
{
	int port, lfd = xpt_tcp_listener(&port);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port)};

	if (lfd < 0)
		return -1;
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(lfd);
		return -1;
	}
	*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (*server < 0)
		return -1;
	xpt_set_nonblock(*client);
	xpt_set_nonblock(*server);
	return 0;
}

/* A port nobody listens on (bound once, then closed). */
static int pu_dead_port(void)
{
	int port = 9, fd = xpt_tcp_listener(&port);

	if (fd >= 0)
		close(fd);
	return port;
}

static xp_protocol *pu_factory_one(void *arg)
{
	return arg;
}

/* Wrap fd in a stream transport running p; NULL on failure. */
static xp_transport *pu_wrap(xp_loop *loop, int fd, xp_protocol *p)
{
	xp_future *f = xp_connect_accepted_socket(loop, pu_factory_one, p, fd, NULL);
	xp_transport *t = NULL;

	if (!f)
		return NULL;
	if (xp_loop_run_until_complete(loop, f) == 0)
		t = xp_future_result(f);
	xp_future_release(f);
	return t;
}

/* A pipe transport (reader or writer) around fd running p. */
static xp_transport *pu_pipe(xp_loop *loop, int fd, xp_protocol *p, int writer)
{
	xp_future *f = writer ? xp_connect_write_pipe(loop, pu_factory_one, p, fd)
			      : xp_connect_read_pipe(loop, pu_factory_one, p, fd);
	xp_transport *t = NULL;

	if (!f)
		return NULL;
	if (xp_loop_run_until_complete(loop, f) == 0)
		t = xp_future_result(f);
	xp_future_release(f);
	return t;
}

/* Hooks that write down what they saw. */
struct pu_hooks {
	int nstart, nend;
	uint64_t data_in, data_out; /* bytes seen by on_data, '<' and '>' */
	xp_conn_stats last;	    /* copy made in on_end */
	char end[16];
	xp_transport *watch; /* if set: max write buffer seen in on_data */
	size_t max_wbuf;
	int ndone; /* relay on_done */
	xp_conn_stats done;
	char done_end[16];
	xp_loop *stop_loop; /* stop this loop in on_done */
};

static void pu_on_start(void *arg, const xp_conn_stats *st)
{
	((struct pu_hooks *)arg)->nstart++;
}

static void pu_on_end(void *arg, const xp_conn_stats *st)
{
	struct pu_hooks *h = arg;

	h->nend++;
	h->last = *st;
	snprintf(h->end, sizeof(h->end), "%s", st->end ? st->end : "(null)");
}

static void pu_on_data(void *arg, const xp_conn_stats *st, char dir, const void *data, size_t len)
{
	struct pu_hooks *h = arg;

	if (dir == '<')
		h->data_in += len;
	else if (dir == '>')
		h->data_out += len;
	if (h->watch) {
		size_t n = xp_transport_get_write_buffer_size(h->watch);
		if (n > h->max_wbuf)
			h->max_wbuf = n;
	}
}

static void pu_hooks_set(xp_proto_hooks *hk, struct pu_hooks *h)
{
	hk->on_start = pu_on_start;
	hk->on_end = pu_on_end;
	hk->on_data = pu_on_data;
	hk->arg = h;
}

static void pu_on_done(xp_relay *r, const xp_conn_stats *st, void *arg)
{
	struct pu_hooks *h = arg;

	h->ndone++;
	h->done = *st;
	snprintf(h->done_end, sizeof(h->done_end), "%s", st->end ? st->end : "(null)");
}

static int pu_cond_end(void *arg)
{
	return ((struct pu_hooks *)arg)->nend > 0;
}

static int pu_cond_done(void *arg)
{
	return ((struct pu_hooks *)arg)->ndone > 0;
}

/* A payload that catches reordering and loss: byte i depends on i. */
static unsigned char *pu_payload(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n);
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (unsigned char)(x >> 16);
	}
	return p;
}

/* Both recorders lost (or the time is up). */
struct pu_two {
	struct rec *a, *b;
};
static int pu_cond_both_lost(void *arg)
{
	struct pu_two *t = arg;
	return t->a->nlost > 0 && t->b->nlost > 0;
}

static int pu_cond_eof(void *arg)
{
	return ((struct rec *)arg)->neof > 0;
}

/* Run the loop until all pending callbacks ran (a few iterations). */
static int pu_never(void *a)
{
	return 0;
}
static void pu_spin(xp_loop *loop, double seconds)
{
	rec_run_until(loop, pu_never, NULL, seconds);
}

static void pu_loop_free(xp_loop *loop)
{
	xp_loop_close(loop);
	xp_loop_free(loop);
}

#endif
