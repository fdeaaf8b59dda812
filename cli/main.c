// SPDX-License-Identifier: MIT
/*
 * main.c - the xport program: parse the command line, answer --help and
 * --version, then hand over to one of the commands (cmd.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "args.h"
#include "cmd.h"
#include "prep.h"
#include "run.h"

/*
 * The library's header is found when building with the Makefile (-Isrc);
 * a hand build of the front end alone has no library to report.
 */
#if defined(__has_include)
#if __has_include("xport.h")
#include "xport.h"
#define HAVE_LIBXPORT 1
#endif
#endif

static void print_version(FILE *f)
{
	fprintf(f, "xport %s\n", XPORT_VERSION);
#ifdef HAVE_LIBXPORT
	fprintf(f, "libxport %s\n", xp_version());
#else
	fprintf(f, "libxport %s\n", XPORT_VERSION);
#endif
	fprintf(f, "%s\n", OpenSSL_version(OPENSSL_VERSION));
}

/* stdout output must not fail silently (e.g. `xport --help >/dev/full`). */
static int finish_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	fprintf(stderr, "xport: write error on standard output: %s\n",
		strerror(errno ? errno : EIO));
	return 1;
}

/*
 * A descriptor 0, 1 or 2 the caller closed (`<&-`, `>&-`) would be taken
 * by the loop's first descriptor, and "standard input" would then be the
 * loop's own epoll or socket descriptor (a hang, or bytes sent to the
 * wrong place).  Hold them with /dev/null opened read-only: a closed
 * input reads as empty (like nc), a closed output still fails every
 * write (EBADF), so nothing is lost silently.
 */
static void hold_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		int n;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		n = open("/dev/null", O_RDONLY);
		if (n >= 0 && n != fd)
			close(n);
	}
}

/*
 * Every connection costs a descriptor (a relay two or three): a soft limit
 * of 1024 would turn a busy server away long before the system would.
 * The hard limit is what this process may have; an unlimited one is
 * bounded by the kernel's fs.nr_open.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 || rl.rlim_max != RLIM_INFINITY)
		return;
	f = fopen("/proc/sys/fs/nr_open", "r");
	if (f && fscanf(f, "%lu", &nr_open) == 1 && nr_open > 0) {
		rl.rlim_cur = nr_open;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (f)
		fclose(f);
}

static int run(const struct cli_config *cli)
{
	static int (*const commands[])(const struct cli_config *) = {
	    [CLI_CMD_TCP_SERVER] = cli_cmd_tcp_server,
	    [CLI_CMD_TCP_CLIENT] = cli_cmd_tcp_client,
	    [CLI_CMD_UDP_ECHO] = cli_cmd_udp_echo,
	    [CLI_CMD_SUBPROCESS] = cli_cmd_subprocess,
	    [CLI_CMD_PIPE] = cli_cmd_pipe,
	};

	/* Before anything a command does: its first step may be logged. */
	cli_log_init(cli);
	return commands[cli->command](cli);
}

int main(int argc, char **argv)
{
	static struct cli_config cli; /* large; keep it off the stack */
	char err[512];
	int rc;

	/*
	 * Numbers are parsed and printed the same whatever the user's
	 * locale (a decimal comma would break --grace 0.5 and --stats).
	 */
	setlocale(LC_ALL, "C");
	hold_std_fds();
	/* A peer closing early must be an error return, never a kill. */
	signal(SIGPIPE, SIG_IGN);

	rc = cli_parse(argc, argv, &cli, err, sizeof(err));
	switch (rc) {
	case CLI_OK:
		raise_fd_limit();
		rc = cli_prepare(&cli);
		return rc ? rc : run(&cli);
	case CLI_HELP:
		cli_usage(stdout, cli.command);
		return finish_stdout();
	case CLI_VERSION:
		print_version(stdout);
		return finish_stdout();
	case CLI_DUMP:
		cli_dump_options(stdout);
		return finish_stdout();
	case CLI_PARSED:
		cli_print_config(stdout, &cli);
		return finish_stdout();
	default:
		fprintf(stderr, "xport: %s\n", err);
		return CLI_USAGE;
	}
}
