// SPDX-License-Identifier: MIT
/*
 * test_server.c - listening servers: close/wait_closed (sem 86), accept
 * batching, EMFILE back-off, binding rules, Unix servers.
 */
#include "test.h"
#include "recorder.h"
#include "internal.h"

#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

/* recorder.h's helpers this file does not need (they are static). */
static void (*const server_rec_unused[])(void) __attribute__((unused)) = {
    (void (*)(void))rec_factory_one,
};

/* ---- a server-side echo protocol that frees itself ------------------- */

struct sctx {
	xp_loop *loop;
	int made, lost, bytes, refuse;
	int lost_errs[64];
	int tick; /* ticker value seen by each factory call */
	int tick_at[64];
	int nfactory;
	const int *ticker;
};

struct echo {
	xp_protocol base;
	xp_transport *t;
	struct sctx *ctx;
};

static void echo_made(xp_protocol *p, xp_transport *t)
{
	struct echo *e = XP_CONTAINER_OF(p, struct echo, base);
	e->t = t;
	e->ctx->made++;
}

static int echo_data(xp_protocol *p, const void *data, size_t len)
{
	struct echo *e = XP_CONTAINER_OF(p, struct echo, base);
	e->ctx->bytes += (int)len;
	return xp_transport_write(e->t, data, len);
}

static void echo_lost(xp_protocol *p, int err)
{
	struct echo *e = XP_CONTAINER_OF(p, struct echo, base);
	if (e->ctx->lost < 64)
		e->ctx->lost_errs[e->ctx->lost] = err;
	e->ctx->lost++;
	free(e);
}

static const xp_protocol_ops echo_ops = {
    .connection_made = echo_made,
    .connection_lost = echo_lost,
    .data_received = echo_data,
};

static xp_protocol *echo_factory(void *arg)
{
	struct sctx *c = arg;
	struct echo *e;

	if (c->nfactory < 64 && c->ticker)
		c->tick_at[c->nfactory] = *c->ticker;
	c->nfactory++;
	if (c->refuse)
		return NULL;
	e = calloc(1, sizeof(*e));
	e->base.ops = &echo_ops;
	e->ctx = c;
	return &e->base;
}

/* ---- helpers ---------------------------------------------------------- */

static xp_server *mk_server(xp_loop *loop, struct sctx *c, const char *host, const char *port,
			    const xp_server_opts *o, int *err)
{
	xp_future *f = xp_create_server(loop, echo_factory, c, host, port, o);
	xp_server *s = NULL;
	int r;

	REQUIRE(f);
	r = xp_loop_run_until_complete(loop, f);
	if (r == 0)
		s = xp_future_result(f);
	if (err)
		*err = r;
	xp_future_release(f);
	return s;
}

static xp_server *mk_unix_server(xp_loop *loop, struct sctx *c, const char *path,
				 const xp_server_opts *o, int *err)
{
	xp_future *f = xp_create_unix_server(loop, echo_factory, c, path, o);
	xp_server *s = NULL;
	int r;

	REQUIRE(f);
	r = xp_loop_run_until_complete(loop, f);
	if (r == 0)
		s = xp_future_result(f);
	if (err)
		*err = r;
	xp_future_release(f);
	return s;
}

static int server_port(xp_server *s, int i)
{
	xp_sockaddr a;

	if (xp_server_sockname(s, i, &a) < 0)
		return -1;
	if (a.u.sa.sa_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&a.u.ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&a.u.ss)->sin6_port);
}

/* Blocking TCP connect to 127.0.0.1:port; the fd, or -errno. */
static int tcp_connect4(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int tcp_connect6(int port)
{
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int unix_connect(const char *path)
{
	xp_sockaddr sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || xp__unix_addr(path, &sa) < 0)
		return -EINVAL;
	if (connect(fd, &sa.u.sa, sa.len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

struct cnt {
	const int *v;
	int want;
};
static int cond_ge(void *arg)
{
	struct cnt *c = arg;
	return *c->v >= c->want;
}
static int run_until_ge(xp_loop *loop, const int *v, int want, double secs)
{
	struct cnt c = {v, want};
	return rec_run_until(loop, cond_ge, &c, secs);
}
static int cond_fut(void *arg)
{
	return xp_future_done(arg);
}

/* Listener accept-queue length (TCP_INFO on a listening socket reports it
 * in tcpi_unacked). */
static int acceptq_len(int lfd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	return (int)ti.tcpi_unacked;
}

static void wait_acceptq(int lfd, int n)
{
	long long end = xpt_now_ms() + 2000;

	while (acceptq_len(lfd) < n && xpt_now_ms() < end)
		usleep(1000);
}

/* Send msg on fd (blocking), let the loop echo it, read it back. */
static int echo_roundtrip(xp_loop *loop, struct sctx *c, int fd, const char *msg)
{
	char buf[64] = {0};
	size_t n = strlen(msg);
	int want = c->bytes + (int)n;

	if (xpt_write_all(fd, msg, n) != (ssize_t)n)
		return 0;
	run_until_ge(loop, &c->bytes, want, 3);
	return xpt_read_all(fd, buf, n, 2000) == (ssize_t)n && memcmp(buf, msg, n) == 0;
}

/* ---- sem 86: close / wait_closed / close_clients / abort_clients ------ */

TEST(server_close_refuses_new_keeps_established_sem_86)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	int port = server_port(s, 0);
	CHECK(xp_server_is_serving(s));
	int a = tcp_connect4(port);
	REQUIRE(a >= 0);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	CHECK_EQ(xp_server_connection_count(s), 1);

	CHECK_EQ(xp_server_close(s), 0);
	CHECK(!xp_server_is_serving(s));
	CHECK_EQ(xp_server_sockets(s, NULL), 0);
	/* Refused at once, without running the loop. */
	CHECK_EQ(tcp_connect4(port), -ECONNREFUSED);
	/* The established connection still works. */
	CHECK(echo_roundtrip(loop, &c, a, "ping"));

	xp_future *w = xp_server_wait_closed(s);
	rec_run_until(loop, cond_fut, w, 0.1);
	CHECK(!xp_future_done(w)); /* a connection is still open */
	close(a);
	CHECK(rec_run_until(loop, cond_fut, w, 3));
	CHECK_EQ(xp_future_error(w), 0);
	CHECK_EQ(c.lost, 1);
	CHECK_EQ(xp_server_connection_count(s), 0);
	xp_future_release(w);
	/* Later calls are done at once. */
	w = xp_server_wait_closed(s);
	CHECK(xp_future_done(w));
	xp_future_release(w);
	CHECK_EQ(xp_server_close(s), 0); /* idempotent */
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_wait_closed_connections_gone_first_sem_86)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	int a = tcp_connect4(server_port(s, 0));
	REQUIRE(a >= 0);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	xp_future *w = xp_server_wait_closed(s);
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	rec_run_until(loop, cond_fut, w, 0.05);
	CHECK(!xp_future_done(w)); /* not closed yet */
	xp_server_close(s);
	CHECK(rec_run_until(loop, cond_fut, w, 3));
	CHECK_EQ(xp_future_error(w), 0);
	xp_future_release(w);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_wait_closed_idle_server_sem_86)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	xp_future *w1 = xp_server_wait_closed(s);
	xp_future *w2 = xp_server_wait_closed(s);
	rec_run_until(loop, cond_fut, w1, 0.05);
	CHECK(!xp_future_done(w1));
	xp_server_close(s);
	CHECK(xp_future_done(w1) && xp_future_done(w2));
	xp_future_release(w1);
	xp_future_release(w2);
	xp_server_free(s);
	xp_loop_free(loop);
}

static void close_or_abort_clients(bool abort_them)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	int port = server_port(s, 0);
	int a = tcp_connect4(port), b = tcp_connect4(port);
	REQUIRE(a >= 0 && b >= 0);
	CHECK(run_until_ge(loop, &c.made, 2, 3));
	xp_server_close(s);
	xp_future *w = xp_server_wait_closed(s);
	rec_run_until(loop, cond_fut, w, 0.05);
	CHECK(!xp_future_done(w));
	if (abort_them)
		xp_server_abort_clients(s);
	else
		xp_server_close_clients(s);
	CHECK(rec_run_until(loop, cond_fut, w, 3));
	CHECK_EQ(c.lost, 2);
	CHECK_EQ(c.lost_errs[0], 0);
	CHECK_EQ(c.lost_errs[1], 0);
	char ch;
	/* The clients see the connection end (EOF, or a reset after abort). */
	CHECK(xpt_read_all(a, &ch, 1, 2000) <= 0);
	CHECK(xpt_read_all(b, &ch, 1, 2000) <= 0);
	close(a);
	close(b);
	xp_future_release(w);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_close_clients_unblocks_wait_closed_sem_86)
{
	close_or_abort_clients(false);
}

TEST(server_abort_clients_unblocks_wait_closed_sem_86)
{
	close_or_abort_clients(true);
}

/* ---- sem 86: accepting a burst ---------------------------------------- */

struct ticker {
	xp_loop *loop;
	int n;
	bool stop;
};
static int tick_cb(void *arg)
{
	struct ticker *t = arg;
	t->n++;
	if (!t->stop)
		xp_call_soon(t->loop, tick_cb, t);
	return 0;
}

/* n clients queued before the loop runs; returns them in fds. */
static void queue_clients(xp_server *s, int n, int *fds)
{
	const int *lfds;
	REQUIRE(xp_server_sockets(s, &lfds) == 1);
	for (int i = 0; i < n; i++) {
		fds[i] = tcp_connect4(server_port(s, 0));
		REQUIRE(fds[i] >= 0);
	}
	wait_acceptq(lfds[0], n);
	CHECK_EQ(acceptq_len(lfds[0]), n);
}

TEST(server_burst_accepted_in_one_wakeup_sem_86)
{
	xp_loop *loop = xp_loop_new();
	struct ticker tk = {loop, 0, false};
	struct sctx c = {.loop = loop, .ticker = &tk.n};
	xp_server_opts o = {.defer_serving = 1};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &o, NULL);
	int fds[20];
	REQUIRE(s);
	CHECK(!xp_server_is_serving(s));
	queue_clients(s, 20, fds);
	CHECK_EQ(xp_server_start_serving(s), 0);
	xp_call_soon(loop, tick_cb, &tk);
	CHECK(run_until_ge(loop, &c.made, 20, 3));
	tk.stop = true;
	CHECK_EQ(c.nfactory, 20);
	/* Every factory call happened between the same two ticks: one
	 * readiness event accepted all of them. */
	for (int i = 1; i < 20; i++)
		CHECK_EQ(c.tick_at[i], c.tick_at[0]);
	for (int i = 0; i < 20; i++)
		close(fds[i]);
	CHECK(run_until_ge(loop, &c.lost, 20, 3));
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_burst_capped_by_backlog_sem_86)
{
	xp_loop *loop = xp_loop_new();
	struct ticker tk = {loop, 0, false};
	struct sctx c = {.loop = loop, .ticker = &tk.n};
	xp_server_opts o = {.defer_serving = 1, .backlog = 3};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &o, NULL);
	int fds[4];
	REQUIRE(s);
	/* listen(3) queues backlog + 1 = 4 completed connections. */
	queue_clients(s, 4, fds);
	xp_server_start_serving(s);
	xp_call_soon(loop, tick_cb, &tk);
	CHECK(run_until_ge(loop, &c.made, 4, 3));
	tk.stop = true;
	CHECK_EQ(c.nfactory, 4);
	CHECK_EQ(c.tick_at[1], c.tick_at[0]);
	CHECK_EQ(c.tick_at[2], c.tick_at[0]);
	CHECK(c.tick_at[3] > c.tick_at[0]); /* the 4th waited for another wakeup */
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	CHECK(run_until_ge(loop, &c.lost, 4, 3));
	xp_server_free(s);
	xp_loop_free(loop);
}

/* ---- sem 86: EMFILE --------------------------------------------------- */

struct exc {
	int n;
	int err;
	xp_server *server;
	char msg[128];
};
static int exc_handler(xp_loop *loop, const xp_context *ctx, void *arg)
{
	struct exc *e = arg;
	e->n++;
	e->err = ctx->error;
	e->server = ctx->server;
	snprintf(e->msg, sizeof(e->msg), "%s", ctx->message ? ctx->message : "");
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "vgpreload");
}

static int never(void *arg)
{
	return 0;
}

TEST(server_emfile_reports_pauses_and_retries_sem_86)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	struct exc e = {0};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	xp_loop_set_exception_handler(loop, exc_handler, &e);
	int port = server_port(s, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int cl = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	REQUIRE(cl >= 0);

	/* Use up every descriptor under a low limit (this is the test's own
	 * forked child, so the limit dies with it). */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 128;
	REQUIRE(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	int fill[256], nfill = 0;
	while (nfill < 256) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		fill[nfill++] = fd;
	}
	CHECK_EQ(errno, EMFILE);
	CHECK(connect(cl, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);

	double cpu0 = cpu_seconds();
	long long t0 = xpt_now_ms();
	rec_run_until(loop, never, NULL, 1.5);
	double cpu = cpu_seconds() - cpu0;
	long long wall = xpt_now_ms() - t0;
	CHECK(e.n >= 1);
	CHECK(e.n <= 3); /* once, and once per 1 s retry: not a busy loop */
	CHECK_EQ(e.err, -EMFILE);
	CHECK(e.server == s);
	CHECK_STR(e.msg, "socket.accept() out of system resource");
	CHECK(wall >= 1400);
	CHECK(cpu < 0.5); /* a spinning loop would burn ~1.5 s */
	CHECK_EQ(c.made, 0);
	CHECK(xp_server_is_serving(s));

	/* Descriptors free again: the retry accepts the waiting connection
	 * (the kernel keeps it queued when accept fails with EMFILE), and a
	 * new one.  Valgrind emulates the fd limit by accepting and closing
	 * the fd itself, which loses the first connection: only the new one
	 * is checked there. */
	for (int i = 0; i < 16 && nfill; i++)
		close(fill[--nfill]);
	int cl2 = tcp_connect4(port);
	REQUIRE(cl2 >= 0);
	CHECK(echo_roundtrip(loop, &c, cl2, "back"));
	if (!under_valgrind()) {
		CHECK(run_until_ge(loop, &c.made, 2, 3));
		CHECK(echo_roundtrip(loop, &c, cl, "first"));
	}
	int want = c.made;
	close(cl);
	close(cl2);
	CHECK(run_until_ge(loop, &c.lost, want, 3));
	while (nfill)
		close(fill[--nfill]);
	xp_server_free(s);
	xp_loop_free(loop);
}

/* ---- binding ---------------------------------------------------------- */

TEST(server_port0_all_interfaces_shares_one_port)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	bool v6 = have_ipv6_loopback();
	xp_server *s = mk_server(loop, &c, NULL, "0", NULL, NULL);
	REQUIRE(s);
	const int *fds;
	int n = xp_server_sockets(s, &fds);
	CHECK_EQ(n, v6 ? 2 : 1);
	int port = server_port(s, 0);
	CHECK(port > 0);
	for (int i = 1; i < n; i++)
		CHECK_EQ(server_port(s, i), port);
	int a = tcp_connect4(port);
	CHECK(a >= 0);
	int b = v6 ? tcp_connect6(port) : -1;
	if (v6)
		CHECK(b >= 0);
	CHECK(run_until_ge(loop, &c.made, v6 ? 2 : 1, 3));
	if (v6) {
		/* IPV6_V6ONLY: the v6 socket does not take v4 traffic. */
		for (int i = 0; i < n; i++) {
			xp_sockaddr sa;
			xp_server_sockname(s, i, &sa);
			if (sa.u.sa.sa_family == AF_INET6) {
				int on = 0;
				socklen_t len = sizeof(on);
				getsockopt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY, &on, &len);
				CHECK_EQ(on, 1);
			}
		}
	}
	close(a);
	if (b >= 0)
		close(b);
	CHECK(run_until_ge(loop, &c.lost, v6 ? 2 : 1, 3));
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_empty_host_is_all_interfaces)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "", "0", NULL, NULL);
	REQUIRE(s);
	CHECK_EQ(xp_server_sockets(s, NULL), have_ipv6_loopback() ? 2 : 1);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_address_in_use)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	int port, err = 0;
	int l = xpt_tcp_listener(&port);
	REQUIRE(l >= 0);
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	CHECK(mk_server(loop, &c, "127.0.0.1", ps, NULL, &err) == NULL);
	CHECK_EQ(err, -EADDRINUSE);
	close(l);
	xp_loop_free(loop);
}

TEST(server_reuse_port_shares_a_port)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server_opts o = {.reuse_port = 1};
	int err = 0;
	xp_server *s1 = mk_server(loop, &c, "127.0.0.1", "0", &o, NULL);
	REQUIRE(s1);
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", server_port(s1, 0));
	xp_server *s2 = mk_server(loop, &c, "127.0.0.1", ps, &o, &err);
	CHECK(s2 != NULL);
	CHECK_EQ(err, 0);
	int on = 0;
	socklen_t len = sizeof(on);
	const int *fds;
	xp_server_sockets(s1, &fds);
	getsockopt(fds[0], SOL_SOCKET, SO_REUSEPORT, &on, &len);
	CHECK_EQ(on, 1);
	/* Without reuse_port the port is taken. */
	CHECK(mk_server(loop, &c, "127.0.0.1", ps, NULL, &err) == NULL);
	CHECK_EQ(err, -EADDRINUSE);
	xp_server_free(s1);
	xp_server_free(s2);
	xp_loop_free(loop);
}

TEST(server_reuse_address_default_and_off)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server_opts o = {.no_reuse_address = 1};
	const int *fds;
	int on = -1;
	socklen_t len = sizeof(on);
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	xp_server_sockets(s, &fds);
	getsockopt(fds[0], SOL_SOCKET, SO_REUSEADDR, &on, &len);
	CHECK_EQ(on, 1);
	getsockopt(fds[0], SOL_SOCKET, SO_REUSEPORT, &on, &len);
	CHECK_EQ(on, 0);
	xp_server_free(s);
	s = mk_server(loop, &c, "127.0.0.1", "0", &o, NULL);
	REQUIRE(s);
	xp_server_sockets(s, &fds);
	getsockopt(fds[0], SOL_SOCKET, SO_REUSEADDR, &on, &len);
	CHECK_EQ(on, 0);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_bad_options_fail_the_future)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server_opts o = {.backlog = -1};
	int err = 0;
	CHECK(mk_server(loop, &c, "127.0.0.1", "0", &o, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(mk_server(loop, &c, "127.0.0.1", "notaport", NULL, &err) == NULL);
	CHECK_EQ(err, XP_ERESOLVE);
	CHECK(mk_server(loop, &c, "no-such-host.invalid", "0", NULL, &err) == NULL);
	CHECK_EQ(err, XP_ERESOLVE);
	xp_loop_free(loop);
}

TEST(server_resolves_host_names)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "localhost", "0", NULL, NULL);
	REQUIRE(s);
	CHECK(xp_server_sockets(s, NULL) >= 1);
	xp_server_free(s);
	xp_loop_free(loop);
}

/* ---- serving ---------------------------------------------------------- */

TEST(server_defer_serving_then_start)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server_opts o = {.defer_serving = 1};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &o, NULL);
	REQUIRE(s);
	CHECK(!xp_server_is_serving(s));
	int a = tcp_connect4(server_port(s, 0)); /* queued by the kernel */
	REQUIRE(a >= 0);
	run_until_ge(loop, &c.made, 1, 0.1);
	CHECK_EQ(c.made, 0);
	CHECK_EQ(xp_server_start_serving(s), 0);
	CHECK(xp_server_is_serving(s));
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	xp_server_close(s);
	CHECK_EQ(xp_server_start_serving(s), XP_ECLOSED);
	xp_server_free(s);
	xp_loop_free(loop);
}

static int close_server_cb(void *arg)
{
	xp_server_close(arg);
	return 0;
}

TEST(server_serve_forever_done_on_close)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server_opts o = {.defer_serving = 1};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &o, NULL);
	REQUIRE(s);
	xp_future *f = xp_server_serve_forever(s);
	REQUIRE(f);
	CHECK(xp_server_is_serving(s));
	xp_future *f2 = xp_server_serve_forever(s);
	CHECK_EQ(xp_future_error(f2), XP_ESTATE);
	xp_future_release(f2);
	xp_call_later(loop, 0.05, close_server_cb, s);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK(!xp_server_is_serving(s));
	xp_future_release(f);
	f = xp_server_serve_forever(s);
	CHECK_EQ(xp_future_error(f), XP_ECLOSED);
	xp_future_release(f);
	xp_server_free(s);
	xp_loop_free(loop);
}

static int cancel_cb(void *arg)
{
	xp_future_cancel(arg);
	return 0;
}

TEST(server_serve_forever_cancel_closes)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	int port = server_port(s, 0);
	xp_future *f = xp_server_serve_forever(s);
	xp_future *w = xp_server_wait_closed(s);
	xp_call_later(loop, 0.02, cancel_cb, f);
	CHECK(rec_run_until(loop, cond_fut, w, 3));
	CHECK(xp_future_cancelled(f));
	CHECK(!xp_server_is_serving(s));
	CHECK_EQ(tcp_connect4(port), -ECONNREFUSED);
	xp_future_release(f);
	xp_future_release(w);
	xp_server_free(s);
	xp_loop_free(loop);
}

static int cond_no_connections(void *arg)
{
	return xp_server_connection_count(arg) == 0;
}

TEST(server_factory_null_refuses_connection)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop, .refuse = 1};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	int a = tcp_connect4(server_port(s, 0));
	REQUIRE(a >= 0);
	CHECK(run_until_ge(loop, &c.nfactory, 1, 3));
	/* The refused transport goes away on a later iteration, as every
	 * closed transport does (the factory runs once nothing else can fail). */
	CHECK(rec_run_until(loop, cond_no_connections, s, 3));
	char ch;
	CHECK_EQ(xpt_read_all(a, &ch, 1, 2000), 0); /* closed: EOF */
	CHECK_EQ(c.made, 0);
	CHECK_EQ(xp_server_connection_count(s), 0);
	close(a);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_free_with_live_connections)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", NULL, NULL);
	REQUIRE(s);
	int a = tcp_connect4(server_port(s, 0));
	REQUIRE(a >= 0);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	xp_future *w = xp_server_wait_closed(s);
	xp_server_free(s); /* the connection outlives the server object */
	CHECK(echo_roundtrip(loop, &c, a, "still here"));
	CHECK(!xp_future_done(w));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	CHECK(rec_run_until(loop, cond_fut, w, 3));
	xp_future_release(w);
	xp_loop_free(loop);
}

TEST(server_use_sock_serves_existing_listener)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	int port, err = -1;
	int l = xpt_tcp_listener(&port);
	REQUIRE(l >= 0);
	xp_server_opts o = {.use_sock = 1, .sock = l};
	xp_server *s = mk_server(loop, &c, NULL, NULL, &o, &err);
	REQUIRE(s);
	CHECK_EQ(server_port(s, 0), port);
	CHECK(fcntl(l, F_GETFL) & O_NONBLOCK);
	int a = tcp_connect4(port);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	CHECK(echo_roundtrip(loop, &c, a, "x"));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	xp_server_free(s); /* closes l */
	CHECK(fcntl(l, F_GETFD) < 0);
	/* A datagram socket cannot be served. */
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	xp_server_opts o2 = {.use_sock = 1, .sock = u};
	CHECK(mk_server(loop, &c, NULL, NULL, &o2, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	xp_loop_free(loop);
}

/* ---- Unix servers ----------------------------------------------------- */

static void tmp_path(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "/tmp/xp-test-%s-%d.sock", tag, (int)getpid());
	unlink(buf);
}

/* A sock handed over with arguments that refuse it is taken and closed;
 * a call with no loop takes nothing and fails at once with EINVAL. */
TEST(server_refused_sock_closed_but_not_without_loop)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	char path[108];
	int sv[2], err = 0;

	tmp_path(path, sizeof(path), "refsock");
	REQUIRE(xpt_socketpair(sv) == 0);
	xp_server_opts us = {.use_sock = 1, .sock = sv[0]};
	xp_server_opts bad = {.use_sock = 1, .sock = sv[0], .backlog = -1};
	errno = 0;
	CHECK(xp_create_server(NULL, echo_factory, &c, NULL, NULL, &us) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_create_unix_server(NULL, echo_factory, &c, NULL, &bad) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(fcntl(sv[0], F_GETFD) >= 0);

	CHECK(mk_server(loop, &c, "127.0.0.1", "0", &us, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(fcntl(sv[0], F_GETFD) < 0);
	REQUIRE((us.sock = dup(sv[1])) >= 0);
	CHECK(mk_unix_server(loop, &c, path, &us, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(fcntl(us.sock, F_GETFD) < 0);
	REQUIRE((us.sock = dup(sv[1])) >= 0);
	us.reuse_port = true;
	CHECK(mk_unix_server(loop, &c, NULL, &us, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(fcntl(us.sock, F_GETFD) < 0);
	REQUIRE((bad.sock = dup(sv[1])) >= 0);
	CHECK(mk_server(loop, &c, NULL, NULL, &bad, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(fcntl(bad.sock, F_GETFD) < 0);
	CHECK_EQ(c.made, 0);
	close(sv[1]);
	xp_loop_free(loop);
}

TEST(server_unix_basic_and_cleanup)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	char path[108];
	struct stat st;
	tmp_path(path, sizeof(path), "basic");
	xp_server *s = mk_unix_server(loop, &c, path, NULL, NULL);
	REQUIRE(s);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	int a = unix_connect(path);
	REQUIRE(a >= 0);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	CHECK(echo_roundtrip(loop, &c, a, "unix"));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	xp_server_close(s);
	CHECK(stat(path, &st) < 0); /* removed again on close */
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_unix_removes_stale_socket)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	char path[108];
	xp_sockaddr sa;
	tmp_path(path, sizeof(path), "stale");
	/* A socket file whose server is gone. */
	int old = socket(AF_UNIX, SOCK_STREAM, 0);
	REQUIRE(xp__unix_addr(path, &sa) == 0);
	REQUIRE(bind(old, &sa.u.sa, sa.len) == 0);
	close(old);
	int err = -1;
	xp_server *s = mk_unix_server(loop, &c, path, NULL, &err);
	CHECK_EQ(err, 0);
	REQUIRE(s);
	int a = unix_connect(path);
	CHECK(a >= 0);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_unix_refuses_live_socket_and_regular_file)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	char path[108];
	struct stat st;
	int err = 0;
	tmp_path(path, sizeof(path), "live");
	xp_server *s = mk_unix_server(loop, &c, path, NULL, NULL);
	REQUIRE(s);
	/* A second server must not steal a live one's path. */
	CHECK(mk_unix_server(loop, &c, path, NULL, &err) == NULL);
	CHECK_EQ(err, -EADDRINUSE);
	int a = unix_connect(path);
	CHECK(a >= 0); /* the first still answers */
	/* The liveness probe connected too: two connections to drain. */
	CHECK(run_until_ge(loop, &c.made, 2, 3));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 2, 3));
	xp_server_free(s);

	tmp_path(path, sizeof(path), "file");
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "keep", 4) == 4);
	close(fd);
	CHECK(mk_unix_server(loop, &c, path, NULL, &err) == NULL);
	CHECK_EQ(err, -EADDRINUSE);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);
	unlink(path);
	xp_loop_free(loop);
}

TEST(server_unix_abstract)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	char name[64];
	snprintf(name, sizeof(name), "@xp-test-abstract-%d", (int)getpid());
	xp_server *s = mk_unix_server(loop, &c, name, NULL, NULL);
	REQUIRE(s);
	xp_sockaddr sa;
	char buf[128];
	CHECK_EQ(xp_server_sockname(s, 0, &sa), 0);
	CHECK(xp_sockaddr_format(&sa.u.sa, sa.len, buf, sizeof(buf)) >= 0);
	char want[128];
	snprintf(want, sizeof(want), "unix:%s", name);
	CHECK_STR(buf, want);
	int a = unix_connect(name);
	REQUIRE(a >= 0);
	CHECK(run_until_ge(loop, &c.made, 1, 3));
	CHECK(echo_roundtrip(loop, &c, a, "abstract"));
	close(a);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	int err = 0;
	CHECK(mk_unix_server(loop, &c, name, NULL, &err) == NULL);
	CHECK_EQ(err, -EADDRINUSE);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_unix_path_too_long)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	char path[200];
	int err = 0;
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	CHECK(mk_unix_server(loop, &c, path, NULL, &err) == NULL);
	CHECK_EQ(err, -ENAMETOOLONG);
	xp_loop_free(loop);
}

/* ---- TLS: create_server(tls) + create_connection(tls) ------------------ */

static int cond_bytes(void *arg)
{
	struct rec *r = arg;
	return r->inlen >= 5;
}

static xp_protocol *rec_one(void *arg)
{
	return &((struct rec *)arg)->base;
}

TEST(server_tls_echo_with_tls_client)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	unsigned char fp[32];
	xp_tls_ctx *sctx = xp_tls_ctx_new(1), *cctx = xp_tls_ctx_new(0);
	REQUIRE(sctx && cctx);
	REQUIRE(xp_tls_ctx_use_self_signed(sctx, "localhost", fp) == 0);
	REQUIRE(xp_tls_ctx_set_pin(cctx, fp) == 0);
	xp_server_opts so = {.tls = sctx};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &so, NULL);
	REQUIRE(s);
	xp_tls_ctx_release(sctx); /* the server keeps its own reference */
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", server_port(s, 0));
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_connect_opts co = {.tls = cctx, .server_hostname = "localhost", .timeout = 5};
	xp_future *f = xp_create_connection(loop, rec_one, r, "127.0.0.1", ps, &co);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	xp_transport *t = xp_future_result(f);
	xp_future_release(f);
	REQUIRE(t);
	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_TLS);
	CHECK_EQ(xp_server_connection_count(s), 1);
	CHECK_EQ(xp_transport_write(t, "hello", 5), 0);
	CHECK(rec_run_until(loop, cond_bytes, r, 3));
	CHECK_MEM(r->in, "hello", 5);
	xp_server_close(s);
	xp_future *w = xp_server_wait_closed(s);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
	CHECK(rec_run_until(loop, cond_fut, w, 3));
	CHECK_EQ(c.lost, 1);
	xp_future_release(w);
	xp_tls_ctx_release(cctx);
	rec_free(r);
	xp_server_free(s);
	xp_loop_free(loop);
}

/* ---- accept_filter and pending_count ------------------------------------ */

struct filt {
	int calls, refuse, reset;
	int peer_port;		/* of the last peer seen */
	size_t pending_seen[8]; /* xp_server_pending_count at each call */
};

static int filt_cb(void *arg, xp_server *s, int fd, const xp_sockaddr *peer)
{
	struct filt *f = arg;
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	if (f->calls < 8)
		f->pending_seen[f->calls] = xp_server_pending_count(s);
	f->calls++;
	f->peer_port = ntohs(((const struct sockaddr_in *)&peer->u.ss)->sin_port);
	if (f->refuse && f->reset)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	return f->refuse;
}

static int local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &len);
	return ntohs(sa.sin_port);
}

struct scount {
	xp_server *s;
	size_t want;
};
static int cond_conns_eq(void *arg)
{
	struct scount *c = arg;
	return xp_server_connection_count(c->s) == c->want;
}

TEST(server_accept_filter_refuses_before_any_transport)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	struct filt f = {.refuse = 1, .reset = 1};
	xp_server_opts so = {.accept_filter = filt_cb, .accept_filter_arg = &f};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &so, NULL);
	char buf[8];

	REQUIRE(s);
	int fd = tcp_connect4(server_port(s, 0));
	REQUIRE(fd >= 0);
	CHECK_EQ(xpt_write_all(fd, "ping", 4), 4);
	CHECK(run_until_ge(loop, &f.calls, 1, 3));
	CHECK_EQ(f.peer_port, local_port(fd));
	/* Refused: no protocol ever made, no byte read, a reset for the peer. */
	CHECK_EQ(xpt_read_all(fd, buf, sizeof(buf), 2000), -1);
	CHECK_EQ(errno, ECONNRESET);
	CHECK_EQ(c.nfactory, 0);
	CHECK_EQ(c.bytes, 0);
	CHECK_EQ(xp_server_connection_count(s), 0);
	close(fd);
	/* Accepted: served as usual. */
	f.refuse = 0;
	fd = tcp_connect4(server_port(s, 0));
	REQUIRE(fd >= 0);
	CHECK(echo_roundtrip(loop, &c, fd, "hello"));
	CHECK_EQ(f.calls, 2);
	CHECK_EQ(c.nfactory, 1);
	close(fd);
	CHECK(run_until_ge(loop, &c.lost, 1, 3));
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_accept_filter_runs_before_the_tls_handshake)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	struct filt f = {.refuse = 1};
	unsigned char fp[32];
	xp_tls_ctx *sctx = xp_tls_ctx_new(1), *cctx = xp_tls_ctx_new(0);
	REQUIRE(sctx && cctx);
	REQUIRE(xp_tls_ctx_use_self_signed(sctx, "localhost", fp) == 0);
	REQUIRE(xp_tls_ctx_set_pin(cctx, fp) == 0);
	xp_server_opts so = {.tls = sctx, .accept_filter = filt_cb, .accept_filter_arg = &f};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &so, NULL);
	REQUIRE(s);
	xp_tls_ctx_release(sctx);
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", server_port(s, 0));
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_connect_opts co = {.tls = cctx, .server_hostname = "localhost", .timeout = 5};
	xp_future *cf = xp_create_connection(loop, rec_one, r, "127.0.0.1", ps, &co);
	/* The client's handshake fails: the server closed without a word. */
	CHECK(xp_loop_run_until_complete(loop, cf) < 0);
	xp_future_release(cf);
	CHECK_EQ(f.calls, 1);
	CHECK_EQ(c.nfactory, 0);
	CHECK_EQ(xp_server_connection_count(s), 0);
	xp_tls_ctx_release(cctx);
	rec_free(r);
	xp_server_free(s);
	xp_loop_free(loop);
}

TEST(server_pending_count_counts_tls_handshakes_in_progress)
{
	xp_loop *loop = xp_loop_new();
	struct sctx c = {.loop = loop};
	struct filt f = {0};
	unsigned char fp[32];
	xp_tls_ctx *sctx = xp_tls_ctx_new(1), *cctx = xp_tls_ctx_new(0);
	REQUIRE(sctx && cctx);
	REQUIRE(xp_tls_ctx_use_self_signed(sctx, "localhost", fp) == 0);
	REQUIRE(xp_tls_ctx_set_pin(cctx, fp) == 0);
	xp_server_opts so = {.tls = sctx, .accept_filter = filt_cb, .accept_filter_arg = &f};
	xp_server *s = mk_server(loop, &c, "127.0.0.1", "0", &so, NULL);
	REQUIRE(s);
	xp_tls_ctx_release(sctx);
	/* A client that connects and never says hello. */
	int stalled = tcp_connect4(server_port(s, 0));
	REQUIRE(stalled >= 0);
	struct scount one = {s, 1};
	CHECK(rec_run_until(loop, cond_conns_eq, &one, 10));
	CHECK_EQ(xp_server_pending_count(s), 1);
	/* A real client: its filter call sees the stalled one pending. */
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", server_port(s, 0));
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_connect_opts co = {.tls = cctx, .server_hostname = "localhost", .timeout = 5};
	xp_future *cf = xp_create_connection(loop, rec_one, r, "127.0.0.1", ps, &co);
	CHECK_EQ(xp_loop_run_until_complete(loop, cf), 0);
	xp_transport *t = xp_future_result(cf);
	xp_future_release(cf);
	CHECK(run_until_ge(loop, &c.made, 1, 10));
	CHECK_EQ(f.calls, 2);
	CHECK_EQ(f.pending_seen[0], 0);
	CHECK_EQ(f.pending_seen[1], 1);
	CHECK_EQ(xp_server_connection_count(s), 2);
	CHECK_EQ(xp_server_pending_count(s), 1);
	/* The stalled client leaves: nothing pending any more. */
	close(stalled);
	CHECK(rec_run_until(loop, cond_conns_eq, &one, 10));
	CHECK_EQ(xp_server_pending_count(s), 0);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 10));
	/* The server side of that connection goes a little later (under
	 * valgrind, much later): wait for it before freeing the server. */
	xp_server_close(s);
	xp_future *w = xp_server_wait_closed(s);
	CHECK(xp_loop_run_until_complete(loop, w) == 0);
	xp_future_release(w);
	xp_tls_ctx_release(cctx);
	rec_free(r);
	xp_server_free(s);
	xp_loop_free(loop);
}
