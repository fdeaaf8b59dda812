// SPDX-License-Identifier: MIT
/*
 * util.c - error strings, address formatting and escaping, copying
 * optional strings, the test-only allocation-failure hook.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/un.h>

/* The wrappers internal.h puts in place of malloc, calloc and realloc. */
#undef malloc
#undef calloc
#undef realloc

int xp__alloc_fail_after;

/* One relaxed atomic: executor threads allocate too. */
static bool alloc_fails(void)
{
	if (__atomic_load_n(&xp__alloc_fail_after, __ATOMIC_RELAXED) <= 0)
		return false;
	if (__atomic_sub_fetch(&xp__alloc_fail_after, 1, __ATOMIC_RELAXED) != 0)
		return false;
	errno = ENOMEM;
	return true;
}

void *xp__malloc(size_t n)
{
	return alloc_fails() ? NULL : malloc(n);
}

void *xp__calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : calloc(n, size);
}

void *xp__realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : realloc(p, n);
}

int xp__dup_str(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

const char *xp_version(void)
{
	return XP_VERSION_STRING;
}

const char *xp_strerror(int err)
{
	switch (err) {
	case 0:
		return "Success";
	case XP_ECALLBACK:
		return "Callback reported failure";
	case XP_ECLOSED:
		return "Event loop or transport is closed";
	case XP_ESTATE:
		return "Invalid state for this operation";
	case XP_ERESOLVE:
		return "Name or service not known";
	case XP_ETLS:
		return "TLS failure";
	case XP_ETLSVERIFY:
		return "TLS certificate verification failed";
	case XP_ETRUNCATED:
		return "TLS connection truncated (no close_notify)";
	case XP_EPIN:
		return "TLS certificate does not match the pin";
	}
	if (xp_is_proxy_error(err))
		return xp__proxy_strerror(err);
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "Unknown error";
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms,
 * no surrogates, nothing over U+10FFFF), 0 if there is none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, C2 80..C2 9F). */
static bool is_control(const unsigned char *s, size_t clen)
{
	if (clen == 1)
		return s[0] < 0x20 || s[0] == 0x7f;
	return clen == 2 && s[0] == 0xc2 && s[1] < 0xa0;
}

int xp_escape_str(char *buf, size_t size, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t o = 0, i = 0;

	if (!size)
		return len ? -ENOSPC : 0;
	while (i < len) {
		size_t clen = utf8_len(s + i, len - i);
		bool esc = !clen || is_control(s + i, clen);
		size_t step = clen ? clen : 1;
		size_t out = esc ? 4 * step : step;

		if (o + out >= size) {
			buf[o] = '\0';
			return -ENOSPC;
		}
		for (size_t k = 0; k < step; k++) {
			if (esc) {
				snprintf(buf + o, 5, "\\x%02x", s[i + k]);
				o += 4;
			} else {
				buf[o++] = (char)s[i + k];
			}
		}
		i += step;
	}
	buf[o] = '\0';
	return 0;
}

/* "unix:PATH" / "unix:@NAME"; the name is the peer's choice: escaped. */
static int format_unix(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	const struct sockaddr_un *un = (const void *)sa;
	size_t plen = len - offsetof(struct sockaddr_un, sun_path);
	bool abstract;
	int n;

	if (plen > sizeof(un->sun_path))
		plen = sizeof(un->sun_path);
	/* An abstract name is not NUL-terminated and may hold NULs. */
	abstract = plen > 0 && un->sun_path[0] == '\0';
	n = snprintf(buf, size, "unix:%s", abstract ? "@" : "");
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	if (abstract)
		return xp_escape_str(buf + n, size - (size_t)n, un->sun_path + 1, plen - 1);
	return xp_escape_str(buf + n, size - (size_t)n, un->sun_path, strnlen(un->sun_path, plen));
}

int xp_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	int n;
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;
		if (len < (socklen_t)sizeof(*in))
			return -EINVAL; /* the address is not all there */
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		n = snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (len < (socklen_t)sizeof(*in6))
			return -EINVAL;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		n = snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX:
		return format_unix(sa, len, buf, size);
	default:
		return -EAFNOSUPPORT;
	}
	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}
