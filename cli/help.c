// SPDX-License-Identifier: MIT
/*
 * help.c - usage text and --dump-options, both generated from the option
 * table in args.c, so that help, completions and parsing cannot drift.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

#define HELP_COLUMN 30

static const char *const group_titles[CLI_GRP_COUNT] = {
    [CLI_GRP_COMMAND] = NULL, /* "<command> options" */
    [CLI_GRP_SERVER] = "Server options",
    [CLI_GRP_TLS] = "TLS options",
    [CLI_GRP_STREAM] = "Stream options",
    [CLI_GRP_GLOBAL] = "Global options",
};

static const char exit_text[] =
    "Exit status: 0 done, 1 failure, 64 usage error, 66 unreadable file,\n"
    "69 cannot connect, 71 cannot listen, 75 timeout, 126/127 command\n"
    "not executable/found, 128+N killed by signal N.\n";

/* Left part of an option line: "  -x, --hexdump" or "      --grace SECONDS". */
static int option_lhs(const struct cli_option *o, char *buf, size_t len)
{
	char sh[8] = "    ";

	if (o->short_name)
		snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
	switch (o->arg) {
	case CLI_ARG_REQUIRED:
		return snprintf(buf, len, "  %s--%s %s", sh, o->name, o->value_name);
	case CLI_ARG_OPTIONAL:
		return snprintf(buf, len, "  %s--%s[=%s]", sh, o->name, o->value_name);
	default:
		return snprintf(buf, len, "  %s--%s", sh, o->name);
	}
}

/* Print text from column col, wrapping words before column 80. */
static void wrap(FILE *f, int col, const char *text)
{
	int at = col;

	while (*text) {
		int len = (int)strcspn(text, " ");

		if (at > col && at + 1 + len >= 80) {
			fprintf(f, "\n%*s", col, "");
			at = col;
		} else if (at > col) {
			fputc(' ', f);
			at++;
		}
		fprintf(f, "%.*s", len, text);
		at += len;
		text += len;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

/* One option line; note (if any) is appended to the help text. */
static void print_option(FILE *f, const struct cli_option *o, const char *note)
{
	char lhs[96], text[256];
	int n = option_lhs(o, lhs, sizeof(lhs));

	if (n < HELP_COLUMN - 1)
		fprintf(f, "%-*s", HELP_COLUMN, lhs);
	else
		fprintf(f, "%s\n%*s", lhs, HELP_COLUMN, "");
	snprintf(text, sizeof(text), "%s%s%s", o->help, note ? " " : "", note ? note : "");
	wrap(f, HELP_COLUMN, text);
}

static int shown(const struct cli_option *o, unsigned int mask, enum cli_group g)
{
	return !o->hidden && o->group == g && (o->commands & mask);
}

/* The command set most options of group g share (the heading's). */
static unsigned int common_mask(unsigned int mask, enum cli_group g)
{
	unsigned int best = 0;
	size_t i, j, n, best_n = 0;

	for (i = 0; i < cli_n_options; i++) {
		unsigned int m = cli_options[i].commands & mask;

		if (!shown(&cli_options[i], mask, g))
			continue;
		for (j = 0, n = 0; j < cli_n_options; j++)
			n += shown(&cli_options[j], mask, g) &&
			     (cli_options[j].commands & mask) == m;
		if (n > best_n) {
			best = m;
			best_n = n;
		}
	}
	return best;
}

/* "[only tcp-server]" or "[also udp-echo]" for an option off the heading. */
static const char *difference(unsigned int m, unsigned int common, char *buf, size_t len)
{
	char names[128];
	int also = (m & common) == common;

	if (m == common)
		return NULL;
	cli_command_list(also ? m & ~common : m, names, sizeof(names));
	snprintf(buf, len, "[%s %s]", also ? "also" : "only", names);
	return buf;
}

static void print_group(FILE *f, const char *title, unsigned int mask, enum cli_group g,
			int annotate)
{
	unsigned int common = common_mask(mask, g);
	char names[128], note[160];
	size_t i;

	if (!common)
		return;
	cli_command_list(common, names, sizeof(names));
	if (annotate)
		fprintf(f, "\n%s (%s):\n", title, names);
	else
		fprintf(f, "\n%s:\n", title);
	for (i = 0; i < cli_n_options; i++) {
		const struct cli_option *o = &cli_options[i];

		if (!shown(o, mask, g))
			continue;
		print_option(f, o,
			     annotate ? difference(o->commands & mask, common, note, sizeof(note))
				      : NULL);
	}
}

static void command_usage(FILE *f, enum cli_command cmd)
{
	const struct cli_cmdinfo *ci = &cli_commands[cmd];
	char title[64];
	int g;

	fprintf(f, "Usage: xport [GLOBAL OPTIONS] %s [OPTIONS] %s\n\n", ci->name, ci->args);
	fprintf(f, "%c%s.\n", ci->summary[0] - 'a' + 'A', ci->summary + 1);
	if (ci->details)
		fprintf(f, "\n%s", ci->details);
	snprintf(title, sizeof(title), "%s options", ci->name);
	print_group(f, title, CLI_IN(cmd), CLI_GRP_COMMAND, 0);
	for (g = CLI_GRP_SERVER; g < CLI_GRP_COUNT; g++)
		print_group(f, group_titles[g], CLI_IN(cmd), (enum cli_group)g, 0);
	fprintf(f, "\n%s", exit_text);
}

static void all_usage(FILE *f)
{
	unsigned int cmds = 0;
	char title[64];
	int cmd, g;

	fputs("Usage: xport [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS...\n"
	      "       xport --help | --version | help COMMAND\n"
	      "\nCommands:\n",
	      f);
	for (cmd = CLI_CMD_TCP_SERVER; cmd < CLI_CMD_COUNT; cmd++) {
		const struct cli_cmdinfo *ci = &cli_commands[cmd];
		char lhs[64];

		snprintf(lhs, sizeof(lhs), "  %s %s", ci->name, ci->args);
		fprintf(f, "%-*s%s\n", HELP_COLUMN, lhs, ci->summary);
		cmds |= CLI_IN(cmd);
	}
	fprintf(f, "\n%s%s", cli_commands[CLI_CMD_TCP_SERVER].details,
		cli_commands[CLI_CMD_PIPE].details);
	for (cmd = CLI_CMD_TCP_SERVER; cmd < CLI_CMD_COUNT; cmd++) {
		snprintf(title, sizeof(title), "%s options", cli_commands[cmd].name);
		print_group(f, title, CLI_IN(cmd), CLI_GRP_COMMAND, 0);
	}
	for (g = CLI_GRP_SERVER; g < CLI_GRP_COUNT; g++)
		print_group(f, group_titles[g],
			    g == CLI_GRP_GLOBAL ? cmds | CLI_IN(CLI_CMD_NONE) : cmds,
			    (enum cli_group)g, g != CLI_GRP_GLOBAL);
	fprintf(f,
		"\n'xport COMMAND --help' lists the options of one "
		"command.\n%s",
		exit_text);
}

void cli_usage(FILE *f, enum cli_command cmd)
{
	if (cmd == CLI_CMD_NONE)
		all_usage(f);
	else
		command_usage(f, cmd);
}

static void dump_line(FILE *f, const char *cmd, const char *opt, const struct cli_option *o)
{
	static const char *const takes[] = {
	    [CLI_ARG_NONE] = "0",
	    [CLI_ARG_REQUIRED] = "1",
	    [CLI_ARG_OPTIONAL] = "=",
	};

	fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\n", cmd, opt, takes[o->arg], o->help,
		o->value_name ? o->value_name : "", o->choices ? o->choices : "");
}

/*
 * One line per (command, option spelling):
 *   COMMAND TAB OPTION TAB TAKES-VALUE TAB HELP TAB VALUE-NAME TAB CHOICES
 * COMMAND "xport" means before the command.  TAKES-VALUE is 0, 1, or "="
 * (a value only as --opt=VALUE).  Commands themselves are listed as
 * "xport TAB NAME TAB cmd TAB SUMMARY TAB ARGS TAB", and the kinds of pipe
 * endpoint as "pipe TAB PREFIX TAB endpoint TAB HELP TAB VALUE-NAME TAB".
 */
void cli_dump_options(FILE *f)
{
	int cmd;
	size_t i;

	for (cmd = CLI_CMD_TCP_SERVER; cmd < CLI_CMD_COUNT; cmd++)
		fprintf(f, "xport\t%s\tcmd\t%s\t%s\t\n", cli_commands[cmd].name,
			cli_commands[cmd].summary, cli_commands[cmd].args);
	fprintf(f, "xport\thelp\tcmd\tshow the help of a command\tCOMMAND\t\n");
	for (i = 0; i < cli_n_endpoints; i++)
		fprintf(f, "pipe\t%s\tendpoint\t%s\t%s\t\n", cli_endpoints[i].prefix,
			cli_endpoints[i].help, cli_endpoints[i].value_name);
	for (cmd = CLI_CMD_NONE; cmd < CLI_CMD_COUNT; cmd++) {
		const char *name = cmd ? cli_commands[cmd].name : "xport";

		for (i = 0; i < cli_n_options; i++) {
			const struct cli_option *o = &cli_options[i];
			char opt[64];

			if (o->hidden || !(o->commands & CLI_IN(cmd)))
				continue;
			snprintf(opt, sizeof(opt), "--%s", o->name);
			dump_line(f, name, opt, o);
			if (o->short_name) {
				snprintf(opt, sizeof(opt), "-%c", o->short_name);
				dump_line(f, name, opt, o);
			}
		}
	}
}

static void print_addr(FILE *f, const char *key, const struct cli_addr *a)
{
	static const char *const kinds[] = {"hostport", "unix", "abstract"};

	fprintf(f, "%s=%s host=%s port=%s path=%s v6=%d\n", key, kinds[a->kind], a->host, a->port,
		a->path, a->is_v6_literal);
}

static void print_endpoint(FILE *f, int i, const struct cli_endpoint *e)
{
	/* Indexed by the CLI_EP_* kind: one name per kind, in its order. */
	static const char *const kinds[] = {
	    [CLI_EP_STDIO] = "stdio",
	    [CLI_EP_TCP] = "tcp",
	    [CLI_EP_TCP_LISTEN] = "tcp-listen",
	    [CLI_EP_TLS] = "tls",
	    [CLI_EP_TLS_LISTEN] = "tls-listen",
	    [CLI_EP_UNIX] = "unix",
	    [CLI_EP_UNIX_LISTEN] = "unix-listen",
	    [CLI_EP_UDP] = "udp",
	    [CLI_EP_EXEC] = "exec",
	    [CLI_EP_FD] = "fd",
	    [CLI_EP_UDP_LISTEN] = "udp-listen",
	    [CLI_EP_UNIXGRAM] = "unixgram",
	    [CLI_EP_UNIXGRAM_LISTEN] = "unixgram-listen",
	};
	const char *kind = (size_t)e->kind < sizeof(kinds) / sizeof(kinds[0]) && kinds[e->kind]
			       ? kinds[e->kind]
			       : "?";
	char key[24];

	fprintf(f, "ep%d=%s command=%s fd=%d\n", i, kind, e->command ? e->command : "", e->fd);
	snprintf(key, sizeof(key), "ep%d.addr", i);
	print_addr(f, key, &e->addr);
}

static void print_rules(FILE *f, const struct cli_config *c)
{
	char buf[64];
	unsigned int i;

	for (i = 0; i < c->n_rules; i++) {
		const struct cli_cidr *r = &c->rules[i];

		if (!r->family) {
			fprintf(f, "rule=%s %s %s\n", r->allow ? "allow" : "deny",
				r->file ? "file" : "host", r->name);
			continue;
		}
		inet_ntop(r->family, r->addr, buf, sizeof(buf));
		fprintf(f, "rule=%s %s/%u\n", r->allow ? "allow" : "deny", buf, r->prefix);
	}
}

static void print_tls(FILE *f, const struct cli_config *c)
{
	int i;

	fprintf(f, "tls=%d cert=%s key=%s ca=%s insecure=%d\n", c->tls, c->cert ? c->cert : "",
		c->key ? c->key : "", c->ca ? c->ca : "", c->insecure);
	fprintf(f, "pin=");
	for (i = 0; c->has_pin && i < 32; i++)
		fprintf(f, "%02x", c->pin[i]);
	fprintf(f, "\nhandshake_timeout=%g\n", c->handshake_timeout);
	fprintf(f, "servername=%s alpn=%s verify_client_optional=%d\n",
		c->servername ? c->servername : "", c->alpn ? c->alpn : "",
		c->verify_client_optional);
}

/* The resolved configuration as key=value lines (hidden --parse-only). */
void cli_print_config(FILE *f, const struct cli_config *c)
{
	int i;

	fprintf(f, "command=%s\n", cli_commands[c->command].name);
	fprintf(f, "grace=%g verbosity=%d quiet=%d\n", c->grace, c->verbosity, c->quiet);
	fprintf(f, "high_water=%zu low_water=%zu read_size=%zu\n", c->high_water, c->low_water,
		c->read_size);
	fprintf(f,
		"half_close=%d eof_timeout=%g idle_timeout=%g "
		"connect_timeout=%g\n",
		c->half_close, c->eof_timeout, c->idle_timeout, c->connect_timeout);
	fprintf(f, "hexdump=%d stats=%d progress=%d\n", c->hexdump, (int)c->stats, c->progress);
	fprintf(f, "one_way=%d family=%d\n", c->one_way, c->family);
	if (c->has_source)
		print_addr(f, "source", &c->source);
	print_tls(f, c);
	fprintf(f,
		"keep_open=%d resolved_keep_open=%d once=%d "
		"max_conns=%u backlog=%d reuse_port=%d workers=%u "
		"port_file=%s\n",
		c->keep_open, cli_keep_open(c), c->once, c->max_conns, c->backlog, c->reuse_port,
		c->workers, c->port_file ? c->port_file : "");
	print_rules(f, c);
	fprintf(f, "wait_for=%g check=%d crlf=%d no_readline=%d\n", c->wait_for, c->check, c->crlf,
		c->no_readline);
	fprintf(f, "sub_mode=%d stderr=%d signal=%d kill_after=%g argc=%d\n", (int)c->sub_mode,
		(int)c->stderr_mode, c->signal, c->kill_after, c->cmd_argc);
	fprintf(f, "pty=%d\n", c->pty);
	for (i = 0; i < c->cmd_argc; i++)
		fprintf(f, "argv[%d]=%s\n", i, c->cmd_argv[i]);
	print_addr(f, "sub_addr", &c->sub_addr);
	fprintf(f, "proto=%d exec=%s\n", (int)c->proto, c->exec_cmd ? c->exec_cmd : "");
	print_addr(f, "forward", &c->forward);
	fprintf(f, "proxy=%d %s:%s user=%s password=%s\n", c->proxy.kind, c->proxy.addr.host,
		c->proxy.addr.port, c->proxy.has_user ? c->proxy.user : "-",
		c->proxy.has_password ? c->proxy.password : "-");
	print_addr(f, "addr", &c->addr);
	if (c->command == CLI_CMD_PIPE)
		for (i = 0; i < 2; i++)
			print_endpoint(f, i, &c->ep[i]);
}
