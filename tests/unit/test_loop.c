// SPDX-License-Identifier: MIT
/*
 * test_loop.c - the event loop: callbacks, timers, stop, close, the
 * exception handler, thread-safe calls, readers/writers, signals (sem 87,
 * 88) and descriptors epoll refuses.
 */
#include "test.h"
#include "xport.h"
#include "recorder.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static char order[256];

static int note(void *arg)
{
	strcat(order, (const char *)arg);
	return 0;
}

static int stop_loop(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}

struct sched {
	xp_loop *loop;
};

static int a_schedules_d(void *arg)
{
	struct sched *s = arg;
	strcat(order, "A");
	xp_call_soon(s->loop, note, "D");
	return 0;
}

TEST(loop_call_soon_fifo_and_next_iteration_sem_87)
{
	xp_loop *loop = xp_loop_new();
	REQUIRE(loop);
	struct sched s = {loop};
	order[0] = 0;
	xp_call_soon(loop, a_schedules_d, &s);
	xp_call_soon(loop, note, "B");
	xp_handle *h = xp_call_soon(loop, note, "X");
	xp_call_soon(loop, note, "C");
	xp_handle_cancel(h);
	CHECK(xp_handle_cancelled(h));
	/* stop() lets everything already queued for this iteration run;
	 * D, scheduled by A, belongs to the next run. */
	xp_call_soon(loop, stop_loop, loop);
	CHECK_EQ(xp_loop_run_forever(loop), 0);
	CHECK_STR(order, "ABC");
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "ABCD");
	xp_loop_free(loop);
}

TEST(loop_stop_before_run_forever_polls_once_sem_87)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	xp_call_soon(loop, note, "a");
	xp_loop_stop(loop);
	long long t0 = xpt_now_ms();
	CHECK_EQ(xp_loop_run_forever(loop), 0);
	CHECK(xpt_now_ms() - t0 < 10000); /* polled once, did not block */
	CHECK_STR(order, "a");
	CHECK(!xp_loop_is_running(loop));
	xp_loop_free(loop);
}

TEST(loop_timers_deadline_order_negative_and_equal_sem_88)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	xp_call_later(loop, -1, note, "a");
	xp_call_later(loop, -2, note, "b");
	double t = xp_loop_time(loop) + 0.02;
	xp_call_at(loop, t, note, "1");
	xp_call_at(loop, t, note, "2");
	xp_call_at(loop, t, note, "3");
	xp_handle *c = xp_call_later(loop, 0.01, note, "x");
	CHECK(xp_handle_when(c) > xp_loop_time(loop));
	xp_handle_cancel(c);
	xp_call_later(loop, 0.05, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "ba123");
	xp_loop_free(loop);
}

TEST(loop_call_later_waits_at_least_delay_sem_88)
{
	xp_loop *loop = xp_loop_new();
	double t0 = xp_loop_time(loop);
	xp_call_later(loop, 0.05, stop_loop, loop);
	xp_loop_run_forever(loop);
	double dt = xp_loop_time(loop) - t0;
	CHECK(dt >= 0.05);
	CHECK(dt < 20.0);
	xp_loop_free(loop);
}

TEST(loop_nan_delay_is_invalid_sem_88)
{
	xp_loop *loop = xp_loop_new();
	errno = 0;
	CHECK(xp_call_later(loop, 0.0 / 0.0, note, "x") == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(xp_call_at(loop, 0.0 / 0.0, note, "x") == NULL);
	xp_loop_free(loop);
}

static int last_err;
static char last_msg[128];
static int handler_calls;
static int handler_ret;

static int handler(xp_loop *loop, const xp_context *ctx, void *arg)
{
	handler_calls++;
	last_err = ctx->error;
	snprintf(last_msg, sizeof(last_msg), "%s", ctx->message);
	return handler_ret;
}

static int failing(void *arg)
{
	strcat(order, "F");
	return -EIO;
}

TEST(loop_failing_callback_reported_loop_goes_on_sem_88)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	handler_calls = 0;
	xp_loop_set_exception_handler(loop, handler, NULL);
	void *arg;
	CHECK(xp_loop_get_exception_handler(loop, &arg) == handler);
	xp_call_soon(loop, failing, NULL);
	xp_call_soon(loop, note, "n");
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "Fn");
	CHECK_EQ(handler_calls, 1);
	CHECK_EQ(last_err, -EIO);
	CHECK_STR(last_msg, "Exception in callback");
	xp_loop_free(loop);
}

TEST(loop_broken_exception_handler_is_logged_sem_88)
{
	xp_loop *loop = xp_loop_new();
	handler_calls = 0;
	handler_ret = -1;
	xp_loop_set_exception_handler(loop, handler, NULL);
	/* stderr goes to a pipe so the default handler's words can be read */
	int p[2];
	REQUIRE(pipe(p) == 0);
	int saved = dup(2);
	dup2(p[1], 2);
	xp_call_soon(loop, failing, NULL);
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	dup2(saved, 2);
	close(p[1]);
	char buf[512] = {0};
	xpt_read_all(p[0], buf, sizeof(buf) - 1, 200);
	CHECK(strstr(buf, "Unhandled error in exception handler") != NULL);
	CHECK_EQ(handler_calls, 1);
	handler_ret = 0;
	xp_loop_free(loop);
}

TEST(loop_closed_loop_refuses_work_sem_88)
{
	xp_loop *loop = xp_loop_new();
	CHECK_EQ(xp_loop_close(loop), 0);
	CHECK(xp_loop_is_closed(loop));
	CHECK(xp_call_soon(loop, note, "x") == NULL);
	CHECK(xp_call_later(loop, 1, note, "x") == NULL);
	CHECK_EQ(xp_call_soon_threadsafe(loop, note, "x"), XP_ECLOSED);
	CHECK(xp_add_reader(loop, 0, note, "x") < 0);
	CHECK_EQ(xp_loop_run_forever(loop), XP_ECLOSED);
	CHECK_EQ(xp_loop_close(loop), 0); /* idempotent */
	xp_loop_free(loop);
}

static int try_close_while_running(void *arg)
{
	xp_loop *loop = arg;
	CHECK_EQ(xp_loop_close(loop), -EBUSY);
	CHECK(xp_loop_is_running(loop));
	CHECK(xp_get_running_loop() == loop);
	CHECK(xp_get_event_loop() == loop);
	CHECK_EQ(xp_loop_run_forever(loop), -EBUSY);
	xp_loop_stop(loop);
	return 0;
}

TEST(loop_running_loop_and_close_while_running)
{
	xp_loop *loop = xp_loop_new();
	CHECK(xp_get_running_loop() == NULL);
	xp_call_soon(loop, try_close_while_running, loop);
	xp_loop_run_forever(loop);
	CHECK(xp_get_running_loop() == NULL);
	xp_loop_free(loop);
	xp_loop *d = xp_get_event_loop();
	CHECK(d != NULL);
	CHECK(xp_get_event_loop() == d);
	xp_loop_free(d);
}

struct ts_arg {
	xp_loop *loop;
	int n;
};

static int ts_count(void *arg)
{
	struct ts_arg *a = arg;
	if (++a->n == 100)
		xp_loop_stop(a->loop);
	return 0;
}

static void *ts_thread(void *arg)
{
	struct ts_arg *a = arg;
	usleep(20000); /* let the loop block in its poll first */
	for (int i = 0; i < 100; i++)
		xp_call_soon_threadsafe(a->loop, ts_count, a);
	return NULL;
}

TEST(loop_call_soon_threadsafe_wakes_blocked_loop_sem_87)
{
	xp_loop *loop = xp_loop_new();
	struct ts_arg a = {loop, 0};
	pthread_t th;
	pthread_create(&th, NULL, ts_thread, &a);
	xp_handle *guard = xp_call_later(loop, 5, stop_loop, loop);
	xp_loop_run_forever(loop);
	pthread_join(th, NULL);
	CHECK_EQ(a.n, 100);
	xp_handle_cancel(guard);
	xp_loop_free(loop);
}

static int ts_same_thread(void *arg)
{
	xp_loop *loop = arg;
	xp_call_soon(loop, note, "1");
	xp_call_soon_threadsafe(loop, note, "2");
	xp_call_soon(loop, note, "3");
	xp_call_soon(loop, stop_loop, loop);
	return 0;
}

TEST(loop_call_soon_threadsafe_same_thread_keeps_fifo_sem_87)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	xp_call_soon(loop, ts_same_thread, loop);
	xp_loop_run_forever(loop);
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "123");
	xp_loop_free(loop);
}

/* asyncio appends both kinds of call to one ready deque: FIFO across them,
 * whether the thread-safe call comes from a thread or from the loop's own
 * thread before the loop runs. */
TEST(loop_call_soon_threadsafe_before_call_soon_keeps_fifo)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	CHECK_EQ(xp_call_soon_threadsafe(loop, note, "A"), 0);
	xp_call_soon(loop, note, "B");
	CHECK_EQ(xp_call_soon_threadsafe(loop, note, "C"), 0);
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "ABC");
	xp_loop_free(loop);
}

static void *post_a(void *arg)
{
	xp_call_soon_threadsafe(arg, note, "A");
	return NULL;
}

static int post_from_thread_then_call_soon(void *arg)
{
	pthread_t th;
	pthread_create(&th, NULL, post_a, arg);
	pthread_join(th, NULL); /* A is queued before B is */
	xp_call_soon(arg, note, "B");
	xp_call_soon(arg, stop_loop, arg);
	return 0;
}

TEST(loop_call_soon_threadsafe_from_thread_then_call_soon_keeps_fifo)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	xp_call_soon(loop, post_from_thread_then_call_soon, loop);
	xp_handle *guard = xp_call_later(loop, 5, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "AB");
	xp_handle_cancel(guard);
	xp_loop_free(loop);
}

/* Calls queued from a thread and never run are freed with the loop. */
TEST(loop_call_soon_threadsafe_pending_at_close_is_freed)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	pthread_t th;
	pthread_create(&th, NULL, post_a, loop);
	pthread_join(th, NULL);
	CHECK_EQ(xp_loop_close(loop), 0);
	CHECK_EQ(xp_call_soon_threadsafe(loop, note, "X"), XP_ECLOSED);
	CHECK_STR(order, "");
	xp_loop_free(loop);
}

struct rw {
	xp_loop *loop;
	int fd;
	char got[64];
	int nread, nwritable;
};

static int on_readable(void *arg)
{
	struct rw *r = arg;
	ssize_t n = read(r->fd, r->got + strlen(r->got), 10);
	if (n <= 0) {
		CHECK_EQ(xp_remove_reader(r->loop, r->fd), 1);
		CHECK_EQ(xp_remove_reader(r->loop, r->fd), 0);
		xp_loop_stop(r->loop);
	}
	r->nread++;
	return 0;
}

static int on_writable(void *arg)
{
	struct rw *r = arg;
	r->nwritable++;
	xp_remove_writer(r->loop, r->fd);
	return 0;
}

TEST(loop_add_reader_add_writer_on_socketpair)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	struct rw r = {loop, sv[0], {0}, 0, 0};
	CHECK_EQ(xp_add_reader(loop, sv[0], on_readable, &r), 0);
	CHECK_EQ(xp_add_writer(loop, sv[0], on_writable, &r), 0);
	xpt_write_all(sv[1], "hello", 5);
	close(sv[1]);
	xp_call_later(loop, 5, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(r.got, "hello");
	CHECK_EQ(r.nwritable, 1);
	CHECK_EQ(xp_remove_writer(loop, sv[0]), 0);
	close(sv[0]);
	xp_loop_free(loop);
}

TEST(loop_add_reader_regular_file_and_dev_null_always_ready)
{
	xp_loop *loop = xp_loop_new();
	char path[] = "/tmp/xp_loop_XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	unlink(path);
	REQUIRE(write(fd, "filedata", 8) == 8);
	lseek(fd, 0, SEEK_SET);
	struct rw r = {loop, fd, {0}, 0, 0};
	CHECK_EQ(xp_add_reader(loop, fd, on_readable, &r), 0);
	xp_call_later(loop, 5, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(r.got, "filedata");
	close(fd);

	int dn = open("/dev/null", O_WRONLY);
	struct rw w = {loop, dn, {0}, 0, 0};
	CHECK_EQ(xp_add_writer(loop, dn, on_writable, &w), 0);
	xp_call_later(loop, 0.05, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_EQ(w.nwritable, 1);
	close(dn);
	xp_loop_free(loop);
}

static int sig_hits;
static int on_signal(void *arg)
{
	sig_hits++;
	xp_loop_stop(arg);
	return 0;
}

static void *send_sigusr1(void *arg)
{
	usleep(50000); /* the loop is blocked in its poll by now */
	kill(getpid(), SIGUSR1);
	return NULL;
}

TEST(loop_signal_handler_runs_on_loop_mid_poll_sem_88)
{
	xp_loop *loop = xp_loop_new();
	sig_hits = 0;
	CHECK_EQ(xp_add_signal_handler(loop, SIGUSR1, on_signal, loop), 0);
	pthread_t th;
	pthread_create(&th, NULL, send_sigusr1, NULL);
	xp_handle *guard = xp_call_later(loop, 5, stop_loop, loop);
	xp_loop_run_forever(loop);
	pthread_join(th, NULL);
	CHECK_EQ(sig_hits, 1);
	CHECK_EQ(xp_remove_signal_handler(loop, SIGUSR1), 1);
	CHECK_EQ(xp_remove_signal_handler(loop, SIGUSR1), 0);
	xp_handle_cancel(guard);
	xp_loop_free(loop);
}

TEST(loop_signal_handler_invalid_signals_sem_88)
{
	xp_loop *loop = xp_loop_new();
	CHECK_EQ(xp_add_signal_handler(loop, 0, on_signal, loop), -EINVAL);
	CHECK_EQ(xp_add_signal_handler(loop, 4096, on_signal, loop), -EINVAL);
	CHECK_EQ(xp_add_signal_handler(loop, SIGKILL, on_signal, loop), -EINVAL);
	CHECK_EQ(xp_add_signal_handler(loop, SIGSTOP, on_signal, loop), -EINVAL);
	CHECK_EQ(xp_remove_signal_handler(loop, SIGKILL), -EINVAL);
	xp_loop_free(loop);
}

TEST(loop_sigint_handler_with_raise)
{
	xp_loop *loop = xp_loop_new();
	sig_hits = 0;
	CHECK_EQ(xp_add_signal_handler(loop, SIGINT, on_signal, loop), 0);
	raise(SIGINT); /* blocked now: it waits in the signalfd */
	xp_handle *guard = xp_call_later(loop, 5, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_EQ(sig_hits, 1);
	xp_handle_cancel(guard);
	xp_loop_free(loop);
}

static void *square(void *arg, int *err)
{
	long v = (long)(intptr_t)arg;
	if (v < 0) {
		*err = -EDOM;
		return NULL;
	}
	return (void *)(intptr_t)(v * v);
}

TEST(loop_run_in_executor_result_and_error)
{
	xp_loop *loop = xp_loop_new();
	xp_future *f = xp_run_in_executor(loop, square, (void *)(intptr_t)12);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK_EQ((intptr_t)xp_future_result(f), 144);
	xp_future_release(f);
	f = xp_run_in_executor(loop, square, (void *)(intptr_t)-1);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -EDOM);
	xp_future_release(f);
	xp_loop_free(loop);
}

TEST(loop_getaddrinfo_and_getnameinfo_off_loop)
{
	xp_loop *loop = xp_loop_new();
	struct addrinfo hints = {
	    .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	xp_future *f = xp_getaddrinfo(loop, "127.0.0.1", "80", &hints);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	struct addrinfo *ai = xp_future_result(f);
	REQUIRE(ai);
	char buf[64];
	xp_sockaddr_format(ai->ai_addr, ai->ai_addrlen, buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.1:80");
	xp_future *g =
	    xp_getnameinfo(loop, ai->ai_addr, ai->ai_addrlen, NI_NUMERICHOST | NI_NUMERICSERV);
	CHECK_EQ(xp_loop_run_until_complete(loop, g), 0);
	xp_nameinfo *ni = xp_future_result(g);
	CHECK_STR(ni->host, "127.0.0.1");
	CHECK_STR(ni->serv, "80");
	xp_future_release(g);
	xp_future_release(f);
	f = xp_getaddrinfo(loop, "no-such-host.invalid", "80", NULL);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), XP_ERESOLVE);
	xp_future_release(f);
	xp_loop_free(loop);
}

static void *slow_work(void *arg, int *err)
{
	usleep(100000);
	return malloc(16);
}

TEST(loop_close_with_executor_job_in_flight)
{
	xp_loop *loop = xp_loop_new();
	xp_future *f = xp_run_in_executor(loop, slow_work, NULL);
	/* the result is leaked by design here unless the future owns it:
	 * fetch it after close and free it */
	CHECK_EQ(xp_loop_close(loop), 0);
	CHECK(xp_future_done(f));
	if (xp_future_error(f) == 0)
		free(xp_future_result(f));
	xp_future_release(f);
	xp_loop_free(loop);
}

static void on_done(xp_future *f, void *arg)
{
	strcat(order, (const char *)arg);
}

TEST(loop_future_states_and_done_callbacks)
{
	xp_loop *loop = xp_loop_new();
	order[0] = 0;
	xp_future *f = xp_future_new(loop);
	CHECK(!xp_future_done(f));
	CHECK_EQ(xp_future_error(f), XP_ESTATE);
	xp_future_add_done_callback(f, on_done, "1");
	xp_future_add_done_callback(f, on_done, "x");
	xp_future_add_done_callback(f, on_done, "2");
	CHECK_EQ(xp_future_remove_done_callback(f, on_done, "x"), 1);
	CHECK_EQ(xp_future_set_result_num(f, 42), 0);
	CHECK_EQ(xp_future_set_result_num(f, 43), XP_ESTATE);
	CHECK_EQ(xp_future_set_error(f, -EIO), XP_ESTATE);
	CHECK_STR(order, ""); /* callbacks run from the loop, not inline */
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "12");
	CHECK_EQ(xp_future_result_num(f), 42);
	xp_future_release(f);

	f = xp_future_new(loop);
	CHECK_EQ(xp_future_cancel(f), 1);
	CHECK_EQ(xp_future_cancel(f), 0);
	CHECK(xp_future_cancelled(f));
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -ECANCELED);
	xp_future_release(f);

	f = xp_future_new(loop);
	xp_future_set_result_owned(f, malloc(10), free); /* freed with f */
	xp_future_release(f);
	xp_loop_free(loop);
}

static int complete_later(void *arg)
{
	xp_future_set_error(arg, -ETIMEDOUT);
	return 0;
}

TEST(loop_run_until_complete_and_stopped_early)
{
	xp_loop *loop = xp_loop_new();
	xp_future *f = xp_future_new(loop);
	xp_call_later(loop, 0.01, complete_later, f);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -ETIMEDOUT);
	xp_future_release(f);
	f = xp_future_new(loop);
	xp_call_soon(loop, stop_loop, loop);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), XP_ESTATE);
	xp_future_release(f);
	xp_loop_free(loop);
}

static int slow_cb(void *arg)
{
	usleep(30000);
	return 0;
}

TEST(loop_debug_mode_logs_slow_callbacks)
{
	xp_loop *loop = xp_loop_new();
	xp_loop_set_debug(loop, 1);
	CHECK(xp_loop_get_debug(loop));
	xp_loop_set_slow_callback_duration(loop, 0.01);
	int p[2];
	REQUIRE(pipe(p) == 0);
	int saved = dup(2);
	dup2(p[1], 2);
	xp_call_soon(loop, slow_cb, NULL);
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	dup2(saved, 2);
	close(p[1]);
	char buf[512] = {0};
	xpt_read_all(p[0], buf, sizeof(buf) - 1, 200);
	CHECK(strstr(buf, "took") != NULL);
	xp_loop_free(loop);
}

struct wrong_thread {
	xp_loop *loop;
	xp_handle *h;
	int err;
};

static void *call_from_thread(void *arg)
{
	struct wrong_thread *w = arg;
	w->h = xp_call_soon(w->loop, note, "x");
	w->err = errno;
	return NULL;
}

static int spawn_wrong_thread(void *arg)
{
	struct wrong_thread *w = arg;
	pthread_t th;
	pthread_create(&th, NULL, call_from_thread, w);
	pthread_join(th, NULL);
	xp_loop_stop(w->loop);
	return 0;
}

TEST(loop_debug_mode_catches_wrong_thread)
{
	xp_loop *loop = xp_loop_new();
	xp_loop_set_debug(loop, 1);
	struct wrong_thread w = {loop, NULL, 0};
	int devnull = open("/dev/null", O_WRONLY), saved = dup(2);
	dup2(devnull, 2);
	xp_call_soon(loop, spawn_wrong_thread, &w);
	xp_loop_run_forever(loop);
	dup2(saved, 2);
	CHECK(w.h == NULL);
	CHECK_EQ(w.err, EPERM);
	xp_loop_free(loop);
}

TEST(loop_strerror_and_sockaddr_format)
{
	CHECK_STR(xp_strerror(0), "Success");
	CHECK_STR(xp_strerror(-ECONNREFUSED), "Connection refused");
	CHECK_STR(xp_strerror(XP_ETRUNCATED), "TLS connection truncated (no close_notify)");
	struct sockaddr_in6 in6 = {
	    .sin6_family = AF_INET6, .sin6_port = htons(443), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	char buf[80];
	CHECK_EQ(xp_sockaddr_format((void *)&in6, sizeof(in6), buf, sizeof(buf)), 0);
	CHECK_STR(buf, "[::1]:443");
	CHECK_STR(xp_version(), XP_VERSION_STRING);
}

static int cond_made(void *arg)
{
	return ((struct rec *)arg)->nmade > 0;
}

TEST(loop_debug_mode_reports_unclosed_transports_at_close)
{
	xp_loop *loop = xp_loop_new();
	xp_loop_set_debug(loop, 1);
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_future *f = xp_connect_accepted_socket(loop, rec_factory_one, r, sv[0], NULL);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	xp_future_release(f);
	REQUIRE(rec_run_until(loop, cond_made, r, 5));
	int p[2];
	REQUIRE(pipe(p) == 0);
	int saved = dup(2);
	dup2(p[1], 2);
	CHECK_EQ(xp_loop_close(loop), 0);
	dup2(saved, 2);
	close(p[1]);
	char buf[512] = {0};
	xpt_read_all(p[0], buf, sizeof(buf) - 1, 200);
	CHECK(strstr(buf, "unclosed transport") != NULL);
	/* closing it after the loop is still safe: connection_lost comes at
	 * once, since nothing can run later */
	xp_transport_abort(r->t);
	CHECK_EQ(r->nlost, 1);
	close(sv[1]);
	close(p[0]);
	rec_free(r);
	xp_loop_free(loop);
}

/* Each address is copied into a heap block of exactly len bytes, so ASan
 * and valgrind catch any read past len. */
static int format_exact(const void *sa, socklen_t len, char *buf, size_t size)
{
	void *copy = malloc(len ? len : 1);
	memcpy(copy, sa, len);
	int r = xp_sockaddr_format(copy, len, buf, size);
	free(copy);
	return r;
}

TEST(loop_sockaddr_format_short_lengths_stay_within_len)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(80)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	char buf[200];
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (socklen_t len = 0; len < sizeof(in); len++)
		CHECK_EQ(format_exact(&in, len, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(format_exact(&in, sizeof(in), buf, sizeof(buf)), 0);
	CHECK_STR(buf, "127.0.0.1:80");
	for (socklen_t len = 0; len < sizeof(in6); len++)
		CHECK_EQ(format_exact(&in6, len, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(format_exact(&in6, sizeof(in6), buf, sizeof(buf)), 0);
	CHECK_STR(buf, "[::]:443");
	/* sun_path without a NUL within len: only len bytes are shown. */
	memset(un.sun_path, 'p', sizeof(un.sun_path));
	socklen_t base = offsetof(struct sockaddr_un, sun_path);
	CHECK_EQ(format_exact(&un, base, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "unix:");
	CHECK_EQ(format_exact(&un, base + 3, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "unix:ppp");
	CHECK_EQ(format_exact(&un, sizeof(un), buf, sizeof(buf)), 0);
	CHECK_EQ(strlen(buf), strlen("unix:") + sizeof(un.sun_path));
	un.sun_path[0] = '\0';
	CHECK_EQ(format_exact(&un, base + 1, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "unix:@");
	CHECK_EQ(format_exact(&un, base + 4, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "unix:@ppp");
	CHECK_EQ(format_exact(&un, 1, buf, sizeof(buf)), -EINVAL);
}

struct order_io {
	xp_loop *loop;
	int fd;
};

static int reader_schedules_c(void *arg)
{
	struct order_io *o = arg;
	char c;
	strcat(order, "R");
	CHECK_EQ(read(o->fd, &c, 1), 1);
	xp_remove_reader(o->loop, o->fd);
	xp_call_soon(o->loop, note, "C");
	return 0;
}

/* I/O callbacks run from the poll, ahead of the callbacks already ready
 * (as in uvloop); what they schedule belongs to the next iteration (as in
 * asyncio), so stop() in this one leaves C to the next run. */
TEST(loop_io_callback_runs_from_poll_and_schedules_next_iteration)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	struct order_io o = {loop, sv[0]};
	order[0] = 0;
	xpt_write_all(sv[1], "x", 1);
	CHECK_EQ(xp_add_reader(loop, sv[0], reader_schedules_c, &o), 0);
	xp_call_soon(loop, note, "A");
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "RA");
	xp_call_soon(loop, stop_loop, loop);
	xp_loop_run_forever(loop);
	CHECK_STR(order, "RAC");
	close(sv[0]);
	close(sv[1]);
	xp_loop_free(loop);
}

struct spin {
	xp_loop *loop;
	int fd;
	long spins;
	int nread, fired;
	double deadline;
};

static int spin_cb(void *arg)
{
	struct spin *s = arg;
	s->spins++;
	/* Both seen, or starved for far too long: stop either way. */
	if ((s->nread && s->fired) || xp_loop_time(s->loop) > s->deadline)
		xp_loop_stop(s->loop);
	else
		xp_call_soon(s->loop, spin_cb, s);
	return 0;
}

static int spin_read(void *arg)
{
	struct spin *s = arg;
	char buf[8];
	if (read(s->fd, buf, sizeof(buf)) > 0)
		s->nread++;
	return 0;
}

static int spin_timer(void *arg)
{
	((struct spin *)arg)->fired++;
	return 0;
}

/* A callback that keeps rescheduling itself never leaves the ready queue
 * empty; the loop must still poll (with timeout 0) and collect timers. */
TEST(loop_self_rescheduling_callback_cannot_starve_io_or_timers)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	struct spin s = {loop, sv[0], 0, 0, 0, xp_loop_time(loop) + 8};
	CHECK_EQ(xp_add_reader(loop, sv[0], spin_read, &s), 0);
	REQUIRE(xp_call_later(loop, 0.02, spin_timer, &s));
	xp_call_soon(loop, spin_cb, &s);
	xpt_write_all(sv[1], "ping", 4);
	xp_loop_run_forever(loop);
	CHECK_EQ(s.nread, 1);
	CHECK_EQ(s.fired, 1);
	CHECK(s.spins > 1);
	xp_remove_reader(loop, sv[0]);
	close(sv[0]);
	close(sv[1]);
	xp_loop_free(loop);
}
