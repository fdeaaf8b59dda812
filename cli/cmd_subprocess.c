// SPDX-License-Identifier: MIT
/*
 * cmd_subprocess.c - `xport subprocess -- CMD [ARG...]`: run CMD under
 * the subprocess transport and relay its stdin/stdout to ours, to a TCP
 * connection (--connect ADDR) or to a client (--listen ADDR; with -k one
 * child per client).  The exit status is the child's (128+N for signal N);
 * 127/126 when CMD cannot be found/executed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cmd.h"
#include "run.h"

struct sub {
	struct cli_run run;
	const struct cli_config *cli;
	xp_tls_ctx *tls;
	struct cli_gate_cfg gate;
	xp_relay *relay; /* --connect: created by the factory */
	struct cli_conn *conn;
	xp_transport *child; /* retained: the last child, for its status */
	int spawn_status;    /* 126/127/1 if the command could not run */
	char name[300];
};

struct spawn {
	struct sub *s;
	xp_relay *r;
};

static xp_protocol *child_factory(void *arg)
{
	struct spawn *sp = arg;

	return xp_relay_subprocess_protocol(sp->r, 0);
}

static void spawned(xp_future *f, void *arg)
{
	struct spawn *sp = arg;
	struct sub *s = sp->s;
	int err = xp_future_error(f);

	if (!err) {
		pid_t pid = 0;

		cli_transport_hold(&s->child, xp_future_result(f));
		xp_transport_get_pid(s->child, &pid);
		cli_log(1, "started %s (pid %d)", s->cli->cmd_argv[0], (int)pid);
	} else {
		int st = cli_spawn_status(err);

		cli_err("%s: %s", s->cli->cmd_argv[0],
			err == -ENOENT ? "command not found" : cli_strerror(err));
		if (!s->spawn_status)
			s->spawn_status = st;
		cli_run_fail(&s->run, st);
		xp_relay_fail_end(sp->r, 0, err);
	}
	xp_future_release(f);
	free(sp);
}

static void spawn_child(struct sub *s, xp_relay *r)
{
	const struct cli_config *c = s->cli;
	xp_subprocess_opts o;
	struct winsize ws;
	struct spawn *sp = calloc(1, sizeof(*sp));
	xp_future *f;

	if (!sp) {
		xp_relay_fail_end(r, 0, -ENOMEM);
		return;
	}
	sp->s = s;
	sp->r = r;
	memset(&o, 0, sizeof(o));
	switch (c->stderr_mode) {
	case CLI_STDERR_MERGE:
		o.err.mode = XP_STDIO_STDOUT;
		break;
	case CLI_STDERR_SEPARATE:
		o.err.mode = XP_STDIO_PIPE;
		xp_relay_set_stderr_fd(r, 0, 2);
		break;
	case CLI_STDERR_INHERIT:
		o.err.mode = XP_STDIO_INHERIT;
		break;
	}
	o.pty = c->pty;
	/* Streamed to our own terminal: the child's is as large. */
	if (c->pty && c->sub_mode == CLI_SUB_LOCAL && ioctl(0, TIOCGWINSZ, &ws) == 0) {
		o.pty_rows = ws.ws_row;
		o.pty_cols = ws.ws_col;
	}
	f = xp_subprocess_exec(s->run.loop, child_factory, sp, c->cmd_argv[0], c->cmd_argv, &o);
	if (!f) {
		xp_future *ef = xp_future_new(s->run.loop);

		xp_future_set_error(ef, -errno);
		f = ef;
	}
	xp_future_add_done_callback(f, spawned, sp);
}

/* ---- local: the child's stdio is ours ---- */

static int start_local(struct sub *s)
{
	xp_relay_opts ro;
	struct cli_conn *c = cli_run_conn_new(&s->run, NULL);

	if (!c)
		return CLI_EXIT_FAIL;
	cli_run_relay_opts(c, &ro);
	ro.stats_end = 0;
	cli_one_way(s->cli, &ro, 0);
	cli_stdio_session(&ro, 1, 0);
	s->relay = xp_relay_new(s->run.loop, &ro);
	if (!s->relay)
		return CLI_EXIT_FAIL;
	c->relay = s->relay;
	cli_stdio_attach(s->run.loop, s->relay, 1, s->cli->crlf, 1);
	spawn_child(s, s->relay);
	s->run.no_more = 1;
	return 0;
}

/* ---- --connect ---- */

static xp_protocol *conn_factory(void *arg)
{
	struct sub *s = arg;
	xp_relay_opts ro;

	if (s->relay)
		return NULL;
	s->conn = cli_run_conn_new(&s->run, NULL);
	if (!s->conn)
		return NULL;
	cli_run_relay_opts(s->conn, &ro);
	ro.stats_end = 1;
	cli_one_way(s->cli, &ro, 1);
	s->relay = xp_relay_new(s->run.loop, &ro);
	if (!s->relay)
		return NULL;
	s->conn->relay = s->relay;
	return xp_relay_stream_protocol(s->relay, 1);
}

static void connected(xp_future *f, void *arg)
{
	struct sub *s = arg;
	int err = xp_future_error(f);

	xp_future_release(f);
	s->run.no_more = 1;
	if (!err) {
		cli_log(1, "connected to %s", s->name);
		spawn_child(s, s->relay);
		return;
	}
	char what[700];

	cli_err("%s: %s", cli_connect_what(s->cli, s->name, err, what, sizeof(what)),
		cli_strerror(err));
	cli_run_fail(&s->run, s->relay ? CLI_EXIT_FAIL : cli_connect_status(err));
	if (s->relay)
		xp_relay_fail_end(s->relay, 1, err);
	/* The child was never started: nothing left to wait for. */
	xp_loop_stop(s->run.loop);
}

static int start_connect(struct sub *s)
{
	xp_connect_opts o;
	xp_proxy px;
	xp_future *f;

	cli_connect_opts(s->cli, &s->cli->sub_addr, &o, &px);
	o.tls = s->tls;
	o.server_hostname = s->cli->servername;
	cli_conn_name(s->cli, &s->cli->sub_addr, s->name, sizeof(s->name));
	f = cli_connect(s->run.loop, conn_factory, s, &s->cli->sub_addr, &o);
	if (!f) {
		cli_err("connect %s: %s", s->name, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	xp_future_add_done_callback(f, connected, s);
	return 0;
}

/* ---- --listen ---- */

static xp_protocol *listen_start(struct cli_run *r, xp_transport *t, void *arg)
{
	struct sub *s = arg;
	struct cli_conn *c = cli_run_conn_new(r, t);
	xp_relay_opts ro;
	xp_relay *rl;

	if (!c)
		return NULL;
	if (!cli_keep_open(s->cli)) {
		r->no_more = 1;
		cli_run_close_servers(r);
	}
	cli_run_relay_opts(c, &ro);
	ro.stats_end = 1;
	cli_one_way(s->cli, &ro, 1);
	rl = xp_relay_new(r->loop, &ro);
	if (!rl) {
		cli_run_conn_end(c, NULL);
		return NULL;
	}
	c->relay = rl;
	spawn_child(s, rl);
	return xp_relay_stream_protocol(rl, 1);
}

static int start_listen(struct sub *s)
{
	xp_server_opts so;
	xp_future *f;
	xp_server *srv;
	int err;

	memset(&so, 0, sizeof(so));
	so.backlog = s->cli->backlog;
	so.reuse_port = s->cli->reuse_port;
	so.tls = s->tls;
	s->gate = (struct cli_gate_cfg){.run = &s->run, .start = listen_start, .arg = s};
	cli_gate_server_opts(&s->gate, &so);
	cli_addr_str(&s->cli->sub_addr, 1, s->name, sizeof(s->name));
	f = cli_listen(s->run.loop, cli_gate_factory, &s->gate, &s->cli->sub_addr, &so);
	err = f ? xp_loop_run_until_complete(s->run.loop, f) : -errno;
	if (err < 0) {
		cli_err("listen %s: %s", s->name, cli_strerror(err));
		return cli_listen_status(err);
	}
	srv = xp_future_result(f);
	xp_future_release(f);
	cli_run_add_server(&s->run, srv);
	return cli_ready_server(s->cli, srv);
}

/* 128+N for a signal; the child's code otherwise.  A signal to xport
 * decides on its own (128+N, or 0 for a listener stopped gracefully): the
 * child then only died of the --signal passed on to it. */
static int child_status(struct sub *s, int st)
{
	int code = cli_child_status(&s->run, s->spawn_status, s->child);

	return code < 0 ? st : code;
}

int cli_cmd_subprocess(const struct cli_config *cli)
{
	static struct sub s;
	int st = 0;

	memset(&s, 0, sizeof(s));
	s.cli = cli;
	if (cli->tls && cli->sub_mode != CLI_SUB_LOCAL) {
		s.tls = cli_tls_ctx(cli, cli->sub_mode == CLI_SUB_LISTEN, &st);
		if (!s.tls)
			return st;
	}
	if ((st = cli_run_init(&s.run, cli)) != 0)
		return st;
	s.run.single = cli->sub_mode != CLI_SUB_LISTEN || !cli_keep_open(cli);
	s.run.at_once = cli->sub_mode != CLI_SUB_LISTEN;
	if ((st = cli_run_signals(&s.run)) != 0)
		return st;
	switch (cli->sub_mode) {
	case CLI_SUB_LOCAL:
		st = start_local(&s);
		break;
	case CLI_SUB_CONNECT:
		st = start_connect(&s);
		break;
	case CLI_SUB_LISTEN:
		st = start_listen(&s);
		break;
	}
	if (st)
		return st;
	st = cli_run_loop(&s.run);
	if (s.run.single)
		st = child_status(&s, st);
	if (s.child)
		xp_transport_release(s.child);
	cli_run_finish(&s.run);
	return st;
}
