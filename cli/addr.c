// SPDX-License-Identifier: MIT
/*
 * addr.c - from a parsed ADDR to library calls: servers listen on every
 * interface for an empty host, clients go to localhost; unix:PATH and
 * unix:@NAME (abstract).  Also --allow/--deny and the error -> exit
 * status mapping of xport(1), EXIT STATUS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "run.h"

void cli_addr_str(const struct cli_addr *a, int server, char *buf, size_t size)
{
	const char *host = a->host;

	switch (a->kind) {
	case CLI_ADDR_UNIX:
		snprintf(buf, size, "unix:%s", a->path);
		return;
	case CLI_ADDR_UNIX_ABSTRACT:
		snprintf(buf, size, "unix:@%s", a->path);
		return;
	case CLI_ADDR_HOSTPORT:
		break;
	}
	if (!host[0])
		host = server ? "*" : "localhost";
	if (a->is_v6_literal)
		snprintf(buf, size, "[%s]:%s", host, a->port);
	else
		snprintf(buf, size, "%s:%s", host, a->port);
}

/* The library spells an abstract socket "@name". */
static const char *unix_path(const struct cli_addr *a, char *buf, size_t size)
{
	if (a->kind == CLI_ADDR_UNIX_ABSTRACT) {
		snprintf(buf, size, "@%s", a->path);
		return buf;
	}
	return a->path;
}

xp_future *cli_listen(xp_loop *loop, xp_protocol_factory f, void *arg, const struct cli_addr *a,
		      const xp_server_opts *o)
{
	char p[sizeof(a->path) + 2];

	if (a->kind != CLI_ADDR_HOSTPORT)
		return xp_create_unix_server(loop, f, arg, unix_path(a, p, sizeof(p)), o);
	return xp_create_server(loop, f, arg, a->host[0] ? a->host : NULL, a->port, o);
}

/* :PORT goes to localhost, of the one family under -4/-6. */
const char *cli_client_host(const struct cli_addr *a, int family)
{
	if (a->host[0])
		return a->host;
	if (family == AF_INET)
		return "127.0.0.1";
	if (family == AF_INET6)
		return "::1";
	return "localhost";
}

/*
 * --source for a connection to a: of the family of a literal, of -4/-6,
 * else the one the source name listed first (IPv4 for a bare :PORT).  A
 * source without that family is still set: the library then finds no
 * target address it can bind for and fails with EADDRNOTAVAIL.
 */
static void source_for(const struct cli_config *c, const struct cli_addr *a, xp_connect_opts *o)
{
	unsigned char buf[4];
	int fam = c->family;
	int have4 = c->source4.sin_family == AF_INET, have6 = c->source6.sin6_family == AF_INET6;

	if (!c->has_source || a->kind != CLI_ADDR_HOSTPORT)
		return;
	if (c->proxy.kind)
		a = &c->proxy.addr; /* the connection made is to the proxy */
	if (!fam && a->is_v6_literal)
		fam = AF_INET6;
	else if (!fam && a->host[0] && inet_pton(AF_INET, a->host, buf) == 1)
		fam = AF_INET;
	if (!fam)
		fam = c->source_first ? c->source_first : AF_INET;
	if ((fam == AF_INET && have4) || !have6) {
		o->local_addr = (const struct sockaddr *)&c->source4;
		o->local_addrlen = sizeof(c->source4);
	} else {
		o->local_addr = (const struct sockaddr *)&c->source6;
		o->local_addrlen = sizeof(c->source6);
	}
}

void cli_connect_opts(const struct cli_config *c, const struct cli_addr *a, xp_connect_opts *o,
		      xp_proxy *px)
{
	memset(o, 0, sizeof(*o));
	o->timeout = c->connect_timeout > 0 ? c->connect_timeout : 0;
	o->family = c->family;
	/* The proxy carries TCP only: a unix: end of pipe is direct. */
	if (a->kind == CLI_ADDR_HOSTPORT)
		o->proxy = cli_proxy(c, px);
	source_for(c, a, o);
}

void cli_conn_name(const struct cli_config *c, const struct cli_addr *a, char *buf, size_t size)
{
	const struct cli_addr *s = &c->source;
	size_t n;

	cli_addr_str(a, 0, buf, size);
	n = strlen(buf);
	if (!c->has_source || a->kind != CLI_ADDR_HOSTPORT || n >= size)
		return;
	if (!s->host[0])
		snprintf(buf + n, size - n, " from port %s", s->port);
	else if (s->is_v6_literal)
		snprintf(buf + n, size - n, " from [%s]%s%s", s->host, s->port[0] ? ":" : "",
			 s->port);
	else
		snprintf(buf + n, size - n, " from %s%s%s", s->host, s->port[0] ? ":" : "",
			 s->port);
}

xp_future *cli_connect(xp_loop *loop, xp_protocol_factory f, void *arg, const struct cli_addr *a,
		       const xp_connect_opts *o)
{
	char p[sizeof(a->path) + 2];

	if (a->kind != CLI_ADDR_HOSTPORT)
		return xp_create_unix_connection(loop, f, arg, unix_path(a, p, sizeof(p)), o);
	return xp_create_connection(loop, f, arg, cli_client_host(a, o ? o->family : 0), a->port,
				    o);
}

/* A reset is not here: it needs an established connection (a refusal is
 * ECONNREFUSED), so it is the runtime failure 1 even when it comes as the
 * result of the connect or of a TLS handshake. */
int cli_connect_status(int err)
{
	switch (err) {
	case -ETIMEDOUT:
	case -ECANCELED:
		return CLI_EXIT_TEMPFAIL;
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EHOSTDOWN:
	case -ENETDOWN:
	case -EADDRNOTAVAIL:
	case -EADDRINUSE: /* --source HOST:PORT taken */
	case -EACCES:	  /* --source port below 1024, or a Unix socket's mode */
	case -ENOENT:	  /* unix socket path */
	case -EAFNOSUPPORT:
	case XP_ERESOLVE:
		return CLI_EXIT_UNAVAILABLE;
	default:
		return xp_is_proxy_error(err) ? CLI_EXIT_UNAVAILABLE : CLI_EXIT_FAIL;
	}
}

int cli_listen_status(int err)
{
	switch (err) {
	case -EADDRINUSE:
	case -EACCES:
	case -EPERM:
	case -EADDRNOTAVAIL:
	case -EEXIST:
	case -ENOENT:
	case -ENOTDIR:
	case -EROFS:
	case XP_ERESOLVE:
		return CLI_EXIT_OSERR;
	default:
		return CLI_EXIT_FAIL;
	}
}

/* Is the address (16 bytes for v6, 4 for v4) inside the rule's network? */
static int cidr_match(const struct cli_cidr *r, int family, const unsigned char *addr)
{
	unsigned int bits = r->prefix, i;

	if (r->family != family)
		return 0;
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (addr[i] != r->addr[i])
			return 0;
	if (bits) {
		unsigned char mask = (unsigned char)(0xff << (8 - bits));

		if ((addr[i] & mask) != (r->addr[i] & mask))
			return 0;
	}
	return 1;
}

/* v4-mapped IPv6 as IPv4; 0 for a non-IP address. */
static int ip_of(const struct sockaddr *sa, unsigned char addr[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, &a6->s6_addr[12], 4);
			return AF_INET;
		}
		memcpy(addr, a6, 16);
		return AF_INET6;
	}
	return 0;
}

int cli_target_allowed(void *cli, const struct sockaddr *sa, socklen_t len)
{
	const struct cli_config *c = cli;
	unsigned char addr[16];
	int family = ip_of(sa, addr);

	for (unsigned int i = 0; family && i < c->n_fwd_allow; i++)
		if (cidr_match(&c->fwd_allow[i], family, addr))
			return 1;
	return 0;
}

const xp_proxy *cli_proxy(const struct cli_config *c, xp_proxy *px)
{
	const struct cli_proxy *p = &c->proxy;

	if (!p->kind)
		return NULL;
	memset(px, 0, sizeof(*px));
	px->kind = p->kind == CLI_PROXY_HTTP	 ? XP_PROXY_HTTP
		   : p->kind == CLI_PROXY_SOCKS5 ? XP_PROXY_SOCKS5
						 : XP_PROXY_SOCKS4A;
	px->host = p->addr.host;
	px->port = p->addr.port;
	px->user = p->has_user ? p->user : NULL;
	px->password = p->has_password ? p->password : NULL;
	return px;
}

const char *cli_connect_what(const struct cli_config *c, const char *name, int err, char *buf,
			     size_t size)
{
	char proxy[300];

	if (!c->proxy.kind) {
		snprintf(buf, size, "connect %s", name);
		return buf;
	}
	cli_addr_str(&c->proxy.addr, 0, proxy, sizeof(proxy));
	if (xp_is_proxy_error(err))
		snprintf(buf, size, "proxy %s", proxy);
	else
		snprintf(buf, size, "connect %s via proxy %s", name, proxy);
	return buf;
}

/*
 * A peer matching any --deny is refused, whatever --allow says (so a
 * deny carves holes in an allow list, in any order).  Otherwise one
 * matching --allow accepts it; with none matching it is refused if any
 * --allow was given (an allow list), else accepted.  A v4-mapped IPv6
 * peer (dual-stack socket) is matched as IPv4.
 */
int cli_peer_allowed(const struct cli_config *c, const struct sockaddr *sa, socklen_t len)
{
	const struct cli_cidr *rules = c->acl ? c->acl : c->rules;
	unsigned int i, n = c->acl ? c->n_acl : c->n_rules;
	unsigned char addr[16];
	int family, any_allow = 0, allowed = 0;

	if (!c->n_rules)
		return 1;
	/* An allow file with no rule in it is still an allow list. */
	for (i = 0; i < c->n_rules; i++)
		any_allow |= c->rules[i].allow;
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return 0;
	/* A truncated address cannot match a rule: refuse it. */
	if (sa->sa_family == AF_INET) {
		if (len < (socklen_t)sizeof(struct sockaddr_in))
			return 0;
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (len < (socklen_t)sizeof(struct sockaddr_in6))
			return 0;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			memcpy(addr, &a6->s6_addr[12], 4);
		} else {
			family = AF_INET6;
			memcpy(addr, a6, 16);
		}
	} else {
		return 1; /* Unix sockets have no address to check */
	}
	for (i = 0; i < n; i++) {
		if (!cidr_match(&rules[i], family, addr))
			continue;
		if (!rules[i].allow)
			return 0;
		allowed = 1;
	}
	return allowed || !any_allow;
}

void cli_sockaddr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	int r;

	if (sa && len >= (socklen_t)sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};

			memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
			xp_sockaddr_format((struct sockaddr *)&s4, sizeof(s4), buf, size);
			return;
		}
	}
	r = sa ? xp_sockaddr_format(sa, len, buf, size) : -EINVAL;
	/* -ENOSPC: a long (escaped) Unix name, cut short but still a name. */
	if (r < 0 && (r != -ENOSPC || !*buf))
		snprintf(buf, size, "?");
}

void cli_set_linger0(xp_transport *t)
{
	const int *fd = xp_transport_get_extra_info(t, "socket", NULL);
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	if (fd && *fd >= 0)
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}
