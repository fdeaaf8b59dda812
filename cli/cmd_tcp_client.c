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

#define RETRY_DELAY 0.2

struct client {
	struct xp_run run;
	const struct xp_cli *cli;
	xp_tls_ctx *tls;
	xp_relay *relay;
	struct xp_conn *conn;
	double deadline; /* --wait-for, loop time; 0: no retry */
	int interactive;
	xp_transport *itr; /* interactive: the connected transport */
	int last_err;
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
	c->conn = xp_run_conn_new(&c->run, NULL);
	if (!c->conn)
		return NULL;
	xp_run_relay_opts(c->conn, &ro);
	xp_cli_one_way(c->cli, &ro, 0);
	xp_cli_stdio_session(&ro, 1, 0);
	c->relay = xp_relay_new(c->run.loop, &ro);
	if (!c->relay) {
		xp_run_conn_end(c->conn, NULL);
		c->conn = NULL;
		return NULL;
	}
	c->conn->relay = c->relay;
	return xp_relay_stream_protocol(c->relay, 0);
}

static void attempt(struct client *c);

static int retry_cb(void *arg)
{
	attempt(arg);
	return 0;
}

static void connected(xp_future *f, void *arg)
{
	struct client *c = arg;
	struct xp_run *r = &c->run;
	int err = xp_future_error(f);
	double now = xp_loop_time(r->loop);

	if (!err) {
		xp_transport *t = xp_future_result(f);

		xp_log(1, "connected to %s", c->name);
		r->no_more = 1;
		if (c->cli->check) {
			xp_transport_close(t);
			xp_loop_stop(r->loop);
		} else if (c->interactive) {
			c->itr = xp_transport_retain(t);
			xp_loop_stop(r->loop);
		} else {
			xp_cli_stdio_attach(r->loop, c->relay, 1, c->cli->crlf, 1);
		}
		xp_future_release(f);
		return;
	}
	xp_future_release(f);
	if (err == -ECONNRESET && c->cli->check) {
		/* Accepted, then reset before the connect was seen: --check
		 * asks whether the server is reachable, and it is (nc -z). */
		xp_log(1, "connected to %s (then reset)", c->name);
		r->no_more = 1;
		xp_loop_stop(r->loop);
		return;
	}
	c->last_err = err;
	if (c->relay) {
		/* Failed after the transport existed (TLS handshake). */
		xp_relay *rl = c->relay;

		xp_err("connect %s: %s", c->name, xp_cli_strerror(err));
		xp_run_fail(r, xp_cli_connect_status(err));
		c->relay = NULL;
		r->no_more = 1;
		/* Its other end was never opened: nothing left to wait for. */
		xp_relay_fail_end(rl, 0, err);
		xp_loop_stop(r->loop);
		return;
	}
	if (c->deadline > 0 && !r->stopping && now + RETRY_DELAY < c->deadline) {
		xp_log(1, "connect %s: %s (retrying)", c->name, xp_cli_strerror(err));
		xp_call_later(r->loop, RETRY_DELAY, retry_cb, c);
		return;
	}
	if (c->deadline > 0) {
		xp_err("connect %s: not reachable within %g s: %s", c->name, c->cli->wait_for,
		       xp_cli_strerror(err));
		xp_run_fail(r, XP_EXIT_TEMPFAIL);
	} else {
		xp_err("connect %s: %s", c->name, xp_cli_strerror(err));
		xp_run_fail(r, xp_cli_connect_status(err));
	}
	r->no_more = 1;
	xp_loop_stop(r->loop);
}

static void attempt(struct client *c)
{
	const struct xp_cli *cli = c->cli;
	xp_connect_opts o;
	xp_future *f;
	double t = cli->connect_timeout > 0 ? cli->connect_timeout : 0;

	if (c->run.stopping) {
		xp_loop_stop(c->run.loop);
		return;
	}
	xp_cli_connect_opts(cli, &cli->addr, &o);
	if (c->deadline > 0) {
		double left = c->deadline - xp_loop_time(c->run.loop);

		if (left < 0.05)
			left = 0.05;
		if (!t || left < t)
			t = left;
	}
	o.timeout = t;
	o.tls = c->tls;
	o.server_hostname = cli->servername;
	f = xp_cli_connect(c->run.loop, cli->check || c->interactive ? hold_factory : relay_factory,
			   c, &cli->addr, &o);
	if (!f) {
		xp_err("connect %s: %s", c->name, strerror(errno));
		xp_run_fail(&c->run, XP_EXIT_FAIL);
		c->run.no_more = 1;
		xp_loop_stop(c->run.loop);
		return;
	}
	xp_future_add_done_callback(f, connected, c);
}

static int run_interactive(struct client *c)
{
	int st = XP_EXIT_FAIL;

	xp_remove_signal_handler(c->run.loop, SIGINT);
	xp_remove_signal_handler(c->run.loop, SIGTERM);
	xp_remove_signal_handler(c->run.loop, SIGUSR1);
#ifdef XP_HAVE_READLINE
	st = xp_cli_interactive(c->run.loop, c->itr, c->cli);
#endif
	xp_transport_release(c->itr);
	return st;
}

int xp_cmd_tcp_client(const struct xp_cli *cli)
{
	static struct client c;
	int st = 0;

	memset(&c, 0, sizeof(c));
	c.cli = cli;
	xp_log_init(cli);
	xp_cli_conn_name(cli, &cli->addr, c.name, sizeof(c.name));
#ifdef XP_HAVE_READLINE
	c.interactive = !cli->check && !cli->no_readline && !cli->one_way && isatty(0) &&
			isatty(1) && xp_cli_interactive_available();
#endif
	if (cli->tls) {
		c.tls = xp_cli_tls_ctx(cli, 0, &st);
		if (!c.tls)
			return st;
	}
	if ((st = xp_run_init(&c.run, cli)) != 0)
		return st;
	c.run.single = 1;
	c.run.at_once = 1;
	if ((st = xp_run_signals(&c.run)) != 0)
		return st;
	if (cli->wait_for >= 0)
		c.deadline = xp_loop_time(c.run.loop) + cli->wait_for;
	attempt(&c);
	st = xp_run_loop(&c.run);
	if (c.itr && !c.run.status_set)
		st = run_interactive(&c);
	xp_run_finish(&c.run);
	return st;
}
