// SPDX-License-Identifier: MIT
/*
 * stats.c - the --stats lines: `xport: stats PEER sent=N received=N
 * seconds=F end=REASON`, or one JSON object per line with --stats=json.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "run.h"

/* JSON string body of s, which is already printable UTF-8 (escaped). */
static void json_str(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 3 < size; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
}

void cli_stats_line(const struct cli_config *c, const xp_conn_stats *st, const char *end,
		    double seconds)
{
	const char *name = st->peer[0] ? st->peer : "-";
	char peer[sizeof(st->peer) * 4 + 1];

	/* A peer's name (or a label) is never trusted to be printable. */
	xp_escape_str(peer, sizeof(peer), name, strlen(name));
	if (seconds < 0)
		seconds = 0;
	if (c->stats == CLI_STATS_JSON) {
		char p[sizeof(peer) * 2 + 1];

		json_str(p, sizeof(p), peer);
		fprintf(stderr,
			"{\"peer\":\"%s\",\"sent\":%" PRIu64 ",\"received\":%" PRIu64
			",\"seconds\":%.3f,\"end\":\"%s\"}\n",
			p, st->sent, st->received, seconds, end);
	} else {
		fprintf(stderr,
			"xport: stats %s sent=%" PRIu64 " received=%" PRIu64
			" seconds=%.3f end=%s\n",
			peer, st->sent, st->received, seconds, end);
	}
}
