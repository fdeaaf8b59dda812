// SPDX-License-Identifier: MIT
/*
 * sock.c - the socket and descriptor helpers every kind shares (as libuv's
 * core.c or Redis's anet.c): sockets made non-blocking and close-on-exec
 * in one call, Unix addresses, descriptor flags, addresses of a socket.
 * Nothing here knows about transports or the loop.
 */
#include "internal.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

int xp__socket(int family, int type, int proto)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);

	return fd < 0 ? -errno : fd;
}

int xp__unix_addr(const char *path, xp_sockaddr *out)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->u.ss;
	size_t n;

	if (!path || !*path)
		return -EINVAL;
	n = strlen(path);
	if (n >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@') {
		un->sun_path[0] = '\0';
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
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
