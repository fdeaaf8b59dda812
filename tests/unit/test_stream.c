// SPDX-License-Identifier: MIT
/*
 * test_stream.c - stream transports (src/stream.c) over socketpairs,
 * loopback TCP and a Unix socket path, against doc/semantics.md sections A-G.
 * Each test name carries the sem numbers it covers.
 */
#include "test.h"
#include "internal.h"
#include "recorder.h"

#include <limits.h>
#include <netinet/tcp.h>
#include <sys/un.h>

/* ---- fixtures -------------------------------------------------------- */

/* The byte at stream offset i: lets a reader check order and content
 * without keeping a copy. */
static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 131u + (i >> 11) * 7u + 1u);
}

/* The peer end, read through the loop (xp_add_reader) or polled by hand. */
struct sink {
	xp_loop *loop;
	int fd;
	size_t len;	    /* bytes read so far */
	size_t bad_at;	    /* first offset not matching pat(), or SIZE_MAX */
	bool verify;	    /* check pat() instead of keeping bytes */
	unsigned char *buf; /* !verify: everything read */
	size_t cap;
	int eof, err;
	bool watching;
};

static void sink_take(struct sink *s, const unsigned char *p, size_t n)
{
	if (s->verify) {
		for (size_t i = 0; i < n; i++)
			if (p[i] != pat(s->len + i) && s->bad_at == SIZE_MAX)
				s->bad_at = s->len + i;
	} else {
		if (s->len + n > s->cap) {
			s->cap = (s->len + n) * 2;
			s->buf = realloc(s->buf, s->cap);
		}
		memcpy(s->buf + s->len, p, n);
	}
	s->len += n;
}

/* Read what is there now; returns after EAGAIN, EOF or an error. */
static int sink_poll(void *arg)
{
	struct sink *s = arg;
	static unsigned char tmp[65536];

	while (!s->eof && !s->err) {
		ssize_t n = read(s->fd, tmp, sizeof(tmp)); /* fd is non-blocking */
		if (n > 0) {
			sink_take(s, tmp, (size_t)n);
		} else if (n == 0) {
			s->eof = 1;
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN)
				s->err = -errno;
			break;
		}
	}
	if ((s->eof || s->err) && s->watching) {
		xp_remove_reader(s->loop, s->fd);
		s->watching = false;
	}
	return 0;
}

static void sink_start(struct sink *s)
{
	if (!s->watching && !s->eof && !s->err) {
		REQUIRE(xp_add_reader(s->loop, s->fd, sink_poll, s) == 0);
		s->watching = true;
	}
}

static void sink_stop(struct sink *s)
{
	if (s->watching)
		xp_remove_reader(s->loop, s->fd);
	s->watching = false;
}

struct env {
	xp_loop *loop;
	struct rec *r;
	xp_transport *t;
	int fd; /* the transport's descriptor number */
	struct sink peer;
	size_t woff; /* bytes of pat() written towards the peer so far */
	int nexc;    /* exception handler calls */
	char excmsg[256];
	int excerr;
	xp_transport *exct;
	xp_protocol *excp;
};

static int env_exc(xp_loop *loop, const xp_context *ctx, void *arg)
{
	struct env *e = arg;
	e->nexc++;
	snprintf(e->excmsg, sizeof(e->excmsg), "%s", ctx->message ? ctx->message : "");
	e->excerr = ctx->error;
	e->exct = ctx->transport;
	e->excp = ctx->protocol;
	return 0;
}

static void env_init(struct env *e, const xp_protocol_ops *ops)
{
	memset(e, 0, sizeof(*e));
	e->loop = xp_loop_new();
	REQUIRE(e->loop);
	xp_loop_set_exception_handler(e->loop, env_exc, e);
	e->r = rec_new(ops, e->loop);
	e->fd = e->peer.fd = -1;
	e->peer.loop = e->loop;
	e->peer.bad_at = SIZE_MAX;
	e->peer.verify = true;
}

static int cond_made(void *arg)
{
	return ((struct rec *)arg)->nmade > 0;
}

/* Wrap fd in a transport; connection_made is delivered before returning. */
static void env_start(struct env *e, int fd, int peer)
{
	e->fd = fd;
	e->peer.fd = peer;
	if (peer >= 0)
		xpt_set_nonblock(peer);
	e->t = xp__stream_new(e->loop, fd, &e->r->base);
	REQUIRE(e->t);
	REQUIRE(xp__transport_start(e->t, NULL) == 0);
	/* sem 1: never inside the constructor */
	CHECK_EQ(e->r->nmade, 0);
	REQUIRE(rec_run_until(e->loop, cond_made, e->r, 5));
	REQUIRE(e->r->t == e->t);
}

static void env_pair(struct env *e)
{
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	env_start(e, sv[0], sv[1]);
}

/* Small kernel buffers so that big writes are partial. */
static void env_pair_small(struct env *e)
{
	int sv[2], v = 4096;
	REQUIRE(xpt_socketpair(sv) == 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	env_start(e, sv[0], sv[1]);
}

static void env_tcp(struct env *e)
{
	int port, lfd = xpt_tcp_listener(&port);
	REQUIRE(lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(c >= 0);
	REQUIRE(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	int a = accept(lfd, NULL, NULL);
	REQUIRE(a >= 0);
	close(lfd);
	env_start(e, c, a);
}

static int cond_lost(void *arg)
{
	return ((struct env *)arg)->r->nlost > 0;
}

static void spin(xp_loop *loop, int n);

static void env_fini(struct env *e)
{
	struct rec *r = e->r;
	if (r->nmade && !r->nlost && r->t) {
		xp_transport_abort(r->t);
		rec_run_until(e->loop, cond_lost, e, 5);
	}
	CHECK(r->nlost <= 1);
	sink_stop(&e->peer);
	if (e->peer.fd >= 0)
		close(e->peer.fd);
	free(e->peer.buf);
	xp_loop_close(e->loop);
	xp_loop_free(e->loop);
	rec_free(r);
}

static int stop_cb(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}

/* Run n loop iterations (each polls the descriptors once). */
static void spin(xp_loop *loop, int n)
{
	for (int i = 0; i < n; i++) {
		xp_call_soon(loop, stop_cb, loop);
		xp_loop_run_forever(loop);
	}
}

/* Write n bytes of pat() through the transport from a scratch buffer that
 * is scribbled over afterwards (the transport must have copied). */
static int write_pat(struct env *e, size_t n)
{
	unsigned char *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = pat(e->woff + i);
	int r = xp_transport_write(e->t, b, n);
	if (r == 0)
		e->woff += n;
	memset(b, 0xA5, n);
	free(b);
	return r;
}

/* Fill the kernel's buffers behind the transport's back (with pat()
 * bytes, so the peer's check still holds): afterwards every write the
 * transport tries gets EAGAIN and is buffered whole. */
static size_t fill_kernel(struct env *e)
{
	unsigned char b[4096];
	size_t total = 0;
	for (;;) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = pat(e->woff + i);
		ssize_t n = send(e->fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			break;
		e->woff += (size_t)n;
		total += (size_t)n;
	}
	return total;
}

static int cond_peer_eof(void *arg)
{
	struct env *e = arg;
	return e->peer.eof || e->peer.err;
}

struct want_bytes {
	struct env *e;
	size_t n;
};
static int cond_peer_bytes(void *arg)
{
	struct want_bytes *w = arg;
	return w->e->peer.len >= w->n || w->e->peer.eof || w->e->peer.err;
}

static void peer_send(struct env *e, const void *data, size_t n)
{
	REQUIRE(xpt_write_all(e->peer.fd, data, n) == (ssize_t)n);
}

static int cond_neof(void *arg)
{
	return ((struct rec *)arg)->neof > 0;
}

struct want_in {
	struct rec *r;
	size_t n;
};
static int cond_in(void *arg)
{
	struct want_in *w = arg;
	return w->r->inlen >= w->n || w->r->nlost;
}

/* Hooks that look at the transport from inside callbacks. */
static size_t g_size_at_resume = SIZE_MAX, g_size_at_lost = SIZE_MAX;
static int g_closing_at_lost = -1;

static void hook_resume(xp_protocol *p)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	g_size_at_resume = xp_transport_get_write_buffer_size(r->t);
	rec_resume(p);
}

static void hook_lost(xp_protocol *p, int err)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	g_size_at_lost = xp_transport_get_write_buffer_size(r->t);
	g_closing_at_lost = xp_transport_is_closing(r->t);
	rec_lost(p, err);
}

static const xp_protocol_ops hook_ops = {
    .connection_made = rec_made,
    .connection_lost = hook_lost,
    .pause_writing = rec_pause,
    .resume_writing = hook_resume,
    .data_received = rec_data,
    .eof_received = rec_eof,
};

/* ---- A. lifecycle ---------------------------------------------------- */

TEST(stream_made_first_then_data_eof_lost_sem_01_03)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	/* Data is already waiting when the transport is created. */
	REQUIRE(write(sv[1], "hello", 5) == 5);
	env_start(&e, sv[0], sv[1]);
	CHECK_STR(e.r->log, "made");
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made data:5 eof lost:0");
	CHECK_MEM(e.r->in, "hello", 5);
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

TEST(stream_tcp_order_made_data_eof_lost_sem_03)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_tcp(&e);
	peer_send(&e, "abc", 3);
	close(e.peer.fd);
	e.peer.fd = -1;
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made data:3 eof lost:0");
	env_fini(&e);
}

TEST(stream_pause_in_made_sem_02_56_59)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	e.r->pause_in_made = 1;
	env_pair(&e);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	size_t k = 40000;
	unsigned char *b = malloc(k);
	for (size_t i = 0; i < k; i++)
		b[i] = pat(i);
	peer_send(&e, b, k);
	spin(e.loop, 5);
	CHECK_STR(e.r->log, "made");
	/* sem 56: second pause is a no-op */
	xp_transport_pause_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	xp_transport_resume_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 1);
	xp_transport_resume_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 1);
	/* sem 59: everything queued meanwhile arrives, in order */
	struct want_in w = {e.r, k};
	REQUIRE(rec_run_until(e.loop, cond_in, &w, 5));
	CHECK_EQ(e.r->inlen, k);
	CHECK_MEM(e.r->in, b, k);
	CHECK_EQ(e.r->nlost, 0);
	free(b);
	env_fini(&e);
}

TEST(stream_pause_resume_midstream_sem_56_59)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	peer_send(&e, "one", 3);
	struct want_in w = {e.r, 3};
	REQUIRE(rec_run_until(e.loop, cond_in, &w, 5));
	xp_transport_pause_reading(e.t);
	xp_transport_pause_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	peer_send(&e, "two", 3);
	spin(e.loop, 5);
	CHECK_STR(e.r->log, "made data:3");
	xp_transport_resume_reading(e.t);
	w.n = 6;
	REQUIRE(rec_run_until(e.loop, cond_in, &w, 5));
	CHECK_MEM(e.r->in, "onetwo", 6);
	env_fini(&e);
}

TEST(stream_no_data_or_eof_after_eof_sem_04)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	e.r->eof_ret = 1;
	env_pair(&e);
	peer_send(&e, "hello", 5);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_neof, e.r, 5));
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	/* resume after EOF changes nothing: no second read, no second eof */
	xp_transport_resume_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	spin(e.loop, 5);
	CHECK_EQ(e.r->neof, 1);
	CHECK_STR(e.r->log, "made data:5 eof");
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made data:5 eof lost:0");
	env_fini(&e);
}

TEST(stream_nothing_after_lost_socket_released_sem_05)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	/* the descriptor is closed: the peer reads EOF */
	errno = 0;
	CHECK(fcntl(e.fd, F_GETFD) == -1 && errno == EBADF);
	e.peer.verify = false;
	sink_poll(&e.peer);
	CHECK(e.peer.eof);
	/* nothing more reaches the protocol */
	send(e.peer.fd, "late", 4, MSG_NOSIGNAL);
	spin(e.loop, 5);
	CHECK_STR(e.r->log, "made lost:0");
	env_fini(&e);
}

TEST(stream_close_twice_lost_once_later_sem_06_08)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	xp_transport_close(e.t);
	/* sem 8: closing at once, reading stopped, lost not synchronous */
	CHECK_EQ(xp_transport_is_closing(e.t), 1);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	CHECK_EQ(e.r->nlost, 0);
	xp_transport_close(e.t);
	CHECK_EQ(e.r->nlost, 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 1);
	CHECK_STR(e.r->log, "made lost:0");
	env_fini(&e);
}

TEST(stream_abort_twice_lost_once_sem_07)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	xp_transport_abort(e.t);
	CHECK_EQ(e.r->nlost, 0);
	xp_transport_abort(e.t);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	spin(e.loop, 3);
	CHECK_STR(e.r->log, "made lost:0");
	env_fini(&e);
}

TEST(stream_close_then_abort_drops_buffer_sem_07_10)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	size_t clogged = fill_kernel(&e);
	REQUIRE(write_pat(&e, 100000) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 100000);
	xp_transport_close(e.t);
	spin(e.loop, 2);
	CHECK_EQ(e.r->nlost, 0); /* waiting to flush */
	xp_transport_abort(e.t);
	/* sem 10: the buffer is gone at once */
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	CHECK_EQ(e.r->nlost, 0);
	xp_transport_abort(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	/* only what the kernel had before the abort arrives */
	CHECK_EQ(e.peer.len, clogged);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	/* paused by the big write; an abort owes no resume */
	CHECK_STR(e.r->log, "made pause lost:0");
	env_fini(&e);
}

TEST(stream_abort_discards_buffer_sem_10)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	REQUIRE(write_pat(&e, 300000) == 0);
	size_t buffered = xp_transport_get_write_buffer_size(e.t);
	REQUIRE(buffered > 0 && buffered < 300000);
	xp_transport_abort(e.t);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	CHECK_EQ(xp_transport_is_closing(e.t), 1);
	CHECK_EQ(e.r->nlost, 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, 300000 - buffered);
	/* paused by the big write; an abort owes no resume */
	CHECK_STR(e.r->log, "made pause lost:0");
	env_fini(&e);
}

TEST(stream_close_flushes_then_lost_sem_09)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	REQUIRE(write_pat(&e, 500000) == 0);
	REQUIRE(xp_transport_get_write_buffer_size(e.t) > 0);
	xp_transport_close(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	/* data from the peer after close is not delivered */
	peer_send(&e, "zzz", 3);
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 0);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 10));
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, 500000);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	CHECK_STR(e.r->log, "made pause resume lost:0");
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

TEST(stream_close_lost_only_after_drain_sem_09)
{
	struct env e;
	env_init(&e, &hook_ops);
	env_pair_small(&e);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 1000) == 0);
	xp_transport_close(e.t);
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 0);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(g_size_at_lost, 0);
	CHECK_EQ(g_closing_at_lost, 1);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, e.woff);
	env_fini(&e);
}

TEST(stream_tcp_rst_lost_econnreset_no_eof_sem_12)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_tcp(&e);
	struct linger lg = {1, 0};
	REQUIRE(setsockopt(e.peer.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	close(e.peer.fd);
	e.peer.fd = -1;
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(e.r->lost_err, -ECONNRESET);
	CHECK_EQ(e.r->neof, 0);
	CHECK_STR(e.r->log, "made lost:-104");
	CHECK_EQ(e.nexc, 0); /* OSErrors are not reported */
	env_fini(&e);
}

/* A socket whose connect was refused: recv fails with ECONNREFUSED, and
 * getpeername fails. */
static int refused_socket(void)
{
	int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (b < 0 || bind(b, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(b, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	/* b is bound but not listening: connects to its port are refused */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = connect(c, (struct sockaddr *)&sa, sizeof(sa));
	close(b);
	if (r == 0 || (errno != EINPROGRESS && errno != ECONNREFUSED)) {
		close(c);
		return -1;
	}
	return c;
}

TEST(stream_other_oserror_force_closes_no_peername_sem_13_66)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	int c = refused_socket();
	REQUIRE(c >= 0);
	e.t = xp__stream_new(e.loop, c, &e.r->base);
	REQUIRE(e.t);
	e.fd = c;
	/* sem 66: getpeername failed, so peername is the default */
	static const int dflt = 7;
	CHECK(xp_transport_get_extra_info(e.t, "peername", &dflt) == &dflt);
	CHECK(xp_transport_get_extra_info(e.t, "sockname", NULL) != NULL);
	REQUIRE(xp__transport_start(e.t, NULL) == 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(e.r->lost_err, -ECONNREFUSED);
	CHECK_STR(e.r->log, "made lost:-111");
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

TEST(stream_data_received_fails_sem_14_15)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	e.r->data_ret = -EIO;
	env_pair(&e);
	xp_transport *t = e.t;
	peer_send(&e, "hello", 5);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	/* sem 14: the context names the transport and the protocol */
	CHECK(e.exct == t);
	CHECK(e.excp == &e.r->base);
	CHECK_STR(e.r->log, "made data:5 lost:-5");
	CHECK_EQ(e.nexc, 1);
	CHECK_STR(e.excmsg, "Fatal error: protocol.data_received() call failed.");
	CHECK_EQ(e.excerr, -EIO);
	env_fini(&e);
}

/* ---- B. eof_received and half-close ------------------------------------ */

TEST(stream_eof_false_flushes_then_closes_sem_17)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 100000) == 0);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_neof, e.r, 5));
	CHECK_EQ(xp_transport_is_closing(e.t), 1);
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 0); /* still flushing */
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 10));
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	CHECK_STR(e.r->log, "made pause eof resume lost:0");
	env_fini(&e);
}

TEST(stream_eof_true_keeps_open_and_writable_sem_18)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	e.r->eof_ret = 1;
	env_tcp(&e);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_neof, e.r, 5));
	CHECK_EQ(xp_transport_is_closing(e.t), 0);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	e.woff = 0;
	REQUIRE(write_pat(&e, 1000) == 0);
	sink_start(&e.peer);
	struct want_bytes w = {&e, 1000};
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &w, 5));
	CHECK_EQ(e.peer.len, 1000);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 0);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_STR(e.r->log, "made eof lost:0");
	env_fini(&e);
}

TEST(stream_buffered_eof_false_closes_sem_19_60)
{
	struct env e;
	env_init(&e, &rec_buffered_ops);
	env_pair(&e);
	peer_send(&e, "hello", 5);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){e.r, 5}, 5));
	/* sem 60: get_buffer(-1) first, then buffer_updated(n) */
	CHECK_STR(e.r->log, "made getbuf:-1 updated:5");
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made getbuf:-1 updated:5 getbuf:-1 eof lost:0");
	env_fini(&e);
}

TEST(stream_buffered_eof_true_keeps_open_sem_19)
{
	struct env e;
	env_init(&e, &rec_buffered_ops);
	e.r->eof_ret = 1;
	env_pair(&e);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_neof, e.r, 5));
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 0);
	CHECK_EQ(xp_transport_is_closing(e.t), 0);
	CHECK_EQ(xp_transport_write(e.t, "ok", 2), 0);
	char b[2];
	CHECK_EQ(xpt_read_all(e.peer.fd, b, 2, 2000), 2);
	CHECK_MEM(b, "ok", 2);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made getbuf:-1 eof lost:0");
	env_fini(&e);
}

TEST(stream_eof_received_fails_sem_20)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	e.r->eof_ret = -EPROTO;
	env_pair(&e);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(e.nexc, 1);
	CHECK_STR(e.excmsg, "Fatal error: protocol.eof_received() call failed.");
	CHECK_EQ(e.r->lost_err, -EPROTO);
	CHECK_STR(e.r->log, "made eof lost:-71");
	env_fini(&e);
}

TEST(stream_write_eof_empty_buffer_sem_23_24_28)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	CHECK_EQ(xp_transport_can_write_eof(e.t), 1);
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	/* shutdown happened inside the call: the peer sees EOF without the
	 * loop running */
	char c;
	CHECK_EQ(recv(e.peer.fd, &c, 1, MSG_DONTWAIT), 0);
	/* sem 24: again is a no-op */
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	CHECK_EQ(xp_transport_is_closing(e.t), 0);
	/* the other direction still works */
	peer_send(&e, "back", 4);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){e.r, 4}, 5));
	CHECK_STR(e.r->log, "made data:4");
	close(e.peer.fd);
	e.peer.fd = -1;
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made data:4 eof lost:0");
	env_fini(&e);
}

TEST(stream_write_eof_deferred_until_drained_sem_25_26)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 50000) == 0);
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	/* sem 26: writes after write_eof fail and change nothing */
	CHECK_EQ(xp_transport_write(e.t, "x", 1), XP_ESTATE);
	struct iovec v[2] = {{"a", 1}, {"b", 1}};
	CHECK_EQ(xp_transport_writelines(e.t, v, 2), XP_ESTATE);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 50000);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 10));
	/* EOF came after exactly every byte */
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	CHECK_EQ(xp_transport_is_closing(e.t), 0);
	/* still readable */
	peer_send(&e, "r", 1);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){e.r, 1}, 5));
	CHECK_STR(e.r->log, "made data:1");
	env_fini(&e);
}

TEST(stream_write_eof_on_closing_is_noop_sem_27)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 1000) == 0);
	xp_transport_close(e.t);
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_STR(e.r->log, "made lost:0");
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

/* ---- C. write / writelines --------------------------------------------- */

TEST(stream_write_sent_synchronously_sem_31_53)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	/* sem 53: high=4 and 15 bytes all sent: no pause */
	REQUIRE(xp_transport_set_write_buffer_limits(e.t, 4, -1) == 0);
	CHECK_EQ(xp_transport_write(e.t, "0123456789abcde", 15), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	char b[16];
	/* already at the peer, without the loop running */
	CHECK_EQ(recv(e.peer.fd, b, sizeof(b), MSG_DONTWAIT), 15);
	CHECK_MEM(b, "0123456789abcde", 15);
	spin(e.loop, 2);
	CHECK_STR(e.r->log, "made");
	env_fini(&e);
}

TEST(stream_partial_write_buffers_rest_sem_32)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	REQUIRE(xp_transport_set_write_buffer_limits(e.t, 1 << 30, -1) == 0);
	REQUIRE(write_pat(&e, 300000) == 0);
	size_t b = xp_transport_get_write_buffer_size(e.t);
	CHECK(b > 0 && b < 300000);
	/* EAGAIN: the whole write is buffered */
	fill_kernel(&e);
	size_t before = xp_transport_get_write_buffer_size(e.t);
	REQUIRE(write_pat(&e, 777) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), before + 777);
	sink_start(&e.peer);
	struct want_bytes w = {&e, e.woff};
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &w, 10));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	env_fini(&e);
}

TEST(stream_nonempty_buffer_appends_fifo_sem_33_36)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	REQUIRE(xp_transport_set_write_buffer_limits(e.t, 1 << 30, -1) == 0);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 5000) == 0);
	/* the peer makes room, but the loop has not run: a new write must
	 * not jump the queue, nor even try to send */
	sink_poll(&e.peer);
	CHECK(e.peer.len > 0);
	REQUIRE(write_pat(&e, 3000) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 8000);
	struct iovec v[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
	unsigned char parts[3][100];
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 100; j++)
			parts[i][j] = pat(e.woff + (size_t)(i * 100 + j));
		v[i].iov_base = parts[i];
		v[i].iov_len = 100;
	}
	CHECK_EQ(xp_transport_writelines(e.t, v, 3), 0);
	e.woff += 300;
	memset(parts, 0, sizeof(parts)); /* sem 36: the transport copied */
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 8300);
	sink_start(&e.peer);
	struct want_bytes w = {&e, e.woff};
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &w, 10));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	env_fini(&e);
}

TEST(stream_empty_and_invalid_writes_sem_34_35)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	CHECK_EQ(xp_transport_write(e.t, "", 0), 0);
	CHECK_EQ(xp_transport_write(e.t, NULL, 0), 0);
	CHECK_EQ(xp_transport_writelines(e.t, NULL, 0), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 10) == 0);
	CHECK_EQ(xp_transport_write(e.t, "", 0), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 10);
	/* sem 35: not bytes -> an error at once, nothing changes */
	CHECK(xp_transport_write(e.t, NULL, 5) < 0);
	CHECK(xp_transport_writelines(e.t, NULL, 2) < 0);
	CHECK(xp_transport_writelines(e.t, (struct iovec[]){{"x", 1}}, -1) < 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 10);
	CHECK_EQ(xp_transport_is_closing(e.t), 0);
	spin(e.loop, 2);
	CHECK_STR(e.r->log, "made");
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

TEST(stream_write_after_close_dropped_sem_37)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	xp_transport_close(e.t);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(xp_transport_write(e.t, "dropped", 7), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	e.peer.verify = false;
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, 0);
	CHECK_STR(e.r->log, "made lost:0");
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

TEST(stream_write_after_abort_dropped_sem_37)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	xp_transport_abort(e.t);
	CHECK_EQ(xp_transport_write(e.t, "dropped", 7), 0);
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 5));
	CHECK_EQ(e.peer.len, 0);
	env_fini(&e);
}

TEST(stream_flush_error_clears_and_loses_sem_39)
{
	struct env e;
	env_init(&e, &hook_ops);
	e.r->pause_in_made = 1; /* only the write path sees the error */
	env_pair_small(&e);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 1000) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 1000);
	close(e.peer.fd);
	e.peer.fd = -1;
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK(e.r->lost_err == -EPIPE || e.r->lost_err == -ECONNRESET);
	CHECK_EQ(g_size_at_lost, 0);
	CHECK_EQ(e.nexc, 0);
	CHECK_EQ(e.r->nlost, 1);
	env_fini(&e);
}

TEST(stream_write_error_in_write_call_sem_39)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	e.r->pause_in_made = 1;
	env_pair(&e);
	close(e.peer.fd);
	e.peer.fd = -1;
	/* the immediate send fails: no error from write(), a fatal close */
	CHECK_EQ(xp_transport_write(e.t, "x", 1), 0);
	CHECK_EQ(xp_transport_is_closing(e.t), 1);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 0);
	CHECK_EQ(e.r->nlost, 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(e.r->lost_err, -EPIPE);
	CHECK_EQ(e.nexc, 0);
	env_fini(&e);
}

TEST(stream_writelines_one_sendmsg_many_iovecs)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	/* more than IOV_MAX pieces: the rest is queued, order kept */
	int n = IOV_MAX + 100;
	struct iovec *v = calloc((size_t)n, sizeof(*v));
	unsigned char *bytes = malloc((size_t)n * 3);
	for (int i = 0; i < n * 3; i++)
		bytes[i] = pat((size_t)i);
	for (int i = 0; i < n; i++) {
		v[i].iov_base = bytes + i * 3;
		v[i].iov_len = 3;
	}
	CHECK_EQ(xp_transport_writelines(e.t, v, n), 0);
	e.woff = (size_t)n * 3;
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 300);
	memset(bytes, 0, (size_t)n * 3);
	sink_start(&e.peer);
	struct want_bytes w = {&e, e.woff};
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &w, 5));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	free(v);
	free(bytes);
	env_fini(&e);
}

TEST(stream_writelines_like_writes_sem_40_41)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	struct iovec v[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
	CHECK_EQ(xp_transport_writelines(e.t, v, 3), 0);
	CHECK_EQ(xp_transport_writelines(e.t, v, 0), 0); /* writelines([]) */
	char b[4];
	CHECK_EQ(xpt_read_all(e.peer.fd, b, 3, 2000), 3);
	CHECK_MEM(b, "abc", 3);
	/* partial: the rest is queued in order */
	fill_kernel(&e);
	e.peer.verify = false;
	size_t before = e.woff;
	CHECK_EQ(xp_transport_writelines(e.t, v, 3), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 3);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, before + 3}, 5));
	CHECK_EQ(e.peer.len, before + 3);
	CHECK_MEM(e.peer.buf + before, "abc", 3);
	env_fini(&e);
}

/* ---- D. write flow control ---------------------------------------------- */

TEST(stream_limits_sem_43_44_46)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	size_t lo, hi;
	xp_transport_get_write_buffer_limits(e.t, &lo, &hi);
	CHECK_EQ(lo, 16384);
	CHECK_EQ(hi, 65536);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 100, -1), 0);
	xp_transport_get_write_buffer_limits(e.t, &lo, &hi);
	CHECK_EQ(lo, 25);
	CHECK_EQ(hi, 100);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, -1, 4096), 0);
	xp_transport_get_write_buffer_limits(e.t, &lo, &hi);
	CHECK_EQ(lo, 4096);
	CHECK_EQ(hi, 16384);
	/* sem 46: low > high is refused and the old limits stay */
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 1, 2), -EINVAL);
	xp_transport_get_write_buffer_limits(e.t, &lo, &hi);
	CHECK_EQ(lo, 4096);
	CHECK_EQ(hi, 16384);
	env_fini(&e);
}

TEST(stream_high_zero_pauses_on_one_byte_sem_45)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 0, -1), 0);
	size_t lo, hi;
	xp_transport_get_write_buffer_limits(e.t, &lo, &hi);
	CHECK_EQ(lo, 0);
	CHECK_EQ(hi, 0);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 1) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 1);
	CHECK_STR(e.r->log, "made pause");
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, e.woff}, 5));
	spin(e.loop, 2);
	CHECK_STR(e.r->log, "made pause resume");
	env_fini(&e);
}

TEST(stream_pause_strictly_over_high_once_sem_47_48_50)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 10, -1), 0);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 4) == 0);
	REQUIRE(write_pat(&e, 6) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 10);
	CHECK_EQ(e.r->npause, 0); /* exactly high: no pause */
	REQUIRE(write_pat(&e, 1) == 0);
	CHECK_EQ(e.r->npause, 1);
	/* sem 48: already paused */
	REQUIRE(write_pat(&e, 50) == 0);
	CHECK_EQ(e.r->npause, 1);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, e.woff}, 5));
	spin(e.loop, 2);
	CHECK_EQ(e.r->nresume, 1);
	/* sem 50: a second round alternates again */
	sink_stop(&e.peer);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 11) == 0);
	REQUIRE(write_pat(&e, 11) == 0);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, e.woff}, 5));
	spin(e.loop, 2);
	CHECK_STR(e.r->log, "made pause resume pause resume");
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	/* none after connection_lost */
	CHECK_STR(e.r->log, "made pause resume pause resume lost:0");
	env_fini(&e);
}

TEST(stream_writelines_applies_watermarks_sem_41_47)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 10, -1), 0);
	fill_kernel(&e);
	struct iovec v[2] = {{"abcde", 5}, {"fghij", 5}};
	CHECK_EQ(xp_transport_writelines(e.t, v, 2), 0);
	CHECK_EQ(e.r->npause, 0);
	CHECK_EQ(xp_transport_writelines(e.t, v, 1), 0);
	CHECK_EQ(e.r->npause, 1);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 15);
	env_fini(&e);
}

TEST(stream_resume_at_low_zero_only_when_empty_sem_49)
{
	struct env e;
	env_init(&e, &hook_ops);
	env_pair_small(&e);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 1000, 0), 0);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 200000) == 0);
	CHECK_EQ(e.r->npause, 1);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, e.woff}, 10));
	spin(e.loop, 2);
	CHECK_EQ(e.r->nresume, 1);
	CHECK_EQ(g_size_at_resume, 0);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	env_fini(&e);
}

TEST(stream_resume_at_or_below_low_sem_49)
{
	struct env e;
	env_init(&e, &hook_ops);
	env_pair_small(&e);
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 100000, 50000), 0);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 200000) == 0);
	CHECK_EQ(e.r->npause, 1);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, e.woff}, 10));
	spin(e.loop, 2);
	CHECK_EQ(e.r->nresume, 1);
	CHECK(g_size_at_resume <= 50000);
	env_fini(&e);
}

TEST(stream_set_limits_reevaluates_sem_51_52)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	fill_kernel(&e);
	REQUIRE(write_pat(&e, 100) == 0);
	CHECK_EQ(e.r->npause, 0);
	/* sem 51: S=100 buffered, high becomes 99: pause inside the call */
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 99, 0), 0);
	CHECK_STR(e.r->log, "made pause");
	/* sem 52 (decision): raising the limits with the size still over the
	 * new low resumes nothing... */
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 1000, 50), 0);
	CHECK_STR(e.r->log, "made pause");
	/* ...but once the size is at or below the new low it resumes at once */
	CHECK_EQ(xp_transport_set_write_buffer_limits(e.t, 1000, 100), 0);
	CHECK_STR(e.r->log, "made pause resume");
	env_fini(&e);
}

/* 16 MiB through write(), the writer stopping on pause_writing: arrives
 * intact, and the buffer never holds more than high + one chunk. */
struct pump {
	struct rec rec; /* first: recorder callbacks work on it */
	xp_transport *t;
	size_t total, sent, chunk, max_buffered;
	bool paused;
	unsigned char *buf;
};

static void pump_fill(struct pump *p)
{
	while (!p->paused && p->sent < p->total && p->t) {
		size_t n = p->total - p->sent < p->chunk ? p->total - p->sent : p->chunk;
		for (size_t i = 0; i < n; i++)
			p->buf[i] = pat(p->sent + i);
		if (xp_transport_write(p->t, p->buf, n) != 0)
			return;
		p->sent += n;
		size_t b = xp_transport_get_write_buffer_size(p->t);
		if (b > p->max_buffered)
			p->max_buffered = b;
	}
	if (p->sent == p->total && p->t && !xp_transport_is_closing(p->t))
		xp_transport_close(p->t);
}

static void pump_made(xp_protocol *pr, xp_transport *t)
{
	struct pump *p = XP_CONTAINER_OF(pr, struct pump, rec.base);
	rec_made(pr, t);
	p->t = t;
}

static void pump_pause(xp_protocol *pr)
{
	struct pump *p = XP_CONTAINER_OF(pr, struct pump, rec.base);
	p->paused = true;
	p->rec.npause++;
}

static void pump_resume(xp_protocol *pr)
{
	struct pump *p = XP_CONTAINER_OF(pr, struct pump, rec.base);
	p->paused = false;
	p->rec.nresume++;
	pump_fill(p);
}

static void pump_lost(xp_protocol *pr, int err)
{
	struct pump *p = XP_CONTAINER_OF(pr, struct pump, rec.base);
	p->t = NULL;
	rec_lost(pr, err);
}

static const xp_protocol_ops pump_ops = {
    .connection_made = pump_made,
    .connection_lost = pump_lost,
    .pause_writing = pump_pause,
    .resume_writing = pump_resume,
    .data_received = rec_data,
    .eof_received = rec_eof,
};

static int cond_pump_done(void *arg)
{
	struct env *e = arg;
	return (e->peer.eof || e->peer.err) && e->r->nlost;
}

static void pump_run(struct env *e, struct pump *p, bool tcp)
{
	memset(p, 0, sizeof(*p));
	p->rec.base.ops = &pump_ops;
	p->rec.loop = e->loop;
	p->total = 16u << 20;
	p->chunk = 65536;
	p->buf = malloc(p->chunk);
	free(e->r);
	e->r = &p->rec;
	if (tcp)
		env_tcp(e);
	else
		env_pair(e);
	sink_start(&e->peer);
	pump_fill(p);
	REQUIRE(rec_run_until(e->loop, cond_pump_done, e, 60));
	CHECK_EQ(e->peer.len, p->total);
	CHECK_EQ(e->peer.bad_at, SIZE_MAX);
	CHECK_EQ(e->peer.err, 0);
	CHECK_EQ(p->rec.lost_err, 0);
	CHECK(p->rec.npause > 0);
	CHECK_EQ(p->rec.npause, p->rec.nresume);
	CHECK(p->max_buffered <= 65536 + p->chunk);
	free(p->buf);
	/* env_fini frees e->r with rec_free: give it a heap copy */
	e->r = rec_new(&rec_stream_ops, e->loop);
	e->r->nmade = p->rec.nmade;
	e->r->nlost = p->rec.nlost;
	free(p->rec.in);
}

TEST(stream_16mib_write_bounded_by_watermarks)
{
	struct env e;
	static struct pump p;
	env_init(&e, &rec_stream_ops);
	pump_run(&e, &p, false);
	env_fini(&e);
}

TEST(stream_16mib_write_tcp)
{
	struct env e;
	static struct pump p;
	env_init(&e, &rec_stream_ops);
	pump_run(&e, &p, true);
	env_fini(&e);
}

/* ---- E. read flow control on a closed transport -------------------------- */

TEST(stream_pause_resume_on_closed_noop_sem_57)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	xp_transport_close(e.t);
	xp_transport_pause_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	xp_transport_resume_reading(e.t);
	CHECK_EQ(xp_transport_is_reading(e.t), 0);
	peer_send(&e, "x", 1);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made lost:0");
	env_fini(&e);
}

TEST(stream_read_size_limits_each_read)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	CHECK_EQ(xp_transport_set_read_size(e.t, 4), 0);
	peer_send(&e, "abcdefghij", 10);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){e.r, 10}, 5));
	CHECK_STR(e.r->log, "made data:4 data:4 data:2");
	CHECK_MEM(e.r->in, "abcdefghij", 10);
	env_fini(&e);
}

/* ---- F. BufferedProtocol -------------------------------------------------- */

TEST(stream_get_buffer_empty_is_fatal_sem_61)
{
	struct env e;
	env_init(&e, &rec_buffered_ops);
	e.r->bufsize = 0;
	env_pair(&e);
	peer_send(&e, "hello", 5);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(e.nexc, 1);
	CHECK_STR(e.excmsg, "Fatal error: protocol.get_buffer() call failed.");
	CHECK(e.r->lost_err != 0);
	CHECK(strstr(e.r->log, "updated") == NULL);
	CHECK_EQ(e.r->nlost, 1);
	env_fini(&e);
}

/* Drop "getbuf:-1" right before "eof": asyncio may or may not make it. */
static void strip_getbuf_before_eof(char *log)
{
	char *p = strstr(log, "getbuf:-1 eof");
	if (p)
		memmove(p, p + 10, strlen(p + 10) + 1);
}

TEST(stream_three_byte_buffer_sem_63)
{
	struct env e;
	env_init(&e, &rec_buffered_ops);
	e.r->bufsize = 3;
	env_pair(&e);
	peer_send(&e, "abcde", 5);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	strip_getbuf_before_eof(e.r->log);
	CHECK_STR(e.r->log, "made getbuf:-1 updated:3 getbuf:-1 updated:2 eof lost:0");
	CHECK_EQ(e.r->inlen, 5);
	CHECK_MEM(e.r->in, "abcde", 5);
	env_fini(&e);
}

TEST(stream_buffered_9kib_small_buffers_sem_63)
{
	struct env e;
	env_init(&e, &rec_buffered_ops);
	e.r->bufsize = 100;
	env_tcp(&e);
	unsigned char b[9216];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = pat(i);
	peer_send(&e, b, sizeof(b));
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 10));
	CHECK_EQ(e.r->inlen, sizeof(b));
	CHECK_MEM(e.r->in, b, sizeof(b));
	CHECK_EQ(e.r->neof, 1);
	CHECK_EQ(e.r->lost_err, 0);
	env_fini(&e);
}

TEST(stream_set_protocol_switches_to_buffered_sem_64)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair(&e);
	struct rec *r2 = rec_new(&rec_buffered_ops, e.loop);
	peer_send(&e, "one", 3);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){e.r, 3}, 5));
	xp_transport_set_protocol(e.t, &r2->base);
	CHECK(xp_transport_get_protocol(e.t) == &r2->base);
	r2->t = e.t;
	peer_send(&e, "two", 3);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){r2, 3}, 5));
	CHECK_STR(r2->log, "getbuf:-1 updated:3");
	CHECK_STR(e.r->log, "made data:3");
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, rec_cond_lost, r2, 5));
	CHECK_STR(r2->log, "getbuf:-1 updated:3 lost:0");
	/* the old protocol never hears of it again */
	CHECK_EQ(e.r->nlost, 0);
	e.r->nlost = 1; /* for env_fini: nothing left to abort */
	rec_free(r2);
	env_fini(&e);
}

/* ---- G. get_extra_info ----------------------------------------------------- */

TEST(stream_extra_info_tcp_sem_65_66)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_tcp(&e);
	static const int dflt = 1;
	CHECK(xp_transport_get_extra_info(e.t, "no-such-key", NULL) == NULL);
	CHECK(xp_transport_get_extra_info(e.t, "no-such-key", &dflt) == &dflt);
	const xp_sockaddr *peer = xp_transport_get_extra_info(e.t, "peername", NULL);
	const xp_sockaddr *self = xp_transport_get_extra_info(e.t, "sockname", NULL);
	const int *sock = xp_transport_get_extra_info(e.t, "socket", NULL);
	REQUIRE(peer && self && sock);
	CHECK_EQ(*sock, e.fd);
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	REQUIRE(getsockname(e.peer.fd, (struct sockaddr *)&a, &len) == 0);
	CHECK_EQ(peer->u.sa.sa_family, AF_INET);
	CHECK_EQ(peer->len, len);
	CHECK_MEM(&peer->u.ss, &a, len);
	len = sizeof(a);
	REQUIRE(getpeername(e.peer.fd, (struct sockaddr *)&a, &len) == 0);
	CHECK_EQ(self->len, len);
	CHECK_MEM(&self->u.ss, &a, len);
	CHECK_EQ(xp_transport_kind(e.t), XP_TRANSPORT_STREAM);
	/* TCP_NODELAY is on for TCP */
	int v = 0;
	len = sizeof(v);
	REQUIRE(getsockopt(e.fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0);
	CHECK(v != 0);
	env_fini(&e);
}

TEST(stream_unix_path_socket_sem_66)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/xport-stream-test-%d.sock", (int)getpid());
	unlink(sa.sun_path);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(l >= 0);
	REQUIRE(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	REQUIRE(listen(l, 4) == 0);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	int a = accept(l, NULL, NULL);
	REQUIRE(a >= 0);
	close(l);
	env_start(&e, a, c); /* the transport is the accepted side */
	const xp_sockaddr *self = xp_transport_get_extra_info(e.t, "sockname", NULL);
	REQUIRE(self);
	CHECK_EQ(self->u.sa.sa_family, AF_UNIX);
	char text[200];
	CHECK(xp_sockaddr_format(&self->u.sa, self->len, text, sizeof(text)) >= 0);
	CHECK(strstr(text, "xport-stream-test") != NULL);
	CHECK(xp_transport_get_extra_info(e.t, "socket", NULL) != NULL);
	/* no TCP_NODELAY on a Unix socket: the option does not exist there */
	int v = 0;
	socklen_t len = sizeof(v);
	CHECK(getsockopt(e.fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0 || v == 0);
	/* a round trip */
	peer_send(&e, "ping", 4);
	REQUIRE(rec_run_until(e.loop, cond_in, &(struct want_in){e.r, 4}, 5));
	CHECK_EQ(xp_transport_write(e.t, "pong", 4), 0);
	char b[4];
	CHECK_EQ(xpt_read_all(e.peer.fd, b, 4, 2000), 4);
	CHECK_MEM(b, "pong", 4);
	unlink(sa.sun_path);
	env_fini(&e);
}

/* ---- loop.sendfile ------------------------------------------------------ */

/* An unlinked temporary file holding pat() bytes [0, size). */
static int pat_file(size_t size)
{
	char path[] = "/tmp/xport-sendfile-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	unsigned char b[8192];
	for (size_t off = 0; off < size;) {
		size_t n = size - off < sizeof(b) ? size - off : sizeof(b);
		for (size_t i = 0; i < n; i++)
			b[i] = pat(off + i);
		if (write(fd, b, n) != (ssize_t)n) {
			close(fd);
			return -1;
		}
		off += n;
	}
	return fd;
}

static int cond_fut_done(void *arg)
{
	return xp_future_done(arg);
}

TEST(stream_sendfile_native_whole_file)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_tcp(&e);
	size_t size = 3u << 20;
	int f = pat_file(size);
	REQUIRE(f >= 0);
	sink_start(&e.peer);
	xp_future *fut = xp_loop_sendfile(e.loop, e.t, f, 0, 0);
	REQUIRE(fut);
	REQUIRE(rec_run_until(e.loop, cond_fut_done, fut, 20));
	CHECK_EQ(xp_future_error(fut), 0);
	CHECK_EQ(xp_future_result_num(fut), (long long)size);
	CHECK_EQ(lseek(f, 0, SEEK_CUR), (off_t)size);
	xp_future_release(fut);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 10));
	CHECK_EQ(e.peer.len, size);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	close(f);
	env_fini(&e);
}

TEST(stream_sendfile_writes_meanwhile_follow_the_file)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	size_t size = 1u << 20, off = 1000, count = 500000;
	int f = pat_file(size);
	REQUIRE(f >= 0);
	/* the file slice [off, off+count) continues pat() from woff=off */
	e.woff = off;
	e.peer.len = off;
	xp_future *fut = xp_loop_sendfile(e.loop, e.t, f, (off_t)off, count);
	REQUIRE(fut);
	CHECK_EQ(xp_future_done(fut), 0); /* the peer is not reading yet */
	e.woff = off + count;
	REQUIRE(write_pat(&e, 3000) == 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(e.t), 3000);
	/* a second sendfile while one runs is refused */
	xp_future *f2 = xp_loop_sendfile(e.loop, e.t, f, 0, 10);
	REQUIRE(f2);
	CHECK_EQ(xp_future_error(f2), -EBUSY);
	xp_future_release(f2);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_fut_done, fut, 20));
	CHECK_EQ(xp_future_result_num(fut), (long long)count);
	REQUIRE(rec_run_until(e.loop, cond_peer_bytes, &(struct want_bytes){&e, e.woff}, 10));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	xp_future_release(fut);
	close(f);
	env_fini(&e);
}

TEST(stream_sendfile_fallback_when_buffer_not_empty)
{
	struct env e;
	env_init(&e, &hook_ops);
	env_pair_small(&e);
	size_t size = 2u << 20;
	int f = pat_file(size);
	REQUIRE(f >= 0);
	/* a non-empty buffer forces the read+write path; the file data goes
	 * after it, then the write made meanwhile, then EOF */
	fill_kernel(&e);
	size_t pre = e.woff;
	REQUIRE(write_pat(&e, 100) == 0);
	size_t file_off = pre + 100;
	xp_future *fut = xp_loop_sendfile(e.loop, e.t, f, (off_t)file_off, size - file_off);
	REQUIRE(fut);
	e.woff = size;
	/* flow control held: the buffer stays near the high-water mark */
	CHECK(xp_transport_get_write_buffer_size(e.t) <= 65536 + 65536);
	CHECK_EQ(xp_future_done(fut), 0);
	REQUIRE(write_pat(&e, 5000) == 0);
	CHECK_EQ(xp_transport_write_eof(e.t), 0);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_fut_done, fut, 20));
	CHECK_EQ(xp_future_error(fut), 0);
	CHECK_EQ(xp_future_result_num(fut), (long long)(size - file_off));
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 20));
	CHECK_EQ(e.peer.len, e.woff);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	CHECK_EQ(e.r->npause, e.r->nresume);
	xp_future_release(fut);
	close(f);
	env_fini(&e);
}

TEST(stream_sendfile_abort_fails_future)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	int f = pat_file(1u << 20);
	REQUIRE(f >= 0);
	xp_future *fut = xp_loop_sendfile(e.loop, e.t, f, 0, 0);
	REQUIRE(fut);
	CHECK_EQ(xp_future_done(fut), 0);
	xp_transport_abort(e.t);
	CHECK(xp_future_done(fut));
	CHECK(xp_future_error(fut) < 0);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made lost:0");
	xp_future_release(fut);
	/* sendfile on a closed transport fails at once */
	close(f);
	env_fini(&e);
}

TEST(stream_sendfile_close_waits_for_file)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	env_pair_small(&e);
	size_t size = 600000;
	int f = pat_file(size);
	REQUIRE(f >= 0);
	xp_future *fut = xp_loop_sendfile(e.loop, e.t, f, 0, 0);
	REQUIRE(fut);
	xp_transport_close(e.t);
	xp_future *f2 = xp_loop_sendfile(e.loop, e.t, f, 0, 0);
	REQUIRE(f2);
	CHECK_EQ(xp_future_error(f2), XP_ECLOSED);
	xp_future_release(f2);
	spin(e.loop, 3);
	CHECK_EQ(e.r->nlost, 0);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 20));
	CHECK_EQ(xp_future_result_num(fut), (long long)size);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 10));
	CHECK_EQ(e.peer.len, size);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	CHECK_STR(e.r->log, "made lost:0");
	xp_future_release(fut);
	close(f);
	env_fini(&e);
}

/* The public way in: xp_connect_accepted_socket wraps an fd in a stream
 * transport (sem 1, 3 through connect.c). */
TEST(stream_connect_accepted_socket_sem_01_03)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	xp_future *fut = xp_connect_accepted_socket(e.loop, rec_factory_one, e.r, sv[0], NULL);
	REQUIRE(fut);
	CHECK_EQ(e.r->nmade, 0);
	e.fd = sv[0];
	e.peer.fd = sv[1];
	REQUIRE(rec_run_until(e.loop, cond_fut_done, fut, 5));
	CHECK_EQ(xp_future_error(fut), 0);
	e.t = xp_future_result(fut);
	CHECK(e.t == e.r->t);
	CHECK_EQ(xp_transport_kind(e.t), XP_TRANSPORT_STREAM);
	xp_future_release(fut);
	peer_send(&e, "hi", 2);
	shutdown(e.peer.fd, SHUT_WR);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_STR(e.r->log, "made data:2 eof lost:0");
	env_fini(&e);
}

/* A kind without sendfile(2) support (a write pipe): the proxy-protocol
 * fallback copies the file with flow control, and the app's protocol is
 * back in place afterwards. */
TEST(stream_sendfile_generic_fallback_write_pipe)
{
	struct env e;
	env_init(&e, &rec_stream_ops);
	int p[2];
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	e.peer.fd = p[0];
	xpt_set_nonblock(p[0]);
	xp_future *cf = xp_connect_write_pipe(e.loop, rec_factory_one, e.r, p[1]);
	REQUIRE(cf);
	REQUIRE(rec_run_until(e.loop, cond_fut_done, cf, 5));
	REQUIRE(xp_future_error(cf) == 0);
	e.t = xp_future_result(cf);
	xp_future_release(cf);
	size_t size = 2u << 20, off = 5;
	int f = pat_file(size);
	REQUIRE(f >= 0);
	e.peer.len = off;
	xp_future *fut = xp_loop_sendfile(e.loop, e.t, f, (off_t)off, 0);
	REQUIRE(fut);
	CHECK(xp_transport_get_protocol(e.t) != &e.r->base); /* the proxy */
	CHECK(xp_transport_get_write_buffer_size(e.t) <= 65536 + 65536);
	xp_future *f2 = xp_loop_sendfile(e.loop, e.t, f, 0, 1);
	CHECK_EQ(xp_future_error(f2), -EBUSY);
	xp_future_release(f2);
	sink_start(&e.peer);
	REQUIRE(rec_run_until(e.loop, cond_fut_done, fut, 20));
	CHECK_EQ(xp_future_error(fut), 0);
	CHECK_EQ(xp_future_result_num(fut), (long long)(size - off));
	CHECK(xp_transport_get_protocol(e.t) == &e.r->base);
	xp_future_release(fut);
	xp_transport_close(e.t);
	REQUIRE(rec_run_until(e.loop, cond_peer_eof, &e, 10));
	CHECK_EQ(e.peer.len, size);
	CHECK_EQ(e.peer.bad_at, SIZE_MAX);
	REQUIRE(rec_run_until(e.loop, cond_lost, &e, 5));
	CHECK_EQ(e.r->npause, e.r->nresume);
	CHECK_STR(e.r->log, "made lost:0");
	close(f);
	env_fini(&e);
}
