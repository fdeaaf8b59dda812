// SPDX-License-Identifier: MIT
/*
 * test_proto_relay.c - the relay between real descriptors: socketpairs,
 * loopback TCP, pipes and a `cat` child; half-close, flow control, the
 * timeouts, resets and the ends' lifecycle.
 */
#include "test.h"
#include "recorder.h"
#include "proto_util.h"

/* A relay between two socketpairs; the far sides run recorders pa, pb. */
struct rfix {
	xp_loop *loop;
	xp_relay *r;
	struct pu_hooks h;
	xp_relay_opts o;
	struct rec *pa, *pb;
	xp_transport *ta, *tb; /* the relay's ends */
	xp_transport *ca, *cb; /* the recorders' transports */
};

static void rfix_opts(struct rfix *f)
{
	f->loop = xp_loop_new();
	pu_hooks_set(&f->o.proto.hooks, &f->h);
	f->o.on_done = pu_on_done;
	f->o.arg = &f->h;
}

/* Connect end `end` of the relay to a new socketpair with recorder *peer. */
static void rfix_end(struct rfix *f, int end)
{
	int sv[2];
	struct rec *p = rec_new(&rec_stream_ops, f->loop);
	xp_transport *t;

	REQUIRE(xpt_socketpair(sv) == 0);
	p->eof_ret = 1;
	t = pu_wrap(f->loop, sv[0], xp_relay_stream_protocol(f->r, end));
	REQUIRE(t);
	if (end == 0) {
		f->pa = p;
		f->ta = t;
		f->ca = pu_wrap(f->loop, sv[1], &p->base);
	} else {
		f->pb = p;
		f->tb = t;
		f->cb = pu_wrap(f->loop, sv[1], &p->base);
	}
}

static void rfix_start(struct rfix *f)
{
	f->r = xp_relay_new(f->loop, &f->o);
	REQUIRE(f->r);
	rfix_end(f, 0);
	rfix_end(f, 1);
}

static void rfix_free(struct rfix *f)
{
	/* Close the recorders still open, then let everything settle. */
	if (f->pa && !f->pa->nlost && f->ca)
		xp_transport_close(f->ca);
	if (f->pb && !f->pb->nlost && f->cb)
		xp_transport_close(f->cb);
	if (f->pa)
		rec_run_until(f->loop, rec_cond_lost, f->pa, 3);
	if (f->pb)
		rec_run_until(f->loop, rec_cond_lost, f->pb, 3);
	rec_run_until(f->loop, pu_cond_done, &f->h, 3);
	if (f->pa)
		rec_free(f->pa);
	if (f->pb)
		rec_free(f->pb);
	pu_loop_free(f->loop);
}

TEST(proto_relay_16mib_each_way_half_close)
{
	struct rfix f = {0};
	size_t n = 16u << 20;
	unsigned char *a = pu_payload(n, 11), *b = pu_payload(n, 12);

	rfix_opts(&f);
	rfix_start(&f);
	CHECK_EQ(f.h.nstart, 1);
	CHECK_EQ(xp_transport_write(f.ca, a, n), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	/* A's EOF reaches B after all of A's bytes... */
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.pb, 10));
	CHECK_EQ(f.pb->inlen, n);
	if (f.pb->inlen == n)
		CHECK_MEM(f.pb->in, a, n);
	CHECK_EQ(f.h.ndone, 0);
	/* ...and the other direction still flows. */
	f.pa->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.cb, b, n), 0);
	CHECK_EQ(xp_transport_write_eof(f.cb), 0);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 10));
	CHECK_EQ(f.pa->inlen, n);
	if (f.pa->inlen == n)
		CHECK_MEM(f.pa->in, b, n);
	CHECK_EQ(f.pa->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_EQ(f.h.ndone, 1);
	CHECK_STR(f.h.done_end, "eof");
	CHECK_EQ(f.h.done.received, n);
	CHECK_EQ(f.h.done.sent, n);
	CHECK_EQ(f.h.data_in, n);
	CHECK_EQ(f.h.data_out, n);
	CHECK_EQ(f.h.nend, 1);
	CHECK_STR(xp_relay_stats(f.r) ? "ok" : NULL, "ok");
	free(a);
	free(b);
	rfix_free(&f);
}

/* B does not read: the relay's queue to B stops at the watermark and A's
 * reading is paused; memory stays flat.  Then B reads and all arrives. */
TEST(proto_relay_slow_reader_pauses_other_end)
{
	struct rfix f = {0};
	size_t n = 8u << 20;
	unsigned char *a = pu_payload(n, 13);

	rfix_opts(&f);
	f.o.proto.high = 65536;
	f.o.proto.low = 16384;
	f.o.proto.read_size = 32768;
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	rfix_end(&f, 1);
	xp_transport_pause_reading(f.cb);
	CHECK_EQ(xp_transport_write(f.ca, a, n), 0);
	pu_spin(f.loop, 0.5);
	CHECK(!xp_transport_is_reading(f.ta));
	CHECK(xp_transport_get_write_buffer_size(f.tb) > 0);
	CHECK(xp_transport_get_write_buffer_size(f.tb) <= 65536 + 32768);
	/* The rest waits in the sender's own queue, not in the relay. */
	CHECK(xp_transport_get_write_buffer_size(f.ca) > n / 2);
	CHECK(f.h.data_in < n);
	xp_transport_resume_reading(f.cb);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.pb, 10));
	CHECK_EQ(f.pb->inlen, n);
	if (f.pb->inlen == n)
		CHECK_MEM(f.pb->in, a, n);
	CHECK(xp_transport_is_reading(f.ta) == 0); /* at EOF now */
	xp_transport_write_eof(f.cb);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "eof");
	free(a);
	rfix_free(&f);
}

/* End 1 connects late: end 0's reading is held paused, nothing is lost. */
TEST(proto_relay_late_end_holds_reading)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	CHECK_EQ(xp_transport_write(f.ca, "early bytes", 11), 0);
	pu_spin(f.loop, 0.1);
	CHECK(!xp_transport_is_reading(f.ta));
	CHECK_EQ(f.h.data_in, 0);
	rfix_end(&f, 1);
	CHECK(xp_transport_is_reading(f.ta));
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.pb, 3));
	CHECK_EQ(f.pb->inlen, 11);
	CHECK_MEM(f.pb->in, "early bytes", 11);
	xp_transport_write_eof(f.cb);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "eof");
	rfix_free(&f);
}

TEST(proto_relay_no_half_close)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.o.no_half_close = 1;
	rfix_start(&f);
	f.pb->eof_ret = 0;
	f.pa->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.ca, "hello", 5), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	/* Both ends are closed: B gets the data then EOF, A gets EOF. */
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pb, 3));
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3));
	CHECK_EQ(f.pb->inlen, 5);
	CHECK_EQ(f.pb->neof, 1);
	CHECK_EQ(f.pa->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "eof");
	CHECK_EQ(f.h.done.received, 5);
	rfix_free(&f);
}

TEST(proto_relay_eof_timeout)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.o.eof_timeout = 0.2;
	rfix_start(&f);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.pb, 3));
	/* B never ends its direction. */
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "timeout");
	CHECK(f.h.done.seconds >= 0.19);
	CHECK(f.h.done.seconds < 2);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3) || f.pa->neof);
	rfix_free(&f);
}

TEST(proto_relay_idle_timeout)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.o.proto.idle_timeout = 0.2;
	rfix_start(&f);
	pu_spin(f.loop, 0.1);
	xp_transport_write(f.ca, "x", 1); /* traffic moves the deadline */
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "timeout");
	CHECK(f.h.done.seconds >= 0.29);
	CHECK(f.h.done.seconds < 2);
	CHECK_EQ(f.pb->inlen, 1);
	rfix_free(&f);
}

TEST(proto_relay_close_graceful)
{
	struct rfix f = {0};

	rfix_opts(&f);
	rfix_start(&f);
	f.pa->eof_ret = f.pb->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.ca, "to b", 4), 0);
	CHECK(rec_run_until(f.loop, pu_cond_end, &f.h, 0.2) == 0);
	pu_spin(f.loop, 0.05);
	xp_relay_close(f.r);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3));
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pb, 3));
	CHECK_EQ(f.pb->inlen, 4);
	CHECK_EQ(f.pa->neof, 1);
	CHECK_EQ(f.pb->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "closed");
	rfix_free(&f);
}

/* ---- TCP: resets -------------------------------------------------------- */

struct tcpfix {
	xp_loop *loop;
	xp_relay *r;
	struct pu_hooks h;
	int ca, cb; /* raw peers */
};

static void tcpfix_start(struct tcpfix *f, xp_relay_opts *o)
{
	int sa, sb;

	signal(SIGPIPE, SIG_IGN);
	f->loop = xp_loop_new();
	pu_hooks_set(&o->proto.hooks, &f->h);
	o->on_done = pu_on_done;
	o->arg = &f->h;
	f->r = xp_relay_new(f->loop, o);
	REQUIRE(pu_tcp_pair(&f->ca, &sa) == 0);
	REQUIRE(pu_tcp_pair(&f->cb, &sb) == 0);
	REQUIRE(pu_wrap(f->loop, sa, xp_relay_stream_protocol(f->r, 0)));
	REQUIRE(pu_wrap(f->loop, sb, xp_relay_stream_protocol(f->r, 1)));
}

static int recv_err(int fd)
{
	char buf[64];
	struct pollfd p = {.fd = fd, .events = POLLIN};

	poll(&p, 1, 2000);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		return n == 0 ? 0 : -errno;
	}
}

TEST(proto_relay_reset_propagates)
{
	struct tcpfix f = {0};
	xp_relay_opts o = {0};
	struct linger l = {1, 0};

	tcpfix_start(&f, &o);
	CHECK_EQ(xpt_write_all(f.cb, "pending", 7), 7);
	pu_spin(f.loop, 0.05);
	setsockopt(f.ca, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(f.ca);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "reset");
	CHECK_EQ(f.h.done.error, -ECONNRESET);
	/* The other peer sees a reset too, not a clean end. */
	CHECK_EQ(recv_err(f.cb), -ECONNRESET);
	close(f.cb);
	pu_loop_free(f.loop);
}

TEST(proto_relay_abort_resets_both)
{
	struct tcpfix f = {0};
	xp_relay_opts o = {0};

	tcpfix_start(&f, &o);
	pu_spin(f.loop, 0.02);
	xp_relay_abort(f.r);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "closed");
	CHECK_EQ(recv_err(f.ca), -ECONNRESET);
	CHECK_EQ(recv_err(f.cb), -ECONNRESET);
	close(f.ca);
	close(f.cb);
	pu_loop_free(f.loop);
}

/* An end that never connects: the other end is closed, end "error". */
TEST(proto_relay_fail_end_closes_other)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	f.pa->eof_ret = 0;
	xp_relay_fail_end(f.r, 1, -ECONNREFUSED);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3));
	CHECK_EQ(f.pa->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "error");
	CHECK_EQ(f.h.done.error, -ECONNREFUSED);
	CHECK_EQ(f.h.nend, 1);
	rfix_free(&f);
}

/* ---- pipes and a child ---------------------------------------------------- */

TEST(proto_relay_pipe_pair_end)
{
	struct rfix f = {0};
	size_t n = 1u << 20;
	unsigned char *a = pu_payload(n, 21), *b = pu_payload(n, 22);
	int in[2], out[2];
	struct rec *w = rec_new(&rec_stream_ops, NULL), *rd = rec_new(&rec_stream_ops, NULL);
	xp_transport *wt;

	rfix_opts(&f);
	f.r = xp_relay_new(f.loop, &f.o);
	REQUIRE(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	/* End 0: reads in[0], writes out[1], like stdin/stdout. */
	REQUIRE(pu_pipe(f.loop, in[0], xp_relay_pipe_protocol(f.r, 0, 0), 0));
	REQUIRE(pu_pipe(f.loop, out[1], xp_relay_pipe_protocol(f.r, 0, 1), 1));
	wt = pu_pipe(f.loop, in[1], &w->base, 1);
	REQUIRE(wt);
	REQUIRE(pu_pipe(f.loop, out[0], &rd->base, 0));
	rfix_end(&f, 1);
	CHECK_STR(f.h.done.peer, "");
	CHECK_EQ(xp_transport_write(wt, a, n), 0);
	xp_transport_write_eof(wt);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.pb, 10));
	CHECK_EQ(f.pb->inlen, n);
	if (f.pb->inlen == n)
		CHECK_MEM(f.pb->in, a, n);
	CHECK_EQ(xp_transport_write(f.cb, b, n), 0);
	xp_transport_write_eof(f.cb);
	CHECK(rec_run_until(f.loop, rec_cond_lost, rd, 10));
	CHECK_EQ(rd->inlen, n);
	if (rd->inlen == n)
		CHECK_MEM(rd->in, b, n);
	CHECK_EQ(rd->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "eof");
	CHECK_STR(f.h.done.peer, "pipe");
	CHECK_EQ(f.h.done.received, n);
	CHECK_EQ(f.h.done.sent, n);
	rec_run_until(f.loop, rec_cond_lost, w, 3);
	free(a);
	free(b);
	rec_free(w);
	rec_free(rd);
	rfix_free(&f);
}

static xp_protocol *sub_factory(void *arg)
{
	return xp_relay_subprocess_protocol(arg, 1);
}

TEST(proto_relay_subprocess_cat)
{
	struct rfix f = {0};
	size_t n = 1u << 20;
	unsigned char *a = pu_payload(n, 31);
	char *argv[] = {"cat", NULL};
	xp_future *fut;

	rfix_opts(&f);
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	fut = xp_subprocess_exec(f.loop, sub_factory, f.r, "cat", argv, NULL);
	REQUIRE(fut);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), 0);
	xp_future_release(fut);
	f.pa->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.ca, a, n), 0);
	/* EOF closes cat's stdin; what it still writes arrives, then EOF. */
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 10));
	CHECK_EQ(f.pa->inlen, n);
	if (f.pa->inlen == n)
		CHECK_MEM(f.pa->in, a, n);
	CHECK_EQ(f.pa->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "eof");
	CHECK_EQ(f.h.done.received, n);
	CHECK_EQ(f.h.done.sent, n);
	free(a);
	rfix_free(&f);
}

/* A reset on the other end: the child gets SIGTERM (child_signal). */
TEST(proto_relay_subprocess_reset_signals_child)
{
	struct tcpfix f = {0};
	xp_relay_opts o = {0};
	struct linger l = {1, 0};
	char *argv[] = {"sleep", "30", NULL};
	int sa;
	xp_future *fut;

	signal(SIGPIPE, SIG_IGN);
	f.loop = xp_loop_new();
	pu_hooks_set(&o.proto.hooks, &f.h);
	o.on_done = pu_on_done;
	o.arg = &f.h;
	f.r = xp_relay_new(f.loop, &o);
	REQUIRE(pu_tcp_pair(&f.ca, &sa) == 0);
	REQUIRE(pu_wrap(f.loop, sa, xp_relay_stream_protocol(f.r, 0)));
	fut = xp_subprocess_exec(f.loop, sub_factory, f.r, "sleep", argv, NULL);
	REQUIRE(fut);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), 0);
	xp_future_release(fut);
	setsockopt(f.ca, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(f.ca);
	/* Done means the child exited: long before its 30 s. */
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "reset");
	CHECK(f.h.done.seconds < 3);
	pu_loop_free(f.loop);
}

/* kill_after: a child that ignores SIGTERM gets SIGKILL. */
TEST(proto_relay_subprocess_kill_after)
{
	struct rfix f = {0};
	char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 30", NULL};
	xp_future *fut;

	rfix_opts(&f);
	f.o.kill_after = 0.2;
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	fut = xp_subprocess_exec(f.loop, sub_factory, f.r, "/bin/sh", argv, NULL);
	REQUIRE(fut);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), 0);
	xp_future_release(fut);
	CHECK(rec_run_until(f.loop, pu_cond_end, &f.h, 0.3) == 0);
	CHECK_EQ(f.pa->inlen, 6);
	xp_relay_abort(f.r);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "closed");
	CHECK(f.h.done.seconds < 3);
	rfix_free(&f);
}

/* ---- one way, and EOF that ends the relay -------------------------------- */

static int cond_wbuf_empty(void *arg)
{
	return xp_transport_get_write_buffer_size(arg) == 0;
}

/* 0 -> 1 only: B's bytes are read (B never stalls) but never reach A; A's
 * EOF alone ends the relay, B never having sent EOF. */
TEST(proto_relay_one_way_drops_other_direction)
{
	struct rfix f = {0};
	size_t n = 4u << 20;
	unsigned char *b = pu_payload(n, 41);

	rfix_opts(&f);
	f.o.one_way = XP_RELAY_0_TO_1;
	rfix_start(&f);
	f.pa->eof_ret = f.pb->eof_ret = 0;
	/* More than the socket buffers hold: it drains only if it is read. */
	CHECK_EQ(xp_transport_write(f.cb, b, n), 0);
	CHECK(rec_run_until(f.loop, cond_wbuf_empty, f.cb, 10));
	CHECK_EQ(xp_transport_write(f.ca, "to b", 4), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "eof");
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pb, 3));
	CHECK_EQ(f.pb->inlen, 4);
	CHECK_MEM(f.pb->in, "to b", 4);
	CHECK_EQ(f.pb->neof, 1);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3));
	CHECK_EQ(f.pa->inlen, 0);
	/* A is the peer for stats: B's dropped bytes were never sent to it. */
	CHECK_EQ(f.h.done.received, 4);
	CHECK_EQ(f.h.done.sent, 0);
	free(b);
	rfix_free(&f);
}

/* The dropped direction's EOF is not passed on and does not end it. */
TEST(proto_relay_one_way_other_eof_ignored)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.o.one_way = XP_RELAY_1_TO_0;
	rfix_start(&f);
	f.pa->eof_ret = f.pb->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.ca, "dropped", 7), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	pu_spin(f.loop, 0.2);
	CHECK_EQ(f.h.ndone, 0);
	CHECK_EQ(f.pb->neof, 0);
	CHECK_EQ(f.pb->inlen, 0);
	CHECK_EQ(xp_transport_write(f.cb, "to a", 4), 0);
	CHECK_EQ(xp_transport_write_eof(f.cb), 0);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "eof");
	CHECK_EQ(f.pa->inlen, 4);
	CHECK_EQ(f.h.done.received, 7);
	CHECK_EQ(f.h.done.sent, 4);
	rfix_free(&f);
}

/* From a pipe end (stdin) the dropped direction is not read at all: its
 * bytes stay in the pipe for the next reader. */
TEST(proto_relay_one_way_leaves_pipe_unread)
{
	struct rfix f = {0};
	int in[2], out[2], keep;
	struct rec *rd = rec_new(&rec_stream_ops, NULL);
	char buf[16];

	rfix_opts(&f);
	f.o.one_way = XP_RELAY_1_TO_0;
	f.r = xp_relay_new(f.loop, &f.o);
	REQUIRE(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	keep = dup(in[0]);
	REQUIRE(keep >= 0);
	REQUIRE(pu_pipe(f.loop, in[0], xp_relay_pipe_protocol(f.r, 0, 0), 0));
	REQUIRE(pu_pipe(f.loop, out[1], xp_relay_pipe_protocol(f.r, 0, 1), 1));
	REQUIRE(pu_pipe(f.loop, out[0], &rd->base, 0));
	rfix_end(&f, 1);
	CHECK_EQ(xpt_write_all(in[1], "stay", 4), 4);
	CHECK_EQ(xp_transport_write(f.cb, "from b", 6), 0);
	CHECK_EQ(xp_transport_write_eof(f.cb), 0);
	/* Ends at B's EOF although stdin is still open. */
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "eof");
	CHECK(rec_run_until(f.loop, rec_cond_lost, rd, 3));
	CHECK_EQ(rd->inlen, 6);
	CHECK_MEM(rd->in, "from b", 6);
	CHECK_EQ(f.pb->inlen, 0);
	xpt_set_nonblock(keep);
	CHECK_EQ(read(keep, buf, sizeof(buf)), 4);
	CHECK_MEM(buf, "stay", 4);
	close(keep);
	close(in[1]);
	rec_free(rd);
	rfix_free(&f);
}

/* eof_ends bit 0: A's EOF closes both ends once A's bytes are across,
 * without waiting for B's EOF; bit 1 alone leaves A's EOF a half-close. */
TEST(proto_relay_eof_ends)
{
	struct rfix f = {0};

	rfix_opts(&f);
	f.o.eof_ends = 1u << 1;
	rfix_start(&f);
	CHECK_EQ(xp_transport_write(f.ca, "half", 4), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.pb, 3));
	pu_spin(f.loop, 0.1);
	CHECK_EQ(f.h.ndone, 0);
	CHECK_EQ(f.pa->nlost, 0);
	rfix_free(&f);

	memset(&f, 0, sizeof(f));
	rfix_opts(&f);
	f.o.eof_ends = 1u << 0;
	rfix_start(&f);
	f.pa->eof_ret = f.pb->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.cb, "reply", 5), 0);
	CHECK(rec_run_until(f.loop, pu_cond_end, &f.h, 0.2) == 0);
	CHECK_EQ(xp_transport_write(f.ca, "data", 4), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "eof");
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pb, 3));
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3));
	CHECK_EQ(f.pb->inlen, 4);
	CHECK_EQ(f.pb->neof, 1);
	CHECK_EQ(f.pa->inlen, 5);
	CHECK_EQ(f.pa->neof, 1);
	rfix_free(&f);
}

TEST(proto_relay_bad_one_way_opts)
{
	xp_loop *loop = xp_loop_new();
	xp_relay_opts o = {0};

	o.one_way = 3;
	errno = 0;
	CHECK(xp_relay_new(loop, &o) == NULL);
	CHECK_EQ(errno, EINVAL);
	o.one_way = 0;
	o.eof_ends = 4;
	CHECK(xp_relay_new(loop, &o) == NULL);
	pu_loop_free(loop);
}

/* Start `sh -c script` as end 1 of f's relay; the subprocess transport,
 * retained (for its return code). */
static xp_transport *start_sh(struct rfix *f, const char *script)
{
	char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
	xp_future *fut = xp_subprocess_exec(f->loop, sub_factory, f->r, "/bin/sh", argv, NULL);
	xp_transport *t = NULL;

	REQUIRE(fut);
	if (xp_loop_run_until_complete(f->loop, fut) == 0)
		t = xp_transport_retain(xp_future_result(fut));
	xp_future_release(fut);
	REQUIRE(t);
	return t;
}

static int cond_exited(void *arg)
{
	int code;

	return xp_transport_get_returncode(arg, &code) == 0;
}

/* Towards a child only: its output is drained and dropped up to its EOF,
 * never cut off (a SIGPIPE would kill it). */
TEST(proto_relay_one_way_drains_child_output)
{
	struct rfix f = {0};
	xp_transport *sp;
	int code = -1;

	rfix_opts(&f);
	f.o.one_way = XP_RELAY_0_TO_1;
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	f.pa->eof_ret = 0;
	sp = start_sh(&f, "read x; head -c 1000000 /dev/zero; echo got-$x");
	CHECK_EQ(xp_transport_write(f.ca, "hi\n", 3), 0);
	CHECK_EQ(xp_transport_write_eof(f.ca), 0);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 10));
	CHECK_STR(f.h.done_end, "eof");
	CHECK(rec_run_until(f.loop, cond_exited, sp, 5));
	CHECK_EQ(xp_transport_get_returncode(sp, &code), 0);
	CHECK_EQ(code, 0);
	CHECK_EQ(f.pa->inlen, 0);
	xp_transport_release(sp);
	rfix_free(&f);
}

/* From a child only: its stdin is closed at once, as with < /dev/null. */
TEST(proto_relay_one_way_child_stdin_closed)
{
	struct rfix f = {0};
	xp_transport *sp;

	rfix_opts(&f);
	f.o.one_way = XP_RELAY_1_TO_0;
	f.r = xp_relay_new(f.loop, &f.o);
	rfix_end(&f, 0);
	f.pa->eof_ret = 0;
	CHECK_EQ(xp_transport_write(f.ca, "never\n", 6), 0);
	sp = start_sh(&f, "n=$(cat | wc -c); echo stdin-had-$n");
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 10));
	CHECK_STR(f.h.done_end, "eof");
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.pa, 3));
	CHECK_EQ(f.pa->inlen, 12);
	CHECK_MEM(f.pa->in, "stdin-had-0\n", 12);
	xp_transport_release(sp);
	rfix_free(&f);
}
