// SPDX-License-Identifier: MIT
/*
 * test_proto_exec.c - exec (a `/bin/sh -c` per connection) and forward (a
 * proxy to a fixed target) over loopback TCP and Unix sockets.
 */
#include "test.h"
#include "recorder.h"
#include "proto_util.h"

#include <sys/resource.h>
#include <sys/un.h>

static int sock_port(int fd, int peer)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

struct xfix {
	xp_loop *loop;
	struct pu_hooks h;
	struct rec *cl;
	xp_transport *ct;
	int c;
};

/* A connection whose server side runs exec(command). */
static void xfix_start(struct xfix *f, const char *command, int stderr_mode)
{
	xp_exec_opts o = {.command = command, .stderr_mode = stderr_mode};
	int s;

	signal(SIGPIPE, SIG_IGN);
	f->loop = xp_loop_new();
	pu_hooks_set(&o.relay.proto.hooks, &f->h);
	o.relay.on_done = pu_on_done;
	o.relay.arg = &f->h;
	REQUIRE(pu_tcp_pair(&f->c, &s) == 0);
	REQUIRE(pu_wrap(f->loop, s, xp_exec_new(f->loop, &o)));
	f->cl = rec_new(&rec_stream_ops, f->loop);
	f->ct = pu_wrap(f->loop, f->c, &f->cl->base);
	REQUIRE(f->ct);
}

static void xfix_free(struct xfix *f)
{
	if (!f->cl->nlost)
		xp_transport_close(f->ct);
	rec_run_until(f->loop, rec_cond_lost, f->cl, 3);
	rec_run_until(f->loop, pu_cond_done, &f->h, 3);
	rec_free(f->cl);
	pu_loop_free(f->loop);
}

TEST(proto_exec_env_vars)
{
	struct xfix f = {0};
	char want[128];

	xfix_start(&f, "echo $XPORT_PEER_PORT $XPORT_PEER_ADDR $XPORT_LOCAL_PORT $XPORT_LOCAL_ADDR",
		   XP_EXEC_STDERR_MERGE);
	snprintf(want, sizeof(want), "%d 127.0.0.1 %d 127.0.0.1\n", sock_port(f.c, 0),
		 sock_port(f.c, 1));
	/* The child's output, then EOF once it exited (stdout closed). */
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.cl, 5));
	f.cl->in = realloc(f.cl->in, f.cl->inlen + 1);
	f.cl->in[f.cl->inlen] = 0;
	CHECK_STR((char *)f.cl->in, want);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.cl, 3) || f.cl->neof);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "eof");
	CHECK_EQ(f.h.done.sent, strlen(want));
	CHECK(strncmp(f.h.done.peer, "127.0.0.1:", 10) == 0);
	xfix_free(&f);
}

TEST(proto_exec_cat_half_close)
{
	struct xfix f = {0};
	size_t n = 256 * 1024;
	unsigned char *a = pu_payload(n, 41);

	xfix_start(&f, "cat", XP_EXEC_STDERR_MERGE);
	CHECK_EQ(xp_transport_write(f.ct, a, n), 0);
	CHECK_EQ(xp_transport_write_eof(f.ct), 0);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.cl, 8));
	CHECK_EQ(f.cl->inlen, n);
	if (f.cl->inlen == n)
		CHECK_MEM(f.cl->in, a, n);
	CHECK_EQ(f.cl->neof, 1);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "eof");
	CHECK_EQ(f.h.done.received, n);
	CHECK_EQ(f.h.done.sent, n);
	free(a);
	xfix_free(&f);
}

TEST(proto_exec_stderr_merge)
{
	struct xfix f = {0};

	xfix_start(&f, "echo out; echo err >&2", XP_EXEC_STDERR_MERGE);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.cl, 5));
	CHECK_EQ(f.cl->inlen, 8);
	CHECK_MEM(f.cl->in, "out\nerr\n", 8);
	xfix_free(&f);
}

TEST(proto_exec_stderr_separate)
{
	struct xfix f = {0};
	int errp[2], saved = dup(2);
	char buf[64] = {0};

	REQUIRE(pipe2(errp, O_CLOEXEC) == 0);
	REQUIRE(dup2(errp[1], 2) == 2);
	xfix_start(&f, "echo err >&2; echo out", XP_EXEC_STDERR_SEPARATE);
	CHECK(rec_run_until(f.loop, pu_cond_eof, f.cl, 5));
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	dup2(saved, 2);
	close(errp[1]);
	CHECK_EQ(f.cl->inlen, 4);
	CHECK_MEM(f.cl->in, "out\n", 4);
	CHECK_EQ(read(errp[0], buf, sizeof(buf) - 1), 4);
	CHECK_STR(buf, "err\n");
	close(errp[0]);
	xfix_free(&f);
}

/* The connection is reset: the child gets SIGTERM and the relay ends. */
TEST(proto_exec_reset_terminates_child)
{
	struct xfix f = {0};

	xfix_start(&f, "echo up; exec sleep 30", XP_EXEC_STDERR_MERGE);
	CHECK(rec_run_until(f.loop, pu_cond_end, &f.h, 0.3) == 0);
	CHECK_EQ(f.cl->inlen, 3);
	/* A reset from the client's side. */
	struct linger l = {1, 0};
	int *fd = (int *)xp_transport_get_extra_info(f.ct, "socket", NULL);
	REQUIRE(fd);
	setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	xp_transport_abort(f.ct);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 5));
	CHECK_STR(f.h.done_end, "reset");
	CHECK(f.h.done.seconds < 3);
	xfix_free(&f);
}

/* ---- forward ------------------------------------------------------------ */

static xp_protocol *echo_factory(void *arg)
{
	return xp_echo_new(NULL);
}

static xp_server *echo_server(xp_loop *loop, const char *unix_path, int *port)
{
	xp_future *f = unix_path
			   ? xp_create_unix_server(loop, echo_factory, NULL, unix_path, NULL)
			   : xp_create_server(loop, echo_factory, NULL, "127.0.0.1", "0", NULL);
	xp_server *s = NULL;
	xp_sockaddr a;

	REQUIRE(f);
	if (xp_loop_run_until_complete(loop, f) == 0)
		s = xp_future_result(f);
	xp_future_release(f);
	REQUIRE(s);
	if (port && xp_server_sockname(s, 0, &a) == 0)
		*port = ntohs(((struct sockaddr_in *)&a.u.ss)->sin_port);
	return s;
}

static void server_done(xp_loop *loop, xp_server *s)
{
	xp_future *w;

	xp_server_close(s);
	w = xp_server_wait_closed(s);
	if (w) {
		xp_loop_run_until_complete(loop, w);
		xp_future_release(w);
	}
	xp_server_free(s);
}

/* A client connection whose server side runs forward(o). */
static void ffix_start(struct xfix *f, xp_forward_opts *o)
{
	int s;

	signal(SIGPIPE, SIG_IGN);
	pu_hooks_set(&o->relay.proto.hooks, &f->h);
	o->relay.on_done = pu_on_done;
	o->relay.arg = &f->h;
	REQUIRE(pu_tcp_pair(&f->c, &s) == 0);
	REQUIRE(pu_wrap(f->loop, s, xp_forward_new(f->loop, o)));
	f->cl = rec_new(&rec_stream_ops, f->loop);
	f->ct = pu_wrap(f->loop, f->c, &f->cl->base);
	REQUIRE(f->ct);
}

static void forward_round_trip(struct xfix *f)
{
	size_t n = 1u << 20;
	unsigned char *a = pu_payload(n, 51);

	CHECK_EQ(xp_transport_write(f->ct, a, n), 0);
	CHECK_EQ(xp_transport_write_eof(f->ct), 0);
	CHECK(rec_run_until(f->loop, rec_cond_lost, f->cl, 8));
	CHECK_EQ(f->cl->inlen, n);
	if (f->cl->inlen == n)
		CHECK_MEM(f->cl->in, a, n);
	CHECK_EQ(f->cl->neof, 1);
	CHECK(rec_run_until(f->loop, pu_cond_done, &f->h, 3));
	CHECK_STR(f->h.done_end, "eof");
	CHECK_EQ(f->h.done.received, n);
	CHECK_EQ(f->h.done.sent, n);
	free(a);
}

TEST(proto_forward_tcp_round_trip)
{
	struct xfix f = {.loop = xp_loop_new()};
	char port[16] = "";
	int p;
	xp_server *s = echo_server(f.loop, NULL, &p);
	xp_forward_opts o = {.host = "127.0.0.1", .port = port};

	snprintf(port, sizeof(port), "%d", p);
	ffix_start(&f, &o);
	port[0] = 'X'; /* the forward protocol keeps its own copy */
	forward_round_trip(&f);
	server_done(f.loop, s);
	xfix_free(&f);
}

TEST(proto_forward_unix_round_trip)
{
	struct xfix f = {.loop = xp_loop_new()};
	char path[64];
	xp_forward_opts o = {.unix_path = path};
	xp_server *s;

	snprintf(path, sizeof(path), "/tmp/xport-fwd-%d.sock", (int)getpid());
	s = echo_server(f.loop, path, NULL);
	ffix_start(&f, &o);
	forward_round_trip(&f);
	server_done(f.loop, s);
	unlink(path);
	xfix_free(&f);
}

/* The target refuses: the accepted connection is closed, end "error". */
TEST(proto_forward_target_refused)
{
	struct xfix f = {.loop = xp_loop_new()};
	char port[16] = "";
	xp_forward_opts o = {.host = "127.0.0.1", .port = port};

	snprintf(port, sizeof(port), "%d", pu_dead_port());
	ffix_start(&f, &o);
	f.cl->eof_ret = 0;
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.cl, 5));
	CHECK_EQ(f.cl->neof, 1);
	CHECK_EQ(f.cl->inlen, 0);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "error");
	CHECK_EQ(f.h.done.error, -ECONNREFUSED);
	xfix_free(&f);
}

/* The client resets: the target connection is reset too. */
TEST(proto_forward_reset_reaches_target)
{
	struct xfix f = {.loop = xp_loop_new()};
	char port[16] = "";
	int p, lfd = xpt_tcp_listener(&p), tfd;
	xp_forward_opts o = {.host = "127.0.0.1", .port = port};
	struct linger l = {1, 0};
	char buf[16];

	REQUIRE(lfd >= 0);
	snprintf(port, sizeof(port), "%d", p);
	ffix_start(&f, &o);
	CHECK_EQ(xp_transport_write(f.ct, "hi", 2), 0);
	pu_spin(f.loop, 0.1);
	tfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	REQUIRE(tfd >= 0);
	CHECK_EQ(xpt_read_all(tfd, buf, 2, 1000), 2);
	int *fd = (int *)xp_transport_get_extra_info(f.ct, "socket", NULL);
	REQUIRE(fd);
	setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	xp_transport_abort(f.ct);
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	CHECK_STR(f.h.done_end, "reset");
	CHECK_EQ(read(tfd, buf, sizeof(buf)), -1);
	CHECK_EQ(errno, ECONNRESET);
	close(tfd);
	close(lfd);
	xfix_free(&f);
}

static int count_exc(xp_loop *loop, const xp_context *ctx, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

/* The child cannot be started (no descriptors left for its pipes): the
 * connection is closed, end "error", and the failure is reported. */
TEST(proto_exec_spawn_failure_closes_connection)
{
	struct xfix f = {0};
	xp_exec_opts o = {.command = "echo never"};
	struct rlimit old, lim;
	int s, nexc = 0, lowest;

	signal(SIGPIPE, SIG_IGN);
	f.loop = xp_loop_new();
	xp_loop_set_exception_handler(f.loop, count_exc, &nexc);
	pu_hooks_set(&o.relay.proto.hooks, &f.h);
	o.relay.on_done = pu_on_done;
	o.relay.arg = &f.h;
	REQUIRE(pu_tcp_pair(&f.c, &s) == 0);
	f.cl = rec_new(&rec_stream_ops, f.loop);
	f.cl->eof_ret = 0;
	f.ct = pu_wrap(f.loop, f.c, &f.cl->base);
	REQUIRE(f.ct);
	/* No descriptor above the ones open now. */
	lowest = dup(0);
	REQUIRE(lowest >= 0);
	close(lowest);
	getrlimit(RLIMIT_NOFILE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)lowest;
	REQUIRE(setrlimit(RLIMIT_NOFILE, &lim) == 0);
	xp_transport *st = pu_wrap(f.loop, s, xp_exec_new(f.loop, &o));
	CHECK(rec_run_until(f.loop, pu_cond_done, &f.h, 3));
	setrlimit(RLIMIT_NOFILE, &old);
	CHECK(st != NULL);
	CHECK_STR(f.h.done_end, "error");
	CHECK_EQ(f.h.done.error, -EMFILE);
	CHECK_EQ(nexc, 1);
	CHECK(rec_run_until(f.loop, rec_cond_lost, f.cl, 3));
	CHECK_EQ(f.cl->neof, 1);
	CHECK_EQ(f.cl->inlen, 0);
	xfix_free(&f);
}
