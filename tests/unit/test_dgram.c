// SPDX-License-Identifier: MIT
/* Datagram transports: doc/semantics.md section H (69-76), 43, 55, 65. */
#include "test.h"
#include "recorder.h"
#include "xport.h"

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/un.h>

/* ---- helpers --------------------------------------------------------- */

/* A plain non-blocking UDP socket on 127.0.0.1, port in *port. */
static int udp_sock(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static struct sockaddr_in lo_addr(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return sa;
}

/* A port nobody listens on (bound, then released). */
static int dead_port(void)
{
	int port = 0, fd = udp_sock(&port);

	close(fd);
	return port;
}

static int sock_port(const xp_sockaddr *a)
{
	return ntohs(((const struct sockaddr_in *)&a->u.sa)->sin_port);
}

/* Wait (bounded) for one datagram on a plain socket; its length or -1. */
static ssize_t recv_wait(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, ms) <= 0)
		return -1;
	return recv(fd, buf, len, 0);
}

static xp_transport *open_ep(xp_loop *loop, struct rec *r, const xp_datagram_opts *o, int *err)
{
	xp_future *f = xp_create_datagram_endpoint(loop, rec_factory_one, r, o);
	xp_transport *t = NULL;

	REQUIRE(f);
	*err = xp_loop_run_until_complete(loop, f);
	if (!*err)
		t = xp_future_result(f);
	xp_future_release(f);
	return t;
}

static char port_str[8][16];
static const char *pstr(int i, int port)
{
	snprintf(port_str[i], sizeof(port_str[i]), "%d", port);
	return port_str[i];
}

static xp_transport *open_local(xp_loop *loop, struct rec *r)
{
	xp_datagram_opts o = {.local_host = "127.0.0.1", .local_port = "0"};
	int err;
	xp_transport *t = open_ep(loop, r, &o, &err);

	REQUIRE(t);
	return t;
}

static xp_transport *open_remote(xp_loop *loop, struct rec *r, int port)
{
	xp_datagram_opts o = {.remote_host = "127.0.0.1", .remote_port = pstr(0, port)};
	int err;
	xp_transport *t = open_ep(loop, r, &o, &err);

	REQUIRE(t);
	return t;
}

static int ep_port(xp_transport *t)
{
	const xp_sockaddr *a = xp_transport_get_extra_info(t, "sockname", NULL);

	REQUIRE(a);
	return sock_port(a);
}

static void close_wait(xp_loop *loop, struct rec *r)
{
	if (r->t)
		xp_transport_close(r->t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
}

/* Run the loop for a short bounded time when nothing is expected. */
static int never(void *arg)
{
	return 0;
}
static void run_for(xp_loop *loop, double s)
{
	rec_run_until(loop, never, NULL, s);
}

struct count_cond {
	struct rec *r;
	size_t n;
};
static int cond_inlen(void *arg)
{
	struct count_cond *c = arg;
	return c->r->inlen >= c->n;
}
static int cond_log(void *arg)
{
	struct rec *r = arg;
	return strstr(r->log, "error:") != NULL;
}

static size_t count_word(const char *log, const char *w)
{
	size_t n = 0;
	for (const char *p = strstr(log, w); p; p = strstr(p + 1, w))
		n++;
	return n;
}

/* ---- 43, 65: limits and extra info ------------------------------------ */

TEST(dgram_default_write_limits_sem_43)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_local(loop, r);
	size_t lo = 0, hi = 0;

	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_DATAGRAM);
	xp_transport_get_write_buffer_limits(t, &lo, &hi);
	CHECK_EQ(lo, 16384);
	CHECK_EQ(hi, 65536);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	CHECK_EQ(xp_transport_set_write_buffer_limits(t, 100, -1), 0);
	xp_transport_get_write_buffer_limits(t, &lo, &hi);
	CHECK_EQ(lo, 25);
	CHECK_EQ(hi, 100);
	close_wait(loop, r);
	CHECK_STR(r->log, "made lost:0");
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_extra_info_sem_65)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop), *r2 = rec_new(&rec_dgram_ops, loop);
	int port, peer = udp_sock(&port), dflt = 42;
	xp_transport *t = open_local(loop, r), *c = open_remote(loop, r2, port);
	const int *fd;
	const xp_sockaddr *a;

	CHECK(xp_transport_get_extra_info(t, "no-such-key", NULL) == NULL);
	CHECK(xp_transport_get_extra_info(t, "no-such-key", &dflt) == &dflt);
	CHECK(xp_transport_get_extra_info(t, "peername", NULL) == NULL);
	CHECK(xp_transport_get_extra_info(t, "peername", &dflt) == &dflt);
	a = xp_transport_get_extra_info(t, "sockname", NULL);
	REQUIRE(a);
	CHECK_EQ(a->u.sa.sa_family, AF_INET);
	CHECK(sock_port(a) > 0);
	fd = xp_transport_get_extra_info(t, "socket", NULL);
	REQUIRE(fd);
	CHECK(*fd >= 0);

	a = xp_transport_get_extra_info(c, "peername", NULL);
	REQUIRE(a);
	CHECK_EQ(sock_port(a), port);
	CHECK(xp_transport_get_extra_info(c, "sockname", NULL) != NULL);
	close_wait(loop, r);
	close_wait(loop, r2);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
	rec_free(r2);
}

/* ---- 69-71: sendto ---------------------------------------------------- */

TEST(dgram_sendto_unconnected_and_empty_sem_69)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port);
	struct sockaddr_in to = lo_addr(port), ep = lo_addr(ep_port(t));
	char buf[64];
	struct count_cond cc = {r, 5};

	CHECK_EQ(xp_transport_sendto(t, "hello", 5, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 5);
	CHECK_MEM(buf, "hello", 5);
	/* Exactly one datagram. */
	CHECK_EQ(recv(peer, buf, sizeof(buf), MSG_DONTWAIT), -1);
	CHECK_EQ(xp_transport_sendto(t, "", 0, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 0);

	/* The receiving side sees an empty datagram too. */
	/* (Not first: recorder.h's rec_keep memcpy()s into a NULL buffer on an
	 * empty first datagram, which UBSan reports.) */
	CHECK_EQ(sendto(peer, "abcde", 5, 0, (struct sockaddr *)&ep, sizeof(ep)), 5);
	CHECK_EQ(sendto(peer, "", 0, 0, (struct sockaddr *)&ep, sizeof(ep)), 0);
	CHECK_EQ(sendto(peer, "f", 1, 0, (struct sockaddr *)&ep, sizeof(ep)), 1);
	cc.n = 6;
	CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
	CHECK_STR(r->log, "made dgram:5 dgram:0 dgram:1");
	close_wait(loop, r);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_connected_sendto_addr_sem_70)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int port, peer = udp_sock(&port);
	xp_transport *t = open_remote(loop, r, port);
	struct sockaddr_in same = lo_addr(port), other = lo_addr(port == 9 ? 10 : 9);
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	char buf[64];

	CHECK_EQ(xp_transport_sendto(t, "one", 3, NULL, 0), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 3);
	CHECK_MEM(buf, "one", 3);
	CHECK_EQ(xp_transport_sendto(t, "two", 3, (struct sockaddr *)&same, sizeof(same)), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 3);
	CHECK_MEM(buf, "two", 3);
	CHECK_EQ(xp_transport_sendto(t, "bad", 3, (struct sockaddr *)&other, sizeof(other)),
		 -EINVAL);
	CHECK_EQ(xp_transport_sendto(t, "bad", 3, (struct sockaddr *)&v6, sizeof(v6)), -EINVAL);
	CHECK_EQ(recv(peer, buf, sizeof(buf), MSG_DONTWAIT), -1);
	CHECK(!xp_transport_is_closing(t));

	/* Replies from the remote arrive with its address. */
	const xp_sockaddr *sn = xp_transport_get_extra_info(t, "sockname", NULL);
	REQUIRE(sn);
	CHECK_EQ(sendto(peer, "back", 4, 0, &sn->u.sa, sn->len), 4);
	struct count_cond cc = {r, 4};
	CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
	CHECK_STR(r->log, "made dgram:4");
	close_wait(loop, r);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_sendto_without_addr_unconnected_sem_71)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port);
	struct sockaddr_in to = lo_addr(port);
	char buf[8];

	CHECK_EQ(xp_transport_sendto(t, "x", 1, NULL, 0), -EDESTADDRREQ);
	CHECK(!xp_transport_is_closing(t));
	run_for(loop, 0.02);
	CHECK_STR(r->log, "made");
	/* Still usable. */
	CHECK_EQ(xp_transport_sendto(t, "y", 1, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 1);
	close_wait(loop, r);
	CHECK_STR(r->log, "made lost:0");
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- 72, 73: errors ---------------------------------------------------- */

TEST(dgram_connection_refused_error_received_sem_72)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_remote(loop, r, dead_port());

	for (int i = 0; i < 5 && !strstr(r->log, "error:"); i++) {
		CHECK_EQ(xp_transport_sendto(t, "ping", 4, NULL, 0), 0);
		rec_run_until(loop, cond_log, r, 1);
	}
	CHECK(strstr(r->log, "error:-111") != NULL); /* ECONNREFUSED */
	CHECK(!xp_transport_is_closing(t));
	CHECK_EQ(r->nlost, 0);
	close_wait(loop, r);
	CHECK_EQ(r->lost_err, 0);
	xp_loop_free(loop);
	rec_free(r);
}

/* Paused is not deaf: the refusal still reaches error_received, and
 * nothing spins on the error while no one reads. */
TEST(dgram_paused_connection_refused_still_reported)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_remote(loop, r, dead_port());

	xp_transport_pause_reading(t);
	/* One datagram: the refusal comes back as ICMP, later, and only the
	 * watch on the paused socket can bring it in. */
	CHECK_EQ(xp_transport_sendto(t, "ping", 4, NULL, 0), 0);
	rec_run_until(loop, cond_log, r, 5);
	CHECK(strstr(r->log, "error:-111") != NULL); /* ECONNREFUSED */
	CHECK_EQ(r->nlost, 0);
	close_wait(loop, r);
	CHECK_EQ(r->lost_err, 0);
	xp_loop_free(loop);
	rec_free(r);
}

static int nexc;
static char exc_msg[256];
static int exc_err;
static int count_exc(xp_loop *loop, const xp_context *ctx, void *arg)
{
	nexc++;
	snprintf(exc_msg, sizeof(exc_msg), "%s", ctx->message ? ctx->message : "");
	exc_err = ctx->error;
	return 0;
}

TEST(dgram_oserror_reported_not_fatal_sem_73)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port);
	struct sockaddr_in to = lo_addr(port);
	static char big[70000];
	char buf[8];

	/* Too big for UDP: EMSGSIZE goes to error_received, nothing closes. */
	CHECK_EQ(xp_transport_sendto(t, big, sizeof(big), (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_STR(r->log, "made error:-90");
	CHECK(!xp_transport_is_closing(t));
	CHECK_EQ(xp_transport_sendto(t, "ok", 2, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 2);
	close_wait(loop, r);
	CHECK_STR(r->log, "made error:-90 lost:0");
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_protocol_failure_is_fatal_sem_73)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port);
	struct sockaddr_in ep = lo_addr(ep_port(t));

	xp_loop_set_exception_handler(loop, count_exc, NULL);
	r->data_ret = -EPROTO;
	CHECK_EQ(sendto(peer, "a", 1, 0, (struct sockaddr *)&ep, sizeof(ep)), 1);
	CHECK_EQ(sendto(peer, "b", 1, 0, (struct sockaddr *)&ep, sizeof(ep)), 1);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
	/* Delivery stops at the failure. */
	CHECK_STR(r->log, "made dgram:1 lost:-71");
	CHECK_EQ(nexc, 1);
	CHECK_STR(exc_msg, "Fatal error: protocol.datagram_received() call failed.");
	CHECK_EQ(exc_err, -EPROTO);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- queueing under EAGAIN (Unix datagram socketpair) ------------------- */

struct drain {
	int fd;
	size_t n, bytes;
	bool on;
};
static int drain_cb(void *arg)
{
	struct drain *d = arg;
	char buf[70000];
	ssize_t k;

	while ((k = recv(d->fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		d->n++;
		d->bytes += (size_t)k;
	}
	return 0;
}

static xp_transport *open_pair(xp_loop *loop, struct rec *r, int sv[2])
{
	int err;
	REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	xp_datagram_opts o = {.use_sock = 1, .sock = sv[0]};
	xp_transport *t = open_ep(loop, r, &o, &err);
	REQUIRE(t);
	return t;
}

/* Send dgrams of len until n of them were queued; returns sent at once. */
static size_t fill(xp_transport *t, size_t len, size_t queued_want)
{
	static char data[4096];
	size_t immediate = 0, queued = 0;

	while (queued < queued_want) {
		size_t before = xp_transport_get_write_buffer_size(t);
		CHECK_EQ(xp_transport_sendto(t, data, len, NULL, 0), 0);
		size_t after = xp_transport_get_write_buffer_size(t);
		if (after == before)
			immediate++;
		else {
			CHECK_EQ(after, before + len); /* symmetric accounting */
			queued++;
		}
		REQUIRE(immediate < 100000);
	}
	return immediate;
}

struct size_cond {
	xp_transport *t;
	struct rec *r;
};
static int cond_empty_or_lost(void *arg)
{
	struct size_cond *c = arg;
	return c->r->nlost || xp_transport_get_write_buffer_size(c->t) == 0;
}
static int cond_resumed(void *arg)
{
	return ((struct rec *)arg)->nresume > 0;
}

TEST(dgram_queue_flow_control_symmetric_sem_55)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int sv[2];
	xp_transport *t = open_pair(loop, r, sv);
	struct drain d = {.fd = sv[1]};

	CHECK_EQ(xp_transport_set_write_buffer_limits(t, 1000, 300), 0);
	size_t immediate = fill(t, 100, 10);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 1000);
	CHECK_EQ(r->npause, 0); /* exactly high: not over it */
	/* Empty datagrams queue behind the others and count nothing. */
	CHECK_EQ(xp_transport_sendto(t, "", 0, NULL, 0), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 1000);
	CHECK_EQ(xp_transport_sendto(t, "z", 1, NULL, 0), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 1001);
	CHECK_EQ(r->npause, 1);
	CHECK_EQ(xp_transport_sendto(t, "z", 1, NULL, 0), 0);
	CHECK_EQ(r->npause, 1);

	REQUIRE(xp_add_reader(loop, sv[1], drain_cb, &d) == 0);
	CHECK(rec_run_until(loop, cond_resumed, r, 3));
	struct size_cond sc = {t, r};
	CHECK(rec_run_until(loop, cond_empty_or_lost, &sc, 3));
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	CHECK_STR(r->log, "made pause resume");
	/* Let the drainer catch the last ones. */
	for (int i = 0; i < 100 && d.n < immediate + 13; i++)
		run_for(loop, 0.01);
	CHECK_EQ(d.n, immediate + 13);
	CHECK_EQ(d.bytes, (immediate + 10) * 100 + 2);
	xp_remove_reader(loop, sv[1]);
	close_wait(loop, r);
	CHECK_STR(r->log, "made pause resume lost:0");
	close(sv[1]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_close_flushes_queue_sem_75)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int sv[2];
	xp_transport *t = open_pair(loop, r, sv);
	struct drain d = {.fd = sv[1]};

	size_t immediate = fill(t, 200, 5);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 1000);
	xp_transport_close(t);
	CHECK(xp_transport_is_closing(t));
	run_for(loop, 0.02);
	CHECK_EQ(r->nlost, 0); /* waits for the queue */
	REQUIRE(xp_add_reader(loop, sv[1], drain_cb, &d) == 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
	CHECK_STR(r->log, "made lost:0");
	drain_cb(&d);
	CHECK_EQ(d.n, immediate + 5);
	xp_remove_reader(loop, sv[1]);
	close(sv[1]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_abort_drops_queue_sem_75)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int sv[2];
	xp_transport *t = open_pair(loop, r, sv);
	struct drain d = {.fd = sv[1]};

	size_t immediate = fill(t, 200, 5);
	xp_transport_abort(t);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	xp_transport_abort(t);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
	CHECK_STR(r->log, "made lost:0");
	drain_cb(&d);
	CHECK_EQ(d.n, immediate);
	close(sv[1]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_sendto_after_close_dropped_sem_76)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int port, peer = udp_sock(&port);
	xp_transport *t = open_remote(loop, r, port);
	char buf[8];

	xp_transport_close(t);
	CHECK_EQ(xp_transport_sendto(t, "late", 4, NULL, 0), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 3));
	CHECK_STR(r->log, "made lost:0");
	CHECK_EQ(recv(peer, buf, sizeof(buf), MSG_DONTWAIT), -1);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- reading ------------------------------------------------------------- */

/* Remembers each datagram's sender port next to its text. */
static int from_ok, from_bad;
static int addr_datagram(xp_protocol *p, const void *data, size_t len, const struct sockaddr *sa,
			 socklen_t salen)
{
	char want[16];
	int port =
	    sa && sa->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port) : -1;

	/* The payload is "<sender port>:<seq>". */
	snprintf(want, sizeof(want), "%d:", port);
	if (len > strlen(want) && !memcmp(data, want, strlen(want)))
		from_ok++;
	else
		from_bad++;
	return rec_datagram(p, data, len, sa, salen);
}

static const xp_protocol_ops addr_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .datagram_received = addr_datagram,
    .error_received = rec_error,
};

static int cond_from(void *arg)
{
	return from_ok + from_bad >= *(int *)arg;
}

TEST(dgram_two_peers_100_each_right_sender)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&addr_ops, loop);
	xp_transport *t = open_local(loop, r);
	int pa, pb, a = udp_sock(&pa), b = udp_sock(&pb);
	struct sockaddr_in ep = lo_addr(ep_port(t));
	char msg[32];

	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 10; i++) {
			int len = snprintf(msg, sizeof(msg), "%d:%d", pa, round * 10 + i);
			CHECK_EQ(sendto(a, msg, (size_t)len, 0, (struct sockaddr *)&ep, sizeof(ep)),
				 len);
			len = snprintf(msg, sizeof(msg), "%d:%d", pb, round * 10 + i);
			CHECK_EQ(sendto(b, msg, (size_t)len, 0, (struct sockaddr *)&ep, sizeof(ep)),
				 len);
		}
		int want = (round + 1) * 20;
		CHECK(rec_run_until(loop, cond_from, &want, 3));
	}
	CHECK_EQ(from_ok, 200);
	CHECK_EQ(from_bad, 0);
	CHECK_EQ(count_word(r->log, "dgram:"), 200);
	close_wait(loop, r);
	close(a);
	close(b);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_65507_byte_datagram_whole)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port), sz = 1 << 20;
	struct sockaddr_in ep = lo_addr(ep_port(t)), to = lo_addr(port);
	size_t n = 65507;
	unsigned char *big = malloc(n), *back = malloc(n + 1);

	setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	for (size_t i = 0; i < n; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	CHECK_EQ(sendto(peer, big, n, 0, (struct sockaddr *)&ep, sizeof(ep)), (ssize_t)n);
	struct count_cond cc = {r, n};
	CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
	CHECK_STR(r->log, "made dgram:65507");
	CHECK_EQ(r->inlen, n);
	CHECK_MEM(r->in, big, n);

	CHECK_EQ(xp_transport_sendto(t, big, n, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(recv_wait(peer, back, n + 1, 2000), (ssize_t)n);
	CHECK_MEM(back, big, n);
	close_wait(loop, r);
	close(peer);
	free(big);
	free(back);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_pause_resume_reading)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	r->pause_in_made = 1;
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port);
	struct sockaddr_in ep = lo_addr(ep_port(t));

	CHECK(!xp_transport_is_reading(t));
	for (int i = 0; i < 3; i++)
		CHECK_EQ(sendto(peer, "abc", 3, 0, (struct sockaddr *)&ep, sizeof(ep)), 3);
	run_for(loop, 0.05);
	CHECK_STR(r->log, "made");
	xp_transport_resume_reading(t);
	xp_transport_resume_reading(t);
	CHECK(xp_transport_is_reading(t));
	struct count_cond cc = {r, 9};
	CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
	CHECK_STR(r->log, "made dgram:3 dgram:3 dgram:3");
	xp_transport_pause_reading(t);
	xp_transport_pause_reading(t);
	CHECK(!xp_transport_is_reading(t));
	xp_transport_resume_reading(t);
	xp_transport_close(t);
	CHECK(!xp_transport_is_reading(t)); /* sem 57 */
	xp_transport_resume_reading(t);
	CHECK(!xp_transport_is_reading(t));
	close_wait(loop, r);
	CHECK_STR(r->log, "made dgram:3 dgram:3 dgram:3 lost:0");
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

/* Pausing inside datagram_received holds the rest of a received batch. */
static int pause_datagram(xp_protocol *p, const void *data, size_t len, const struct sockaddr *sa,
			  socklen_t salen)
{
	struct rec *r = XP_CONTAINER_OF(p, struct rec, base);
	xp_transport_pause_reading(r->t);
	return rec_datagram(p, data, len, sa, salen);
}

static const xp_protocol_ops pause_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .datagram_received = pause_datagram,
};

TEST(dgram_pause_inside_batch_keeps_order)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&pause_ops, loop);
	xp_transport *t = open_local(loop, r);
	int port, peer = udp_sock(&port);
	struct sockaddr_in ep = lo_addr(ep_port(t));
	char msg[4];

	for (int i = 0; i < 5; i++) {
		msg[0] = (char)('0' + i);
		CHECK_EQ(sendto(peer, msg, 1, 0, (struct sockaddr *)&ep, sizeof(ep)), 1);
	}
	for (int i = 1; i <= 5; i++) {
		struct count_cond cc = {r, (size_t)i};
		CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
		run_for(loop, 0.01);
		CHECK_EQ(r->inlen, i); /* one per resume */
		CHECK(!xp_transport_is_reading(t));
		xp_transport_resume_reading(t);
	}
	CHECK_MEM(r->in, "01234", 5);
	/* Closing drops whatever was held, without delivering it. */
	CHECK_EQ(sendto(peer, "5", 1, 0, (struct sockaddr *)&ep, sizeof(ep)), 1);
	CHECK_EQ(sendto(peer, "6", 1, 0, (struct sockaddr *)&ep, sizeof(ep)), 1);
	struct count_cond cc = {r, 6};
	CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
	xp_transport_resume_reading(t);
	close_wait(loop, r);
	CHECK_EQ(r->inlen, 6);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- creation variants ------------------------------------------------------ */

TEST(dgram_resolve_name_through_executor)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int port, peer = udp_sock(&port), err;
	xp_datagram_opts o = {.local_host = "localhost",
			      .local_port = "0",
			      .remote_host = "localhost",
			      .remote_port = pstr(1, port),
			      .family = AF_INET};
	xp_transport *t = open_ep(loop, r, &o, &err);
	char buf[8];

	REQUIRE(t);
	CHECK_EQ(xp_transport_sendto(t, "hi", 2, NULL, 0), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 2);
	close_wait(loop, r);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

/* No loop to report through, or no factory: NULL with EINVAL at once. */
TEST(dgram_create_without_loop_or_factory_einval)
{
	xp_loop *loop = xp_loop_new();

	errno = 0;
	CHECK(xp_create_datagram_endpoint(NULL, rec_factory_one, NULL, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_create_datagram_endpoint(loop, NULL, NULL, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	xp_loop_free(loop);
}

TEST(dgram_create_errors)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int err, tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	xp_datagram_opts none = {0};
	xp_datagram_opts stream = {.use_sock = 1, .sock = tcp};
	xp_datagram_opts mixed = {.use_sock = 1, .sock = tcp, .local_port = "0"};
	xp_datagram_opts badname = {.remote_host = "no-such-host.invalid", .remote_port = "9"};
	xp_datagram_opts inuse = {.local_host = "127.0.0.1"};
	int port, peer = udp_sock(&port);

	inuse.local_port = pstr(2, port);
	CHECK(open_ep(loop, r, &none, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(open_ep(loop, r, &stream, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(open_ep(loop, r, &mixed, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	CHECK(open_ep(loop, r, &inuse, &err) == NULL);
	CHECK_EQ(err, -EADDRINUSE);
	CHECK(open_ep(loop, r, &badname, &err) == NULL);
	CHECK(err != 0);
	CHECK_EQ(r->nmade, 0);
	close(tcp);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_unbound_family_only_and_write_unsupported)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int port, peer = udp_sock(&port), err;
	xp_datagram_opts o = {.family = AF_INET};
	xp_transport *t = open_ep(loop, r, &o, &err);
	struct sockaddr_in to = lo_addr(port);
	char buf[8];

	REQUIRE(t);
	CHECK_EQ(xp_transport_write(t, "x", 1), -ENOTSUP);
	CHECK_EQ(xp_transport_sendto(t, "x", 1, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(recv_wait(peer, buf, sizeof(buf), 2000), 1);
	close_wait(loop, r);
	close(peer);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_reuse_port_and_broadcast_options)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop), *r2 = rec_new(&rec_dgram_ops, loop);
	int err, on = 0;
	socklen_t len = sizeof(on);
	xp_datagram_opts o = {
	    .local_host = "127.0.0.1", .local_port = "0", .reuse_port = 1, .allow_broadcast = 1};
	xp_transport *t = open_ep(loop, r, &o, &err);

	REQUIRE(t);
	const int *fd = xp_transport_get_extra_info(t, "socket", NULL);
	REQUIRE(fd);
	CHECK_EQ(getsockopt(*fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
	CHECK(on);
	/* A second endpoint shares the port. */
	o.local_port = pstr(3, ep_port(t));
	xp_transport *t2 = open_ep(loop, r2, &o, &err);
	CHECK(t2 != NULL);
	close_wait(loop, r);
	if (t2)
		close_wait(loop, r2);
	xp_loop_free(loop);
	rec_free(r);
	rec_free(r2);
}

TEST(dgram_unix_path_endpoints)
{
	xp_loop *loop = xp_loop_new();
	struct rec *a = rec_new(&rec_dgram_ops, loop), *b = rec_new(&rec_dgram_ops, loop);
	char pa[64], pb[64];
	int err;

	snprintf(pa, sizeof(pa), "/tmp/xp-dg-a-%d", (int)getpid());
	snprintf(pb, sizeof(pb), "@xp-dg-b-%d", (int)getpid());
	xp_datagram_opts oa = {.family = AF_UNIX, .local_host = pa};
	xp_transport *ta = open_ep(loop, a, &oa, &err);
	REQUIRE(ta);
	xp_datagram_opts ob = {.family = AF_UNIX, .local_host = pb, .remote_host = pa};
	xp_transport *tb = open_ep(loop, b, &ob, &err);
	REQUIRE(tb);

	CHECK_EQ(xp_transport_sendto(tb, "unix!", 5, NULL, 0), 0);
	struct count_cond cc = {a, 5};
	CHECK(rec_run_until(loop, cond_inlen, &cc, 3));
	CHECK_STR(a->log, "made dgram:5");
	CHECK_MEM(a->in, "unix!", 5);
	close_wait(loop, a);
	close_wait(loop, b);
	/* A stale socket file from an earlier run is replaced. */
	xp_transport *again = open_ep(loop, a, &oa, &err);
	CHECK(again != NULL);
	if (again) {
		a->nlost = 0;
		close_wait(loop, a);
	}
	unlink(pa);
	xp_loop_free(loop);
	rec_free(a);
	rec_free(b);
}

/* A flush that fails (the peer went away) drops the datagram, tells the
 * protocol and keeps the endpoint open; the accounting returns to 0. */
static int cond_size0(void *arg)
{
	return xp_transport_get_write_buffer_size(arg) == 0;
}

TEST(dgram_flush_error_drops_and_reports_sem_73)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	int sv[2];
	xp_transport *t = open_pair(loop, r, sv);

	CHECK_EQ(xp_transport_set_write_buffer_limits(t, 250, 0), 0);
	fill(t, 100, 3);
	CHECK_EQ(r->npause, 1);
	close(sv[1]);
	CHECK(rec_run_until(loop, cond_size0, t, 3));
	CHECK_EQ(count_word(r->log, "error:"), 3);
	CHECK(strstr(r->log, "pause error:-111") != NULL);
	CHECK_EQ(r->nresume, 1);
	CHECK(!xp_transport_is_closing(t));
	close_wait(loop, r);
	CHECK_EQ(r->lost_err, 0);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(dgram_ipv6_connected_same_addr)
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t len = sizeof(sa);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "no IPv6 loopback: skipped\n");
		if (fd >= 0)
			close(fd);
		return;
	}
	REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	xp_datagram_opts o = {.remote_host = "::1", .remote_port = pstr(4, ntohs(sa.sin6_port))};
	int err;
	xp_transport *t = open_ep(loop, r, &o, &err);
	struct sockaddr_in6 other = sa;
	char buf[8];

	REQUIRE(t);
	CHECK_EQ(xp_transport_sendto(t, "v6", 2, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(recv_wait(fd, buf, sizeof(buf), 2000), 2);
	other.sin6_port = htons((uint16_t)(ntohs(sa.sin6_port) ^ 1));
	CHECK_EQ(xp_transport_sendto(t, "no", 2, (struct sockaddr *)&other, sizeof(other)),
		 -EINVAL);
	CHECK_EQ(xp_transport_sendto(t, "no", 2, (struct sockaddr *)&sa, 3), -EINVAL);
	close_wait(loop, r);
	close(fd);
	xp_loop_free(loop);
	rec_free(r);
}

/* An unconnected Unix sender facing a full receiver queue: poll() calls
 * the socket writable all along, so the queue is retried on a timer
 * instead of spinning, and every datagram still arrives, in order, once
 * the receiver reads. */
static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

struct qdrain {
	int fd;
	int next; /* the number the next datagram must carry */
	int bad;
};

static int qdrain_cb(void *arg)
{
	struct qdrain *dr = arg;
	char buf[64];
	ssize_t n;

	while ((n = recv(dr->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		if (atoi(buf) != dr->next)
			dr->bad++;
		dr->next++;
	}
	return 0;
}

static int cond_qdrained(void *arg)
{
	struct qdrain *dr = arg;

	qdrain_cb(dr);
	return dr->next >= 200;
}

TEST(dgram_unix_unconnected_full_receiver_retries_without_spinning)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_dgram_ops, loop);
	struct sockaddr_un ra = {.sun_family = AF_UNIX};
	struct qdrain dr = {0};
	double cpu0, t0, cpu, wall;
	int fd, err;

	snprintf(ra.sun_path, sizeof(ra.sun_path), "/tmp/xp-dg-full-%d", (int)getpid());
	unlink(ra.sun_path);
	dr.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(dr.fd >= 0);
	REQUIRE(bind(dr.fd, (struct sockaddr *)&ra, sizeof(ra)) == 0);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	REQUIRE(fd >= 0);
	xp_datagram_opts o = {.use_sock = 1, .sock = fd};
	xp_transport *t = open_ep(loop, r, &o, &err);
	REQUIRE(t);
	/* Small datagrams: the receiver's queue (max_dgram_qlen, 10 by
	 * default) fills long before our send buffer does. */
	for (int i = 0; i < 200; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "%d", i);

		CHECK_EQ(xp_transport_sendto(t, msg, (size_t)n, (struct sockaddr *)&ra, sizeof(ra)),
			 0);
	}
	CHECK(xp_transport_get_write_buffer_size(t) > 0);
	cpu0 = cpu_seconds();
	t0 = xp_loop_time(loop);
	run_for(loop, 0.5);
	cpu = cpu_seconds() - cpu0;
	wall = xp_loop_time(loop) - t0;
	/* Spinning would burn the whole half second; retrying, next to none. */
	CHECK(cpu < wall / 2);
	CHECK(xp_transport_get_write_buffer_size(t) > 0);
	CHECK(!strstr(r->log, "error:"));
	CHECK(rec_run_until(loop, cond_qdrained, &dr, 10));
	CHECK_EQ(dr.bad, 0);
	CHECK(rec_run_until(loop, cond_size0, t, 3));
	close_wait(loop, r);
	close(dr.fd);
	unlink(ra.sun_path);
	xp_loop_free(loop);
	rec_free(r);
}
