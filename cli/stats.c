// SPDX-License-Identifier: MIT
/*
 * stats.c - the --stats lines: `xport: stats PEER sent=N received=N
 * seconds=F end=REASON`, or one JSON object per line with --stats=json.
 */
#include <inttypes.h>
#include <stdio.h>

#include "run.h"

/* JSON string body: escape quotes, backslashes and control characters. */
static void json_str(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
}

void xp_cli_stats_line(const struct xp_cli *c, const xp_conn_stats *st, const char *end,
		       double seconds)
{
	const char *peer = st->peer[0] ? st->peer : "-";

	if (seconds < 0)
		seconds = 0;
	if (c->stats == XP_STATS_JSON) {
		char p[sizeof(st->peer) * 6 + 8];

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
