/* SPDX-License-Identifier: MIT */
/*
 * args.h - the xport command-line parser and its option table.
 *
 * One static table (cli_options) drives parsing, `--help` output and
 * `--dump-options` (from which the shell completions are generated), so
 * the three cannot disagree.
 */
#ifndef XPORT_CLI_ARGS_H
#define XPORT_CLI_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "opts.h"

/* Return values of cli_parse(). */
#define CLI_OK 0      /* run out->command */
#define CLI_HELP 1    /* print usage of out->command (NONE: all) */
#define CLI_VERSION 2 /* print the version lines */
#define CLI_DUMP 3    /* print the option table (--dump-options) */
#define CLI_PARSED 4  /* valid; print it (hidden --parse-only) */
#define CLI_USAGE 64  /* err holds a one-line message, no prefix */

int cli_parse(int argc, char **argv, struct cli_config *out, char *err, size_t errlen);
/* One --allow/--deny value (rule files use it too): 0 for a CIDR (r
 * filled), 1 for a host name (r->name = s, to be resolved), -1 if s is
 * neither. */
int cli_parse_rule(const char *s, struct cli_cidr *r);

/* Bit of a command in cli_option.commands; CLI_CMD_NONE = before it. */
#define CLI_IN(cmd) (1u << (cmd))

enum cli_arg {
	CLI_ARG_NONE,	  /* a flag */
	CLI_ARG_REQUIRED, /* --opt VALUE or --opt=VALUE */
	CLI_ARG_OPTIONAL  /* --opt or --opt=VALUE only */
};

/* Help sections, in the order a command's help prints them. */
enum cli_group {
	CLI_GRP_COMMAND, /* options of exactly one command */
	CLI_GRP_SERVER,
	CLI_GRP_TLS,
	CLI_GRP_STREAM,
	CLI_GRP_GLOBAL,
	CLI_GRP_COUNT
};

struct cli_option {
	int id;
	const char *name; /* long name, without "--" */
	char short_name;  /* 0: none */
	enum cli_arg arg;
	const char *value_name; /* "SIZE", "FILE", ... (NULL for flags) */
	const char *choices;	/* space-separated values, or NULL */
	unsigned int commands;	/* CLI_IN() bits */
	enum cli_group group;
	int hidden; /* parsed, but not in help or completions */
	const char *help;
};

struct cli_cmdinfo {
	const char *name;    /* "tcp-server" */
	const char *args;    /* "ADDR" */
	const char *summary; /* one line */
	const char *details; /* extra help paragraphs, or NULL */
};

/* A kind of `pipe` endpoint: "tcp:" + value, or a whole word ("-"). */
struct cli_eptype {
	const char *prefix;
	enum cli_ep_kind kind;
	const char *value_name; /* "" for the whole-word forms */
	const char *help;
};

extern const struct cli_option cli_options[];
extern const size_t cli_n_options;
extern const struct cli_cmdinfo cli_commands[CLI_CMD_COUNT];
/* Names of the commands in mask, comma-separated (errors and help). */
void cli_command_list(unsigned int mask, char *buf, size_t len);
extern const struct cli_eptype cli_endpoints[];
extern const size_t cli_n_endpoints;

/* help.c */
void cli_usage(FILE *f, enum cli_command cmd);
void cli_dump_options(FILE *f);
void cli_print_config(FILE *f, const struct cli_config *c);

#endif /* XPORT_CLI_ARGS_H */
