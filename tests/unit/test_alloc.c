// SPDX-License-Identifier: MIT
/*
 * Out of memory on the way to a transport: whichever allocation fails, a
 * protocol the factory made gets connection_made and connection_lost (it
 * is never stranded), the descriptor is closed, and the future fails with
 * -ENOMEM.  Each test lets the Nth allocation fail, N = 1, 2, ... until a
 * run completes with no failure injected (xp__alloc_fail_after).
 */
#include "test.h"
#include "recorder.h"

#include <dirent.h>
#include <stdbool.h>

#include "internal.h"

static int factory_calls;

static xp_protocol *counting_factory(void *arg)
{
	factory_calls++;
	return rec_factory_one(arg);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int cond_never(void *arg)
{
	return 0;
}

/* What every case checks once its future is done. */
static bool settle(xp_loop *loop, struct rec *r, xp_future *f, int n)
{
	int err = f ? xp_loop_run_until_complete(loop, f) : -errno;

	if (err == 0)
		xp_transport_close(xp_future_result(f));
	else
		CHECK(err == -ENOMEM || err == XP_ECLOSED);
	if (factory_calls)
		CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	/* A transport aborted on the way closes its descriptor on a later
	 * iteration, as every closed transport does. */
	rec_run_until(loop, cond_never, NULL, 0.02);
	CHECK_EQ(r->nmade, factory_calls);
	CHECK_EQ(r->nlost, factory_calls);
	if (f)
		xp_future_release(f);
	if (xpt_failures)
		fprintf(stderr, "  ^ with allocation %d failing (err %d, log \"%s\")\n", n, err,
			r->log);
	return xpt_failures == 0;
}

TEST(alloc_failure_read_and_write_pipes_strand_nothing)
{
	for (int writer = 0; writer < 2; writer++) {
		int n, fds = count_fds();
		bool injected = true;

		for (n = 1; injected && n < 100; n++) {
			xp_loop *loop = xp_loop_new();
			struct rec *r = rec_new(&rec_stream_ops, loop);
			int p[2];
			xp_future *f;

			REQUIRE(pipe2(p, O_CLOEXEC) == 0);
			factory_calls = 0;
			xp__alloc_fail_after = n;
			f = writer ? xp_connect_write_pipe(loop, counting_factory, r, p[1])
				   : xp_connect_read_pipe(loop, counting_factory, r, p[0]);
			injected = xp__alloc_fail_after <= 0;
			xp__alloc_fail_after = 0;
			close(p[!writer]);
			if (!f)
				close(p[writer]); /* not taken: still ours */
			bool ok = settle(loop, r, f, n);
			xp_loop_close(loop);
			xp_loop_free(loop);
			rec_free(r);
			if (count_fds() != fds)
				fprintf(stderr, "  fd leaked with allocation %d failing\n", n);
			if (!ok)
				return;
		}
		CHECK(n > 2);
		CHECK_EQ(count_fds(), fds);
	}
}

TEST(alloc_failure_datagram_endpoint_strands_nothing)
{
	int n, fds = count_fds();
	bool injected = true;

	for (n = 1; injected && n < 100; n++) {
		xp_loop *loop = xp_loop_new();
		struct rec *r = rec_new(&rec_dgram_ops, loop);
		xp_datagram_opts o = {.local_host = "127.0.0.1", .local_port = "0"};
		xp_future *f;

		factory_calls = 0;
		xp__alloc_fail_after = n;
		f = xp_create_datagram_endpoint(loop, counting_factory, r, &o);
		injected = xp__alloc_fail_after <= 0;
		xp__alloc_fail_after = 0;
		bool ok = settle(loop, r, f, n);
		xp_loop_close(loop);
		xp_loop_free(loop);
		rec_free(r);
		if (count_fds() != fds)
			fprintf(stderr, "  fd leaked with allocation %d failing\n", n);
		if (!ok)
			return;
	}
	CHECK(n > 2);
	CHECK_EQ(count_fds(), fds);
}

TEST(alloc_failure_connection_strands_nothing)
{
	int port = 0, l = xpt_tcp_listener(&port), n, fds;
	char ps[16];
	bool injected = true;

	REQUIRE(l >= 0);
	xpt_set_nonblock(l); /* accept4 below only drains */
	snprintf(ps, sizeof(ps), "%d", port);
	fds = count_fds();
	for (n = 1; injected && n < 100; n++) {
		xp_loop *loop = xp_loop_new();
		struct rec *r = rec_new(&rec_stream_ops, loop);
		xp_future *f;
		int a;

		factory_calls = 0;
		xp__alloc_fail_after = n;
		f = xp_create_connection(loop, counting_factory, r, "127.0.0.1", ps, NULL);
		injected = xp__alloc_fail_after <= 0;
		xp__alloc_fail_after = 0;
		bool ok = settle(loop, r, f, n);
		xp_loop_close(loop);
		xp_loop_free(loop);
		rec_free(r);
		while ((a = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0)
			close(a);
		if (!ok)
			break;
	}
	close(l);
	CHECK(n > 2);
	CHECK_EQ(count_fds(), fds - 1);
}

/* Accept: the failures hit the loop iteration that accepts. */
struct acc {
	struct rec *r[8];
	int n;
	xp_loop *loop;
};

static xp_protocol *acc_factory(void *arg)
{
	struct acc *a = arg;

	factory_calls++;
	if (a->n == 8)
		return NULL;
	a->r[a->n] = rec_new(&rec_stream_ops, a->loop);
	return &a->r[a->n++]->base;
}

static int stop_loop(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}

static int cond_accepted(void *arg)
{
	xp_server *s = arg;

	return xp_server_connection_count(s) == 0;
}

TEST(alloc_failure_accept_strands_nothing)
{
	for (int n = 1; n < 40; n++) {
		xp_loop *loop = xp_loop_new();
		struct acc a = {.loop = loop};
		xp_future *f = xp_create_server(loop, acc_factory, &a, "127.0.0.1", "0", NULL);
		xp_server *s;
		xp_sockaddr sa;
		int c;

		REQUIRE(xp_loop_run_until_complete(loop, f) == 0);
		s = xp_future_result(f);
		xp_future_release(f);
		REQUIRE(xp_server_sockname(s, 0, &sa) == 0);
		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		REQUIRE(connect(c, &sa.u.sa, sa.len) == 0);
		factory_calls = 0;
		/* The stop is scheduled first: the wait itself must not allocate. */
		xp_call_later(loop, 0.2, stop_loop, loop);
		xp__alloc_fail_after = n;
		xp_loop_run_forever(loop);
		xp__alloc_fail_after = 0;
		for (int i = 0; i < a.n; i++)
			if (a.r[i]->t && !a.r[i]->nlost)
				xp_transport_close(a.r[i]->t);
		rec_run_until(loop, cond_accepted, s, 5);
		for (int i = 0; i < a.n; i++) {
			CHECK_EQ(a.r[i]->nmade, 1);
			CHECK_EQ(a.r[i]->nlost, 1);
		}
		xp_server_close(s);
		xp_server_free(s);
		xp_loop_close(loop);
		xp_loop_free(loop);
		for (int i = 0; i < a.n; i++)
			rec_free(a.r[i]);
		close(c);
		if (xpt_failures) {
			fprintf(stderr, "  ^ with allocation %d failing\n", n);
			return;
		}
	}
}
