/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - the five xport commands.  Each gets the parsed, validated
 * command line and returns the process exit status (see xport(1),
 * exit status table); it prints its own `xport: ...` line on failure.
 */
#ifndef XPORT_CLI_CMD_H
#define XPORT_CLI_CMD_H

#include "opts.h"

int cli_cmd_tcp_server(const struct cli_config *cli);
int cli_cmd_tcp_client(const struct cli_config *cli);
int cli_cmd_udp_echo(const struct cli_config *cli);
int cli_cmd_subprocess(const struct cli_config *cli);
int cli_cmd_pipe(const struct cli_config *cli);

#endif /* XPORT_CLI_CMD_H */
