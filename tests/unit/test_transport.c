// SPDX-License-Identifier: MIT
/*
 * test_transport.c - what every kind shares: each public method on each
 * kind, and the one answer a method gives where it does not apply
 * (xport.h: -ENOTSUP, NULL with errno ENOTSUP, a size 0, a no-op).
 */
#include "test.h"
#include "recorder.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/uio.h>
#include <sys/wait.h>

enum { STREAM, DGRAM, RPIPE, WPIPE, SUBPROC, TLS, NKINDS };

static const char *const kind_name[NKINDS] = {"stream",	    "datagram",	  "read pipe",
					      "write pipe", "subprocess", "tls"};

struct kinds {
	xp_loop *loop;
	xp_transport *t[NKINDS];
	struct rec *r[NKINDS + 1]; /* + the TLS server end */
	xp_transport *tls_server;
	xp_tls_ctx *sctx, *cctx;
	int peer[3]; /* the far ends of stream, read pipe, write pipe */
};

static xp_transport *await_transport(xp_loop *loop, xp_future *f)
{
	xp_transport *t = NULL;
	if (f && xp_loop_run_until_complete(loop, f) == 0)
		t = xp_future_take_result(f);
	xp_future_release(f);
	return t;
}

static xp_transport *make_stream(struct kinds *k, int fd, struct rec *r)
{
	return await_transport(k->loop,
			       xp_connect_accepted_socket(k->loop, rec_factory_one, r, fd, NULL));
}

/* TLS over a socketpair: both ends upgraded, the server pinned by the
 * client. */
static void make_tls(struct kinds *k)
{
	int sv[2];
	unsigned char fp[32];
	REQUIRE(xpt_socketpair(sv) == 0);
	struct rec *cr = rec_new(&rec_stream_ops, k->loop), *sr = rec_new(&rec_stream_ops, k->loop);
	xp_transport *ct = make_stream(k, sv[0], cr), *st = make_stream(k, sv[1], sr);
	REQUIRE(ct && st);
	k->sctx = xp_tls_ctx_new(1);
	k->cctx = xp_tls_ctx_new(0);
	REQUIRE(xp_tls_ctx_use_self_signed(k->sctx, "localhost", fp) == 0);
	REQUIRE(xp_tls_ctx_set_pin(k->cctx, fp) == 0);
	k->r[TLS] = rec_new(&rec_stream_ops, k->loop);
	k->r[NKINDS] = rec_new(&rec_stream_ops, k->loop);
	xp_future *cf = xp_start_tls(k->loop, ct, &k->r[TLS]->base, k->cctx, 0, "localhost", 0);
	xp_future *sf = xp_start_tls(k->loop, st, &k->r[NKINDS]->base, k->sctx, 1, NULL, 0);
	k->tls_server = await_transport(k->loop, sf);
	k->t[TLS] = await_transport(k->loop, cf);
	REQUIRE(k->t[TLS] && k->tls_server);
	xp_transport_release(ct);
	xp_transport_release(st);
	/* The plain layers' recorders are done with once upgraded. */
	rec_free(cr);
	rec_free(sr);
}

static void kinds_open(struct kinds *k)
{
	int sv[2], p[2], q[2];
	memset(k, 0, sizeof(*k));
	k->loop = xp_loop_new();
	REQUIRE(k->loop);
	k->r[STREAM] = rec_new(&rec_stream_ops, k->loop);
	k->r[DGRAM] = rec_new(&rec_dgram_ops, k->loop);
	k->r[RPIPE] = rec_new(&rec_stream_ops, k->loop);
	k->r[WPIPE] = rec_new(&rec_stream_ops, k->loop);
	k->r[SUBPROC] = rec_new(&rec_subprocess_ops, k->loop);

	REQUIRE(xpt_socketpair(sv) == 0);
	k->peer[0] = sv[1];
	k->t[STREAM] = make_stream(k, sv[0], k->r[STREAM]);

	xp_datagram_opts d = {.local_host = "127.0.0.1", .local_port = "0"};
	k->t[DGRAM] = await_transport(
	    k->loop, xp_create_datagram_endpoint(k->loop, rec_factory_one, k->r[DGRAM], &d));

	REQUIRE(pipe(p) == 0 && pipe(q) == 0);
	k->peer[1] = p[1];
	k->peer[2] = q[0];
	k->t[RPIPE] = await_transport(
	    k->loop, xp_connect_read_pipe(k->loop, rec_factory_one, k->r[RPIPE], p[0]));
	k->t[WPIPE] = await_transport(
	    k->loop, xp_connect_write_pipe(k->loop, rec_factory_one, k->r[WPIPE], q[1]));

	k->t[SUBPROC] =
	    await_transport(k->loop, xp_subprocess_shell(k->loop, rec_factory_one, k->r[SUBPROC],
							 "exec sleep 100", NULL));
	make_tls(k);
	for (int i = 0; i < NKINDS; i++) {
		if (!k->t[i])
			fprintf(stderr, "no %s transport\n", kind_name[i]);
		REQUIRE(k->t[i]);
	}
}

static int all_lost(void *arg)
{
	struct kinds *k = arg;
	for (int i = 0; i <= NKINDS; i++)
		if (k->r[i] && !k->r[i]->nlost)
			return 0;
	return 1;
}

static void kinds_close(struct kinds *k)
{
	for (int i = 0; i < NKINDS; i++)
		xp_transport_abort(k->t[i]);
	xp_transport_abort(k->tls_server);
	CHECK(rec_run_until(k->loop, all_lost, k, 5));
	for (int i = 0; i < NKINDS; i++)
		xp_transport_release(k->t[i]);
	xp_transport_release(k->tls_server);
	for (int i = 0; i <= NKINDS; i++)
		rec_free(k->r[i]);
	for (int i = 0; i < 3; i++)
		close(k->peer[i]);
	xp_tls_ctx_release(k->sctx);
	xp_tls_ctx_release(k->cctx);
	xp_loop_free(k->loop);
}

/* Which kinds each method applies to, as in xport.h. */
#define K(x) (1u << (x))
#define WRITERS (K(STREAM) | K(WPIPE) | K(TLS))
#define READERS (K(STREAM) | K(DGRAM) | K(RPIPE) | K(TLS))
#define BUFFERED (WRITERS | K(DGRAM))

static bool applies(unsigned set, int kind)
{
	return (set & K(kind)) != 0;
}

/* Every method that does not apply answers the one documented way, and
 * every method that applies does not answer that way. */
static void check_kind(struct kinds *k, int kind)
{
	xp_transport *t = k->t[kind];
	struct iovec iov = {"x", 1};
	size_t low = 7, high = 7;
	pid_t pid = 4242;
	int code = 4242;
	int fail0 = xpt_failures;

	CHECK_EQ(xp_transport_kind(t) > 0, 1);
	CHECK_EQ(xp_transport_write(t, "x", 1) == -ENOTSUP, !applies(WRITERS, kind));
	CHECK_EQ(xp_transport_writelines(t, &iov, 1) == -ENOTSUP, !applies(WRITERS, kind));
	CHECK_EQ(xp_transport_can_write_eof(t) == -ENOTSUP, !applies(WRITERS, kind));
	CHECK_EQ(xp_transport_is_reading(t) == -ENOTSUP, !applies(READERS, kind));
	if (!applies(READERS, kind)) {
		/* no-ops, and still not applicable */
		xp_transport_pause_reading(t);
		xp_transport_resume_reading(t);
		CHECK_EQ(xp_transport_is_reading(t), -ENOTSUP);
	}
	CHECK_EQ(xp_transport_set_write_buffer_limits(t, 100, 10) == -ENOTSUP,
		 !applies(BUFFERED, kind));
	xp_transport_get_write_buffer_limits(t, &low, &high);
	if (applies(BUFFERED, kind)) {
		CHECK_EQ(low, 10);
		CHECK_EQ(high, 100);
	} else {
		CHECK_EQ(low, 0);
		CHECK_EQ(high, 0);
		CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	}
	CHECK_EQ(xp_transport_set_read_size(t, 4096) == -ENOTSUP,
		 !applies(K(STREAM) | K(RPIPE) | K(TLS), kind));
	CHECK_EQ(xp_transport_sendto(t, "x", 1, NULL, 0) == -ENOTSUP, kind != DGRAM);

	CHECK_EQ(xp_transport_get_pid(t, &pid) == -ENOTSUP, kind != SUBPROC);
	CHECK_EQ(pid == 4242, kind != SUBPROC); /* untouched unless set */
	errno = 0;
	xp_transport *pt = xp_transport_get_pipe_transport(t, 1);
	CHECK_EQ(pt != NULL, kind == SUBPROC);
	CHECK_EQ(errno == ENOTSUP, kind != SUBPROC);
	CHECK_EQ(xp_transport_get_returncode(t, &code) == -ENOTSUP, kind != SUBPROC);
	CHECK_EQ(code == 4242, 1); /* running child, or not applicable */
	if (kind != SUBPROC) {
		CHECK_EQ(xp_transport_send_signal(t, SIGTERM), -ENOTSUP);
		CHECK_EQ(xp_transport_terminate(t), -ENOTSUP);
		CHECK_EQ(xp_transport_kill(t), -ENOTSUP);
	}
	/* Write-only and process kinds have no EOF to write. */
	CHECK_EQ(xp_transport_write_eof(t) == -ENOTSUP, !applies(WRITERS, kind));
	if (xpt_failures != fail0)
		fprintf(stderr, "  ^ on the %s transport\n", kind_name[kind]);
}

TEST(transport_inapplicable_methods_answer_alike_on_every_kind)
{
	struct kinds k;
	kinds_open(&k);
	for (int i = 0; i < NKINDS; i++)
		CHECK_EQ(xp_transport_kind(k.t[i]), i + 1); /* enum order of xport.h */
	for (int i = 0; i < NKINDS; i++)
		check_kind(&k, i);
	kinds_close(&k);
}

/* A pid from a transport that has none can never reach kill(): the call
 * fails and leaves the caller's value alone. */
TEST(transport_get_pid_only_on_subprocess)
{
	struct kinds k;
	kinds_open(&k);
	pid_t pid = 0;
	const pid_t *xpid = xp_transport_get_extra_info(k.t[SUBPROC], "subprocess", NULL);
	REQUIRE(xpid);
	CHECK_EQ(xp_transport_get_pid(k.t[SUBPROC], &pid), 0);
	CHECK_EQ(pid, *xpid);
	CHECK_EQ(xp_transport_get_pid(k.t[SUBPROC], NULL), 0);
	pid = 0;
	CHECK_EQ(xp_transport_get_pid(k.t[STREAM], &pid), -ENOTSUP);
	CHECK_EQ(pid, 0);
	kinds_close(&k);
}
