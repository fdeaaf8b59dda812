// SPDX-License-Identifier: MIT
/*
 * test_splice.c - xp__stream_splice: bytes one stream reads go kernel-side
 * into another stream's socket, with flow control and EOF intact.
 */
#include "test.h"
#include "internal.h"
#include "recorder.h"

#include <fcntl.h>
#include <unistd.h>

struct fixture {
	xp_loop *loop;
	int a[2], b[2]; /* a[1] is the source peer, b[1] the destination peer */
	struct rec *ra, *rb;
	xp_transport *ta, *tb;
	size_t moved;
};

static int stop_cb(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}

static void counted(void *arg, size_t n)
{
	((struct fixture *)arg)->moved += n;
}

static int cond_made(void *arg)
{
	struct fixture *f = arg;
	return f->ra->nmade && f->rb->nmade;
}

static void setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->loop = xp_loop_new();
	REQUIRE(xpt_socketpair(f->a) == 0 && xpt_socketpair(f->b) == 0);
	f->ra = rec_new(&rec_stream_ops, f->loop);
	f->rb = rec_new(&rec_stream_ops, f->loop);
	f->ra->eof_ret = 1;
	f->ta = xp__stream_new(f->loop, f->a[0], &f->ra->base);
	f->tb = xp__stream_new(f->loop, f->b[0], &f->rb->base);
	REQUIRE(f->ta && f->tb);
	xp__transport_start(f->ta, NULL);
	xp__transport_start(f->tb, NULL);
	REQUIRE(rec_run_until(f->loop, cond_made, f, 5));
	REQUIRE(xp__stream_splice(f->ta, f->tb, counted, f) == 0);
}

static void teardown(struct fixture *f)
{
	if (f->ra->t)
		xp_transport_abort(f->ra->t);
	if (f->rb->t)
		xp_transport_abort(f->rb->t);
	rec_run_until(f->loop, rec_cond_lost, f->ra, 5);
	rec_run_until(f->loop, rec_cond_lost, f->rb, 5);
	close(f->a[1]);
	close(f->b[1]);
	rec_free(f->ra);
	rec_free(f->rb);
	xp_loop_free(f->loop);
}

static int cond_eof(void *arg)
{
	return ((struct fixture *)arg)->ra->neof > 0;
}

TEST(splice_moves_bytes_without_data_received_then_eof)
{
	struct fixture f;
	setup(&f);
	size_t n = 4 << 20;
	unsigned char *src = malloc(n), *dst = malloc(n);
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 131 + (i >> 11));
	/* the writer is a thread-free trick: the peer socket is non-blocking,
	 * so interleave writing and running the loop */
	size_t off = 0, got = 0;
	while (got < n) {
		if (off < n) {
			ssize_t w = write(f.a[1], src + off, n - off);
			if (w > 0)
				off += (size_t)w;
			if (off == n)
				shutdown(f.a[1], SHUT_WR);
		}
		xp_call_soon(f.loop, stop_cb, f.loop);
		xp_loop_run_forever(f.loop);
		ssize_t r = read(f.b[1], dst + got, n - got);
		if (r > 0)
			got += (size_t)r;
		else if (r == 0)
			break;
	}
	CHECK_EQ(got, n);
	CHECK_MEM(dst, src, n);
	CHECK_EQ(f.moved, n);
	CHECK_EQ(f.ra->inlen, 0); /* never through data_received */
	CHECK(rec_run_until(f.loop, cond_eof, &f, 5));
	CHECK_STR(f.ra->log, "made eof");
	free(src);
	free(dst);
	teardown(&f);
}

static int cond_paused(void *arg)
{
	return ((struct fixture *)arg)->rb->npause > 0;
}

TEST(splice_flow_control_pauses_destination_protocol_and_resumes)
{
	struct fixture f;
	setup(&f);
	xp_transport_set_write_buffer_limits(f.tb, 32768, 8192);
	/* nobody reads b[1]: once its socket is full the pipe fills past
	 * high; keep feeding a[1] while the loop runs */
	char chunk[65536];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 2000 && !cond_paused(&f); i++) {
		if (write(f.a[1], chunk, sizeof(chunk)) < 0 && errno != EAGAIN)
			break;
		xp_call_soon(f.loop, stop_cb, f.loop);
		xp_loop_run_forever(f.loop);
	}
	CHECK(cond_paused(&f));
	CHECK(xp_transport_get_write_buffer_size(f.tb) > 32768);
	/* drain the destination peer: resume follows */
	char buf[65536];
	for (int i = 0; i < 400 && f.rb->nresume == 0; i++) {
		while (read(f.b[1], buf, sizeof(buf)) > 0)
			;
		xp_call_soon(f.loop, stop_cb, f.loop);
		xp_loop_run_forever(f.loop);
	}
	CHECK_EQ(f.rb->nresume, 1);
	CHECK(f.moved > 0);
	teardown(&f);
}

TEST(splice_refuses_non_stream_and_busy)
{
	struct fixture f;
	setup(&f);
	CHECK_EQ(xp__stream_splice(f.ta, f.tb, counted, &f), -EBUSY);
	CHECK_EQ(xp__stream_splice(f.ta, f.ta, counted, &f), -ENOTSUP);
	/* a SEQPACKET socket keeps its records: never spliced */
	int sp[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sp) == 0);
	struct rec *rs = rec_new(&rec_stream_ops, f.loop);
	xp_transport *ts = xp__stream_new(f.loop, sp[0], &rs->base);
	REQUIRE(ts);
	xp__transport_start(ts, NULL);
	CHECK_EQ(xp__stream_splice(ts, f.ta, counted, &f), -ENOTSUP);
	CHECK_EQ(xp__stream_splice(f.tb, ts, counted, &f), -ENOTSUP);
	xp_transport_abort(ts);
	rec_run_until(f.loop, rec_cond_lost, rs, 5);
	close(sp[1]);
	rec_free(rs);
	teardown(&f);
}

static int cond_ra_data(void *arg)
{
	return ((struct fixture *)arg)->ra->inlen > 0;
}

TEST(splice_destination_reset_is_reported_and_source_unlinked)
{
	struct fixture f;
	setup(&f);
	struct linger l = {1, 0};
	setsockopt(f.b[1], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(f.b[1]);
	f.b[1] = open("/dev/null", O_RDONLY);
	for (int i = 0; i < 8; i++)
		if (write(f.a[1], "data", 4) < 0)
			break;
	/* the destination goes (EOF or EPIPE: a Unix socket has no RST), and
	 * the process is not killed by SIGPIPE */
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.rb, 5));
	/* the source lives on, unlinked: its data reaches its protocol */
	CHECK(f.ra->nlost == 0);
	CHECK_EQ(write(f.a[1], "more", 4), 4);
	CHECK(rec_run_until(f.loop, cond_ra_data, &f, 5));
	teardown(&f);
}
