// SPDX-License-Identifier: MIT
/*
 * test_proto_echo.c - the simple built-in protocols over real sockets:
 * echo (RFC 862), discard (RFC 863), chargen (RFC 864), with their stats,
 * hooks, idle timeout and flow control.
 */
#include "test.h"
#include "recorder.h"
#include "proto_util.h"

#include <netinet/tcp.h>

/* ---- echo ------------------------------------------------------------- */

TEST(proto_echo_4mib_half_close)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {0};
	struct rec *cl = rec_new(&rec_stream_ops, loop);
	size_t n = 4u << 20;
	unsigned char *data = pu_payload(n, 1);
	int c, s;

	signal(SIGPIPE, SIG_IGN);
	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	pu_hooks_set(&o.hooks, &h);
	REQUIRE(pu_wrap(loop, s, xp_echo_new(&o)));
	xp_transport *ct = pu_wrap(loop, c, &cl->base);
	REQUIRE(ct);
	CHECK_EQ(h.nstart, 1);
	CHECK_EQ(xp_transport_write(ct, data, n), 0);
	CHECK_EQ(xp_transport_write_eof(ct), 0);
	/* The client closes on EOF (eof_ret 0): EOF came after every byte. */
	CHECK(rec_run_until(loop, rec_cond_lost, cl, 8));
	CHECK_EQ(cl->inlen, n);
	if (cl->inlen == n)
		CHECK_MEM(cl->in, data, n);
	CHECK_EQ(cl->neof, 1);
	CHECK_EQ(cl->lost_err, 0);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 3));
	CHECK_EQ(h.nend, 1);
	CHECK_STR(h.end, "eof");
	CHECK_EQ(h.last.received, n);
	CHECK_EQ(h.last.sent, n);
	CHECK_EQ(h.data_in, n);
	CHECK_EQ(h.data_out, n);
	CHECK_EQ(h.last.error, 0);
	CHECK(h.last.seconds >= 0);
	CHECK(strncmp(h.last.peer, "127.0.0.1:", 10) == 0);
	free(data);
	rec_free(cl);
	pu_loop_free(loop);
}

/* The peer sends without reading: the echo's queue reaches the high
 * watermark, reading pauses, and memory stays bounded; once the peer reads
 * again everything arrives. */
TEST(proto_echo_flow_control_bounded)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {.high = 32768, .low = 8192, .read_size = 16384};
	struct rec *cl = rec_new(&rec_stream_ops, loop);
	size_t n = 8u << 20;
	unsigned char *data = pu_payload(n, 2);
	int c, s, small = 65536;

	signal(SIGPIPE, SIG_IGN);
	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	pu_hooks_set(&o.hooks, &h);
	xp_transport *st = pu_wrap(loop, s, xp_echo_new(&o));
	REQUIRE(st);
	h.watch = st;
	cl->pause_in_made = 1;
	xp_transport *ct = pu_wrap(loop, c, &cl->base);
	REQUIRE(ct);
	CHECK_EQ(xp_transport_write(ct, data, n), 0);
	pu_spin(loop, 0.5);
	/* Echo stopped reading: its queue is full and the client's too. */
	CHECK(!xp_transport_is_reading(st));
	CHECK(h.max_wbuf > 0);
	CHECK(h.max_wbuf <= 32768 + 16384);
	CHECK(h.data_in < n);
	xp_transport_resume_reading(ct);
	CHECK_EQ(xp_transport_write_eof(ct), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, cl, 8));
	CHECK_EQ(cl->inlen, n);
	if (cl->inlen == n)
		CHECK_MEM(cl->in, data, n);
	CHECK(h.max_wbuf <= 32768 + 16384);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 3));
	CHECK_STR(h.end, "eof");
	free(data);
	rec_free(cl);
	pu_loop_free(loop);
}

TEST(proto_echo_idle_timeout)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {.idle_timeout = 0.2};
	struct rec *cl = rec_new(&rec_stream_ops, loop);
	int c, s;

	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	pu_hooks_set(&o.hooks, &h);
	REQUIRE(pu_wrap(loop, s, xp_echo_new(&o)));
	xp_transport *ct = pu_wrap(loop, c, &cl->base);
	REQUIRE(ct);
	/* Traffic at 0.1 s pushes the deadline to about 0.3 s. */
	pu_spin(loop, 0.1);
	xp_transport_write(ct, "x", 1);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 3));
	CHECK_STR(h.end, "timeout");
	CHECK(h.last.seconds >= 0.29);
	CHECK(h.last.seconds < 2);
	CHECK_EQ(h.last.received, 1);
	CHECK(rec_run_until(loop, rec_cond_lost, cl, 3));
	CHECK_EQ(cl->inlen, 1);
	CHECK_EQ(cl->neof, 1); /* a clean close: nothing was queued */
	rec_free(cl);
	pu_loop_free(loop);
}

/* Closed from our side (e.g. the server shutting down): end "closed". */
TEST(proto_echo_closed_by_us)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {0};
	struct rec *cl = rec_new(&rec_stream_ops, loop);
	int c, s;

	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	pu_hooks_set(&o.hooks, &h);
	xp_transport *st = pu_wrap(loop, s, xp_echo_new(&o));
	REQUIRE(st);
	REQUIRE(pu_wrap(loop, c, &cl->base));
	xp_transport_close(st);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 3));
	CHECK_STR(h.end, "closed");
	CHECK(rec_run_until(loop, rec_cond_lost, cl, 3));
	rec_free(cl);
	pu_loop_free(loop);
}

/* A reset from the peer: end "reset". */
TEST(proto_echo_reset_by_peer)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {0};
	struct linger l = {1, 0};
	int c, s;

	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	pu_hooks_set(&o.hooks, &h);
	REQUIRE(pu_wrap(loop, s, xp_echo_new(&o)));
	setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(c);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 3));
	CHECK_STR(h.end, "reset");
	CHECK_EQ(h.last.error, -ECONNRESET);
	pu_loop_free(loop);
}

/* ---- discard ---------------------------------------------------------- */

TEST(proto_discard_counts_and_closes_after_eof)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {0};
	struct rec *cl = rec_new(&rec_stream_ops, loop);
	size_t n = 300000;
	unsigned char *data = pu_payload(n, 3);
	int c, s;

	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	pu_hooks_set(&o.hooks, &h);
	REQUIRE(pu_wrap(loop, s, xp_discard_new(&o)));
	xp_transport *ct = pu_wrap(loop, c, &cl->base);
	REQUIRE(ct);
	CHECK_EQ(xp_transport_write(ct, data, n), 0);
	CHECK(!rec_run_until(loop, pu_cond_end, &h, 0.2)); /* no EOF yet: stays */
	CHECK_EQ(xp_transport_write_eof(ct), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, cl, 5));
	CHECK_EQ(cl->inlen, 0);
	CHECK_EQ(cl->neof, 1);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 3));
	CHECK_STR(h.end, "eof");
	CHECK_EQ(h.last.received, n);
	CHECK_EQ(h.last.sent, 0);
	CHECK_EQ(h.data_in, n);
	free(data);
	rec_free(cl);
	pu_loop_free(loop);
}

/* ---- chargen ---------------------------------------------------------- */

/* Byte k of a chargen stream, as RFC 864 describes it. */
static int chargen_byte(size_t k)
{
	size_t line = k / 74, col = k % 74;

	if (col == 72)
		return '\r';
	if (col == 73)
		return '\n';
	return 0x20 + (int)((line + col) % 95);
}

static size_t chargen_first_bad(const unsigned char *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (p[k] != chargen_byte(k))
			return k;
	return n;
}

static int cond_inlen(void *arg)
{
	return ((struct rec *)arg)->inlen >= 200000;
}

TEST(proto_chargen_pattern)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {0};
	struct rec *cl = rec_new(&rec_stream_ops, loop);
	const char *l0 =
	    " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n";
	const char *l1 =
	    "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n";
	const char *l2 =
	    "\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n";
	int c, s;

	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	pu_hooks_set(&o.hooks, &h);
	REQUIRE(pu_wrap(loop, s, xp_chargen_new(&o)));
	xp_transport *ct = pu_wrap(loop, c, &cl->base);
	REQUIRE(ct);
	CHECK(rec_run_until(loop, cond_inlen, cl, 5));
	REQUIRE(cl->inlen >= 3 * 74);
	CHECK_EQ(strlen(l0), 74);
	CHECK_MEM(cl->in, l0, 74);
	CHECK_MEM(cl->in + 74, l1, 74);
	CHECK_MEM(cl->in + 148, l2, 74);
	/* Across batches and the 95-line cycle too. */
	CHECK_EQ(chargen_first_bad(cl->in, cl->inlen), cl->inlen);
	/* Input is read and thrown away, and counted. */
	xp_transport_write(ct, "ignored", 7);
	CHECK_EQ(xp_transport_write_eof(ct), 0);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 5));
	CHECK_STR(h.end, "eof");
	CHECK_EQ(h.last.received, 7);
	CHECK(h.last.sent >= 200000);
	CHECK_EQ(h.data_out, h.last.sent);
	/* chargen closes after our EOF; the client follows at its EOF. */
	CHECK(rec_run_until(loop, rec_cond_lost, cl, 5));
	rec_free(cl);
	pu_loop_free(loop);
}

/* A slow reader: chargen's write buffer never exceeds high + one batch. */
struct slow {
	xp_loop *loop;
	int fd;
	int ticks;
	unsigned char *buf;
	size_t got, cap;
	xp_handle *h;
	xp_transport *watch;
	size_t max_wbuf;
};

static int slow_tick(void *arg)
{
	struct slow *s = arg;
	ssize_t n;

	xp_handle_release(s->h);
	s->h = NULL;
	if (s->watch) {
		size_t w = xp_transport_get_write_buffer_size(s->watch);
		if (w > s->max_wbuf)
			s->max_wbuf = w;
	}
	n = read(s->fd, s->buf + s->got, s->cap - s->got < 2048 ? s->cap - s->got : 2048);
	if (n > 0)
		s->got += (size_t)n;
	s->ticks++;
	s->h = xp_handle_retain(xp_call_later(s->loop, 0.002, slow_tick, s));
	return 0;
}

static int slow_done(void *arg)
{
	return ((struct slow *)arg)->ticks >= 150;
}

TEST(proto_chargen_slow_reader_bounded)
{
	xp_loop *loop = xp_loop_new();
	struct pu_hooks h = {0};
	xp_proto_opts o = {.high = 65536, .low = 16384};
	struct slow sl = {.loop = loop, .cap = 1 << 20};
	int c, s, small = 16384;

	signal(SIGPIPE, SIG_IGN);
	REQUIRE(pu_tcp_pair(&c, &s) == 0);
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	pu_hooks_set(&o.hooks, &h);
	xp_transport *st = pu_wrap(loop, s, xp_chargen_new(&o));
	REQUIRE(st);
	h.watch = sl.watch = st;
	sl.fd = c;
	sl.buf = malloc(sl.cap);
	sl.h = xp_handle_retain(xp_call_soon(loop, slow_tick, &sl));
	CHECK(rec_run_until(loop, slow_done, &sl, 8));
	xp_handle_cancel(sl.h);
	xp_handle_release(sl.h);
	/* The queue filled up (so chargen was paused) but stayed bounded. */
	CHECK(h.max_wbuf > 65536);
	CHECK(h.max_wbuf <= 65536 + 4 * 95 * 74);
	CHECK(sl.max_wbuf <= 65536 + 4 * 95 * 74);
	/* It did not keep writing while paused: sent is what was read, plus
	 * what the kernel holds, plus the bounded queue. */
	CHECK(h.data_out <= sl.got + (4u << 20));
	CHECK(sl.got > 0);
	CHECK_EQ(chargen_first_bad(sl.buf, sl.got), sl.got);
	close(c);
	CHECK(rec_run_until(loop, pu_cond_end, &h, 5));
	CHECK(!strcmp(h.end, "reset") || !strcmp(h.end, "eof"));
	free(sl.buf);
	pu_loop_free(loop);
}
