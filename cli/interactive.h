/* SPDX-License-Identifier: MIT */
/*
 * interactive.h - the hook for tcp-client's line-editing mode (GNU
 * readline through its callback interface), implemented in interactive.c.
 *
 * tcp-client calls cli_interactive() when stdin and stdout are both
 * terminals, --no-readline was not given, xport was built with readline
 * (CLI_HAVE_READLINE) and interactive.c is linked in (the symbol is weak,
 * so the program links without it and then relays plainly).
 *
 * The call contract:
 *   - t is a connected stream (or TLS) transport.  Its current protocol is
 *     a placeholder with reading paused: install yours with
 *     xp_transport_set_protocol(t, p), call p's connection_made yourself if
 *     it needs one, then xp_transport_resume_reading(t).
 *   - The loop is NOT running when this is called; run it yourself (until
 *     the connection is lost) and return.  The caller's SIGINT/SIGTERM/
 *     SIGUSR1 handlers have been removed: install what you need.
 *   - The caller holds one reference on t (xp_transport_retain) and drops
 *     it after you return.
 *   - Return the exit status of the contract (0 for a clean end, 1 for a
 *     reset or failure, printing one `xport: ...` line).
 */
#ifndef XPORT_CLI_INTERACTIVE_H
#define XPORT_CLI_INTERACTIVE_H

#include "opts.h"
#include "xport.h"

int cli_interactive(xp_loop *loop, xp_transport *t, const struct cli_config *c)
    __attribute__((weak));

static inline int cli_interactive_available(void)
{
	return cli_interactive != NULL;
}

#endif /* XPORT_CLI_INTERACTIVE_H */
