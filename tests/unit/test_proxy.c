// SPDX-License-Identifier: MIT
/*
 * test_proxy.c - proxies: the client side (xp_connect_opts.proxy: HTTP
 * CONNECT, SOCKS5, SOCKS4a) and the servers (xp_socks5_new,
 * xp_http_proxy_new), against each other over real sockets and against
 * scripted python3 peers that check every byte of the handshake.
 */
#include "test.h"
#include "recorder.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

#define PY "/usr/bin/python3"

struct fx {
	xp_loop *loop;
	xp_server *proxy, *target;
	int proxy_port, target_port;
	char pport[8], tport[8];
	xp_proxy_server_opts so;
	int kind; /* XP_PROXY_SOCKS5 or XP_PROXY_HTTP: which server */
	/* on_done reports from the server side */
	int ndone, ndone_null;
	char done_end[16];
	int done_err;
	xp_tls_ctx *target_tls;
};

static void on_done(xp_relay *r, const xp_conn_stats *st, void *arg)
{
	struct fx *f = arg;

	f->ndone++;
	if (!r)
		f->ndone_null++;
	snprintf(f->done_end, sizeof(f->done_end), "%s", st->end);
	f->done_err = st->error;
}

static xp_protocol *proxy_factory(void *arg)
{
	struct fx *f = arg;

	return f->kind == XP_PROXY_HTTP ? xp_http_proxy_new(f->loop, &f->so)
					: xp_socks5_new(f->loop, &f->so);
}

static xp_protocol *echo_factory(void *arg)
{
	return xp_echo_new(NULL);
}

static int port_of(xp_server *s)
{
	xp_sockaddr sa;

	if (xp_server_sockname(s, 0, &sa) < 0)
		return -1;
	if (sa.u.sa.sa_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&sa.u.ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&sa.u.ss)->sin_port);
}

static xp_server *serve(xp_loop *loop, xp_protocol_factory fac, void *arg, const char *host,
			xp_tls_ctx *tls)
{
	xp_server_opts o = {.tls = tls};
	xp_future *fut = xp_create_server(loop, fac, arg, host, "0", &o);
	xp_server *s = NULL;

	if (fut && xp_loop_run_until_complete(loop, fut) == 0)
		s = xp_future_result(fut);
	if (fut)
		xp_future_release(fut);
	return s;
}

static void fx_init(struct fx *f, int kind)
{
	memset(f, 0, sizeof(*f));
	f->loop = xp_loop_new();
	f->kind = kind;
	f->so.relay.on_done = on_done;
	f->so.relay.arg = f;
	f->so.connect.timeout = 5;
}

static void fx_start(struct fx *f)
{
	f->proxy = serve(f->loop, proxy_factory, f, "127.0.0.1", NULL);
	REQUIRE(f->proxy);
	f->proxy_port = port_of(f->proxy);
	snprintf(f->pport, sizeof(f->pport), "%d", f->proxy_port);
	/* The target listens on both families (for ::1 and localhost). */
	f->target = serve(f->loop, echo_factory, NULL, NULL, f->target_tls);
	REQUIRE(f->target);
	f->target_port = port_of(f->target);
	snprintf(f->tport, sizeof(f->tport), "%d", f->target_port);
}

static int stop_cb(void *loop)
{
	xp_loop_stop(loop);
	return 0;
}

static void fx_done(struct fx *f)
{
	for (int i = 0; i < 2; i++) {
		xp_server *s = i ? f->target : f->proxy;

		if (!s)
			continue;
		xp_server_close(s);
		xp_server_abort_clients(s);
		xp_server_free(s);
	}
	/* Let the aborted connections deliver connection_lost. */
	for (int i = 0; i < 20; i++) {
		xp_call_soon(f->loop, stop_cb, f->loop);
		xp_loop_run_forever(f->loop);
	}
	xp_loop_free(f->loop);
}

/* Connect through the proxy; returns the error, the transport in *t. */
static int via(struct fx *f, struct rec *r, const xp_proxy *px, const char *host, const char *port,
	       xp_connect_opts *o, xp_transport **t)
{
	xp_connect_opts dflt = {.timeout = 5};
	xp_future *fut;
	int err;

	if (!o)
		o = &dflt;
	o->proxy = px;
	fut = xp_create_connection(f->loop, rec_factory_one, r, host, port, o);
	REQUIRE(fut);
	err = xp_loop_run_until_complete(f->loop, fut);
	if (t)
		*t = err ? NULL : xp_future_take_result(fut);
	xp_future_release(fut);
	return err;
}

struct want {
	struct rec *r;
	size_t n;
};

static int cond_bytes(void *arg)
{
	struct want *w = arg;

	return w->r->inlen >= w->n;
}

static int cond_eof(void *arg)
{
	return ((struct rec *)arg)->neof > 0 || ((struct rec *)arg)->nlost > 0;
}

static int cond_done(void *arg)
{
	return ((struct fx *)arg)->ndone > 0;
}

/* Write msg, expect it echoed, then half-close and expect the EOF. */
static void echo_round2(struct fx *f, struct rec *r, xp_transport *t, const char *msg,
			const char *back)
{
	struct want w = {r, strlen(msg)};

	r->eof_ret = 1;
	CHECK_EQ(xp_transport_write(t, msg, strlen(msg)), 0);
	CHECK(rec_run_until(f->loop, cond_bytes, &w, 5));
	CHECK_EQ(r->inlen, strlen(msg));
	CHECK_MEM(r->in, back, strlen(msg));
	CHECK_EQ(xp_transport_write_eof(t), 0);
	CHECK(rec_run_until(f->loop, cond_eof, r, 5));
	CHECK_EQ(r->neof, 1);
	xp_transport_close(t);
	xp_transport_release(t);
	CHECK(rec_run_until(f->loop, rec_cond_lost, r, 5));
}

static void echo_round(struct fx *f, struct rec *r, xp_transport *t, const char *msg)
{
	echo_round2(f, r, t, msg, msg);
}

/* ---- both ends ours ------------------------------------------------- */

static void both_ends(int kind, const char *host)
{
	struct fx f;
	struct rec *r;
	xp_transport *t;
	xp_proxy px = {.kind = kind, .host = "127.0.0.1"};

	fx_init(&f, kind);
	fx_start(&f);
	px.port = f.pport;
	r = rec_new(&rec_stream_ops, f.loop);
	REQUIRE(via(&f, r, &px, host, f.tport, NULL, &t) == 0);
	CHECK_STR(r->log, "made");
	echo_round(&f, r, t, "through the tunnel\n");
	CHECK(rec_run_until(f.loop, cond_done, &f, 5));
	CHECK_EQ(f.ndone, 1);
	CHECK_EQ(f.ndone_null, 0); /* the relay reported it */
	CHECK_STR(f.done_end, "eof");
	rec_free(r);
	fx_done(&f);
}

TEST(proxy_socks5_ours_ipv4_target)
{
	both_ends(XP_PROXY_SOCKS5, "127.0.0.1");
}

TEST(proxy_socks5_ours_name_resolved_by_proxy)
{
	both_ends(XP_PROXY_SOCKS5, "localhost");
}

TEST(proxy_socks5_ours_ipv6_target)
{
	both_ends(XP_PROXY_SOCKS5, "::1");
}

TEST(proxy_http_ours_name_target)
{
	both_ends(XP_PROXY_HTTP, "localhost");
}

TEST(proxy_http_ours_ipv6_target)
{
	both_ends(XP_PROXY_HTTP, "::1");
}

static void auth_case(int kind)
{
	struct fx f;
	struct rec *r;
	xp_transport *t;
	xp_proxy px = {.kind = kind, .host = "127.0.0.1", .user = "alice", .password = "s3cret"};

	fx_init(&f, kind);
	f.so.user = "alice";
	f.so.password = "s3cret";
	fx_start(&f);
	px.port = f.pport;

	r = rec_new(&rec_stream_ops, f.loop);
	REQUIRE(via(&f, r, &px, "127.0.0.1", f.tport, NULL, &t) == 0);
	echo_round(&f, r, t, "authenticated");
	rec_free(r);

	px.password = "wrong";
	r = rec_new(&rec_stream_ops, f.loop);
	f.ndone = 0;
	CHECK_EQ(via(&f, r, &px, "127.0.0.1", f.tport, NULL, NULL),
		 kind == XP_PROXY_HTTP ? XP_EPROXY_HTTP(407) : XP_EPROXYAUTH);
	CHECK_EQ(r->nmade, 0); /* no protocol for a refused tunnel */
	CHECK(rec_run_until(f.loop, cond_done, &f, 5));
	CHECK_EQ(f.ndone_null, 1);
	CHECK_STR(f.done_end, "error");
	CHECK_EQ(f.done_err, kind == XP_PROXY_HTTP ? XP_EPROXY_HTTP(407) : XP_EPROXYAUTH);

	px.user = px.password = NULL;
	CHECK_EQ(via(&f, r, &px, "127.0.0.1", f.tport, NULL, NULL),
		 kind == XP_PROXY_HTTP ? XP_EPROXY_HTTP(407) : XP_EPROXYMETHOD);
	CHECK_EQ(r->nmade, 0);
	rec_free(r);
	fx_done(&f);
}

TEST(proxy_socks5_ours_user_password)
{
	auth_case(XP_PROXY_SOCKS5);
}

TEST(proxy_http_ours_basic_auth)
{
	auth_case(XP_PROXY_HTTP);
}

/* Allows IPv6 only: 127.0.0.1 is refused, ::1 allowed. */
static int only_v6(void *arg, const struct sockaddr *sa, socklen_t len)
{
	(*(int *)arg)++;
	return sa->sa_family == AF_INET6;
}

static void refusals(int kind)
{
	struct fx f;
	struct rec *r;
	xp_transport *t;
	xp_proxy px = {.kind = kind, .host = "127.0.0.1"};
	int asked = 0;
	char dport[8];

	fx_init(&f, kind);
	f.so.allow_target = only_v6;
	f.so.allow_arg = &asked;
	fx_start(&f);
	px.port = f.pport;
	r = rec_new(&rec_stream_ops, f.loop);
	CHECK_EQ(via(&f, r, &px, "127.0.0.1", f.tport, NULL, NULL),
		 kind == XP_PROXY_HTTP ? XP_EPROXY_HTTP(403) : XP_EPROXY_SOCKS5(2));
	CHECK_EQ(asked, 1);
	CHECK(rec_run_until(f.loop, cond_done, &f, 5));
	CHECK_STR(f.done_end, "error");
	REQUIRE(via(&f, r, &px, "::1", f.tport, NULL, &t) == 0);
	echo_round(&f, r, t, "v6 allowed");

	/* A target that refuses: the proxy's answer says so. */
	{
		int port = 9, fd = xpt_tcp_listener(&port);

		close(fd);
		snprintf(dport, sizeof(dport), "%d", port);
	}
	f.so.allow_target = NULL;
	CHECK_EQ(via(&f, r, &px, "127.0.0.1", dport, NULL, NULL),
		 kind == XP_PROXY_HTTP ? XP_EPROXY_HTTP(502) : XP_EPROXY_SOCKS5(5));
	CHECK_EQ(r->nmade, 1);
	/* A name that does not resolve: host unreachable / bad gateway. */
	CHECK_EQ(via(&f, r, &px, "no-such-host.invalid", f.tport, NULL, NULL),
		 kind == XP_PROXY_HTTP ? XP_EPROXY_HTTP(502) : XP_EPROXY_SOCKS5(4));
	rec_free(r);
	fx_done(&f);
}

static xp_protocol *srv_new(int kind, xp_loop *loop, const xp_proxy_server_opts *o)
{
	return kind == XP_PROXY_HTTP ? xp_http_proxy_new(loop, o) : xp_socks5_new(loop, o);
}

/* RFC 1929 carries each credential behind a length byte: 255 characters
 * work end to end, 256 are refused when the server is made (both kinds). */
static void long_credentials_case(int kind)
{
	char c255[256], c256[257];
	struct fx f;
	struct rec *r;
	xp_transport *t;
	xp_proxy px = {.kind = kind, .host = "127.0.0.1", .user = c255, .password = c255};
	xp_proxy_server_opts bad = {.user = c256, .password = "x"};

	memset(c255, 'u', 255);
	c255[255] = '\0';
	memset(c256, 'u', 256);
	c256[256] = '\0';
	fx_init(&f, kind);
	errno = 0;
	CHECK(srv_new(kind, f.loop, &bad) == NULL);
	CHECK_EQ(errno, EINVAL);
	bad.user = "x";
	bad.password = c256;
	errno = 0;
	CHECK(srv_new(kind, f.loop, &bad) == NULL);
	CHECK_EQ(errno, EINVAL);
	f.so.user = f.so.password = c255;
	fx_start(&f);
	px.port = f.pport;
	r = rec_new(&rec_stream_ops, f.loop);
	REQUIRE(via(&f, r, &px, "127.0.0.1", f.tport, NULL, &t) == 0);
	echo_round(&f, r, t, "long credentials");
	rec_free(r);
	fx_done(&f);
}

TEST(proxy_socks5_ours_long_credentials)
{
	long_credentials_case(XP_PROXY_SOCKS5);
}

TEST(proxy_http_ours_long_credentials)
{
	long_credentials_case(XP_PROXY_HTTP);
}

TEST(proxy_socks5_ours_refusals)
{
	refusals(XP_PROXY_SOCKS5);
}

TEST(proxy_http_ours_refusals)
{
	refusals(XP_PROXY_HTTP);
}

/* ---- TLS end to end through the tunnel ------------------------------- */

static int write_cert(xp_tls_ctx *ctx, char *path)
{
	X509 *x = SSL_CTX_get0_certificate(xp_tls_ctx_ssl_ctx(ctx));
	int fd = mkstemp(path);
	FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!fp || !x || PEM_write_X509(fp, x) != 1)
		return -1;
	return fclose(fp);
}

static void tls_case(int kind)
{
	struct fx f;
	struct rec *r;
	xp_transport *t;
	xp_proxy px = {.kind = kind, .host = "127.0.0.1"};
	xp_tls_ctx *cli = xp_tls_ctx_new(0);
	unsigned char fp[32];
	char ca[] = "/tmp/xport-proxy-ca-XXXXXX";
	xp_connect_opts o = {.timeout = 5};

	fx_init(&f, kind);
	f.target_tls = xp_tls_ctx_new(1);
	REQUIRE(xp_tls_ctx_use_self_signed(f.target_tls, "example.test", fp) == 0);
	REQUIRE(write_cert(f.target_tls, ca) == 0);
	REQUIRE(xp_tls_ctx_load_verify_locations(cli, ca) == 0);
	unlink(ca);
	fx_start(&f);
	px.port = f.pport;

	/* The name verified (and sent as SNI) is the target's, never the
	 * proxy's 127.0.0.1. */
	r = rec_new(&rec_stream_ops, f.loop);
	o.tls = cli;
	REQUIRE(via(&f, r, &px, "localhost", f.tport, &o, &t) == 0);
	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_TLS);
	{
		SSL *ssl = (SSL *)xp_transport_get_extra_info(t, "ssl_object", NULL);

		REQUIRE(ssl);
		CHECK_STR(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "localhost");
		CHECK_EQ(SSL_get_verify_result(ssl), X509_V_OK);
	}
	echo_round(&f, r, t, "secret through the proxy");
	rec_free(r);

	/* A name the certificate does not cover fails verification. */
	r = rec_new(&rec_stream_ops, f.loop);
	o.server_hostname = "wrong.test";
	CHECK_EQ(via(&f, r, &px, "localhost", f.tport, &o, NULL), XP_ETLSVERIFY);
	CHECK_EQ(r->nmade, 0);
	rec_free(r);
	xp_tls_ctx_release(cli);
	xp_tls_ctx_release(f.target_tls);
	fx_done(&f);
}

TEST(proxy_socks5_tls_end_to_end)
{
	tls_case(XP_PROXY_SOCKS5);
}

TEST(proxy_http_tls_end_to_end)
{
	tls_case(XP_PROXY_HTTP);
}

/* ---- the client: timeouts, hang-ups, bad options --------------------- */

TEST(proxy_client_timeout_covers_handshake)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int port, lfd = xpt_tcp_listener(&port); /* accepts (backlog), never answers */
	char ps[8];
	xp_proxy px = {.kind = XP_PROXY_SOCKS5, .host = "127.0.0.1", .port = ps};
	xp_connect_opts o = {.timeout = 0.3, .proxy = &px};
	xp_future *fut;
	double t0;

	REQUIRE(lfd >= 0);
	snprintf(ps, sizeof(ps), "%d", port);
	t0 = xp_loop_time(loop);
	fut = xp_create_connection(loop, rec_factory_one, r, "example.com", "80", &o);
	CHECK_EQ(xp_loop_run_until_complete(loop, fut), -ETIMEDOUT);
	CHECK(xp_loop_time(loop) - t0 >= 0.29);
	CHECK(xp_loop_time(loop) - t0 < 10);
	CHECK_EQ(r->nmade, 0);
	xp_future_release(fut);
	close(lfd);
	rec_free(r);
	xp_loop_free(loop);
}

TEST(proxy_client_bad_options)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_proxy px = {.kind = XP_PROXY_SOCKS4A, .host = "127.0.0.1", .port = "9"};
	xp_connect_opts o = {.proxy = &px};
	xp_future *fut;

	fut = xp_create_connection(loop, rec_factory_one, r, "::1", "80", &o);
	CHECK_EQ(xp_loop_run_until_complete(loop, fut), -EAFNOSUPPORT);
	xp_future_release(fut);
	fut = xp_create_unix_connection(loop, rec_factory_one, r, "/tmp/x", &o);
	CHECK_EQ(xp_loop_run_until_complete(loop, fut), -EINVAL);
	xp_future_release(fut);
	px.kind = 99;
	fut = xp_create_connection(loop, rec_factory_one, r, "localhost", "80", &o);
	CHECK_EQ(xp_loop_run_until_complete(loop, fut), -EINVAL);
	xp_future_release(fut);
	/* The proxy itself unreachable: the plain connect error. */
	px.kind = XP_PROXY_HTTP;
	{
		int port = 9, fd = xpt_tcp_listener(&port);
		char ps[8];

		close(fd);
		snprintf(ps, sizeof(ps), "%d", port);
		px.port = ps;
		fut = xp_create_connection(loop, rec_factory_one, r, "localhost", "80", &o);
		CHECK_EQ(xp_loop_run_until_complete(loop, fut), -ECONNREFUSED);
		xp_future_release(fut);
	}
	CHECK_EQ(r->nmade, 0);
	rec_free(r);
	xp_loop_free(loop);
}

TEST(proxy_strerror_carries_the_answer)
{
	CHECK_STR(xp_strerror(XP_EPROXY_HTTP(403)), "403 Forbidden");
	CHECK_STR(xp_strerror(XP_EPROXY_HTTP(407)), "407 Proxy Authentication Required");
	CHECK_STR(xp_strerror(XP_EPROXY_HTTP(599)), "599");
	CHECK_STR(xp_strerror(XP_EPROXY_SOCKS5(5)),
		  "SOCKS5: connection refused by destination host");
	CHECK_STR(xp_strerror(XP_EPROXY_SOCKS5(2)), "SOCKS5: connection not allowed by ruleset");
	CHECK_STR(xp_strerror(XP_EPROXYAUTH), "SOCKS5: authentication failed");
	CHECK(strstr(xp_strerror(XP_EPROXY_SOCKS4(91)), "SOCKS4") != NULL);
	CHECK(xp_is_proxy_error(XP_EPROXY_HTTP(502)));
	CHECK(xp_is_proxy_error(XP_EPROXY));
	CHECK(!xp_is_proxy_error(-ECONNREFUSED));
	CHECK(!xp_is_proxy_error(XP_ETLSVERIFY));
}

/* ---- scripted python3 peers -------------------------------------------- */

struct py {
	pid_t pid;
	int out;
	int status;
	bool exited;
};

/* Runs python3 -c script ARGS; the script prints a port (or "-") first. */
static int py_start(struct py *p, const char *script, const char *arg)
{
	int fds[2];
	char line[32] = "";
	ssize_t n;

	memset(p, 0, sizeof(*p));
	if (pipe(fds) < 0)
		return -1;
	p->pid = fork();
	if (p->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(PY, PY, "-c", script, arg ? arg : "", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	p->out = fds[0];
	n = xpt_read_all(p->out, line, sizeof(line) - 1, 5000);
	(void)n;
	return atoi(line);
}

static int cond_py(void *arg)
{
	struct py *p = arg;

	if (!p->exited && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
		p->exited = true;
	return p->exited;
}

static int py_wait(xp_loop *loop, struct py *p)
{
	if (!rec_run_until(loop, cond_py, p, 10)) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->exited = true;
	}
	close(p->out);
	return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128 + WTERMSIG(p->status);
}

#define PY_SERVER                                                                                  \
	"import socket,sys,base64\n"                                                               \
	"s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\n"                                \
	"print(s.getsockname()[1], ' '*20, flush=True)\n"                                          \
	"c,_=s.accept()\n"                                                                         \
	"def rd(n):\n"                                                                             \
	"    b=b''\n"                                                                              \
	"    while len(b)<n:\n"                                                                    \
	"        k=c.recv(n-len(b))\n"                                                             \
	"        if not k: sys.exit(3)\n"                                                          \
	"        b+=k\n"                                                                           \
	"    return b\n"                                                                           \
	"def finish():\n"                                                                          \
	"    d=rd(5); c.sendall(d.upper()); c.shutdown(socket.SHUT_WR)\n"                          \
	"    if c.recv(10)!=b'': sys.exit(4)\n"

/* SOCKS5 with RFC 1929, a domain target, an IPv6 BND.ADDR, and the
 * target's first bytes in the same segment as the reply. */
static const char py_socks5[] =
    PY_SERVER "g=rd(2); m=rd(g[1])\n"
	      "assert g[0]==5 and 2 in m, (g,m)\n"
	      "c.sendall(b'\\x05\\x02')\n"
	      "v=rd(2); u=rd(v[1]); p=rd(rd(1)[0])\n"
	      "assert v[0]==1 and u==b'alice' and p==b's3cret', (v,u,p)\n"
	      "c.sendall(b'\\x01\\x00')\n"
	      "h=rd(4); assert h==b'\\x05\\x01\\x00\\x03', h\n"
	      "n=rd(rd(1)[0]); port=rd(2)\n"
	      "assert n==b'target.example' and port==b'\\x01\\xbb', (n,port)\n"
	      "c.sendall(b'\\x05\\x00\\x00\\x04'+b'\\x00'*15+b'\\x01\\x30\\x39'+b'BANNER')\n"
	      "finish()\n";

static const char py_http[] =
    PY_SERVER "h=b''\n"
	      "while not h.endswith(b'\\r\\n\\r\\n'): h+=rd(1)\n"
	      "l=h.split(b'\\r\\n')\n"
	      "assert l[0]==b'CONNECT [::1]:8443 HTTP/1.1', l\n"
	      "assert b'Host: [::1]:8443' in l, l\n"
	      "assert b'Proxy-Authorization: Basic '+base64.b64encode(b'bob:p@ss') in l, l\n"
	      "c.sendall(b'HTTP/1.0 200 OK\\r\\nVia: py\\r\\n\\r\\nBANNER')\n"
	      "finish()\n";

static const char py_socks4a[] =
    PY_SERVER "h=rd(8); assert h==b'\\x04\\x01\\x00\\x50\\x00\\x00\\x00\\x01', h\n"
	      "u=b''\n"
	      "while not u.endswith(b'\\x00'): u+=rd(1)\n"
	      "n=b''\n"
	      "while not n.endswith(b'\\x00'): n+=rd(1)\n"
	      "assert u==b'me\\x00' and n==b'target.example\\x00', (u,n)\n"
	      "c.sendall(b'\\x00\\x5a'+b'\\x00'*6+b'BANNER')\n"
	      "finish()\n";

static const char py_socks5_refuse[] =
    PY_SERVER "rd(3); c.sendall(b'\\x05\\x00')\n"
	      "h=rd(4); rd(4+2); c.sendall(b'\\x05\\x05\\x00\\x01'+b'\\x00'*6)\n"
	      "if c.recv(10)!=b'': sys.exit(5)\n";

static const char py_hangup[] = PY_SERVER "rd(3); c.sendall(b'\\x05'); c.close()\n";

static void scripted(const char *script, const xp_proxy *tmpl, const char *host, const char *port,
		     int want)
{
	struct fx f;
	struct py p;
	struct rec *r;
	xp_transport *t;
	xp_proxy px = *tmpl;
	char ps[8];
	int err;

	fx_init(&f, 0);
	snprintf(ps, sizeof(ps), "%d", py_start(&p, script, NULL));
	px.port = ps;
	r = rec_new(&rec_stream_ops, f.loop);
	err = via(&f, r, &px, host, port, NULL, &t);
	CHECK_EQ(err, want);
	if (!err) {
		struct want w = {r, 6};

		/* The target's bytes that came with the answer are kept. */
		CHECK(rec_run_until(f.loop, cond_bytes, &w, 5));
		CHECK_MEM(r->in, "BANNER", 6);
		r->inlen = 0;
		echo_round2(&f, r, t, "hello", "HELLO");
	} else {
		CHECK_EQ(r->nmade, 0);
	}
	CHECK_EQ(py_wait(f.loop, &p), 0);
	rec_free(r);
	fx_done(&f);
}

TEST(proxy_client_socks5_python_scripted)
{
	xp_proxy px = {
	    .kind = XP_PROXY_SOCKS5, .host = "127.0.0.1", .user = "alice", .password = "s3cret"};

	scripted(py_socks5, &px, "target.example", "443", 0);
}

TEST(proxy_client_http_python_scripted)
{
	xp_proxy px = {
	    .kind = XP_PROXY_HTTP, .host = "127.0.0.1", .user = "bob", .password = "p@ss"};

	scripted(py_http, &px, "::1", "8443", 0);
}

TEST(proxy_client_socks4a_python_scripted)
{
	xp_proxy px = {.kind = XP_PROXY_SOCKS4A, .host = "127.0.0.1", .user = "me"};

	scripted(py_socks4a, &px, "target.example", "80", 0);
}

TEST(proxy_client_socks5_refusal_python_scripted)
{
	xp_proxy px = {.kind = XP_PROXY_SOCKS5, .host = "127.0.0.1"};

	scripted(py_socks5_refuse, &px, "10.1.2.3", "22", XP_EPROXY_SOCKS5(5));
}

TEST(proxy_client_proxy_hangs_up_mid_answer)
{
	xp_proxy px = {.kind = XP_PROXY_SOCKS5, .host = "127.0.0.1"};

	scripted(py_hangup, &px, "10.1.2.3", "22", XP_EPROXY);
}

/* python3 as the client of our servers. */
#define PY_CLIENT                                                                                  \
	"import socket,sys\n"                                                                      \
	"P,T=[int(x) for x in sys.argv[1].split(',')]\n"                                           \
	"print('-', flush=True)\n"                                                                 \
	"c=socket.create_connection(('127.0.0.1',P))\n"                                            \
	"def rd(n):\n"                                                                             \
	"    b=b''\n"                                                                              \
	"    while len(b)<n:\n"                                                                    \
	"        k=c.recv(n-len(b))\n"                                                             \
	"        if not k: sys.exit(3)\n"                                                          \
	"        b+=k\n"                                                                           \
	"    return b\n"                                                                           \
	"def head():\n"                                                                            \
	"    h=b''\n"                                                                              \
	"    while not h.endswith(b'\\r\\n\\r\\n'):\n"                                             \
	"        k=c.recv(1)\n"                                                                    \
	"        if not k: sys.exit(6)\n"                                                          \
	"        h+=k\n"                                                                           \
	"    return h\n"

/* Authenticated, a domain target, data pipelined right behind the
 * request (before the reply), then half-close. */
static const char py_socks5_client[] =
    PY_CLIENT "c.sendall(b'\\x05\\x01\\x02')\n"
	      "assert rd(2)==b'\\x05\\x02'\n"
	      "c.sendall(b'\\x01\\x05alice\\x06s3cret')\n"
	      "assert rd(2)==b'\\x01\\x00'\n"
	      "c.sendall(b'\\x05\\x01\\x00\\x03\\x09localhost'+T.to_bytes(2,'big')+b'early')\n"
	      "r=rd(4); assert r[:3]==b'\\x05\\x00\\x00', r\n"
	      "rd({1:4,4:16}[r[3]]+2)\n"
	      "assert rd(5)==b'early'\n"
	      "c.shutdown(socket.SHUT_WR)\n"
	      "assert c.recv(10)==b''\n";

static const char py_socks5_bind[] =
    PY_CLIENT "c.sendall(b'\\x05\\x01\\x00')\n"
	      "assert rd(2)==b'\\x05\\x00'\n"
	      "c.sendall(b'\\x05\\x02\\x00\\x01\\x7f\\x00\\x00\\x01'+"
	      "T.to_bytes(2,'big'))\n"
	      "r=rd(10); assert r[:2]==b'\\x05\\x07', r\n"
	      "assert c.recv(10)==b''\n";

static const char py_http_client[] =
    PY_CLIENT "c.sendall(b'GET http://x/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
	      "h=head(); assert h.startswith(b'HTTP/1.1 405 '), h\n"
	      "assert b'\\r\\nAllow: CONNECT\\r\\n' in h, h\n"
	      "c=socket.create_connection(('127.0.0.1',P))\n"
	      "c.sendall(b'CONNECT 127.0.0.1:%d HTTP/1.1\\r\\n\\r\\n'%T)\n"
	      "h=head(); assert h.startswith(b'HTTP/1.1 407 '), h\n"
	      "assert b'\\r\\nProxy-Authenticate: Basic' in h, h\n"
	      "c=socket.create_connection(('127.0.0.1',P))\n"
	      "c.sendall(b'CONNECT 127.0.0.1:%d HTTP/1.1\\r\\nHost: x\\r\\n"
	      "proxy-authorization:   basic YWxpY2U6czNjcmV0  \\r\\n\\r\\nearly'%T)\n"
	      "h=head(); assert h.startswith(b'HTTP/1.1 200 '), h\n"
	      "assert rd(5)==b'early'\n"
	      "c.shutdown(socket.SHUT_WR)\n"
	      "assert c.recv(10)==b''\n";

static void python_client(int kind, const char *script, bool auth)
{
	struct fx f;
	struct py p;
	char arg[32];

	fx_init(&f, kind);
	if (auth) {
		f.so.user = "alice";
		f.so.password = "s3cret";
	}
	fx_start(&f);
	snprintf(arg, sizeof(arg), "%d,%d", f.proxy_port, f.target_port);
	py_start(&p, script, arg);
	CHECK_EQ(py_wait(f.loop, &p), 0);
	fx_done(&f);
}

TEST(proxy_server_socks5_python_client)
{
	python_client(XP_PROXY_SOCKS5, py_socks5_client, true);
}

TEST(proxy_server_socks5_bind_gets_reply_7)
{
	python_client(XP_PROXY_SOCKS5, py_socks5_bind, false);
}

TEST(proxy_server_http_python_client)
{
	python_client(XP_PROXY_HTTP, py_http_client, true);
}

/* A client that leaves mid-request, or idles: reported once, r NULL. */
TEST(proxy_server_reports_clients_that_never_got_a_tunnel)
{
	struct fx f;
	int fd;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	fx_init(&f, XP_PROXY_SOCKS5);
	f.so.relay.proto.idle_timeout = 0.2;
	fx_start(&f);
	sa.sin_port = htons((uint16_t)f.proxy_port);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK_EQ(write(fd, "\x05", 1), 1);
	close(fd);
	CHECK(rec_run_until(f.loop, cond_done, &f, 5));
	CHECK_EQ(f.ndone, 1);
	CHECK_EQ(f.ndone_null, 1);
	CHECK_STR(f.done_end, "eof");

	f.ndone = f.ndone_null = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(rec_run_until(f.loop, cond_done, &f, 5));
	CHECK_EQ(f.ndone, 1);
	CHECK_EQ(f.ndone_null, 1);
	CHECK_STR(f.done_end, "timeout");
	close(fd);
	fx_done(&f);
}
