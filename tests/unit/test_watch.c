// SPDX-License-Identifier: MIT
/*
 * Paused means "not reading", never "not watching": a transport that is not
 * reading (paused, or past EOF with nothing to write) still notices a reset
 * or an error on its descriptor at once, and a mere hang-up neither spins
 * the loop nor loses the bytes still waiting to be read.
 */
#include "test.h"
#include "recorder.h"

#include <stdbool.h>
#include <sys/resource.h>

#include "internal.h"

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int stop_loop(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}

/* Let the loop idle for `seconds` and return the CPU time it used: a loop
 * that is told about a hang-up on every iteration burns about `seconds`,
 * an idle one next to nothing (valgrind included). */
static double idle_cpu(xp_loop *loop, double seconds)
{
	double before = cpu_seconds();

	xp_call_later(loop, seconds, stop_loop, loop);
	xp_loop_run_forever(loop);
	return cpu_seconds() - before;
}

static xp_loop *new_loop(void)
{
	xp_loop *loop = xp_loop_new();

	REQUIRE(loop);
	return loop;
}

static void free_loop(xp_loop *loop)
{
	xp_loop_close(loop);
	xp_loop_free(loop);
}

/* A connected TCP pair on loopback: *a for the transport, *b the peer. */
static void tcp_pair(int *a, int *b)
{
	int port = 0, lfd = xpt_tcp_listener(&port);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	REQUIRE(lfd >= 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(*a >= 0);
	REQUIRE(connect(*a, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	*b = accept(lfd, NULL, NULL);
	REQUIRE(*b >= 0);
	close(lfd);
}

/* Close with a TCP reset rather than a FIN. */
static void reset_close(int fd)
{
	struct linger l = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static int cond_made(void *arg)
{
	return ((struct rec *)arg)->nmade > 0;
}

static xp_transport *start_stream(xp_loop *loop, struct rec *r, int fd)
{
	xp_transport *t = xp__stream_new(loop, fd, &r->base);

	REQUIRE(t);
	REQUIRE(xp__transport_start(t, NULL) == 0);
	REQUIRE(rec_run_until(loop, cond_made, r, 5));
	return t;
}

static xp_transport *start_pipe(xp_loop *loop, struct rec *r, int fd, bool writer)
{
	xp_future *f = writer ? xp_connect_write_pipe(loop, rec_factory_one, r, fd)
			      : xp_connect_read_pipe(loop, rec_factory_one, r, fd);
	xp_transport *t = NULL;

	REQUIRE(f);
	if (xp_loop_run_until_complete(loop, f) == 0)
		t = xp_future_result(f);
	xp_future_release(f);
	REQUIRE(t);
	return t;
}

static int cond_eof_or_lost(void *arg)
{
	struct rec *r = arg;

	return r->neof > 0 || r->nlost > 0;
}

TEST(watch_stream_paused_tcp_reset_is_noticed_at_once)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int a, b;
	char big[65536];

	r->pause_in_made = 1;
	tcp_pair(&a, &b);
	start_stream(loop, r, a);
	/* Data waits unread behind the pause, then the peer resets. */
	memset(big, 'x', sizeof(big));
	REQUIRE(xpt_write_all(b, big, sizeof(big)) == (ssize_t)sizeof(big));
	reset_close(b);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->lost_err, -ECONNRESET);
	CHECK_EQ(r->neof, 0);
	CHECK_EQ(r->inlen, 0);
	CHECK_STR(r->log, "made lost:-104");
	free_loop(loop);
	rec_free(r);
}

TEST(watch_stream_paused_while_writing_reset_is_noticed)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int a, b, small = 4096;
	static char big[1 << 20];
	xp_transport *t;

	r->pause_in_made = 1;
	tcp_pair(&a, &b);
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	t = start_stream(loop, r, a);
	/* A peer that never reads: the write buffer stays full. */
	REQUIRE(xp_transport_write(t, big, sizeof(big)) == 0);
	CHECK(xp_transport_get_write_buffer_size(t) > 0);
	reset_close(b);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK(r->lost_err == -ECONNRESET || r->lost_err == -EPIPE);
	free_loop(loop);
	rec_free(r);
}

/* A Unix peer that sends and closes hangs up our socket; paused, we must
 * neither spin on the hang-up nor lose the bytes, which arrive on resume. */
TEST(watch_stream_paused_hangup_keeps_data_without_spinning)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int sv[2];
	xp_transport *t;

	r->pause_in_made = 1;
	REQUIRE(xpt_socketpair(sv) == 0);
	t = start_stream(loop, r, sv[0]);
	REQUIRE(xpt_write_all(sv[1], "hello", 5) == 5);
	close(sv[1]);
	CHECK(idle_cpu(loop, 0.5) < 0.2);
	CHECK_EQ(r->nlost, 0);
	CHECK_EQ(r->inlen, 0);
	xp_transport_resume_reading(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:5 eof lost:0");
	CHECK_MEM(r->in, "hello", 5);
	free_loop(loop);
	rec_free(r);
}

/* Past our EOF and the peer's, the socket is hung up for good; a protocol
 * that keeps the transport open (eof_received returns true) must not make
 * the loop spin. */
TEST(watch_stream_both_shut_idle_does_not_spin)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int a, b;
	xp_transport *t;

	r->eof_ret = 1;
	tcp_pair(&a, &b);
	t = start_stream(loop, r, a);
	shutdown(b, SHUT_WR);
	CHECK(rec_run_until(loop, cond_eof_or_lost, r, 5));
	CHECK_EQ(r->neof, 1);
	REQUIRE(xp_transport_write_eof(t) == 0);
	CHECK(idle_cpu(loop, 0.5) < 0.2);
	CHECK_EQ(r->nlost, 0);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made eof lost:0");
	close(b);
	free_loop(loop);
	rec_free(r);
}

TEST(watch_pipe_paused_reader_hangup_keeps_data_without_spinning)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	xp_transport *t;

	r->pause_in_made = 1;
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	t = start_pipe(loop, r, p[0], false);
	REQUIRE(write(p[1], "abc", 3) == 3);
	close(p[1]);
	CHECK(idle_cpu(loop, 0.5) < 0.2);
	CHECK_EQ(r->nlost, 0);
	xp_transport_resume_reading(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:3 eof lost:0");
	free_loop(loop);
	rec_free(r);
}

/* A read pipe over a socket (an inherited descriptor, inetd style). */
TEST(watch_pipe_paused_reader_socket_reset_is_noticed)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int a, b;

	r->pause_in_made = 1;
	tcp_pair(&a, &b);
	start_pipe(loop, r, a, false);
	REQUIRE(xpt_write_all(b, "data", 4) == 4);
	reset_close(b);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->lost_err, -ECONNRESET);
	CHECK_EQ(r->inlen, 0);
	free_loop(loop);
	rec_free(r);
}

/* A write pipe with nothing queued whose reader leaves ends at once. */
TEST(watch_pipe_idle_writer_reader_gone_is_noticed)
{
	xp_loop *loop = new_loop();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];

	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	start_pipe(loop, r, p[1], true);
	CHECK(idle_cpu(loop, 0.1) < 0.1);
	CHECK_EQ(r->nlost, 0);
	close(p[0]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	free_loop(loop);
	rec_free(r);
}

/* The loop level: WATCH alone registers the descriptor, reports errors
 * without READ/WRITE, and is nothing for a regular file. */
struct seen {
	unsigned revents;
	int calls;
};

static void seen_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct seen *s = (struct seen *)((char *)w + sizeof(*w));

	s->revents |= revents;
	s->calls++;
	xp__io_stop(loop, w, XP_IO_WATCH);
}

struct io_and_seen {
	struct xp_io io;
	struct seen s;
};

TEST(watch_io_watch_alone_reports_error_only)
{
	xp_loop *loop = new_loop();
	struct io_and_seen w = {0};
	int a, b;

	tcp_pair(&a, &b);
	REQUIRE(xpt_write_all(b, "unread", 6) == 6);
	xp__io_init(&w.io, a, seen_cb);
	REQUIRE(xp__io_start(loop, &w.io, XP_IO_WATCH) == 0);
	idle_cpu(loop, 0.1);
	CHECK_EQ(w.s.calls, 0); /* readable is not reported */
	reset_close(b);
	idle_cpu(loop, 0.2);
	CHECK_EQ(w.s.calls, 1);
	CHECK(w.s.revents & XP_IO_ERR);
	CHECK_EQ(w.s.revents & (XP_IO_READ | XP_IO_WRITE), 0);
	xp__io_close(loop, &w.io);
	close(a);
	free_loop(loop);
}

TEST(watch_io_watch_alone_on_regular_file_is_nothing)
{
	xp_loop *loop = new_loop();
	struct io_and_seen w = {0};
	char path[] = "/tmp/xport-watch-XXXXXX";
	int fd = mkstemp(path);

	REQUIRE(fd >= 0);
	unlink(path);
	xp__io_init(&w.io, fd, seen_cb);
	REQUIRE(xp__io_start(loop, &w.io, XP_IO_WATCH) == 0);
	CHECK(idle_cpu(loop, 0.2) < 0.1);
	CHECK_EQ(w.s.calls, 0);
	xp__io_close(loop, &w.io);
	close(fd);
	free_loop(loop);
}
