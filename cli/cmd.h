/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - the five xport commands.  Each gets the parsed, validated
 * command line and returns the process exit status (see xport(1),
 * exit status table); it prints its own `xport: ...` line on failure.
 */
#ifndef XPORT_CLI_CMD_H
#define XPORT_CLI_CMD_H

#include "opts.h"

int xp_cmd_tcp_server(const struct xp_cli *cli);
int xp_cmd_tcp_client(const struct xp_cli *cli);
int xp_cmd_udp_echo(const struct xp_cli *cli);
int xp_cmd_subprocess(const struct xp_cli *cli);
int xp_cmd_pipe(const struct xp_cli *cli);

#endif /* XPORT_CLI_CMD_H */
