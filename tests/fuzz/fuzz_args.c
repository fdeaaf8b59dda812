// SPDX-License-Identifier: MIT
/*
 * fuzz_args.c - the whole command-line parser, as `xport ARGS...` runs it.
 *
 * The input is split into argv on NUL bytes (argv[0] is "xport").  The
 * parser must return one of its documented codes, never exit, allocate or
 * crash; a usage error must come with a one-line message; whatever it
 * accepts must print (--parse-only's output, --help) and format its
 * addresses without trouble.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "fuzz.h"
#include "../../cli/args.h"
#include "../../cli/run.h"

#define MAX_ARGS 256

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	devnull = fopen("/dev/null", "w");
	FZ_CHECK(devnull);
	return 0;
}

static void check_addr(const struct cli_addr *a)
{
	char buf[512], small[8];

	FZ_CHECK(memchr(a->host, 0, sizeof(a->host)));
	FZ_CHECK(memchr(a->port, 0, sizeof(a->port)));
	FZ_CHECK(memchr(a->path, 0, sizeof(a->path)));
	cli_addr_str(a, 0, buf, sizeof(buf));
	cli_addr_str(a, 1, buf, sizeof(buf));
	cli_addr_str(a, 1, small, sizeof(small));
	FZ_CHECK(strlen(small) < sizeof(small));
}

/* The --allow/--deny rules against a few peers of every family. */
static void check_rules(const struct cli_config *c)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	inet_pton(AF_INET6, "::ffff:10.1.2.3", &mapped.sin6_addr);
	FZ_CHECK(c->n_rules <= CLI_MAX_RULES);
	for (unsigned i = 0; i < c->n_rules; i++)
		FZ_CHECK(c->rules[i].prefix <= (c->rules[i].family == AF_INET ? 32u : 128u));
	cli_peer_allowed(c, (struct sockaddr *)&v4, sizeof(v4));
	cli_peer_allowed(c, (struct sockaddr *)&v6, sizeof(v6));
	cli_peer_allowed(c, (struct sockaddr *)&mapped, sizeof(mapped));
	FZ_CHECK(cli_peer_allowed(c, (struct sockaddr *)&un, sizeof(un)) == 1);
}

static void check_parsed(const struct cli_config *c, int argc, char **argv)
{
	FZ_CHECK(c->command > CLI_CMD_NONE && c->command < CLI_CMD_COUNT);
	FZ_CHECK(c->read_size > 0);
	FZ_CHECK(c->low_water <= c->high_water);
	check_addr(&c->addr);
	check_addr(&c->sub_addr);
	check_addr(&c->forward);
	check_addr(&c->ep[0].addr);
	check_addr(&c->ep[1].addr);
	check_rules(c);
	if (c->cmd_argv) {
		/* Points into argv and ends with NULL. */
		FZ_CHECK(c->cmd_argc > 0 && c->cmd_argc < argc);
		FZ_CHECK(c->cmd_argv > argv && c->cmd_argv + c->cmd_argc < argv + argc + 1);
		FZ_CHECK(c->cmd_argv[c->cmd_argc] == NULL);
	}
	cli_print_config(devnull, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cli_config cli; /* large, like main()'s */
	char *buf = malloc(size + 1), *argv[MAX_ARGS + 1], err[512];
	int argc = 0, rc;
	size_t i = 0;

	FZ_CHECK(buf);
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "xport";
	/* A trailing NUL ends the last argument; it does not start another. */
	while (i < size && argc < MAX_ARGS) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;

	memset(err, 'x', sizeof(err));
	rc = cli_parse(argc, argv, &cli, err, sizeof(err));
	switch (rc) {
	case CLI_OK:
	case CLI_PARSED:
		check_parsed(&cli, argc, argv);
		break;
	case CLI_HELP:
		FZ_CHECK(cli.command >= CLI_CMD_NONE && cli.command < CLI_CMD_COUNT);
		cli_usage(devnull, cli.command);
		break;
	case CLI_VERSION:
		break;
	case CLI_DUMP:
		cli_dump_options(devnull);
		break;
	case CLI_USAGE:
		FZ_CHECK(memchr(err, 0, sizeof(err)));
		FZ_CHECK(err[0] != '\0');
		break;
	default:
		FZ_CHECK(!"unknown return code");
	}
	fflush(devnull);
	free(buf);
	return 0;
}
