// SPDX-License-Identifier: MIT
/*
 * log.c - the `xport: ...` lines on stderr: notices (silenced by -q),
 * -v / -vv chatter, and failures (always).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "run.h"

static int verbosity;
static int quiet;

void cli_log_init(const struct cli_config *c)
{
	verbosity = c->verbosity;
	quiet = c->quiet;
}

int cli_log_on(int level)
{
	if (quiet)
		return 0;
	return verbosity >= level;
}

/* One fprintf per line, so lines from worker threads never interleave.
 * A line may carry what a peer chose (a Unix socket name, a host name):
 * escaped, it can neither break the line nor drive the terminal. */
static void vline(const char *fmt, va_list ap)
{
	char buf[1024], safe[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	xp_escape_str(safe, sizeof(safe), buf, strlen(buf));
	fprintf(stderr, "xport: %s\n", safe);
}

void cli_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!cli_log_on(level))
		return;
	va_start(ap, fmt);
	vline(fmt, ap);
	va_end(ap);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(fmt, ap);
	va_end(ap);
}

const char *cli_strerror(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "Connection timed out";
	case XP_ERESOLVE:
		return "Name or service not known";
	default:
		return xp_strerror(err);
	}
}
