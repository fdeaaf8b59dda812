// SPDX-License-Identifier: MIT
/*
 * run.c - the run context every command shares: the loop, the signal
 * handling of xport(1) SIGNALS, the list of open connections (for --grace,
 * SIGUSR1 and --stats) and the exit status.
 *
 * Signals: the first SIGINT/SIGTERM closes the listeners and lets the open
 * connections finish for at most --grace seconds, then aborts them with a
 * TCP reset (exit 0).  A second one aborts at once (exit 128+N), and so
 * does the first one for a command that does not listen: a user stopping
 * a client is not waiting for a clean end, and the reset tells the peer
 * the transfer was cut.  SIGUSR1 prints an `end=open` stats line per open
 * connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

/* The library's own reports ("Fatal error: ...") are transport events:
 * the command prints the one failure line itself. */
static int quiet_handler(xp_loop *loop, const xp_context *ctx, void *arg)
{
	if (cli_log_on(2))
		cli_err("%s%s%s", ctx->message ? ctx->message : "error", ctx->error ? ": " : "",
			ctx->error ? cli_strerror(ctx->error) : "");
	return 0;
}

int cli_run_init(struct cli_run *r, const struct cli_config *c)
{
	memset(r, 0, sizeof(*r));
	r->cli = c;
	r->head.next = r->head.prev = &r->head;
	r->loop = xp_loop_new();
	if (!r->loop) {
		cli_err("cannot create the event loop: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	xp_loop_set_exception_handler(r->loop, quiet_handler, NULL);
	return 0;
}

void cli_run_add_server(struct cli_run *r, xp_server *s)
{
	if (r->nservers < (int)(sizeof(r->servers) / sizeof(r->servers[0])))
		r->servers[r->nservers++] = s;
}

void cli_run_close_servers(struct cli_run *r)
{
	for (int i = 0; i < r->nservers; i++)
		xp_server_close(r->servers[i]);
}

void cli_run_fail(struct cli_run *r, int status)
{
	if (r->status_set || !status)
		return;
	r->status = status;
	r->status_set = 1;
}

static int stop_cb(void *arg)
{
	struct cli_run *r = arg;

	xp_loop_stop(r->loop);
	return 0;
}

void cli_run_check_done(struct cli_run *r)
{
	if (r->no_more && r->nconns == 0) {
		if (r->grace) {
			xp_handle_cancel(r->grace);
			r->grace = NULL;
		}
		/* Let callbacks already queued (closes, flushes) run first. */
		xp_call_soon(r->loop, stop_cb, r);
	}
}

static void conn_abort(struct cli_conn *c)
{
	if (c->t) {
		cli_set_linger0(c->t);
		xp_transport_abort(c->t);
	}
	if (c->relay)
		xp_relay_abort(c->relay);
}

static void abort_all(struct cli_run *r)
{
	struct cli_conn *c, *next;

	for (c = r->head.next; c != &r->head; c = next) {
		next = c->next;
		conn_abort(c);
	}
}

/* Aborted transports report connection_lost a little later; should a
 * relay never report back, stop anyway. */
static int force_stop(void *arg)
{
	struct cli_run *r = arg;

	xp_loop_stop(r->loop);
	return 0;
}

static int grace_expired(void *arg)
{
	struct cli_run *r = arg;

	r->grace = NULL;
	if (r->nconns)
		cli_log(1, "grace period over: resetting %u connection(s)", r->nconns);
	abort_all(r);
	xp_call_later(r->loop, 1.0, force_stop, r);
	cli_run_check_done(r);
	return 0;
}

void cli_run_stop(struct cli_run *r)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	r->no_more = 1;
	cli_run_close_servers(r);
	if (r->on_stop)
		r->on_stop(r);
	if (r->nconns) {
		double g = r->cli->grace < 0 ? 0 : r->cli->grace;

		r->grace = xp_call_later(r->loop, g, grace_expired, r);
	}
	cli_run_check_done(r);
}

void cli_run_abort(struct cli_run *r, int status)
{
	r->status = status;
	r->status_set = 1;
	r->no_more = 1;
	r->stopping = 1;
	cli_run_close_servers(r);
	if (r->on_abort)
		r->on_abort(r, status);
	abort_all(r);
	xp_loop_stop(r->loop);
}

void cli_run_usr1(struct cli_run *r)
{
	struct cli_conn *c;
	struct cli_config c2 = *r->cli;

	/* Printed with or without --stats; JSON only if asked for. */
	if (c2.stats == CLI_STATS_OFF)
		c2.stats = CLI_STATS_TEXT;
	for (c = r->head.next; c != &r->head; c = c->next)
		if (c->st) {
			xp_conn_stats st = *c->st;

			cli_run_fix_peer(c, &st);
			cli_stats_line(&c2, &st, "open", xp_loop_time(r->loop) - st.started);
		}
	if (r->on_usr1)
		r->on_usr1(r);
	fflush(stderr);
}

static void on_signal(struct cli_run *r, int sig)
{
	if (r->stopping || r->at_once) {
		cli_log(1, "signal %d%s: aborting", sig, r->stopping ? " again" : "");
		cli_run_abort(r, 128 + sig);
		return;
	}
	cli_log(1, "signal %d: closing listeners, %u connection(s) open", sig, r->nconns);
	cli_run_stop(r);
}

static int sigint_cb(void *arg)
{
	on_signal(arg, SIGINT);
	return 0;
}

static int sigterm_cb(void *arg)
{
	on_signal(arg, SIGTERM);
	return 0;
}

static int sigusr1_cb(void *arg)
{
	cli_run_usr1(arg);
	return 0;
}

int cli_run_signals(struct cli_run *r)
{
	int err;

	if ((err = xp_add_signal_handler(r->loop, SIGINT, sigint_cb, r)) < 0 ||
	    (err = xp_add_signal_handler(r->loop, SIGTERM, sigterm_cb, r)) < 0 ||
	    (err = xp_add_signal_handler(r->loop, SIGUSR1, sigusr1_cb, r)) < 0) {
		cli_err("signal handlers: %s", cli_strerror(err));
		return CLI_EXIT_FAIL;
	}
	return 0;
}

int cli_run_loop(struct cli_run *r)
{
	if (!r->worker)
		cli_progress_start(r->loop, r->cli);
	if (!(r->no_more && r->nconns == 0))
		xp_loop_run_forever(r->loop);
	if (!r->worker)
		cli_progress_stop();
	fflush(stderr);
	return r->status;
}

void cli_run_finish(struct cli_run *r)
{
	cli_stdio_restore();
}

/* ---- connections -------------------------------------------------- */

/* The library names a peer by its address; an unnamed Unix socket (one
 * end of a socket pair, or a client that did not bind) comes out as a bare
 * "unix:".  Use the connection's label instead, else the local socket
 * (the listening path the peer connected to), else "socketpair". */
void cli_run_fix_peer(const struct cli_conn *c, xp_conn_stats *st)
{
	const xp_sockaddr *sa;
	char buf[sizeof(st->peer)];

	if (st->peer[0] && strcmp(st->peer, "unix:") != 0)
		return;
	if (c->label[0]) {
		snprintf(st->peer, sizeof(st->peer), "%s", c->label);
		return;
	}
	if (!st->peer[0])
		return; /* "-" / "connection": not a socket at all */
	sa = c->t ? xp_transport_get_extra_info(c->t, "sockname", NULL) : NULL;
	if (sa && sa->len > 0 && xp_sockaddr_format(&sa->u.sa, sa->len, buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "unix:") != 0)
		snprintf(st->peer, sizeof(st->peer), "%s", buf);
	else
		snprintf(st->peer, sizeof(st->peer), "socketpair");
}

struct cli_conn *cli_run_conn_new(struct cli_run *r, xp_transport *t)
{
	struct cli_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->run = r;
	c->t = t ? xp_transport_retain(t) : NULL;
	c->next = &r->head;
	c->prev = r->head.prev;
	r->head.prev->next = c;
	r->head.prev = c;
	r->nconns++;
	c->id = ++r->started;
	return c;
}

struct cli_conn *cli_run_conn_find(struct cli_run *r, unsigned long id)
{
	for (struct cli_conn *c = r->head.next; c != &r->head; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

struct cli_conn *cli_run_conn_of_relay(struct cli_run *r, const xp_relay *rl)
{
	for (struct cli_conn *c = r->head.next; c != &r->head; c = c->next)
		if (c->relay == rl)
			return c;
	return NULL;
}

static void h_start(void *arg, const xp_conn_stats *st)
{
	struct cli_conn *c = arg;
	xp_conn_stats named = *st;

	c->st = st;
	cli_run_fix_peer(c, &named);
	cli_log(1, "connection %s open", named.peer[0] ? named.peer : "-");
}

static void h_end(void *arg, const xp_conn_stats *st)
{
	cli_run_conn_end(arg, st);
}

static void h_data(void *arg, const xp_conn_stats *st, char dir, const void *data, size_t len)
{
	struct cli_conn *c = arg;

	if (c->run->cli->hexdump)
		cli_hexdump(dir, data, len);
	if (dir == '>')
		cli_progress_add(len, 0);
	else
		cli_progress_add(0, len);
}

static void relay_done(xp_relay *rl, const xp_conn_stats *st, void *arg)
{
	cli_run_conn_end(arg, st);
}

void cli_run_proto_opts(struct cli_conn *c, xp_proto_opts *po, int relay)
{
	const struct cli_config *cli = c->run->cli;

	memset(po, 0, sizeof(*po));
	po->high = cli->high_water;
	po->low = cli->low_water;
	po->has_limits = 1;
	po->read_size = cli->read_size;
	po->idle_timeout = cli->idle_timeout > 0 ? cli->idle_timeout : 0;
	po->hooks.on_start = h_start;
	/* A relay reports its end through on_done, once both ends are gone. */
	po->hooks.on_end = relay ? NULL : h_end;
	if (cli->hexdump || cli->progress)
		po->hooks.on_data = h_data;
	po->hooks.arg = c;
}

void cli_run_relay_opts(struct cli_conn *c, xp_relay_opts *ro)
{
	const struct cli_config *cli = c->run->cli;

	memset(ro, 0, sizeof(*ro));
	cli_run_proto_opts(c, &ro->proto, 1);
	c->is_relay = 1;
	ro->no_half_close = !cli->half_close;
	ro->eof_timeout = cli->eof_timeout > 0 ? cli->eof_timeout : 0;
	/* The environment is the tool's to read, never the library's. */
	ro->no_splice = getenv("XPORT_NO_SPLICE") != NULL;
	ro->on_done = relay_done;
	ro->arg = c;
	ro->child_signal = cli->signal;
	ro->kill_after = cli->kill_after > 0 ? cli->kill_after : 0;
}

int cli_run_end_status(const xp_conn_stats *st)
{
	const char *e = st->end ? st->end : "closed";

	if (!strcmp(e, "timeout"))
		return CLI_EXIT_TEMPFAIL;
	if (!strcmp(e, "reset") || !strcmp(e, "error"))
		return CLI_EXIT_FAIL;
	return 0;
}

int cli_spawn_status(int err)
{
	if (err == -ENOENT)
		return CLI_EXIT_NOTFOUND;
	return err == -EACCES ? CLI_EXIT_NOEXEC : CLI_EXIT_FAIL;
}

int cli_child_status(const struct cli_run *r, int spawn_status, xp_transport *child)
{
	int code;

	if (spawn_status)
		return spawn_status;
	if (r->stopping || !child || xp_transport_get_returncode(child, &code) < 0)
		return -1;
	return code < 0 ? 128 - code : code;
}

void cli_transport_hold(xp_transport **slot, xp_transport *t)
{
	if (*slot)
		xp_transport_release(*slot);
	*slot = xp_transport_retain(t);
}

/* The one failure line of a connection that did not end well. */
static void report_end(struct cli_conn *c, int single)
{
	const xp_conn_stats *st = &c->last;
	const char *peer = st->peer[0] ? st->peer : "connection";
	const char *e = st->end ? st->end : "closed";
	char why[128];

	if (!strcmp(e, "timeout")) {
		snprintf(why, sizeof(why), "%s",
			 st->error && st->error != -ETIMEDOUT ? cli_strerror(st->error)
							      : "timed out");
	} else if (st->error) {
		snprintf(why, sizeof(why), "%s", cli_strerror(st->error));
	} else if (!strcmp(e, "reset")) {
		snprintf(why, sizeof(why), "%s", cli_strerror(-ECONNRESET));
	} else {
		snprintf(why, sizeof(why), "failed");
	}
	if (single)
		cli_err("%s: %s", peer, why);
	else
		cli_log(0, "%s: %s", peer, why);
}

void cli_run_conn_end(struct cli_conn *c, const xp_conn_stats *st)
{
	struct cli_run *r = c->run;
	const struct cli_config *cli = r->cli;
	int s;

	if (c->ended)
		return;
	c->ended = 1;
	if (st)
		c->last = *st;
	else if (c->st)
		c->last = *c->st;
	if (!c->last.end)
		c->last.end = "closed";
	cli_run_fix_peer(c, &c->last);
	if (cli->stats)
		cli_stats_line(cli, &c->last, c->last.end, c->last.seconds);
	cli_log(1, "connection %s closed (%s)", c->last.peer[0] ? c->last.peer : "-", c->last.end);
	s = cli_run_end_status(&c->last);
	if (s && !r->stopping && !r->status_set) {
		report_end(c, r->single);
		if (r->single)
			cli_run_fail(r, s);
	}
	c->st = NULL;
	if (r->on_conn_end)
		r->on_conn_end(r, c);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	r->nconns--;
	if (c->t)
		xp_transport_release(c->t);
	free(c->cmd);
	free(c);
	cli_run_check_done(r);
}
