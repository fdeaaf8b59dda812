// SPDX-License-Identifier: MIT
/*
 * test_proto_broker.c - the broker protocol over real sockets: fan-out to
 * the other clients only, flow control against a client that does not
 * read, the idle timeout dropping it, EOF, and the broker's lifetime.
 */
#include "test.h"
#include "recorder.h"
#include "proto_util.h"

#define NCL 3

struct room {
	xp_loop *loop;
	xp_broker *b;
	struct rec *cl[NCL];	/* the clients' side */
	xp_transport *ct[NCL];	/* their transports */
	xp_transport *st[NCL];	/* the broker's side */
	struct pu_hooks h[NCL]; /* stats of the broker's side */
};

/* n clients; client i gets options o (hooks filled in) and, if small,
 * small socket buffers; paused[i] clients do not read. */
static int room_open(struct room *r, const xp_proto_opts *o, const int *paused, int small)
{
	memset(r, 0, sizeof(*r));
	signal(SIGPIPE, SIG_IGN);
	r->loop = xp_loop_new();
	r->b = xp_broker_new(r->loop);
	if (!r->loop || !r->b)
		return -1;
	for (int i = 0; i < NCL; i++) {
		xp_proto_opts co = o ? *o : (xp_proto_opts){0};
		int c, s, sz = 65536;

		if (pu_tcp_pair(&c, &s) < 0)
			return -1;
		if (small) {
			setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
			setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		}
		pu_hooks_set(&co.hooks, &r->h[i]);
		r->st[i] = pu_wrap(r->loop, s, xp_broker_protocol(r->b, &co));
		r->cl[i] = rec_new(&rec_stream_ops, r->loop);
		r->cl[i]->pause_in_made = paused ? paused[i] : 0;
		r->ct[i] = pu_wrap(r->loop, c, &r->cl[i]->base);
		if (!r->st[i] || !r->ct[i])
			return -1;
		r->h[i].watch = r->st[i];
	}
	return 0;
}

static void room_close(struct room *r)
{
	for (int i = 0; i < NCL; i++)
		if (r->ct[i] && !r->cl[i]->nlost)
			xp_transport_abort(r->ct[i]);
	xp_broker_release(r->b);
	pu_spin(r->loop, 0.05);
	for (int i = 0; i < NCL; i++)
		rec_free(r->cl[i]);
	pu_loop_free(r->loop);
}

struct want {
	struct rec *r;
	size_t n;
};
static int cond_inlen(void *arg)
{
	struct want *w = arg;
	return w->r->inlen >= w->n;
}

TEST(proto_broker_fans_out_to_the_others_only)
{
	struct room r;

	REQUIRE(room_open(&r, NULL, NULL, 0) == 0);
	CHECK_EQ(xp_broker_client_count(r.b), NCL);
	CHECK_EQ(xp_transport_write(r.ct[0], "hello", 5), 0);
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[2], 5}, 5));
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[1], 5}, 5));
	CHECK_EQ(xp_transport_write(r.ct[1], "xy", 2), 0);
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[2], 7}, 5));
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[0], 2}, 5));
	pu_spin(r.loop, 0.1);
	CHECK_EQ(r.cl[0]->inlen, 2);
	CHECK_MEM(r.cl[0]->in, "xy", 2);
	CHECK_EQ(r.cl[1]->inlen, 5);
	CHECK_MEM(r.cl[1]->in, "hello", 5);
	CHECK_EQ(r.cl[2]->inlen, 7);
	CHECK_MEM(r.cl[2]->in, "helloxy", 7);
	/* Stats: what each client sent us, what we wrote to it. */
	CHECK_EQ(r.h[0].data_in, 5);
	CHECK_EQ(r.h[0].data_out, 2);
	CHECK_EQ(r.h[2].data_in, 0);
	CHECK_EQ(r.h[2].data_out, 7);
	room_close(&r);
}

TEST(proto_broker_eof_ends_that_client_only)
{
	struct room r;

	REQUIRE(room_open(&r, NULL, NULL, 0) == 0);
	CHECK_EQ(xp_transport_write(r.ct[0], "bye", 3), 0);
	CHECK_EQ(xp_transport_write_eof(r.ct[0]), 0);
	CHECK(rec_run_until(r.loop, pu_cond_end, &r.h[0], 5));
	CHECK_STR(r.h[0].end, "eof");
	CHECK(rec_run_until(r.loop, rec_cond_lost, r.cl[0], 5));
	CHECK_EQ(xp_broker_client_count(r.b), NCL - 1);
	/* The others still talk. */
	CHECK_EQ(xp_transport_write(r.ct[1], "on", 2), 0);
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[2], 5}, 5));
	CHECK_MEM(r.cl[2]->in, "byeon", 5);
	CHECK_EQ(r.h[1].nend, 0);
	room_close(&r);
}

/* Client 2 does not read: the broker's queue for it stops at about the
 * high watermark (plus one read), the sender is paused instead; once 2
 * reads, every byte arrives, in order, at both others. */
TEST(proto_broker_slow_client_pauses_the_senders)
{
	xp_proto_opts o = {.high = 32768, .low = 8192, .read_size = 16384};
	int paused[NCL] = {0, 0, 1};
	size_t n = 8u << 20;
	unsigned char *data = pu_payload(n, 3);
	struct room r;

	REQUIRE(room_open(&r, &o, paused, 1) == 0);
	CHECK_EQ(xp_transport_write(r.ct[0], data, n), 0);
	pu_spin(r.loop, 0.5);
	/* Stuck: neither the queue nor what 1 got runs away with the data. */
	CHECK(r.h[2].max_wbuf <= o.high + o.read_size);
	CHECK(r.h[1].max_wbuf <= o.high + o.read_size);
	CHECK(r.cl[1]->inlen < n / 2);
	CHECK(xp_transport_get_write_buffer_size(r.ct[0]) > 0); /* the sender waits */
	xp_transport_resume_reading(r.ct[2]);
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[2], n}, 20));
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[1], n}, 20));
	CHECK_EQ(r.cl[1]->inlen, n);
	CHECK_EQ(r.cl[2]->inlen, n);
	if (r.cl[1]->inlen == n && r.cl[2]->inlen == n) {
		CHECK_MEM(r.cl[1]->in, data, n);
		CHECK_MEM(r.cl[2]->in, data, n);
	}
	CHECK(r.h[2].max_wbuf <= o.high + o.read_size);
	free(data);
	room_close(&r);
}

/* With an idle timeout the client that never reads is dropped; the ones
 * held paused meanwhile are not idle, and go on with everything. */
TEST(proto_broker_idle_timeout_drops_the_stuck_client)
{
	xp_proto_opts o = {.high = 32768, .low = 8192, .read_size = 16384, .idle_timeout = 0.3};
	int paused[NCL] = {0, 0, 1};
	size_t n = 4u << 20;
	unsigned char *data = pu_payload(n, 4);
	struct room r;

	REQUIRE(room_open(&r, &o, paused, 1) == 0);
	CHECK_EQ(xp_transport_write(r.ct[0], data, n), 0);
	CHECK(rec_run_until(r.loop, pu_cond_end, &r.h[2], 10));
	CHECK_STR(r.h[2].end, "timeout");
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[1], n}, 20));
	CHECK_EQ(r.cl[1]->inlen, n);
	if (r.cl[1]->inlen == n)
		CHECK_MEM(r.cl[1]->in, data, n);
	CHECK_EQ(r.h[0].nend, 0);
	CHECK_EQ(r.h[1].nend, 0);
	CHECK(r.cl[2]->inlen < n);
	CHECK_EQ(xp_broker_client_count(r.b), NCL - 1);
	/* And a client that is merely quiet is dropped too, cleanly. */
	CHECK(rec_run_until(r.loop, pu_cond_end, &r.h[1], 10));
	CHECK_STR(r.h[1].end, "timeout");
	free(data);
	room_close(&r);
}

/* The owner's reference goes first; the broker lives on with its clients
 * and is freed with the last one (ASan and valgrind see a leak if not). */
TEST(proto_broker_outlives_its_owner_reference)
{
	struct room r;

	REQUIRE(room_open(&r, NULL, NULL, 0) == 0);
	xp_broker_release(r.b);
	r.b = NULL;
	CHECK_EQ(xp_transport_write(r.ct[0], "late", 4), 0);
	CHECK(rec_run_until(r.loop, cond_inlen, &(struct want){r.cl[1], 4}, 5));
	for (int i = 0; i < NCL; i++)
		xp_transport_close(r.ct[i]);
	CHECK(rec_run_until(r.loop, pu_cond_end, &r.h[2], 5));
	pu_spin(r.loop, 0.05);
	for (int i = 0; i < NCL; i++)
		CHECK_EQ(r.h[i].nend, 1);
	room_close(&r);
}

TEST(proto_broker_bad_args)
{
	errno = 0;
	CHECK(xp_broker_new(NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_broker_protocol(NULL, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(xp_broker_client_count(NULL), 0);
	xp_broker_release(NULL);
}
