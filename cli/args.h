/* SPDX-License-Identifier: MIT */
/*
 * args.h - the xport command-line parser and its option table.
 *
 * One static table (xp_cli_options) drives parsing, `--help` output and
 * `--dump-options` (from which the shell completions are generated), so
 * the three cannot disagree.
 */
#ifndef XPORT_CLI_ARGS_H
#define XPORT_CLI_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "opts.h"

/* Return values of xp_cli_parse(). */
#define XP_CLI_OK 0	 /* run out->command */
#define XP_CLI_HELP 1	 /* print usage of out->command (NONE: all) */
#define XP_CLI_VERSION 2 /* print the version lines */
#define XP_CLI_DUMP 3	 /* print the option table (--dump-options) */
#define XP_CLI_PARSED 4	 /* valid; print it (hidden --parse-only) */
#define XP_CLI_USAGE 64	 /* err holds a one-line message, no prefix */

int xp_cli_parse(int argc, char **argv, struct xp_cli *out, char *err, size_t errlen);
/* One --allow/--deny value (rule files use it too): 0 for a CIDR (r
 * filled), 1 for a host name (r->name = s, to be resolved), -1 if s is
 * neither. */
int xp_cli_parse_rule(const char *s, struct xp_cli_cidr *r);

/* Bit of a command in xp_cli_option.commands; XP_CMD_NONE = before it. */
#define XP_IN(cmd) (1u << (cmd))

enum xp_cli_arg {
	XP_ARG_NONE,	 /* a flag */
	XP_ARG_REQUIRED, /* --opt VALUE or --opt=VALUE */
	XP_ARG_OPTIONAL	 /* --opt or --opt=VALUE only */
};

/* Help sections, in the order a command's help prints them. */
enum xp_cli_group {
	XP_GRP_COMMAND, /* options of exactly one command */
	XP_GRP_SERVER,
	XP_GRP_TLS,
	XP_GRP_STREAM,
	XP_GRP_GLOBAL,
	XP_GRP_COUNT
};

struct xp_cli_option {
	int id;
	const char *name; /* long name, without "--" */
	char short_name;  /* 0: none */
	enum xp_cli_arg arg;
	const char *value_name; /* "SIZE", "FILE", ... (NULL for flags) */
	const char *choices;	/* space-separated values, or NULL */
	unsigned int commands;	/* XP_IN() bits */
	enum xp_cli_group group;
	int hidden; /* parsed, but not in help or completions */
	const char *help;
};

struct xp_cli_cmdinfo {
	const char *name;    /* "tcp-server" */
	const char *args;    /* "ADDR" */
	const char *summary; /* one line */
	const char *details; /* extra help paragraphs, or NULL */
};

/* A kind of `pipe` endpoint: "tcp:" + value, or a whole word ("-"). */
struct xp_cli_eptype {
	const char *prefix;
	enum xp_cli_ep_kind kind;
	const char *value_name; /* "" for the whole-word forms */
	const char *help;
};

extern const struct xp_cli_option xp_cli_options[];
extern const size_t xp_cli_n_options;
extern const struct xp_cli_cmdinfo xp_cli_commands[XP_CMD_COUNT];
/* Names of the commands in mask, comma-separated (errors and help). */
void xp_cli_command_list(unsigned int mask, char *buf, size_t len);
extern const struct xp_cli_eptype xp_cli_endpoints[];
extern const size_t xp_cli_n_endpoints;

/* help.c */
void xp_cli_usage(FILE *f, enum xp_cli_command cmd);
void xp_cli_dump_options(FILE *f);
void xp_cli_print_config(FILE *f, const struct xp_cli *c);

#endif /* XPORT_CLI_ARGS_H */
