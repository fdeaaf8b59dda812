// SPDX-License-Identifier: MIT
/* Subprocess transports: spawning, pipes, exit status, signals. */
#include "test.h"
#include "recorder.h"
#include "internal.h" /* xp__subprocess_no_pidfd */

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- helpers ------------------------------------------------------------ */

/*
 * The transport is taken (retained) in connection_made: a quick child can
 * exit and deliver connection_lost in the very loop run that completes the
 * future, after which the future's result pointer would be stale.  Tests
 * release it at the end and can read the returncode after connection_lost.
 */
static xp_transport *last_made;
static int made_rc; /* get_returncode() inside connection_made */

static void made_retain(xp_protocol *p, xp_transport *t)
{
	rec_made(p, t);
	last_made = xp_transport_retain(t);
	made_rc = xp_transport_get_returncode(t, NULL);
}

static const xp_protocol_ops sub_ops = {
    .connection_made = made_retain,
    .connection_lost = rec_lost,
    .pipe_data_received = rec_pipe_data,
    .pipe_connection_lost = rec_pipe_lost,
    .process_exited = rec_exited,
};

static xp_transport *await_spawn(xp_loop *loop, xp_future *f, int *err)
{
	xp_transport *t = NULL;
	int e;

	if (!f)
		return NULL;
	last_made = NULL;
	e = xp_loop_run_until_complete(loop, f);
	if (err)
		*err = e;
	if (e == 0)
		t = last_made;
	else if (last_made)
		xp_transport_release(last_made);
	xp_future_release(f);
	return t;
}

static xp_transport *spawn_sh(xp_loop *loop, struct rec *r, const char *cmd,
			      const xp_subprocess_opts *o, int *err)
{
	return await_spawn(loop, xp_subprocess_shell(loop, rec_factory_one, r, cmd, o), err);
}

static xp_transport *spawn_argv(xp_loop *loop, struct rec *r, char *const argv[],
				const xp_subprocess_opts *o, int *err)
{
	return await_spawn(loop, xp_subprocess_exec(loop, rec_factory_one, r, argv[0], argv, o),
			   err);
}

static int returncode(xp_transport *t)
{
	int code = 12345;
	int r = xp_transport_get_returncode(t, &code);
	return r == 0 ? code : r;
}

/* Position of a word in the log, or -1. */
static int logpos(const struct rec *r, const char *word)
{
	const char *p = strstr(r->log, word);
	return p ? (int)(p - r->log) : -1;
}

static int count_word(const struct rec *r, const char *word)
{
	int n = 0;
	for (const char *p = r->log; (p = strstr(p, word)); p += strlen(word))
		n++;
	return n;
}

static void check_last_lost0(const struct rec *r)
{
	size_t n = strlen(r->log);
	CHECK(n >= 6 && strcmp(r->log + n - 6, "lost:0") == 0);
	CHECK_EQ(r->nlost, 1);
}

static int quiet_handler(xp_loop *loop, const xp_context *ctx, void *arg)
{
	return 0;
}

static const xp_stdio all_devnull = {XP_STDIO_DEVNULL, 0};

/* ---- sem 78: pipe transports ------------------------------------------- */

TEST(subprocess_pipe_transports_sem_78)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "cat", NULL, NULL);
	REQUIRE(t);
	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_SUBPROCESS);
	xp_transport *p0 = xp_transport_get_pipe_transport(t, 0);
	xp_transport *p1 = xp_transport_get_pipe_transport(t, 1);
	xp_transport *p2 = xp_transport_get_pipe_transport(t, 2);
	REQUIRE(p0 && p1 && p2);
	/* valid until the subprocess's connection_lost; longer if retained */
	xp_transport_retain(p0);
	CHECK_EQ(xp_transport_kind(p0), XP_TRANSPORT_WRITE_PIPE);
	CHECK_EQ(xp_transport_kind(p1), XP_TRANSPORT_READ_PIPE);
	CHECK_EQ(xp_transport_kind(p2), XP_TRANSPORT_READ_PIPE);
	CHECK(xp_transport_get_pipe_transport(t, 3) == NULL);
	CHECK(xp_transport_get_pipe_transport(t, -1) == NULL);
	/* not a stream */
	CHECK_EQ(xp_transport_write(t, "x", 1), -ENOTSUP);
	CHECK_EQ(xp_transport_write(p0, "ping\n", 5), 0);
	xp_transport_write_eof(p0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->inlen, 5);
	CHECK_MEM(r->in, "ping\n", 5);
	CHECK_EQ(returncode(t), 0);
	CHECK(xp_transport_is_closing(p0));
	CHECK_EQ(xp_transport_write(p0, "late", 4), 0); /* a harmless no-op */
	xp_transport_release(p0);
	CHECK(xp_transport_get_pipe_transport(t, 1) == NULL);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_stderr_stdout_merge_sem_78)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.err = {XP_STDIO_STDOUT, 0}};
	xp_transport *t = spawn_sh(loop, r, "echo a; echo b >&2; echo c", &o, NULL);
	REQUIRE(t);
	CHECK(xp_transport_get_pipe_transport(t, 0) != NULL);
	CHECK(xp_transport_get_pipe_transport(t, 1) != NULL);
	CHECK(xp_transport_get_pipe_transport(t, 2) == NULL);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->inlen, 6);
	CHECK_MEM(r->in, "a\nb\nc\n", 6);
	CHECK_EQ(logpos(r, "pipedata2"), -1);
	CHECK_EQ(logpos(r, "pipelost2"), -1);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_devnull_no_pipes_sem_78)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull, .out = all_devnull, .err = all_devnull};
	xp_transport *t = spawn_sh(loop, r, "cat; echo lost", &o, NULL);
	REQUIRE(t);
	for (int i = 0; i < 3; i++)
		CHECK(xp_transport_get_pipe_transport(t, i) == NULL);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made exited lost:0");
	CHECK_EQ(returncode(t), 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- sem 79, 80: exit status ------------------------------------------- */

static int cond_exited(void *arg)
{
	return strstr(((struct rec *)arg)->log, "exited") != NULL;
}

TEST(subprocess_exit_code_sem_79)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exit 7", NULL, NULL);
	REQUIRE(t);
	/* asyncio's None until the loop saw the exit */
	CHECK_EQ(made_rc, -EAGAIN);
	CHECK(rec_run_until(loop, cond_exited, r, 5));
	CHECK_EQ(returncode(t), 7);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(count_word(r, "exited"), 1);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

static void signal_case(int sig, int how)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exec sleep 100", NULL, NULL);
	REQUIRE(t);
	CHECK_EQ(xp_transport_get_returncode(t, NULL), -EAGAIN);
	int rc = how == 0   ? xp_transport_kill(t)
		 : how == 1 ? xp_transport_terminate(t)
			    : xp_transport_send_signal(t, sig);
	CHECK_EQ(rc, 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -sig);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_kill_sem_80)
{
	signal_case(SIGKILL, 0);
}

TEST(subprocess_terminate_sem_80)
{
	signal_case(SIGTERM, 1);
}

TEST(subprocess_send_signal_hup_sem_80)
{
	signal_case(SIGHUP, 2);
}

/* The loop may block or ignore signals (signalfd); the child must not
 * inherit that. */
TEST(subprocess_signal_mask_and_dispositions_reset)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exec sleep 100", NULL, NULL);
	REQUIRE(t);
	CHECK_EQ(xp_transport_send_signal(t, SIGINT), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -SIGINT);
	xp_transport_release(t);
	rec_free(r);

	/* SIGPIPE back to default too: `yes | head` style death */
	r = rec_new(&sub_ops, loop);
	t = spawn_sh(loop, r, "kill -PIPE $$; exit 3", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -SIGPIPE);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- sem 81: close kills ------------------------------------------------ */

TEST(subprocess_close_kills_running_sem_81)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_argv(loop, r, (char *const[]){"sleep", "100", NULL}, NULL, NULL);
	REQUIRE(t);
	xp_transport *p0 = xp_transport_get_pipe_transport(t, 0);
	REQUIRE(p0);
	xp_transport_close(t);
	CHECK(xp_transport_is_closing(t));
	CHECK(xp_transport_is_closing(p0));
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -9);
	CHECK(logpos(r, "pipelost0:0") > 0);
	CHECK(logpos(r, "pipelost1:0") > 0);
	CHECK(logpos(r, "pipelost2:0") > 0);
	CHECK_EQ(count_word(r, "exited"), 1);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_close_after_exit_no_kill_sem_81)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull};
	xp_transport *t = spawn_sh(loop, r, "exit 5", &o, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, cond_exited, r, 5));
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 5);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_abort_kills_running)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exec sleep 100", NULL, NULL);
	REQUIRE(t);
	xp_transport_abort(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -9);
	CHECK_EQ(r->nlost, 1);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- sem 83: event order ------------------------------------------------ */

TEST(subprocess_event_order_sem_83)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t =
	    spawn_sh(loop, r, "echo out; echo err >&2; echo out2; echo err2 >&2", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(logpos(r, "made"), 0);
	CHECK_EQ(r->nmade, 1);
	int d1 = logpos(r, "pipedata1"), d2 = logpos(r, "pipedata2");
	int l0 = logpos(r, "pipelost0"), l1 = logpos(r, "pipelost1:0"),
	    l2 = logpos(r, "pipelost2:0");
	int ex = logpos(r, "exited");
	CHECK(d1 > 0 && d2 > 0 && l0 > 0 && l1 > 0 && l2 > 0 && ex > 0);
	CHECK(d1 < l1);
	CHECK(d2 < l2);
	CHECK_EQ(count_word(r, "exited"), 1);
	CHECK_EQ(count_word(r, "pipelost1"), 1);
	CHECK_EQ(count_word(r, "pipelost2"), 1);
	CHECK_EQ(count_word(r, " lost:"), 1); /* only once, at the very end */
	check_last_lost0(r);
	/* every byte, per fd */
	CHECK_EQ(r->inlen, strlen("out\nerr\nout2\nerr2\n"));
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* connection_lost waits for a pipe held open after the exit. */
TEST(subprocess_lost_waits_for_pipes_sem_83)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull, .err = all_devnull};
	xp_transport *t = spawn_sh(loop, r, "(sleep 0.2; echo late) & exit 0", &o, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 0);
	CHECK(logpos(r, "exited") < logpos(r, "pipedata1"));
	CHECK(logpos(r, "pipedata1") < logpos(r, "pipelost1:0"));
	CHECK_STR(r->log, "made exited pipedata1:5 pipelost1:0 lost:0");
	CHECK_EQ(r->inlen, 5);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- sem 84: after connection_lost ------------------------------------- */

TEST(subprocess_signal_after_lost_sem_84)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exit 3", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(xp_transport_send_signal(t, SIGTERM), -ESRCH);
	CHECK_EQ(xp_transport_terminate(t), -ESRCH);
	CHECK_EQ(xp_transport_kill(t), -ESRCH);
	CHECK_EQ(returncode(t), 3);
	CHECK(xp_transport_get_pipe_transport(t, 0) == NULL);
	xp_transport_close(t); /* harmless */
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_signal_after_exit_before_lost)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull};
	/* stdout stays open in a grandchild for a moment after the exit */
	xp_transport *t = spawn_sh(loop, r, "(sleep 0.3; echo x) & exit 4", &o, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, cond_exited, r, 5));
	CHECK_EQ(r->nlost, 0);
	/* reaped: never signal the (reusable) pid, but not an error yet */
	CHECK_EQ(xp_transport_kill(t), 0);
	CHECK_EQ(returncode(t), 4);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- sem 68: extra info ------------------------------------------------- */

TEST(subprocess_extra_info_sem_68)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exec sleep 100", NULL, NULL);
	REQUIRE(t);
	const pid_t *pid = xp_transport_get_extra_info(t, "subprocess", NULL);
	REQUIRE(pid);
	CHECK(*pid > 0);
	pid_t got = 0;
	CHECK_EQ(xp_transport_get_pid(t, &got), 0);
	CHECK_EQ(*pid, got);
	CHECK(xp_transport_get_extra_info(t, "pipe", NULL) == NULL);
	const int *fd =
	    xp_transport_get_extra_info(xp_transport_get_pipe_transport(t, 1), "pipe", NULL);
	CHECK(fd && *fd > 2);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- data through the pipes -------------------------------------------- */

TEST(subprocess_cat_16mib_byte_exact)
{
	size_t n = 16u << 20;
	unsigned char *data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i ^ (i >> 8) ^ (i >> 16));
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_argv(loop, r, (char *const[]){"cat", NULL}, NULL, NULL);
	REQUIRE(t);
	xp_transport *in = xp_transport_get_pipe_transport(t, 0);
	REQUIRE(in);
	/* in pieces, so the buffer and the pipe both get exercised */
	for (size_t off = 0; off < n; off += 1 << 20)
		CHECK_EQ(xp_transport_write(in, data + off, 1 << 20), 0);
	CHECK_EQ(xp_transport_write_eof(in), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 25));
	CHECK_EQ(r->inlen, n);
	if (r->inlen == n)
		CHECK_MEM(r->in, data, n);
	CHECK_EQ(returncode(t), 0);
	/* the log overflows with data entries: check the counters */
	CHECK_EQ(r->nlost, 1);
	CHECK_EQ(r->lost_err, 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
	free(data);
}

struct flow {
	struct rec rec;
	int pauses, resumes;
};

static void flow_pause(xp_protocol *p)
{
	XP_CONTAINER_OF(p, struct flow, rec.base)->pauses++;
}

static void flow_resume(xp_protocol *p)
{
	XP_CONTAINER_OF(p, struct flow, rec.base)->resumes++;
}

TEST(subprocess_stdin_flow_control_forwarded)
{
	static const xp_protocol_ops ops = {
	    .connection_made = made_retain,
	    .connection_lost = rec_lost,
	    .pipe_data_received = rec_pipe_data,
	    .pipe_connection_lost = rec_pipe_lost,
	    .process_exited = rec_exited,
	    .pause_writing = flow_pause,
	    .resume_writing = flow_resume,
	};
	struct flow *fl = calloc(1, sizeof(*fl));
	size_t n = 1 << 20;
	unsigned char *data = calloc(1, n);
	xp_loop *loop = xp_loop_new();
	fl->rec.base.ops = &ops;
	fl->rec.loop = loop;
	xp_subprocess_opts o = {.out = all_devnull};
	/* the child reads nothing until told (a line on fd 3 never comes):
	 * it sleeps, then drains stdin */
	xp_transport *t = spawn_sh(loop, &fl->rec, "sleep 0.2; cat >/dev/null", &o, NULL);
	REQUIRE(t);
	xp_transport *in = xp_transport_get_pipe_transport(t, 0);
	CHECK_EQ(xp_transport_write(in, data, n), 0);
	CHECK_EQ(fl->pauses, 1);
	CHECK(xp_transport_get_write_buffer_size(in) > 0);
	xp_transport_close(in);
	CHECK(rec_run_until(loop, rec_cond_lost, &fl->rec, 10));
	CHECK_EQ(fl->resumes, 1);
	CHECK_EQ(returncode(t), 0);
	CHECK(logpos(&fl->rec, "pipelost0:0") > 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	free(fl->rec.in);
	free(fl);
	free(data);
}

TEST(subprocess_stdio_fd_mode)
{
	int p[2];
	char buf[32] = "";
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull, .out = {XP_STDIO_FD, p[1]}};
	xp_transport *t = spawn_sh(loop, r, "echo hello", &o, NULL);
	REQUIRE(t);
	CHECK(xp_transport_get_pipe_transport(t, 1) == NULL);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK(fcntl(p[1], F_GETFD) >= 0); /* not taken */
	close(p[1]);
	CHECK_EQ(xpt_read_all(p[0], buf, sizeof(buf), 2000), 6);
	CHECK_STR(buf, "hello\n");
	close(p[0]);
	/* the order of exit and pipe end is unspecified (sem 83) */
	CHECK(!strcmp(r->log, "made pipelost2:0 exited lost:0") ||
	      !strcmp(r->log, "made exited pipelost2:0 lost:0"));
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* An FD-mode descriptor numbered like a target (stdout=FD 2, stderr=FD 1):
 * the swap must not clobber. */
TEST(subprocess_stdio_fd_swap_low_fds)
{
	int out[2], err[2];
	char b1[16] = "", b2[16] = "";
	REQUIRE(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
	int save1 = dup(1), save2 = dup(2);
	dup2(out[1], 1);
	dup2(err[1], 2);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {
	    .in = all_devnull, .out = {XP_STDIO_FD, 2}, .err = {XP_STDIO_FD, 1}};
	xp_transport *t = spawn_sh(loop, r, "echo toout; echo toerr >&2", &o, NULL);
	dup2(save1, 1);
	dup2(save2, 2);
	close(save1);
	close(save2);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	close(out[1]);
	close(err[1]);
	CHECK_EQ(xpt_read_all(out[0], b1, sizeof(b1), 2000), 6);
	CHECK_EQ(xpt_read_all(err[0], b2, sizeof(b2), 2000), 6);
	CHECK_STR(b1, "toerr\n");
	CHECK_STR(b2, "toout\n");
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_stdio_devnull_in)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull};
	xp_transport *t = spawn_argv(loop, r, (char *const[]){"cat", NULL}, &o, NULL);
	REQUIRE(t);
	CHECK(xp_transport_get_pipe_transport(t, 0) == NULL);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->inlen, 0);
	CHECK_EQ(returncode(t), 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_stdio_inherit)
{
	int p[2];
	char buf[16] = "";
	REQUIRE(pipe2(p, O_CLOEXEC) == 0);
	int save = dup(1);
	dup2(p[1], 1);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = all_devnull, .out = {XP_STDIO_INHERIT, 0}};
	xp_transport *t = spawn_sh(loop, r, "echo inh", &o, NULL);
	dup2(save, 1);
	close(save);
	close(p[1]);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(xpt_read_all(p[0], buf, sizeof(buf), 2000), 4);
	CHECK_STR(buf, "inh\n");
	close(p[0]);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_pipe_data_error_fails_pipe)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_loop_set_exception_handler(loop, quiet_handler, NULL);
	r->data_ret = -EPROTO;
	xp_subprocess_opts o = {.in = all_devnull, .err = all_devnull};
	xp_transport *t = spawn_sh(loop, r, "echo x", &o, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK(logpos(r, "pipelost1:-71") > 0);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- spawning options and failures ------------------------------------- */

TEST(subprocess_exec_missing_enoent)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	int err = 0;
	CHECK(spawn_argv(loop, r, (char *const[]){"/nonexistent/prog", NULL}, NULL, &err) == NULL);
	CHECK_EQ(err, -ENOENT);
	CHECK(spawn_argv(loop, r, (char *const[]){"xport-no-such-program-xyz", NULL}, NULL, &err) ==
	      NULL);
	CHECK_EQ(err, -ENOENT);
	CHECK_EQ(r->nmade, 0);
	/* no zombie left behind */
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_exec_not_executable_eacces)
{
	char path[] = "/tmp/xport_noexec_XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0);
	CHECK_EQ(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);
	chmod(path, 0600);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	int err = 0;
	CHECK(spawn_argv(loop, r, (char *const[]){path, NULL}, NULL, &err) == NULL);
	CHECK_EQ(err, -EACCES);
	/* a directory is not executable either */
	CHECK(spawn_argv(loop, r, (char *const[]){"/tmp", NULL}, NULL, &err) == NULL);
	CHECK_EQ(err, -EACCES);
	CHECK_EQ(r->nmade, 0);
	unlink(path);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_exec_path_search_and_bad_cwd)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	int err = 0;
	xp_subprocess_opts o = {.cwd = "/nonexistent-dir-xyz"};
	CHECK(spawn_sh(loop, r, "exit 0", &o, &err) == NULL);
	CHECK_EQ(err, -ENOENT);
	xp_transport *t =
	    spawn_argv(loop, r, (char *const[]){"sh", "-c", "exit 6", NULL}, NULL, &err);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 6);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_cwd_env_session)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	char *const env[] = {"FOO=bar baz", NULL};
	xp_subprocess_opts o = {.cwd = "/", .envp = env, .new_session = 1};
	xp_transport *t = spawn_sh(
	    loop, r, "pwd; echo \"$FOO\"; read a b c d e sid rest </proc/$$/stat; echo $sid", &o,
	    NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	char want[64];
	pid_t pid = 0;
	CHECK_EQ(xp_transport_get_pid(t, &pid), 0);
	snprintf(want, sizeof(want), "/\nbar baz\n%d\n", (int)pid);
	CHECK_EQ(r->inlen, strlen(want));
	if (r->inlen == strlen(want))
		CHECK_MEM(r->in, want, r->inlen);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_other_fds_closed)
{
	int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
	REQUIRE(leak > 2);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "if [ -e /proc/$$/fd/%d ]; then echo open; else echo closed; fi",
		 leak);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, cmd, NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->inlen, 7);
	CHECK_MEM(r->in, "closed\n", 7);
	close(leak);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

static xp_protocol *null_factory(void *arg)
{
	return NULL;
}

TEST(subprocess_factory_refuses)
{
	xp_loop *loop = xp_loop_new();
	xp_future *f = xp_subprocess_shell(loop, null_factory, NULL, "sleep 100", NULL);
	REQUIRE(f);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), XP_ECALLBACK);
	xp_future_release(f);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD); /* killed and reaped */
	xp_loop_free(loop);
}

TEST(subprocess_bad_args)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.in = {XP_STDIO_STDOUT, 0}};
	int err = 0;
	CHECK(spawn_sh(loop, r, "exit 0", &o, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	o.in.mode = XP_STDIO_FD;
	o.in.fd = 987;
	CHECK(spawn_sh(loop, r, "exit 0", &o, &err) == NULL);
	CHECK_EQ(err, -EBADF);
	CHECK(xp_subprocess_shell(loop, rec_factory_one, r, NULL, NULL) == NULL);
	CHECK(xp_subprocess_exec(loop, rec_factory_one, r, "x", NULL, NULL) == NULL);
	CHECK_EQ(r->nmade, 0);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- only our child is waited for -------------------------------------- */

TEST(subprocess_grandchild_and_unrelated_child)
{
	int gate[2];
	REQUIRE(pipe2(gate, O_CLOEXEC) == 0);
	pid_t mine = fork();
	REQUIRE(mine >= 0);
	if (mine == 0) {
		char c;
		close(gate[1]);
		_exit(read(gate[0], &c, 1) == 0 ? 42 : 1);
	}
	close(gate[0]);

	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t =
	    spawn_sh(loop, r, "sleep 30 </dev/null >/dev/null 2>&1 & echo $!; exit 9", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 9);
	check_last_lost0(r);
	char pidbuf[32] = "";
	memcpy(pidbuf, r->in, r->inlen < 31 ? r->inlen : 31);
	pid_t grand = (pid_t)atoi(pidbuf);
	CHECK(grand > 0);
	if (grand > 0)
		kill(grand, SIGKILL);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);

	/* our own child was left alone: still ours to reap */
	int status = 0;
	CHECK_EQ(waitpid(mine, &status, WNOHANG), 0);
	close(gate[1]);
	CHECK_EQ(waitpid(mine, &status, 0), mine);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
}

TEST(subprocess_poll_fallback_without_pidfd)
{
	xp__subprocess_no_pidfd = true;
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "echo hi; exit 3", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 3);
	CHECK_EQ(r->inlen, 3);
	check_last_lost0(r);
	xp_transport_release(t);
	rec_free(r);

	/* and close() of a running child with the timer */
	r = rec_new(&sub_ops, loop);
	t = spawn_sh(loop, r, "exec sleep 100", NULL, NULL);
	REQUIRE(t);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -9);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
	xp__subprocess_no_pidfd = false;
}

/* close() inside connection_made: the exit is still watched. */
static void close_in_made(xp_protocol *p, xp_transport *t)
{
	made_retain(p, t);
	xp_transport_close(t);
}

TEST(subprocess_close_inside_connection_made)
{
	static const xp_protocol_ops ops = {
	    .connection_made = close_in_made,
	    .connection_lost = rec_lost,
	    .pipe_data_received = rec_pipe_data,
	    .pipe_connection_lost = rec_pipe_lost,
	    .process_exited = rec_exited,
	};
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exec sleep 100", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), -9);
	CHECK_EQ(logpos(r, "made"), 0);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- odd environments --------------------------------------------------- */

/* Started with stdin closed, pipe() hands out fd 0: it must not end up
 * clobbered by the child's dup2s. */
TEST(subprocess_parent_stdio_closed)
{
	close(0);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_argv(loop, r, (char *const[]){"cat", NULL}, NULL, NULL);
	REQUIRE(t);
	xp_transport *in = xp_transport_get_pipe_transport(t, 0);
	REQUIRE(in);
	CHECK_EQ(xp_transport_write(in, "through\n", 8), 0);
	xp_transport_write_eof(in);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->inlen, 8);
	CHECK_MEM(r->in, "through\n", 8);
	CHECK_EQ(returncode(t), 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(subprocess_path_search_variants)
{
	char dir[] = "/tmp/xport_path_XXXXXX", file[64];
	REQUIRE(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/xport-prog", dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600); /* not executable */
	REQUIRE(fd >= 0);
	close(fd);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	int err = 0;
	char path[128];

	/* found but not executable, and nowhere else: EACCES like execvp */
	snprintf(path, sizeof(path), "/nonexistent:%s", dir);
	setenv("PATH", path, 1);
	CHECK(spawn_argv(loop, r, (char *const[]){"xport-prog", NULL}, NULL, &err) == NULL);
	CHECK_EQ(err, -EACCES);

	/* empty entries (the current directory) and missing ones are skipped */
	setenv("PATH", "/nonexistent::/bin:/usr/bin", 1);
	xp_transport *t =
	    spawn_argv(loop, r, (char *const[]){"sh", "-c", "exit 2", NULL}, NULL, &err);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 2);
	xp_transport_release(t);

	/* no PATH at all: /bin:/usr/bin */
	unsetenv("PATH");
	struct rec *r2 = rec_new(&sub_ops, loop);
	t = spawn_argv(loop, r2, (char *const[]){"sh", "-c", "exit 1", NULL}, NULL, &err);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r2, 5));
	CHECK_EQ(returncode(t), 1);
	xp_transport_release(t);

	CHECK(spawn_argv(loop, r2, (char *const[]){"", NULL}, NULL, &err) == NULL);
	CHECK_EQ(err, -ENOENT);
	unlink(file);
	rmdir(dir);
	xp_loop_free(loop);
	rec_free(r);
	rec_free(r2);
}

/* With SIGCHLD ignored the kernel reaps for us: the exit is still seen
 * (its status is lost, reported as 0). */
TEST(subprocess_sigchld_ignored)
{
	signal(SIGCHLD, SIG_IGN);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exit 0", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(returncode(t), 0);
	check_last_lost0(r);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
	signal(SIGCHLD, SIG_DFL);
}

/* Inside connection_lost the process is gone too (sem 84). */
static int lost_kill_rc = 1, lost_rc_code = -1;

static void lost_then_kill(xp_protocol *p, int err)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	xp_transport *t = r->t;
	rec_lost(p, err);
	lost_kill_rc = xp_transport_kill(t);
	xp_transport_get_returncode(t, &lost_rc_code);
}

TEST(subprocess_signal_inside_connection_lost_sem_84)
{
	static const xp_protocol_ops ops = {
	    .connection_made = made_retain,
	    .connection_lost = lost_then_kill,
	    .process_exited = rec_exited,
	};
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&ops, loop);
	xp_transport *t = spawn_sh(loop, r, "exit 8", NULL, NULL);
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(lost_kill_rc, -ESRCH);
	CHECK_EQ(lost_rc_code, 8);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- a reaped child's pid given to another process ---------------------- */

static int victim_fd;

static void victim_term(int sig)
{
	char c = 'T';
	ssize_t n = write(victim_fd, &c, 1);
	(void)n;
	_exit(0);
}

/* Fork, from a process that exits at once, a process with pid want: the
 * victim.  It is then nobody's child here (init of the namespace gets it),
 * writes its pid to fd, and 'T' on SIGTERM. */
static pid_t spawn_victim(pid_t want, int fds[2])
{
	pid_t c = fork(), v = -1;
	if (c == 0) {
		FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
		if (!f || fprintf(f, "%d", (int)want - 1) < 0 || fclose(f) != 0)
			_exit(1);
		if (fork() == 0) {
			struct sigaction sa = {.sa_handler = victim_term};
			victim_fd = fds[1];
			sigaction(SIGTERM, &sa, NULL);
			pid_t me = getpid();
			if (write(fds[1], &me, sizeof(me)) != sizeof(me))
				_exit(1);
			for (;;)
				pause();
		}
		_exit(0);
	}
	close(fds[1]);
	waitpid(c, NULL, 0);
	if (read(fds[0], &v, sizeof(v)) != sizeof(v))
		return -1;
	return v;
}

/* The child is killed and reaped behind the loop's back, its pid reused;
 * then close().  Returns 0 if the victim survived it. */
static int reuse_scenario(bool no_pidfd)
{
	xp__subprocess_no_pidfd = no_pidfd;
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	char *argv[] = {"/bin/sleep", "100", NULL};
	xp_transport *t = spawn_argv(loop, r, argv, NULL, NULL);
	int fds[2];
	char c = 0;
	if (!t || pipe(fds) < 0)
		return 10;
	pid_t pid = *(const pid_t *)xp_transport_get_extra_info(t, "subprocess", NULL);
	if (kill(pid, SIGKILL) < 0 || waitpid(pid, NULL, 0) != pid)
		return 11;
	if (spawn_victim(pid, fds) != pid)
		return 12;
	xp_transport_close(t);
	if (!rec_run_until(loop, rec_cond_lost, r, 5))
		return 13;
	CHECK_EQ(returncode(t), 0); /* the code went to the other reaper */
	kill(pid, SIGTERM);
	if (read(fds[0], &c, 1) != 1 || c != 'T')
		return 14; /* the victim died before our SIGTERM */
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
	return xpt_failures ? 15 : 0;
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

/* Runs fn in a fresh pid namespace, where pids can be chosen.  The first
 * process there is its init: it only reaps, so that fn's process is not
 * the parent of the victim.  The namespace is made by a helper process:
 * once its init is gone, the maker can no longer fork (nor can ASan's
 * leak checker).  -1 if namespaces are not available. */
static int in_pid_namespace(int (*fn)(bool), bool arg)
{
	int status;
	pid_t maker = fork();
	if (maker == 0) {
		if (unshare(CLONE_NEWPID) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0)
			_exit(100);
		pid_t init = fork();
		if (init == 0) {
			pid_t b = fork();
			if (b == 0)
				_exit(fn(arg));
			for (;;) {
				pid_t w = wait(&status);
				if (w == b)
					_exit(exit_code(status));
				if (w < 0)
					_exit(98);
			}
		}
		if (init < 0 || waitpid(init, &status, 0) != init)
			_exit(97);
		_exit(exit_code(status));
	}
	if (maker < 0 || waitpid(maker, &status, 0) != maker)
		return 96;
	return exit_code(status) == 100 ? -1 : exit_code(status);
}

TEST(subprocess_close_never_signals_a_reused_pid)
{
	int r = in_pid_namespace(reuse_scenario, false);
	if (r < 0) {
		fprintf(stderr, "skipped: no pid namespace\n");
		return;
	}
	CHECK_EQ(r, 0);
}

TEST(subprocess_close_never_signals_a_reused_pid_without_pidfd)
{
	int r = in_pid_namespace(reuse_scenario, true);
	if (r < 0) {
		fprintf(stderr, "skipped: no pid namespace\n");
		return;
	}
	CHECK_EQ(r, 0);
}

/* ---- allocation failures ------------------------------------------------ */

static int factory_calls;

static xp_protocol *counting_factory(void *arg)
{
	factory_calls++;
	return rec_factory_one(arg);
}

/* Kill and reap whatever children this process has left. */
static void kill_children(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "r");
	int pid;
	while (f && fscanf(f, "%d", &pid) == 1) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	if (f)
		fclose(f);
}

/* Let each allocation of the spawn fail in turn: the spawn then fails
 * with -ENOMEM, leaves no child behind, and a protocol the factory made
 * gets both connection_made and connection_lost. */
TEST(subprocess_spawn_allocation_failures_leak_nothing)
{
	char *argv[] = {"/bin/sleep", "100", NULL};
	int n;
	for (n = 1; n < 200; n++) {
		xp_loop *loop = xp_loop_new();
		struct rec *r = rec_new(&rec_subprocess_ops, loop);
		factory_calls = 0;
		xp__alloc_fail_after = n;
		xp_future *f = xp_subprocess_exec(loop, counting_factory, r, argv[0], argv, NULL);
		bool injected = xp__alloc_fail_after <= 0;
		xp__alloc_fail_after = 0;
		int err = f ? xp_loop_run_until_complete(loop, f) : -errno;
		if (err == 0) {
			xp_transport *t = xp_future_result(f);
			xp_transport_close(t);
		} else {
			CHECK_EQ(err, -ENOMEM);
		}
		if (factory_calls)
			CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
		CHECK_EQ(r->nmade, factory_calls);
		CHECK_EQ(r->nlost, factory_calls);
		xp_future_release(f);
		xp_loop_free(loop);
		/* Our only child, if any, was reaped by the library. */
		if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD) {
			xpt_fail(__FILE__, __LINE__, "a child was left behind");
			kill_children();
		}
		if (xpt_failures) {
			fprintf(stderr, "  ^ with allocation %d failing (err %d, log \"%s\")\n", n,
				err, r->log);
			rec_free(r);
			break;
		}
		rec_free(r);
		if (!injected)
			break; /* every allocation of the spawn was tried */
	}
	CHECK(n > 2);
}
