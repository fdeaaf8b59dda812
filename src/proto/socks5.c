// SPDX-License-Identifier: MIT
/*
 * socks5.c - a SOCKS5 proxy server (RFC 1928): CONNECT to IPv4, IPv6 and
 * domain targets, with RFC 1929 user/password authentication when a user
 * is configured and none otherwise.  BIND and UDP ASSOCIATE get reply 7.
 * The rest (resolving, allow_target, connecting, the relay) is tunnel.c.
 */
#include "proto/common.h"

#include <arpa/inet.h>
#include <stdio.h>

enum {
	G_HDR,	   /* VER NMETHODS */
	G_METHODS, /* ... METHODS */
	A_HDR,	   /* VER ULEN (RFC 1929) */
	A_USER,	   /* ... UNAME PLEN */
	A_PASS,	   /* ... PASSWD */
	R_HDR,	   /* VER CMD RSV ATYP */
	R_NAME,	   /* ... the length of a domain name */
	R_ADDR,	   /* ... DST.ADDR DST.PORT */
};

static void s5_start(struct xp__tunnel *tn)
{
	tn->stage = G_HDR;
	tn->have = 0;
	tn->need = 2;
}

/* The next message starts at the beginning of the buffer. */
static int next(struct xp__tunnel *tn, int stage, size_t need)
{
	tn->stage = stage;
	tn->have = 0;
	tn->need = need;
	return 1;
}

static void s5_reply(struct xp__tunnel *tn, int rep, const xp_sockaddr *bound)
{
	unsigned char b[22] = {5, (unsigned char)rep, 0, 1};
	size_t n = 10;

	if (bound && bound->u.sa.sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&bound->u.ss;

		memcpy(b + 4, &in->sin_addr, 4);
		memcpy(b + 8, &in->sin_port, 2);
	} else if (bound && bound->u.sa.sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&bound->u.ss;

		b[3] = 4;
		memcpy(b + 4, &in6->sin6_addr, 16);
		memcpy(b + 20, &in6->sin6_port, 2);
		n = 22;
	}
	xp__tunnel_send(tn, b, n);
}

static int refuse(struct xp__tunnel *tn, int rep)
{
	s5_reply(tn, rep, NULL);
	return xp__tunnel_refuse(tn, XP_EPROXY_SOCKS5(rep));
}

static int send2(struct xp__tunnel *tn, unsigned char a, unsigned char b)
{
	unsigned char m[2] = {a, b};

	xp__tunnel_send(tn, m, 2);
	return 0;
}

static int choose_method(struct xp__tunnel *tn)
{
	unsigned char want = tn->o.user ? 2 : 0;

	if (!memchr(tn->buf + 2, want, tn->buf[1])) {
		send2(tn, 5, 0xff);
		return xp__tunnel_refuse(tn, XP_EPROXYMETHOD);
	}
	send2(tn, 5, want);
	return want == 2 ? next(tn, A_HDR, 2) : next(tn, R_HDR, 4);
}

static int check_user(struct xp__tunnel *tn)
{
	const unsigned char *b = tn->buf;
	size_t ul = b[1], pl = b[2 + ul];
	bool ok = ul == strlen(tn->o.user) && pl == strlen(tn->o.password) &&
		  !memcmp(b + 2, tn->o.user, ul) && !memcmp(b + 3 + ul, tn->o.password, pl);

	if (!ok) {
		send2(tn, 1, 1);
		return xp__tunnel_refuse(tn, XP_EPROXYAUTH);
	}
	send2(tn, 1, 0);
	return next(tn, R_HDR, 4);
}

static int request(struct xp__tunnel *tn)
{
	const unsigned char *b = tn->buf;

	if (b[0] != 5)
		return refuse(tn, 1);
	if (b[1] != 1)
		return refuse(tn, 7); /* only CONNECT */
	tn->stage = R_ADDR;
	switch (b[3]) {
	case 1:
		tn->need += 4 + 2;
		return 1;
	case 4:
		tn->need += 16 + 2;
		return 1;
	case 3:
		tn->stage = R_NAME;
		tn->need++;
		return 1;
	}
	return refuse(tn, 8);
}

/* DST.ADDR and DST.PORT into tn->host and tn->port. */
static int target(struct xp__tunnel *tn)
{
	const unsigned char *b = tn->buf;
	unsigned port = (unsigned)b[tn->need - 2] << 8 | b[tn->need - 1];

	if (b[3] == 1) {
		inet_ntop(AF_INET, b + 4, tn->host, sizeof(tn->host));
	} else if (b[3] == 4) {
		inet_ntop(AF_INET6, b + 4, tn->host, sizeof(tn->host));
	} else {
		if (!b[4] || memchr(b + 5, '\0', b[4]))
			return refuse(tn, 4);
		memcpy(tn->host, b + 5, b[4]);
		tn->host[b[4]] = '\0';
	}
	if (!port)
		return refuse(tn, 4);
	snprintf(tn->port, sizeof(tn->port), "%u", port);
	return 0;
}

static int s5_step(struct xp__tunnel *tn)
{
	const unsigned char *b = tn->buf;

	switch (tn->stage) {
	case G_HDR:
		/* Not SOCKS5 at all: no answer it would understand. */
		if (b[0] != 5)
			return xp__tunnel_refuse(tn, XP_EPROXY);
		if (!b[1]) {
			send2(tn, 5, 0xff);
			return xp__tunnel_refuse(tn, XP_EPROXYMETHOD);
		}
		tn->stage = G_METHODS;
		tn->need += b[1];
		return 1;
	case G_METHODS:
		return choose_method(tn);
	case A_HDR:
		if (b[0] != 1) {
			send2(tn, 1, 1);
			return xp__tunnel_refuse(tn, XP_EPROXYAUTH);
		}
		tn->stage = A_USER;
		tn->need += b[1] + 1u;
		return 1;
	case A_USER:
		if (b[tn->need - 1]) {
			tn->stage = A_PASS;
			tn->need += b[tn->need - 1];
			return 1;
		}
		return check_user(tn);
	case A_PASS:
		return check_user(tn);
	case R_HDR:
		return request(tn);
	case R_NAME:
		tn->stage = R_ADDR;
		tn->need += b[4] + 2u;
		return 1;
	default:
		return target(tn);
	}
}

static int reply_for(int err)
{
	switch (err) {
	case -EACCES:
		return 2;
	case -ENETUNREACH:
	case -ENETDOWN:
		return 3;
	case -EHOSTUNREACH:
	case -EHOSTDOWN:
	case XP_ERESOLVE:
		return 4;
	case -ECONNREFUSED:
		return 5;
	case -ETIMEDOUT:
		return 6;
	case -EAFNOSUPPORT:
		return 8;
	}
	return 1;
}

static int s5_answer(struct xp__tunnel *tn, int err, const xp_sockaddr *bound)
{
	if (err)
		return refuse(tn, reply_for(err));
	s5_reply(tn, 0, bound);
	return 0;
}

static const struct xp__tunnel_kind socks5_kind = {
    .start = s5_start,
    .step = s5_step,
    .answer = s5_answer,
};

xp_protocol *xp_socks5_new(xp_loop *loop, const xp_proxy_server_opts *opts)
{
	return xp__tunnel_new(loop, opts, &socks5_kind);
}
