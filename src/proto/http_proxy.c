// SPDX-License-Identifier: MIT
/*
 * http_proxy.c - an HTTP CONNECT proxy server (RFC 9110 section 9.3.6):
 * CONNECT host:port only (any other method gets 405), Basic
 * authentication (RFC 7617) when a user is configured (407 with
 * Proxy-Authenticate when the credentials are missing or wrong).  The rest
 * (resolving, allow_target, connecting, the relay) is tunnel.c.
 */
#include "proto/common.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <strings.h>

static void hp_start(struct xp__tunnel *tn)
{
	tn->have = 0;
	tn->need = 4;
}

static int answer(struct xp__tunnel *tn, int status, const char *extra)
{
	char b[256];
	const char *reason = xp__http_reason(status);
	int n = snprintf(b, sizeof(b),
			 "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n",
			 status, reason ? reason : "Error", extra);

	xp__tunnel_send(tn, b, (size_t)n);
	return xp__tunnel_refuse(tn, XP_EPROXY_HTTP(status));
}

/* The value of header name (case-insensitive) in the head, or NULL. */
static const char *header(const char *head, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
		const char *v = l + 2;

		if (strncasecmp(v, name, nl) || v[nl] != ':')
			continue;
		v += nl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		*len = strcspn(v, "\r");
		while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
			(*len)--;
		return v;
	}
	return NULL;
}

static bool authorized(struct xp__tunnel *tn, const char *head)
{
	unsigned char want[700];
	char cred[520];
	size_t len, wl;
	const char *v = header(head, "Proxy-Authorization", &len);
	int cl = snprintf(cred, sizeof(cred), "%s:%s", tn->o.user, tn->o.password);

	if (!v || len < 6 || strncasecmp(v, "Basic ", 6))
		return false;
	v += 6;
	len -= 6;
	while (len && *v == ' ')
		v++, len--;
	if (cl < 0 || (size_t)cl >= sizeof(cred))
		return false;
	wl = (size_t)EVP_EncodeBlock(want, (const unsigned char *)cred, cl);
	return len == wl && !CRYPTO_memcmp(v, want, wl);
}

/* authority-form: host:port or [v6]:port. */
static bool parse_target(struct xp__tunnel *tn, const char *s, size_t len)
{
	const char *colon, *host = s;
	size_t hl;
	unsigned long port = 0;

	if (len && *s == '[') {
		const char *rb = memchr(s, ']', len);

		if (!rb || rb + 1 >= s + len || rb[1] != ':')
			return false;
		host = s + 1;
		hl = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = NULL;
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':')
				colon = s + i;
		if (!colon)
			return false;
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl))
			return false; /* a bare IPv6 address needs brackets */
	}
	if (!hl || hl >= sizeof(tn->host))
		return false;
	for (const char *p = colon + 1; p < s + len; p++) {
		if (!isdigit((unsigned char)*p) || port > 65535)
			return false;
		port = port * 10 + (unsigned)(*p - '0');
	}
	if (colon + 1 == s + len || !port || port > 65535)
		return false;
	memcpy(tn->host, host, hl);
	tn->host[hl] = '\0';
	snprintf(tn->port, sizeof(tn->port), "%lu", port);
	return true;
}

static int hp_step(struct xp__tunnel *tn)
{
	char *head = (char *)tn->buf, *sp1, *sp2;

	if (tn->have < 4 || memcmp(tn->buf + tn->have - 4, "\r\n\r\n", 4)) {
		if (tn->have + 4 > XP__TUNNEL_BUF)
			return answer(tn, 400, "");
		tn->need = tn->have + xp__http_head_more(tn->buf, tn->have);
		return 1;
	}
	tn->buf[tn->have] = '\0';
	sp1 = strchr(head, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) || sp2 > strstr(head, "\r\n"))
		return answer(tn, 400, "");
	if ((size_t)(sp1 - head) != 7 || strncmp(head, "CONNECT", 7))
		return answer(tn, 405, "Allow: CONNECT\r\n");
	if (tn->o.user && !authorized(tn, head))
		return answer(tn, 407, "Proxy-Authenticate: Basic realm=\"xport\"\r\n");
	if (!parse_target(tn, sp1 + 1, (size_t)(sp2 - sp1 - 1)))
		return answer(tn, 400, "");
	return 0;
}

static int hp_answer(struct xp__tunnel *tn, int err, const xp_sockaddr *bound)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

	if (!err) {
		xp__tunnel_send(tn, ok, sizeof(ok) - 1);
		return 0;
	}
	if (err == -EACCES)
		return answer(tn, 403, "");
	if (err == -ETIMEDOUT)
		return answer(tn, 504, "");
	return answer(tn, 502, "");
}

static const struct xp__tunnel_kind http_kind = {
    .start = hp_start,
    .step = hp_step,
    .answer = hp_answer,
};

xp_protocol *xp_http_proxy_new(xp_loop *loop, const xp_proxy_server_opts *opts)
{
	return xp__tunnel_new(loop, opts, &http_kind);
}
