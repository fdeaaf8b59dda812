// SPDX-License-Identifier: MIT
/*
 * ready.c - the readiness protocol for scripts: one `listening on ADDRESS`
 * line per bound socket on stderr (the real port), and --port-file
 * written atomically (temporary file + rename) at the same moment.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "run.h"

static int port_of(const xp_sockaddr *a, char *buf, size_t size)
{
	const struct sockaddr *sa = &a->u.sa;

	if (sa->sa_family == AF_INET)
		snprintf(buf, size, "%u",
			 ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port));
	else if (sa->sa_family == AF_INET6)
		snprintf(buf, size, "%u",
			 ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port));
	else if (xp_sockaddr_format(sa, a->len, buf, size) < 0)
		return -EINVAL;
	return 0;
}

static int write_port_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return -ENOMEM;
	}
	fprintf(f, "%s\n", text);
	if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0) {
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, path) != 0) {
		int e = -errno;

		unlink(tmp);
		return e;
	}
	return 0;
}

int cli_ready(const struct cli_config *c, const xp_sockaddr *addrs, int n)
{
	char buf[256];
	int i, err;

	/* The port file first: a script must never see a readiness line
	 * from a server that then exits because the file cannot be made. */
	if (c->port_file && n > 0 && port_of(&addrs[0], buf, sizeof(buf)) == 0) {
		err = write_port_file(c->port_file, buf);
		if (err < 0) {
			cli_err("port file %s: %s", c->port_file, cli_strerror(err));
			return CLI_EXIT_FAIL;
		}
	}
	if (!c->quiet) {
		for (i = 0; i < n; i++) {
			cli_sockaddr_str(&addrs[i].u.sa, addrs[i].len, buf, sizeof(buf));
			fprintf(stderr, "listening on %s\n", buf);
		}
		fflush(stderr);
	}
	return 0;
}

int cli_ready_server(const struct cli_config *c, xp_server *s)
{
	xp_sockaddr addrs[8];
	int n = 0, i, count = xp_server_sockets(s, NULL);

	for (i = 0; i < count && n < 8; i++)
		if (xp_server_sockname(s, i, &addrs[n]) == 0)
			n++;
	return cli_ready(c, addrs, n);
}
