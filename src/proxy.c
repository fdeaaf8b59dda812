// SPDX-License-Identifier: MIT
/*
 * proxy.c - outgoing connections through a proxy: HTTP CONNECT (RFC 9110
 * section 9.3.6, Basic authentication per RFC 7617), SOCKS5 (RFC 1928,
 * user/password per RFC 1929, the name sent to the proxy to resolve) and
 * SOCKS4a.
 *
 * A proxy handshake is a protocol layered on a stream, as TLS is: the
 * connection to the proxy is made as any other (happy eyeballs, local
 * address, deadline), with the handshake as its protocol.  Once the proxy
 * has said yes, the very same transport is handed to the TLS layer (the
 * server name being the target's, so TLS runs end to end through the
 * tunnel) or to the caller's protocol.  The caller's factory runs only
 * then: a refused tunnel leaves no protocol that never saw a callback.
 *
 * The handshake reads exactly the bytes of the proxy's answer (a buffered
 * protocol that asks for what is still missing), so whatever the target
 * sends first stays in the socket for the protocol that follows.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdio.h>

#define HTTP_MAX_ANSWER 8192

enum stage {
	S_METHOD,     /* SOCKS5: the chosen method (2 bytes) */
	S_AUTH,	      /* SOCKS5: the RFC 1929 status (2 bytes) */
	S_REPLY,      /* SOCKS5: VER REP RSV ATYP */
	S_REPLY_NAME, /* SOCKS5: the length of a domain BND.ADDR */
	S_REPLY_ADDR, /* SOCKS5: BND.ADDR and BND.PORT */
	S_SOCKS4,     /* the 8 bytes of a SOCKS4 reply */
	S_HTTP,	      /* status line and headers up to the empty line */
	S_DONE,
};

struct pxc {
	xp_protocol proto; /* the handshake, on the connection to the proxy */
	xp_loop *loop;
	xp_future *user; /* the caller's */
	xp_future *leg;	 /* connecting to the proxy */
	xp_transport *t; /* the proxy connection, from connection_made */
	xp_protocol_factory factory;
	void *arg;
	xp_connect_opts opts;
	enum xp_proxy_kind kind;
	char *host, *port, *user_name, *password, *server_name;
	xp_handle *deadline;
	double deadline_at;
	enum stage stage;
	unsigned char *in;
	size_t have, need;
	int refusal; /* SOCKS5: the reply code, kept while BND is read */
	bool finished;
	int refs;
};

static void pxc_unref(struct pxc *c)
{
	if (--c->refs)
		return;
	xp_future_release(c->user);
	free(c->in);
	free(c->host);
	free(c->port);
	free(c->user_name);
	free(c->password);
	free(c->server_name);
	free(c);
}

/* Stop everything and fail the caller's future (unless err is 0 or it is
 * done); the work's reference goes. */
static void pxc_finish(struct pxc *c, int err)
{
	if (c->finished)
		return;
	c->finished = true;
	xp__timer_cancel(&c->deadline);
	if (c->leg && !xp_future_done(c->leg))
		xp_future_cancel(c->leg);
	/* A proxy that answered gets a clean close; one that did not, a
	 * reset. */
	if (c->t && c->stage != S_DONE) {
		if (xp_is_proxy_error(err))
			xp_transport_close(c->t);
		else
			xp_transport_abort(c->t);
	}
	if (err && !xp_future_done(c->user))
		xp_future_set_error(c->user, err);
	pxc_unref(c);
}

/* ---- building requests ------------------------------------------------ */

static int ip_literal(const char *host, unsigned char addr[16])
{
	if (inet_pton(AF_INET, host, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, host, addr) == 1)
		return AF_INET6;
	return 0;
}

static int send_bytes(struct pxc *c, const void *data, size_t len, enum stage next, size_t need)
{
	c->stage = next;
	c->have = 0;
	c->need = need;
	return xp_transport_write(c->t, data, len);
}

static int socks5_greet(struct pxc *c)
{
	static const unsigned char plain[] = {5, 1, 0}, auth[] = {5, 2, 0, 2};

	if (c->user_name)
		return send_bytes(c, auth, sizeof(auth), S_METHOD, 2);
	return send_bytes(c, plain, sizeof(plain), S_METHOD, 2);
}

static int socks5_auth(struct pxc *c)
{
	unsigned char req[3 + 2 * 255];
	size_t ul = strlen(c->user_name), pl = c->password ? strlen(c->password) : 0;

	req[0] = 1;
	req[1] = (unsigned char)ul;
	memcpy(req + 2, c->user_name, ul);
	req[2 + ul] = (unsigned char)pl;
	if (pl)
		memcpy(req + 3 + ul, c->password, pl);
	return send_bytes(c, req, 3 + ul + pl, S_AUTH, 2);
}

static int socks5_request(struct pxc *c)
{
	unsigned char req[4 + 1 + 255 + 2], addr[16];
	int fam = ip_literal(c->host, addr);
	size_t n = 4;
	unsigned port = (unsigned)atoi(c->port);

	req[0] = 5;
	req[1] = 1; /* CONNECT */
	req[2] = 0;
	if (fam == AF_INET) {
		req[3] = 1;
		memcpy(req + n, addr, 4);
		n += 4;
	} else if (fam == AF_INET6) {
		req[3] = 4;
		memcpy(req + n, addr, 16);
		n += 16;
	} else {
		size_t hl = strlen(c->host);

		req[3] = 3;
		req[n++] = (unsigned char)hl;
		memcpy(req + n, c->host, hl);
		n += hl;
	}
	req[n++] = (unsigned char)(port >> 8);
	req[n++] = (unsigned char)port;
	return send_bytes(c, req, n, S_REPLY, 4);
}

static int socks4a_request(struct pxc *c)
{
	unsigned char req[8 + 256 + 256], addr[16];
	const char *uid = c->user_name ? c->user_name : "";
	unsigned port = (unsigned)atoi(c->port);
	size_t n = 8, ul = strlen(uid) + 1;

	req[0] = 4;
	req[1] = 1;
	req[2] = (unsigned char)(port >> 8);
	req[3] = (unsigned char)port;
	bool named = ip_literal(c->host, addr) != AF_INET;

	if (named) /* 0.0.0.x, x != 0: "the name follows" (SOCKS4a) */
		memcpy(req + 4, "\0\0\0\1", 4);
	else
		memcpy(req + 4, addr, 4);
	memcpy(req + n, uid, ul);
	n += ul;
	if (named) {
		size_t hl = strlen(c->host) + 1;

		memcpy(req + n, c->host, hl);
		n += hl;
	}
	return send_bytes(c, req, n, S_SOCKS4, 8);
}

static int http_request(struct pxc *c)
{
	unsigned char addr[16];
	bool v6 = ip_literal(c->host, addr) == AF_INET6;
	char target[300], auth[760] = "", cred[520];
	char req[1500];
	int n;

	snprintf(target, sizeof(target), v6 ? "[%s]:%s" : "%s:%s", c->host, c->port);
	if (c->user_name) {
		int cl = snprintf(cred, sizeof(cred), "%s:%s", c->user_name,
				  c->password ? c->password : "");
		unsigned char b64[sizeof(cred) * 4 / 3 + 4];

		EVP_EncodeBlock(b64, (const unsigned char *)cred, cl);
		snprintf(auth, sizeof(auth), "Proxy-Authorization: Basic %s\r\n", b64);
	}
	n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target,
		     auth);
	/* Ask for 4 bytes at first: the shortest possible answer ends in
	 * CRLF CRLF, and reading no further keeps the target's bytes. */
	return send_bytes(c, req, (size_t)n, S_HTTP, 4);
}

/* ---- reading answers --------------------------------------------------- */

const char *xp__http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 407:
		return "Proxy Authentication Required";
	case 408:
		return "Request Timeout";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	}
	return NULL;
}

/* 4 minus the length of the terminator's prefix the buffer ends with. */
size_t xp__http_head_more(const unsigned char *b, size_t n)
{
	static const char end[] = "\r\n\r\n";

	for (size_t k = 3; k > 0; k--)
		if (n >= k && !memcmp(b + n - k, end, k))
			return 4 - k;
	return 4;
}

static int http_answer(struct pxc *c)
{
	unsigned char *b = c->in;
	int status;

	if (c->have < 4 || memcmp(b + c->have - 4, "\r\n\r\n", 4)) {
		if (c->have + 4 > HTTP_MAX_ANSWER)
			return XP_EPROXY;
		c->need = c->have + xp__http_head_more(b, c->have);
		return 1;
	}
	b[c->have] = '\0';
	if (strncmp((char *)b, "HTTP/1.", 7) || sscanf((char *)b + 8, " %3d", &status) != 1 ||
	    b[8] != ' ' || status < 100 || status > 999)
		return XP_EPROXY;
	if (status / 100 != 2)
		return XP_EPROXY_HTTP(status);
	return 0;
}

static int socks5_step(struct pxc *c)
{
	const unsigned char *b = c->in;

	switch (c->stage) {
	case S_METHOD:
		if (b[0] != 5)
			return XP_EPROXY;
		if (b[1] == 0xff)
			return XP_EPROXYMETHOD;
		if (b[1] == 2 && c->user_name) {
			int r = socks5_auth(c);
			return r < 0 ? r : 1;
		}
		if (b[1] != 0)
			return XP_EPROXY;
		break;
	case S_AUTH:
		if (b[1] != 0)
			return XP_EPROXYAUTH;
		break;
	case S_REPLY:
		if (b[0] != 5)
			return XP_EPROXY;
		/* A refusal is read to its end too: closing with unread
		 * bytes would reset the connection. */
		if (b[1] != 0)
			c->refusal = XP_EPROXY_SOCKS5(b[1]);
		if (b[3] == 1 || b[3] == 4) {
			c->stage = S_REPLY_ADDR;
			c->need += (b[3] == 1 ? 4 : 16) + 2;
			return 1;
		}
		if (b[3] != 3)
			return c->refusal ? c->refusal : XP_EPROXY;
		c->stage = S_REPLY_NAME;
		c->need++;
		return 1;
	case S_REPLY_NAME:
		c->stage = S_REPLY_ADDR;
		c->need += b[4] + 2u;
		return 1;
	case S_REPLY_ADDR:
		return c->refusal;
	default:
		return XP_EPROXY;
	}
	int r = socks5_request(c);
	return r < 0 ? r : 1;
}

/* 1: more to read; 0: the tunnel is up; < 0: the proxy said no. */
static int answer_step(struct pxc *c)
{
	switch (c->stage) {
	case S_HTTP:
		return http_answer(c);
	case S_SOCKS4:
		if (c->in[0] != 0)
			return XP_EPROXY;
		return c->in[1] == 90 ? 0 : XP_EPROXY_SOCKS4(c->in[1]);
	default:
		return socks5_step(c);
	}
}

/* ---- the tunnel is up: hand the transport over ----------------------- */

static void release_transport(void *t)
{
	xp_transport_release(t);
}

static double remaining(const struct pxc *c, double dflt)
{
	double left;

	if (c->opts.timeout <= 0)
		return dflt;
	left = c->deadline_at - xp_loop_time(c->loop);
	if (left < 0.001)
		left = 0.001;
	return dflt > 0 && dflt < left ? dflt : left;
}

static void start_tls(struct pxc *c, xp_transport *t)
{
	const char *name = c->server_name ? c->server_name : c->host;
	xp_future *f = xp__tls_wrap(c->loop, t, NULL, c->factory, c->arg, c->opts.tls, 0, name,
				    remaining(c, c->opts.tls_handshake_timeout), NULL);

	if (!f) {
		xp_transport_abort(t);
		xp_future_set_error(c->user, -ENOMEM);
		return;
	}
	/* An early failure leaves a running transport as it was (without a
	 * protocol: see tunnel_up). */
	if (xp_future_done(f) && xp_future_error(f))
		xp_transport_abort(t);
	xp__chain_futures(c->user, f);
}

static void start_app(struct pxc *c, xp_transport *t)
{
	xp_protocol *p = c->factory(c->arg);

	if (!p) {
		xp_transport_abort(t);
		xp_future_set_error(c->user, XP_ECALLBACK);
		return;
	}
	xp_transport_set_protocol(t, p);
	/* As on a fresh transport: reading on unless connection_made
	 * pauses it. */
	xp_transport_resume_reading(t);
	if (p->ops->connection_made)
		p->ops->connection_made(p, t);
	if (t->proto_paused && p->ops->pause_writing)
		p->ops->pause_writing(p);
	if (xp_future_set_result_owned(c->user, xp_transport_retain(t), release_transport) < 0)
		xp_transport_release(t);
}

static void tunnel_up(struct pxc *c)
{
	xp_transport *t = c->t;

	c->stage = S_DONE;
	/* From here on the handshake protocol hears nothing, whatever
	 * happens to t: the next protocol, if any, is set below. */
	xp_transport_set_protocol(t, NULL);
	xp_transport_pause_reading(t);
	xp__timer_cancel(&c->deadline);
	if (xp_future_done(c->user))
		xp_transport_abort(t); /* cancelled meanwhile */
	else if (c->opts.tls)
		start_tls(c, t);
	else
		start_app(c, t);
	/* The transport no longer calls the handshake protocol. */
	c->t = NULL;
	xp_transport_release(t);
	pxc_finish(c, 0);
	pxc_unref(c);
}

/* ---- the handshake protocol -------------------------------------------- */

static struct pxc *P(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct pxc, proto);
}

static void hs_made(xp_protocol *p, xp_transport *t)
{
	struct pxc *c = P(p);
	int r;

	c->t = xp_transport_retain(t);
	if (c->finished) {
		xp_transport_abort(t);
		return;
	}
	switch (c->kind) {
	case XP_PROXY_HTTP:
		r = http_request(c);
		break;
	case XP_PROXY_SOCKS4A:
		r = socks4a_request(c);
		break;
	default:
		r = socks5_greet(c);
		break;
	}
	if (r < 0)
		pxc_finish(c, r);
}

static void hs_lost(xp_protocol *p, int err)
{
	struct pxc *c = P(p);

	xp_transport_release(c->t);
	c->t = NULL;
	/* A proxy that hangs up or resets before the tunnel is up refused it:
	 * the connection asked for was never made (exit 69, not 1). */
	pxc_finish(c, c->refusal ? c->refusal : XP_EPROXY);
	pxc_unref(c);
}

static int hs_get_buffer(xp_protocol *p, ssize_t hint, void **buf, size_t *len)
{
	struct pxc *c = P(p);

	*buf = c->in + c->have;
	*len = c->need - c->have;
	return 0;
}

static int hs_buffer_updated(xp_protocol *p, size_t n)
{
	struct pxc *c = P(p);
	int r;

	c->have += n;
	if (c->finished || c->have < c->need)
		return 0;
	r = answer_step(c);
	if (r < 0)
		pxc_finish(c, r);
	else if (r == 0)
		tunnel_up(c);
	return 0;
}

static int hs_eof(xp_protocol *p)
{
	struct pxc *c = P(p);

	pxc_finish(c, c->refusal ? c->refusal : XP_EPROXY);
	return 0;
}

static const xp_protocol_ops hs_ops = {
    .connection_made = hs_made,
    .connection_lost = hs_lost,
    .get_buffer = hs_get_buffer,
    .buffer_updated = hs_buffer_updated,
    .eof_received = hs_eof,
};

static xp_protocol *hs_factory(void *arg)
{
	struct pxc *c = arg;

	if (c->finished)
		return NULL;
	c->refs++; /* until connection_lost or the hand-over */
	return &c->proto;
}

/* ---- setting up ---------------------------------------------------------- */

static void leg_done(xp_future *f, void *arg)
{
	struct pxc *c = arg;
	int err = xp_future_error(f);

	c->leg = NULL;
	/* Accepted, then reset before the handshake began (a proxy refusing
	 * its client, e.g. by --deny): a refusal, as in hs_lost. */
	if (err == -ECONNRESET || err == -EPIPE)
		err = XP_EPROXY;
	if (err)
		pxc_finish(c, err);
	xp_future_release(f);
	pxc_unref(c);
}

static void user_done(xp_future *f, void *arg)
{
	struct pxc *c = arg;

	pxc_finish(c, 0); /* a no-op unless the caller cancelled */
	pxc_unref(c);
}

static int deadline_cb(void *arg)
{
	struct pxc *c = arg;

	xp_handle_release(c->deadline);
	c->deadline = NULL;
	pxc_finish(c, -ETIMEDOUT);
	return 0;
}

static int check(const xp_proxy *px, const char *host, const char *port)
{
	unsigned char addr[16];

	if (px->kind < XP_PROXY_HTTP || px->kind > XP_PROXY_SOCKS4A || !px->host || !px->port ||
	    !host || !*host || !port || !*port)
		return -EINVAL;
	if (px->kind == XP_PROXY_HTTP && strlen(host) > 255)
		return -ENAMETOOLONG;
	if (px->kind == XP_PROXY_SOCKS5) {
		if (strlen(host) > 255)
			return -ENAMETOOLONG;
		if ((px->user && strlen(px->user) > 255) ||
		    (px->password && strlen(px->password) > 255) || (px->password && !px->user))
			return -EINVAL;
	}
	if (px->kind == XP_PROXY_SOCKS4A) {
		if (ip_literal(host, addr) == AF_INET6)
			return -EAFNOSUPPORT; /* SOCKS4 has no IPv6 */
		if (strlen(host) > 255 || (px->user && strlen(px->user) > 255) || px->password)
			return -EINVAL;
	}
	if (px->kind == XP_PROXY_HTTP &&
	    ((px->user && strlen(px->user) > 255) || (px->password && strlen(px->password) > 255)))
		return -EINVAL;
	return 0;
}

static struct pxc *pxc_new(xp_loop *loop, xp_protocol_factory factory, void *arg, const char *host,
			   const char *port, const xp_connect_opts *opts)
{
	const xp_proxy *px = opts->proxy;
	struct pxc *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->user = xp_future_new(loop);
	c->in = malloc(HTTP_MAX_ANSWER + 1);
	if (!c->user || !c->in || xp__dup_str(&c->host, host) || xp__dup_str(&c->port, port) ||
	    xp__dup_str(&c->user_name, px->user) || xp__dup_str(&c->password, px->password) ||
	    xp__dup_str(&c->server_name, opts->server_hostname)) {
		c->refs = 1;
		if (!c->user) {
			free(c->in);
			free(c);
			return NULL;
		}
		pxc_unref(c);
		return NULL;
	}
	c->proto.ops = &hs_ops;
	c->loop = loop;
	c->factory = factory;
	c->arg = arg;
	c->opts = *opts;
	c->kind = px->kind;
	return c;
}

xp_future *xp__proxy_connect(xp_loop *loop, xp_protocol_factory factory, void *arg,
			     const char *host, const char *port, const xp_connect_opts *opts)
{
	xp_connect_opts leg = *opts;
	struct pxc *c;
	xp_future *fut;
	int r = check(opts->proxy, host, port);

	if (r < 0) {
		fut = xp_future_new(loop);
		if (fut)
			xp_future_set_error(fut, r);
		return fut;
	}
	c = pxc_new(loop, factory, arg, host, port, opts);
	if (!c)
		return NULL;
	fut = xp_future_retain(c->user);
	c->refs = 3; /* the work, user_done, leg_done */
	xp_future_add_done_callback(c->user, user_done, c);
	if (opts->timeout > 0) {
		c->deadline_at = xp_loop_time(loop) + opts->timeout;
		c->deadline = xp__timer_start(loop, opts->timeout, deadline_cb, c);
	}
	leg.proxy = NULL;
	leg.tls = NULL;
	leg.server_hostname = NULL;
	leg.tls_handshake_timeout = 0;
	c->leg =
	    xp_create_connection(loop, hs_factory, c, opts->proxy->host, opts->proxy->port, &leg);
	if (!c->leg) {
		c->refs--;
		pxc_finish(c, -ENOMEM);
		return fut;
	}
	xp_future_add_done_callback(c->leg, leg_done, c);
	return fut;
}

/* ---- errors ---------------------------------------------------------------- */

int xp_is_proxy_error(int err)
{
	return (err <= XP_EPROXY && err >= XP_EPROXYMETHOD) ||
	       (err <= XP_EPROXY_HTTP(100) && err >= XP_EPROXY_HTTP(999)) ||
	       (err <= XP_EPROXY_SOCKS5(1) && err >= XP_EPROXY_SOCKS5(255)) ||
	       (err <= XP_EPROXY_SOCKS4(0) && err >= XP_EPROXY_SOCKS4(255));
}

static const char *const socks5_replies[] = {
    [1] = "general SOCKS server failure",
    [2] = "connection not allowed by ruleset",
    [3] = "network unreachable",
    [4] = "host unreachable",
    [5] = "connection refused by destination host",
    [6] = "TTL expired",
    [7] = "command not supported",
    [8] = "address type not supported",
};

const char *xp__proxy_strerror(int err)
{
	static __thread char buf[96];
	int code;

	switch (err) {
	case XP_EPROXY:
		return "proxy handshake failed (closed, or an answer not understood)";
	case XP_EPROXYAUTH:
		return "SOCKS5: authentication failed";
	case XP_EPROXYMETHOD:
		return "SOCKS5: no acceptable authentication method";
	}
	if (err <= XP_EPROXY_HTTP(100) && err >= XP_EPROXY_HTTP(999)) {
		const char *reason;

		code = XP_EPROXY_HTTP(0) - err;
		reason = xp__http_reason(code);
		snprintf(buf, sizeof(buf), "%d%s%s", code, reason ? " " : "", reason ? reason : "");
	} else if (err <= XP_EPROXY_SOCKS5(1) && err >= XP_EPROXY_SOCKS5(255)) {
		code = XP_EPROXY_SOCKS5(0) - err;
		if (code < 9)
			snprintf(buf, sizeof(buf), "SOCKS5: %s", socks5_replies[code]);
		else
			snprintf(buf, sizeof(buf), "SOCKS5: reply %d", code);
	} else {
		code = XP_EPROXY_SOCKS4(0) - err;
		snprintf(buf, sizeof(buf), "SOCKS4: request rejected (%d%s)", code,
			 code == 92   ? ": no identd on the client"
			 : code == 93 ? ": user id mismatch"
				      : "");
	}
	return buf;
}
