/* SPDX-License-Identifier: MIT */
/*
 * prep.h - the start-up step between parsing and running a command.
 */
#ifndef XPORT_CLI_PREP_H
#define XPORT_CLI_PREP_H

#include "opts.h"

/* Resolves --source and the host names of --allow/--deny, reads the rule
 * files.  0, or the exit status after printing the one
 * `xport:` line. */
int cli_prepare(struct cli_config *c);

#endif /* XPORT_CLI_PREP_H */
