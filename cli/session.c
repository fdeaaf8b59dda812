// SPDX-License-Identifier: MIT
/*
 * session.c - how a session ends (xport(1), HOW A SESSION ENDS), as relay
 * options.
 *
 * EOF passing and flushing are the relay's own; what the command line adds
 * is which EOF ends the session and which way bytes may go:
 *
 *   - a terminal never sends EOF by itself, so with stdin a terminal the
 *     other end's EOF ends the session (nc's behaviour: `xport tcp-server
 *     :1234 > file` at a prompt exits when the file is across);
 *   - a -k stdio server shares stdin with the next connection, so each
 *     connection ends at its peer's EOF and never holds a --max-conns slot
 *     waiting for a stdin EOF that belongs to no one connection;
 *   - --send-only / --recv-only make the relay one way.
 */
#include <unistd.h>

#include "run.h"

void cli_one_way(const struct cli_config *c, xp_relay_opts *ro, int to)
{
	if (c->one_way == CLI_SEND_ONLY)
		ro->one_way = to == 0 ? XP_RELAY_1_TO_0 : XP_RELAY_0_TO_1;
	else if (c->one_way == CLI_RECV_ONLY)
		ro->one_way = to == 0 ? XP_RELAY_0_TO_1 : XP_RELAY_1_TO_0;
}

void cli_stdio_session(xp_relay_opts *ro, int stdio_end, int shared)
{
	if (shared || isatty(0))
		ro->eof_ends |= 1u << (1 - stdio_end);
}
