// SPDX-License-Identifier: MIT
/*
 * test_connect.c - create_connection (Happy Eyeballs, errors, timeout,
 * local_addr, use_sock), Unix connections and connect_accepted_socket.
 */
#include "test.h"
#include "recorder.h"
#include "internal.h"

#include <dirent.h>
#include <sys/un.h>

static void (*const connect_rec_unused[])(void) __attribute__((unused)) = {
    (void (*)(void))rec_factory_one,
};

static xp_protocol *null_factory(void *arg)
{
	return NULL;
}

/* ---- helpers ---------------------------------------------------------- */

/* Counts factory calls; hands out one recorder. */
struct one {
	struct rec *r;
	int calls;
};
static xp_protocol *one_factory(void *arg)
{
	struct one *o = arg;
	o->calls++;
	return &o->r->base;
}

static xp_sockaddr addr4(int port)
{
	xp_sockaddr a = {.len = sizeof(struct sockaddr_in)};
	struct sockaddr_in *in = (struct sockaddr_in *)&a.u.ss;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static xp_sockaddr addr6(int port)
{
	xp_sockaddr a = {.len = sizeof(struct sockaddr_in6)};
	struct sockaddr_in6 *in = (struct sockaddr_in6 *)&a.u.ss;
	in->sin6_family = AF_INET6;
	in->sin6_port = htons(port);
	in->sin6_addr = in6addr_loopback;
	return a;
}

/* A port nobody listens on (bound once, then released). */
static int free_port(void)
{
	int port;
	int fd = xpt_tcp_listener(&port);
	if (fd < 0)
		return -1;
	close(fd);
	return port;
}

static void port_str(char *buf, int port)
{
	snprintf(buf, 16, "%d", port);
}

/* A listener whose accept queue is full, so new SYNs are dropped and a
 * connect to it hangs in SYN_SENT.  fillers get the queued clients.
 * Returns the listening fd or -1 if connects do not hang here. */
static int hang_listener(int *port, int *fillers, int *nfill)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*nfill = 0;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 0) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	for (int i = 0; i < 8; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		if (poll(&p, 1, 200) == 0) {
			close(fd); /* this one hung: the queue is full */
			return l;
		}
		fillers[(*nfill)++] = fd;
	}
	for (int i = 0; i < *nfill; i++)
		close(fillers[i]);
	close(l);
	return -1;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Run fut to completion; returns the error and the transport in *t. */
static int run_fut(xp_loop *loop, xp_future *f, xp_transport **t)
{
	int r;
	REQUIRE(f);
	r = xp_loop_run_until_complete(loop, f);
	if (t)
		*t = r == 0 ? xp_future_result(f) : NULL;
	xp_future_release(f);
	return r;
}

static int accept_one(int l)
{
	struct pollfd p = {.fd = l, .events = POLLIN};
	if (poll(&p, 1, 2000) != 1)
		return -1;
	return accept4(l, NULL, NULL, SOCK_CLOEXEC);
}

/* Close t and run until the recorder saw connection_lost. */
static void finish(xp_loop *loop, struct rec *r, xp_transport *t)
{
	if (t)
		xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
}

/* ---- basics ----------------------------------------------------------- */

TEST(connect_tcp_basic_made_before_result)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port;
	char ps[16];
	int l = xpt_tcp_listener(&port);
	REQUIRE(l >= 0);
	port_str(ps, port);
	xp_transport *t;
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", ps, NULL), &t),
	    0);
	REQUIRE(t);
	CHECK_EQ(o.calls, 1);
	CHECK_STR(o.r->log, "made"); /* connection_made came before the result */
	CHECK(o.r->t == t);
	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_STREAM);
	const xp_sockaddr *peer = xp_transport_get_extra_info(t, "peername", NULL);
	REQUIRE(peer);
	CHECK_EQ(ntohs(((const struct sockaddr_in *)&peer->u.ss)->sin_port), port);
	int s = accept_one(l);
	REQUIRE(s >= 0);
	CHECK_EQ(xp_transport_write(t, "hi", 2), 0);
	char buf[2];
	CHECK_EQ(xpt_read_all(s, buf, 2, 2000), 2);
	close(s);
	CHECK(rec_run_until(loop, rec_cond_lost, o.r, 3));
	CHECK_STR(o.r->log, "made eof lost:0");
	close(l);
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_refused)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	char ps[16];
	port_str(ps, free_port());
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", ps, NULL), NULL),
	    -ECONNREFUSED);
	CHECK_EQ(o.calls, 0); /* no protocol for a failed connect */
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_name_not_found)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	CHECK_EQ(
	    run_fut(loop,
		    xp_create_connection(loop, one_factory, &o, "no-such-host.invalid", "80", NULL),
		    NULL),
	    XP_ERESOLVE);
	CHECK_EQ(o.calls, 0);
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_bad_arguments)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	xp_connect_opts opt = {.server_hostname = "x"}; /* without tls */
	CHECK_EQ(run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", "1", &opt),
			 NULL),
		 -EINVAL);
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, NULL, NULL, "127.0.0.1", "1", NULL), NULL),
	    -EINVAL);
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	xp_connect_opts us = {.use_sock = 1, .sock = sv[0]};
	/* host together with sock is a ValueError in asyncio. */
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", "1", &us), NULL),
	    -EINVAL);
	close(sv[1]);
	rec_free(o.r);
	xp_loop_free(loop);
}

/* With no loop there is no future to report through: NULL with EINVAL,
 * whatever else is wrong, and a sock the call was handed stays open. */
TEST(connect_without_loop_einval_sock_kept)
{
	int sv[2];

	REQUIRE(xpt_socketpair(sv) == 0);
	xp_connect_opts us = {.use_sock = 1, .sock = sv[0]};
	errno = 0;
	CHECK(xp_create_connection(NULL, one_factory, NULL, NULL, NULL, &us) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_create_connection(NULL, NULL, NULL, "127.0.0.1", "1", NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_create_unix_connection(NULL, one_factory, NULL, NULL, &us) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_connect_accepted_socket(NULL, one_factory, NULL, sv[0], NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(fcntl(sv[0], F_GETFD) >= 0);
	close(sv[0]);
	close(sv[1]);
}

/* ---- timeout ---------------------------------------------------------- */

TEST(connect_timeout)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port, fill[8], nfill, before = count_fds();
	char ps[16];
	int l = hang_listener(&port, fill, &nfill);
	xp_connect_opts opt = {.timeout = 0.2};
	long long t0 = xpt_now_ms();
	int r;
	REQUIRE(l >= 0);
	port_str(ps, port);
	r = run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", ps, &opt), NULL);
	long long ms = xpt_now_ms() - t0;
	CHECK_EQ(r, -ETIMEDOUT);
	CHECK(ms >= 190 && ms < 15000); /* not the 30 s default; valgrind-loaded bound */
	CHECK_EQ(o.calls, 0);
	close_all(fill, nfill);
	close(l);
	CHECK_EQ(count_fds(), before); /* the attempt's socket was closed */
	rec_free(o.r);
	xp_loop_free(loop);
}

static int cancel_cb(void *arg)
{
	xp_future_cancel(arg);
	return 0;
}

TEST(connect_cancel_aborts_attempts)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port, fill[8], nfill, before = count_fds();
	char ps[16];
	int l = hang_listener(&port, fill, &nfill);
	REQUIRE(l >= 0);
	port_str(ps, port);
	xp_future *f = xp_create_connection(loop, one_factory, &o, "127.0.0.1", ps, NULL);
	REQUIRE(f);
	xp_call_later(loop, 0.05, cancel_cb, f);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -ECANCELED);
	rec_run_until(loop, rec_cond_lost, o.r, 0.05); /* let the done callbacks run */
	CHECK(xp_future_cancelled(f));
	xp_future_release(f);
	close_all(fill, nfill);
	close(l);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(o.calls, 0);
	rec_free(o.r);
	xp_loop_free(loop);
}

/* ---- Happy Eyeballs ----------------------------------------------------- */

TEST(connect_interleave_alternates_families)
{
	struct sockaddr_in6 a6[3];
	struct sockaddr_in a4[2];
	struct addrinfo ai[5];
	xp_sockaddr out[5];
	memset(ai, 0, sizeof(ai));
	for (int i = 0; i < 3; i++) {
		a6[i] = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(10 + i)};
		ai[i].ai_family = AF_INET6;
		ai[i].ai_addr = (struct sockaddr *)&a6[i];
		ai[i].ai_addrlen = sizeof(a6[i]);
	}
	for (int i = 0; i < 2; i++) {
		a4[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(20 + i)};
		ai[3 + i].ai_family = AF_INET;
		ai[3 + i].ai_addr = (struct sockaddr *)&a4[i];
		ai[3 + i].ai_addrlen = sizeof(a4[i]);
	}
	/* getaddrinfo order: v6 v6 v6 v4 v4 -> v6 v4 v6 v4 v6 */
	for (int i = 0; i < 4; i++)
		ai[i].ai_next = &ai[i + 1];
	CHECK_EQ(xp__connect_interleave(ai, out, 5), 5);
	int want[5] = {10, 20, 11, 21, 12};
	for (int i = 0; i < 5; i++) {
		const struct sockaddr *sa = &out[i].u.sa;
		int port = sa->sa_family == AF_INET
			       ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
			       : ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		CHECK_EQ(port, want[i]);
	}
	/* v4 first in the list: v4 leads. */
	struct addrinfo b[3] = {ai[3], ai[0], ai[1]};
	b[0].ai_next = &b[1];
	b[1].ai_next = &b[2];
	b[2].ai_next = NULL;
	CHECK_EQ(xp__connect_interleave(b, out, 3), 3);
	CHECK_EQ(out[0].u.sa.sa_family, AF_INET);
	CHECK_EQ(out[1].u.sa.sa_family, AF_INET6);
	CHECK_EQ(out[2].u.sa.sa_family, AF_INET6);
	CHECK_EQ(xp__connect_interleave(ai, out, 2), 2); /* max respected */
}

TEST(connect_happy_eyeballs_localhost_v4_wins)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port;
	char ps[16];
	int l = xpt_tcp_listener(&port); /* 127.0.0.1 only */
	REQUIRE(l >= 0);
	port_str(ps, port);
	xp_transport *t;
	/* "localhost" may resolve to ::1 too: that attempt is refused and
	 * the IPv4 one wins. */
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, one_factory, &o, "localhost", ps, NULL), &t),
	    0);
	CHECK_EQ(o.calls, 1);
	int s = accept_one(l);
	CHECK(s >= 0);
	finish(loop, o.r, t);
	close(s);
	close(l);
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_happy_eyeballs_failure_starts_next_at_once)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port;
	int l = xpt_tcp_listener(&port);
	REQUIRE(l >= 0);
	/* [::1]:port is refused (nothing listens there), then two refused
	 * IPv4 ports, then the listener.  With a 30 s stagger only failures
	 * can start the next attempts within the (valgrind-loaded) bound. */
	xp_sockaddr addrs[4] = {addr6(port), addr4(free_port()), addr4(free_port()), addr4(port)};
	xp_connect_opts opt = {.happy_eyeballs_delay = 30};
	long long t0 = xpt_now_ms();
	xp_transport *t;
	CHECK_EQ(run_fut(loop, xp__connect_addrs(loop, one_factory, &o, addrs, 4, NULL, &opt), &t),
		 0);
	CHECK(xpt_now_ms() - t0 < 15000);
	CHECK_EQ(o.calls, 1); /* one protocol, not one per attempt */
	int s = accept_one(l);
	CHECK(s >= 0);
	finish(loop, o.r, t);
	close(s);
	close(l);
	rec_free(o.r);
	xp_loop_free(loop);
}

static void stagger_case(double delay)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int hport, gport, fill[8], nfill;
	int h = hang_listener(&hport, fill, &nfill);
	int g = xpt_tcp_listener(&gport);
	REQUIRE(h >= 0 && g >= 0);
	xp_sockaddr addrs[2] = {addr4(hport), addr4(gport)};
	xp_connect_opts opt = {.happy_eyeballs_delay = delay};
	long long t0 = xpt_now_ms();
	xp_transport *t;
	CHECK_EQ(run_fut(loop, xp__connect_addrs(loop, one_factory, &o, addrs, 2, NULL, &opt), &t),
		 0);
	long long ms = xpt_now_ms() - t0;
	double want = delay > 0 ? delay : 0.25;
	/* The second attempt began only after the delay, while the first
	 * still hung, and won. */
	CHECK(ms >= (long long)(want * 1000) - 10);
	CHECK(ms < (long long)(want * 1000) + 900);
	REQUIRE(t);
	const xp_sockaddr *peer = xp_transport_get_extra_info(t, "peername", NULL);
	REQUIRE(peer);
	CHECK_EQ(ntohs(((const struct sockaddr_in *)&peer->u.ss)->sin_port), gport);
	int s = accept_one(g);
	CHECK(s >= 0);
	finish(loop, o.r, t);
	close(s);
	close_all(fill, nfill);
	close(h);
	close(g);
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_happy_eyeballs_staggered_after_delay)
{
	stagger_case(0.3);
}

TEST(connect_happy_eyeballs_default_delay_250ms)
{
	stagger_case(0);
}

TEST(connect_happy_eyeballs_sequential_waits_for_failure)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int hport, gport, fill[8], nfill;
	int h = hang_listener(&hport, fill, &nfill);
	int g = xpt_tcp_listener(&gport);
	REQUIRE(h >= 0 && g >= 0);
	xp_sockaddr addrs[2] = {addr4(hport), addr4(gport)};
	/* One at a time: the hanging first attempt blocks the second one
	 * until the overall timeout. */
	xp_connect_opts opt = {.happy_eyeballs_delay = -1, .timeout = 0.5};
	CHECK_EQ(
	    run_fut(loop, xp__connect_addrs(loop, one_factory, &o, addrs, 2, NULL, &opt), NULL),
	    -ETIMEDOUT);
	struct pollfd p = {.fd = g, .events = POLLIN};
	CHECK_EQ(poll(&p, 1, 0), 0); /* nobody ever connected to g */
	close_all(fill, nfill);
	close(h);
	close(g);
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_all_fail_reports_refused)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	/* Mixed errors (a port-0 address fails differently) still report the
	 * telling one. */
	xp_sockaddr addrs[2] = {addr4(free_port()), addr4(free_port())};
	CHECK_EQ(
	    run_fut(loop, xp__connect_addrs(loop, one_factory, &o, addrs, 2, NULL, NULL), NULL),
	    -ECONNREFUSED);
	CHECK_EQ(o.calls, 0);
	rec_free(o.r);
	xp_loop_free(loop);
}

/* ---- local_addr, use_sock, accepted sockets, Unix ----------------------- */

TEST(connect_local_addr_binds_first)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port, lport = free_port();
	char ps[16];
	int l = xpt_tcp_listener(&port);
	REQUIRE(l >= 0);
	port_str(ps, port);
	xp_sockaddr la = addr4(lport);
	xp_connect_opts opt = {.local_addr = &la.u.sa, .local_addrlen = la.len};
	xp_transport *t;
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", ps, &opt), &t),
	    0);
	REQUIRE(t);
	const xp_sockaddr *me = xp_transport_get_extra_info(t, "sockname", NULL);
	REQUIRE(me);
	CHECK_EQ(ntohs(((const struct sockaddr_in *)&me->u.ss)->sin_port), lport);
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int s = accept_one(l);
	REQUIRE(s >= 0);
	getpeername(s, (struct sockaddr *)&peer, &plen);
	CHECK_EQ(ntohs(peer.sin_port), lport);
	finish(loop, o.r, t);
	close(s);

	/* An IPv6 local address cannot serve an IPv4 destination. */
	xp_sockaddr l6 = addr6(0);
	xp_connect_opts opt6 = {.local_addr = &l6.u.sa, .local_addrlen = l6.len};
	struct one o2 = {rec_new(&rec_stream_ops, loop), 0};
	CHECK_EQ(run_fut(loop, xp_create_connection(loop, one_factory, &o2, "127.0.0.1", ps, &opt6),
			 NULL),
		 -EADDRNOTAVAIL);
	close(l);
	rec_free(o.r);
	rec_free(o2.r);
	xp_loop_free(loop);
}

TEST(connect_local_addr_in_use)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port, lport;
	char ps[16];
	int l = xpt_tcp_listener(&port);
	int busy = xpt_tcp_listener(&lport); /* holds lport */
	REQUIRE(l >= 0 && busy >= 0);
	port_str(ps, port);
	xp_sockaddr la = addr4(lport);
	xp_connect_opts opt = {.local_addr = &la.u.sa, .local_addrlen = la.len};
	CHECK_EQ(
	    run_fut(loop, xp_create_connection(loop, one_factory, &o, "127.0.0.1", ps, &opt), NULL),
	    -EADDRINUSE);
	close(l);
	close(busy);
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_use_sock_wraps_connected_socket)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0); /* blocking, no cloexec */
	xp_connect_opts opt = {.use_sock = 1, .sock = sv[0]};
	xp_transport *t;
	CHECK_EQ(run_fut(loop, xp_create_connection(loop, one_factory, &o, NULL, NULL, &opt), &t),
		 0);
	REQUIRE(t);
	CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
	const int *fd = xp_transport_get_extra_info(t, "socket", NULL);
	CHECK(fd && *fd == sv[0]);
	CHECK_EQ(xpt_write_all(sv[1], "abc", 3), 3);
	close(sv[1]);
	CHECK(rec_run_until(loop, rec_cond_lost, o.r, 3));
	CHECK_STR(o.r->log, "made data:3 eof lost:0");
	rec_free(o.r);
	xp_loop_free(loop);
}

TEST(connect_accepted_socket_wraps)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	int port;
	int l = xpt_tcp_listener(&port);
	REQUIRE(l >= 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	xp_sockaddr a = addr4(port);
	REQUIRE(connect(c, &a.u.sa, a.len) == 0);
	int s = accept(l, NULL, NULL);
	REQUIRE(s >= 0);
	xp_transport *t;
	CHECK_EQ(run_fut(loop, xp_connect_accepted_socket(loop, one_factory, &o, s, NULL), &t), 0);
	REQUIRE(t);
	CHECK_EQ(o.calls, 1);
	CHECK_EQ(xp_transport_write(t, "pong", 4), 0);
	char buf[4];
	CHECK_EQ(xpt_read_all(c, buf, 4, 2000), 4);
	CHECK_MEM(buf, "pong", 4);
	finish(loop, o.r, t);
	CHECK_EQ(xpt_read_all(c, buf, 1, 2000), 0); /* the transport closed s */
	close(c);
	close(l);
	struct one o2 = {rec_new(&rec_stream_ops, loop), 0};
	CHECK_EQ(run_fut(loop, xp_connect_accepted_socket(loop, one_factory, &o2, -1, NULL), NULL),
		 -EBADF);
	rec_free(o.r);
	rec_free(o2.r);
	xp_loop_free(loop);
}

TEST(connect_factory_null_fails)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	REQUIRE(xpt_socketpair(sv) == 0);
	CHECK_EQ(
	    run_fut(loop, xp_connect_accepted_socket(loop, null_factory, NULL, sv[0], NULL), NULL),
	    XP_ECALLBACK);
	char ch;
	CHECK_EQ(xpt_read_all(sv[1], &ch, 1, 1000), 0); /* sv[0] was closed */
	close(sv[1]);
	xp_loop_free(loop);
}

static void unix_case(const char *path)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	xp_sockaddr sa;
	REQUIRE(xp__unix_addr(path, &sa) == 0);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (path[0] != '@')
		unlink(path);
	REQUIRE(bind(l, &sa.u.sa, sa.len) == 0 && listen(l, 8) == 0);
	xp_transport *t;
	CHECK_EQ(run_fut(loop, xp_create_unix_connection(loop, one_factory, &o, path, NULL), &t),
		 0);
	REQUIRE(t);
	int s = accept_one(l);
	REQUIRE(s >= 0);
	CHECK_EQ(xpt_write_all(s, "unix!", 5), 5);
	close(s);
	CHECK(rec_run_until(loop, rec_cond_lost, o.r, 3));
	CHECK_STR(o.r->log, "made data:5 eof lost:0");
	close(l);
	if (path[0] != '@')
		unlink(path);
	/* Nothing listening any more. */
	struct one o2 = {rec_new(&rec_stream_ops, loop), 0};
	int r = run_fut(loop, xp_create_unix_connection(loop, one_factory, &o2, path, NULL), NULL);
	CHECK(r == -ECONNREFUSED || r == -ENOENT);
	rec_free(o.r);
	rec_free(o2.r);
	xp_loop_free(loop);
}

TEST(connect_unix_path)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/xp-conn-%d.sock", (int)getpid());
	unix_case(path);
}

TEST(connect_unix_abstract)
{
	char path[64];
	snprintf(path, sizeof(path), "@xp-conn-%d", (int)getpid());
	unix_case(path);
}

TEST(connect_unix_errors)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	char path[64];
	snprintf(path, sizeof(path), "/tmp/xp-none-%d.sock", (int)getpid());
	CHECK_EQ(run_fut(loop, xp_create_unix_connection(loop, one_factory, &o, path, NULL), NULL),
		 -ENOENT);
	CHECK_EQ(run_fut(loop, xp_create_unix_connection(loop, one_factory, &o, "", NULL), NULL),
		 -EINVAL);
	rec_free(o.r);
	xp_loop_free(loop);
}

/* End to end with the server: the resolver path with a port as a name. */
TEST(connect_service_name_port)
{
	xp_loop *loop = xp_loop_new();
	struct one o = {rec_new(&rec_stream_ops, loop), 0};
	/* An unknown service name is a resolution failure. */
	CHECK_EQ(run_fut(loop,
			 xp_create_connection(loop, one_factory, &o, "127.0.0.1", "no-such-service",
					      NULL),
			 NULL),
		 XP_ERESOLVE);
	rec_free(o.r);
	xp_loop_free(loop);
}
