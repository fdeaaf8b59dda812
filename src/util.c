/*
 * util.c - error strings, address formatting, descriptor flags.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/un.h>

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

int xp_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	int n;
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		n = snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		n = snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const void *)sa;
		size_t plen = len - offsetof(struct sockaddr_un, sun_path);
		if (plen > sizeof(un->sun_path))
			plen = sizeof(un->sun_path);
		if (plen == 0)
			n = snprintf(buf, size, "unix:");
		else if (un->sun_path[0] == '\0') /* abstract: not NUL-terminated */
			n = snprintf(buf, size, "unix:@%.*s", (int)plen - 1, un->sun_path + 1);
		else
			n = snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, plen),
				     un->sun_path);
		break;
	}
	default:
		return -EAFNOSUPPORT;
	}
	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

int xp__set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	int nfl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0)
		return -errno;
	return 0;
}

int xp__set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -errno;
	if (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int xp__sockaddr_from_fd(int fd, bool peer, xp_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	out->len = sizeof(out->u.ss);
	int r =
	    peer ? getpeername(fd, &out->u.sa, &out->len) : getsockname(fd, &out->u.sa, &out->len);
	if (r < 0) {
		out->len = 0;
		return -errno;
	}
	return 0;
}
