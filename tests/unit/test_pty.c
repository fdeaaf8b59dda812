// SPDX-License-Identifier: MIT
/* Subprocess transports on a pseudo-terminal (xp_subprocess_opts.pty). */
#include "test.h"
#include "recorder.h"

#include <signal.h>
#include <stdlib.h>

/* Retained in connection_made: a quick child may be lost in the loop run
 * that completes the future. */
static xp_transport *last_made;

static void made_retain(xp_protocol *p, xp_transport *t)
{
	rec_made(p, t);
	last_made = xp_transport_retain(t);
}

static const xp_protocol_ops sub_ops = {
    .connection_made = made_retain,
    .connection_lost = rec_lost,
    .pipe_data_received = rec_pipe_data,
    .pipe_connection_lost = rec_pipe_lost,
    .process_exited = rec_exited,
};

static xp_transport *spawn_pty(xp_loop *loop, struct rec *r, const char *cmd)
{
	xp_subprocess_opts o = {.pty = 1};
	xp_future *f = xp_subprocess_shell(loop, rec_factory_one, r, cmd, &o);
	int e;

	if (!f)
		return NULL;
	last_made = NULL;
	e = xp_loop_run_until_complete(loop, f);
	xp_future_release(f);
	if (e && last_made) {
		xp_transport_release(last_made);
		last_made = NULL;
	}
	return last_made;
}

static int returncode(xp_transport *t)
{
	int code = 12345;
	int r = xp_transport_get_returncode(t, &code);
	return r == 0 ? code : r;
}

/* The child's output as a C string. */
static const char *out(struct rec *r)
{
	rec_keep(r, "", 1);
	r->inlen--;
	return (const char *)r->in;
}

static int cond_out(void *arg)
{
	struct rec *r = arg;
	return r->inlen && strstr(out(r), "ready") != NULL;
}

TEST(pty_child_is_session_leader_on_its_terminal)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	/* /proc/PID/stat: pid (comm) state ppid pgrp session tty_nr ...;
	 * /dev/tty opens only for a process with a controlling terminal. */
	xp_transport *t = spawn_pty(
	    loop, r,
	    "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; "
	    "read pid comm st ppid pgrp sid ttynr rest </proc/$$/stat; "
	    "[ \"$sid\" = $$ ] && echo leader; [ \"$ttynr\" != 0 ] && echo has-ctty; "
	    "[ \"$(tty)\" = \"$(readlink /proc/$$/fd/0)\" ] && echo tty-is-stdin; "
	    "[ \"$(readlink /proc/$$/fd/1)\" = \"$(readlink /proc/$$/fd/2)\" ] && echo same-term; "
	    "(exec 3</dev/tty) && echo dev-tty; stty size; echo on-stderr >&2");
	REQUIRE(t);
	CHECK(xp_transport_get_pipe_transport(t, 0) != NULL);
	CHECK(xp_transport_get_pipe_transport(t, 1) != NULL);
	CHECK(xp_transport_get_pipe_transport(t, 2) == NULL);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	/* The line discipline's ONLCR: a terminal writes CRLF. */
	CHECK_STR(out(r), "all-tty\r\nleader\r\nhas-ctty\r\ntty-is-stdin\r\nsame-term\r\n"
			  "dev-tty\r\n24 80\r\non-stderr\r\n");
	CHECK_EQ(returncode(t), 0);
	/* The master reads EIO once the slave is gone: that is EOF. */
	CHECK(strstr(r->log, "pipelost1:0") != NULL);
	CHECK(strstr(r->log, "lost:0") != NULL);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pty_all_output_arrives_before_eof)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_pty(loop, r, "head -c 100000 /dev/zero | tr '\\0' a; exit 3");
	REQUIRE(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	CHECK_EQ(r->inlen, 100000);
	size_t bad = 0;
	for (size_t i = 0; i < r->inlen; i++)
		bad += r->in[i] != 'a';
	CHECK_EQ(bad, 0);
	CHECK_EQ(returncode(t), 3);
	CHECK(strstr(r->log, "pipelost1:0") != NULL);
	CHECK(strstr(r->log, "lost:0") != NULL);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pty_input_is_typed_and_write_eof_is_veof)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_pty(loop, r, "stty -echo; echo ready; cat; echo cat-ended");
	REQUIRE(t);
	xp_transport *in = xp_transport_get_pipe_transport(t, 0);
	REQUIRE(in);
	/* Typed only once echo is off, so the output is cat's alone. */
	CHECK(rec_run_until(loop, cond_out, r, 10));
	CHECK_EQ(xp_transport_write(in, "hello\n", 6), 0);
	CHECK_EQ(xp_transport_write_eof(in), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	CHECK_STR(out(r), "ready\r\nhello\r\ncat-ended\r\n");
	CHECK_EQ(returncode(t), 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pty_write_eof_after_a_partial_line)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_transport *t = spawn_pty(loop, r, "stty -echo; echo ready; cat; echo; echo cat-ended");
	REQUIRE(t);
	xp_transport *in = xp_transport_get_pipe_transport(t, 0);
	REQUIRE(in);
	CHECK(rec_run_until(loop, cond_out, r, 10));
	/* One VEOF would only hand "abc" over: cat would wait for more. */
	CHECK_EQ(xp_transport_write(in, "abc", 3), 0);
	CHECK_EQ(xp_transport_write_eof(in), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	CHECK_STR(out(r), "ready\r\nabc\r\ncat-ended\r\n");
	CHECK_EQ(returncode(t), 0);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pty_closing_the_master_hangs_the_child_up)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	/* Input ignored: only the hang-up can end it. */
	xp_transport *t =
	    spawn_pty(loop, r, "echo ready; exec </dev/null; while :; do sleep 1; done");
	REQUIRE(t);
	CHECK(rec_run_until(loop, cond_out, r, 10));
	xp_transport_close(xp_transport_get_pipe_transport(t, 0));
	xp_transport_close(xp_transport_get_pipe_transport(t, 1));
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	CHECK_EQ(returncode(t), -SIGHUP);
	xp_transport_release(t);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pty_window_size_option)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&sub_ops, loop);
	xp_subprocess_opts o = {.pty = 1, .pty_rows = 50, .pty_cols = 132};
	xp_future *f = xp_subprocess_shell(loop, rec_factory_one, r, "stty size", &o);
	REQUIRE(f);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	xp_future_release(f);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	CHECK_STR(out(r), "50 132\r\n");
	xp_loop_free(loop);
	rec_free(r);
}
