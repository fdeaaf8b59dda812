// SPDX-License-Identifier: MIT
/*
 * cmd_tcp_client.c - `xport tcp-client ADDR`: connect (every address of
 * the name, happy eyeballs) and relay the connection to stdin/stdout.
 * --wait-for retries until the server is up; --check only tests that it
 * is reachable; --crlf sends CRLF line endings.  On a terminal (and with
 * readline built in) the interactive mode of interactive.c takes over.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "interactive.h"
#include "run.h"

struct client {
	struct cli_run run;
	const struct cli_config *cli;
	xp_tls_ctx *tls;
	xp_relay *relay;
	struct cli_conn *conn;
	struct cli_dial dial; /* the connect, retried for --wait-for */
	int interactive;
	xp_transport *itr; /* interactive: the connected transport */
	char name[300];
};

/* --check and the interactive placeholder: hold reading, do nothing. */
static void hold_made(xp_protocol *p, xp_transport *t)
{
	xp_transport_pause_reading(t);
}

static void hold_lost(xp_protocol *p, int err)
{
	free(p);
}

static const xp_protocol_ops hold_ops = {
    .connection_made = hold_made,
    .connection_lost = hold_lost,
};

static xp_protocol *hold_factory(void *arg)
{
	xp_protocol *p = calloc(1, sizeof(*p));

	if (p)
		p->ops = &hold_ops;
	return p;
}

static xp_protocol *relay_factory(void *arg)
{
	struct client *c = arg;
	xp_relay_opts ro;

	if (c->relay)
		return NULL;
	c->conn = cli_run_conn_new(&c->run, NULL);
	if (!c->conn)
		return NULL;
	cli_run_relay_opts(c->conn, &ro);
	cli_one_way(c->cli, &ro, 0);
	cli_stdio_session(&ro, 1, 0);
	c->relay = xp_relay_new(c->run.loop, &ro);
	if (!c->relay) {
		cli_run_conn_end(c->conn, NULL);
		c->conn = NULL;
		return NULL;
	}
	c->conn->relay = c->relay;
	return xp_relay_stream_protocol(c->relay, 0);
}

static void connected(struct cli_dial *d, xp_future *f, int err)
{
	struct client *c = XP_CONTAINER_OF(d, struct client, dial);
	struct cli_run *r = &c->run;

	r->no_more = 1;
	if (!err) {
		xp_transport *t = xp_future_result(f);

		cli_log(1, "connected to %s", c->name);
		if (c->cli->check) {
			xp_transport_close(t);
			xp_loop_stop(r->loop);
		} else if (c->interactive) {
			c->itr = xp_transport_retain(t);
			xp_loop_stop(r->loop);
		} else {
			cli_stdio_attach(r->loop, c->relay, 1, c->cli->crlf, 1);
		}
		return;
	}
	if (err == -ECONNRESET && c->cli->check) {
		/* Accepted, then reset before the connect was seen: --check
		 * asks whether the server is reachable, and it is (nc -z). */
		cli_log(1, "connected to %s (then reset)", c->name);
		xp_loop_stop(r->loop);
		return;
	}
	if (err == -ECANCELED && r->stopping) {
		xp_loop_stop(r->loop);
		return;
	}
	cli_run_fail(r, cli_dial_fail(d, err, 1));
	if (c->relay) {
		/* Failed after the transport existed: its other end was
		 * never opened, nothing left to wait for. */
		xp_relay *rl = c->relay;

		c->relay = NULL;
		xp_relay_fail_end(rl, 0, err);
	}
	xp_loop_stop(r->loop);
}

static void start(struct client *c)
{
	const struct cli_config *cli = c->cli;
	struct cli_dial *d = &c->dial;

	d->run = &c->run;
	d->addr = &cli->addr;
	d->name = c->name;
	d->opts.tls = c->tls;
	d->opts.server_hostname = cli->servername;
	d->factory = cli->check || c->interactive ? hold_factory : relay_factory;
	d->arg = c;
	d->done = connected;
	d->no_retry_reset = cli->check;
	cli_dial_start(d);
}

static int run_interactive(struct client *c)
{
	int st = CLI_EXIT_FAIL;

	xp_remove_signal_handler(c->run.loop, SIGINT);
	xp_remove_signal_handler(c->run.loop, SIGTERM);
	xp_remove_signal_handler(c->run.loop, SIGUSR1);
#ifdef CLI_HAVE_READLINE
	st = cli_interactive(c->run.loop, c->itr, c->cli);
#endif
	xp_transport_release(c->itr);
	return st;
}

int cli_cmd_tcp_client(const struct cli_config *cli)
{
	static struct client c;
	int st = 0;

	memset(&c, 0, sizeof(c));
	c.cli = cli;
	cli_conn_name(cli, &cli->addr, c.name, sizeof(c.name));
#ifdef CLI_HAVE_READLINE
	c.interactive = !cli->check && !cli->no_readline && !cli->one_way && isatty(0) &&
			isatty(1) && cli_interactive_available();
#endif
	if (cli->tls) {
		c.tls = cli_tls_ctx(cli, 0, &st);
		if (!c.tls)
			return st;
	}
	if ((st = cli_run_init(&c.run, cli)) != 0)
		return st;
	c.run.single = 1;
	c.run.at_once = 1;
	if ((st = cli_run_signals(&c.run)) != 0)
		return st;
	start(&c);
	st = cli_run_loop(&c.run);
	if (c.itr && !c.run.status_set)
		st = run_interactive(&c);
	cli_run_finish(&c.run);
	return st;
}
