// SPDX-License-Identifier: MIT
/*
 * cmd_tcp_server.c - `xport tcp-server ADDR`: listen, and attach a
 * built-in protocol (stdio, echo, discard, chargen, exec, forward,
 * broker) to every accepted connection, through the gate (--allow/--deny,
 * --max-conns).
 *
 * --workers N: N threads, each with its own loop and its own listening
 * sockets bound to the same port with SO_REUSEPORT (the kernel spreads
 * the connections).  The main thread keeps the signal handlers and tells
 * the workers what to do with xp_call_soon_threadsafe(); the workers
 * block every signal.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "run.h"

struct srv {
	struct cli_run run;
	const struct cli_config *cli;
	struct cli_gate_cfg gate;
	xp_tls_ctx *tls;
	xp_broker *broker; /* --proto broker: the room every client joins */
	xp_server *server;
	int keep_open;
	/* workers */
	struct srv_main *main;
	pthread_t th;
	char port[16];	  /* the port to bind (worker 0's, for the others) */
	int setup_status; /* 0 once listening */
	xp_sockaddr addrs[8];
	int naddrs;
};

struct srv_main {
	struct cli_run run;
	struct srv *w;
	unsigned int n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int setup_done;
};

static xp_protocol *start_stdio(struct srv *s, struct cli_conn *c, xp_loop *loop)
{
	xp_relay_opts ro;
	xp_relay *rl;

	cli_run_relay_opts(c, &ro);
	cli_one_way(s->cli, &ro, 0);
	cli_stdio_session(&ro, 1, s->keep_open);
	rl = xp_relay_new(loop, &ro);
	if (!rl)
		return NULL;
	c->relay = rl;
	xp_protocol *p = xp_relay_stream_protocol(rl, 0);
	cli_stdio_attach(loop, rl, 1, s->cli->crlf, !s->keep_open);
	return p;
}

static xp_protocol *start_exec(struct srv *s, struct cli_conn *c, xp_loop *loop)
{
	xp_exec_opts eo;

	memset(&eo, 0, sizeof(eo));
	eo.command = s->cli->exec_cmd;
	cli_run_relay_opts(c, &eo.relay);
	cli_one_way(s->cli, &eo.relay, 0);
	eo.relay.child_signal = SIGTERM;
	eo.relay.kill_after = 0;
	eo.stderr_mode = XP_EXEC_STDERR_INHERIT;
	eo.pty = s->cli->pty;
	return xp_exec_new(loop, &eo);
}

static xp_protocol *start_forward(struct srv *s, struct cli_conn *c, xp_loop *loop)
{
	const struct cli_addr *a = &s->cli->forward;
	char path[sizeof(a->path) + 2];
	xp_forward_opts fo;
	xp_proxy px;

	memset(&fo, 0, sizeof(fo));
	cli_connect_opts(s->cli, a, &fo.connect, &px); /* px copied by xp_forward_new */
	if (a->kind == CLI_ADDR_HOSTPORT) {
		fo.host = cli_client_host(a, s->cli->family);
		fo.port = a->port;
	} else {
		snprintf(path, sizeof(path), "%s%s", a->kind == CLI_ADDR_UNIX_ABSTRACT ? "@" : "",
			 a->path);
		fo.unix_path = path; /* copied by xp_forward_new */
	}
	cli_run_relay_opts(c, &fo.relay);
	cli_one_way(s->cli, &fo.relay, 0);
	return xp_forward_new(loop, &fo);
}

/* socks5 and http-proxy: --proxy-auth, --forward-allow. */
static xp_protocol *start_tunnel(struct srv *s, struct cli_conn *c, xp_loop *loop)
{
	const struct cli_config *cli = s->cli;
	xp_proxy_server_opts so;

	memset(&so, 0, sizeof(so));
	if (cli->has_proxy_auth) {
		so.user = cli->proxy_auth_user;
		so.password = cli->proxy_auth_password;
	}
	if (cli->n_fwd_allow) {
		so.allow_target = cli_target_allowed;
		so.allow_arg = (void *)cli;
	}
	so.connect.timeout = cli->connect_timeout > 0 ? cli->connect_timeout : 0;
	so.connect.family = cli->family; /* -4/-6: the targets' names too */
	cli_run_relay_opts(c, &so.relay);
	if (cli->proto == CLI_PROTO_SOCKS5)
		return xp_socks5_new(loop, &so);
	return xp_http_proxy_new(loop, &so);
}

/* The gate accepted a peer: make its protocol. */
static xp_protocol *srv_start(struct cli_run *r, xp_transport *t, void *arg)
{
	struct srv *s = arg;
	struct cli_conn *c = cli_run_conn_new(r, t);
	xp_proto_opts po;
	xp_protocol *p = NULL;

	if (!c)
		return NULL;
	if (!s->keep_open) {
		/* One connection: stop listening now, exit when it ends. */
		r->no_more = 1;
		cli_run_close_servers(r);
	}
	switch (s->cli->proto) {
	case CLI_PROTO_ECHO:
		cli_run_proto_opts(c, &po, 0);
		p = xp_echo_new(&po);
		break;
	case CLI_PROTO_DISCARD:
		cli_run_proto_opts(c, &po, 0);
		p = xp_discard_new(&po);
		break;
	case CLI_PROTO_CHARGEN:
		cli_run_proto_opts(c, &po, 0);
		p = xp_chargen_new(&po);
		break;
	case CLI_PROTO_STDIO:
		p = start_stdio(s, c, r->loop);
		break;
	case CLI_PROTO_EXEC:
		p = start_exec(s, c, r->loop);
		break;
	case CLI_PROTO_FORWARD:
		p = start_forward(s, c, r->loop);
		break;
	case CLI_PROTO_SOCKS5:
	case CLI_PROTO_HTTP_PROXY:
		p = start_tunnel(s, c, r->loop);
		break;
	case CLI_PROTO_BROKER:
		cli_run_proto_opts(c, &po, 0);
		p = xp_broker_protocol(s->broker, &po);
		break;
	}
	if (!p) {
		cli_err("cannot start a connection: %s", strerror(errno ? errno : ENOMEM));
		cli_run_conn_end(c, NULL);
	}
	return p;
}

/* Listen (port: the port to bind); on failure print and return a status. */
static int srv_listen(struct srv *s, const char *port, int reuse_port)
{
	const struct cli_config *cli = s->cli;
	struct cli_addr a = cli->addr;
	xp_server_opts so;
	xp_future *f;
	char name[300];
	int err;

	memset(&so, 0, sizeof(so));
	so.backlog = cli->backlog;
	so.reuse_port = reuse_port;
	so.tls = s->tls;
	if (port)
		snprintf(a.port, sizeof(a.port), "%s", port);
	s->gate = (struct cli_gate_cfg){
	    .run = &s->run, .start = srv_start, .arg = s, .max_conns = cli->max_conns};
	/* One at a time for stdio: there is one stdin. */
	if (cli->proto == CLI_PROTO_STDIO && (!s->gate.max_conns || s->gate.max_conns > 1))
		s->gate.max_conns = 1;
	cli_gate_server_opts(&s->gate, &so);
	f = cli_listen(s->run.loop, cli_gate_factory, &s->gate, &a, &so);
	err = f ? xp_loop_run_until_complete(s->run.loop, f) : -errno;
	if (err < 0) {
		cli_addr_str(&a, 1, name, sizeof(name));
		cli_err("listen %s: %s", name, cli_strerror(err));
		if (f)
			xp_future_release(f);
		return cli_listen_status(err);
	}
	s->server = xp_future_result(f);
	xp_future_release(f);
	cli_run_add_server(&s->run, s->server);
	s->naddrs = 0;
	for (int i = 0; i < xp_server_sockets(s->server, NULL) && s->naddrs < 8; i++)
		if (xp_server_sockname(s->server, i, &s->addrs[s->naddrs]) == 0)
			s->naddrs++;
	return 0;
}

static void srv_cleanup(struct srv *s)
{
	if (s->server) {
		xp_server_close(s->server);
		xp_server_free(s->server);
		s->server = NULL;
	}
}

/* ---- one loop ------------------------------------------------------ */

static int run_single(struct srv *s)
{
	int st;

	s->run.single = !s->keep_open;
	if ((st = cli_run_signals(&s->run)) != 0)
		return st;
	if (s->cli->proto == CLI_PROTO_BROKER && !(s->broker = xp_broker_new(s->run.loop))) {
		cli_err("cannot start the broker: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if ((st = srv_listen(s, NULL, s->cli->reuse_port)) != 0)
		return st;
	if ((st = cli_ready(s->cli, s->addrs, s->naddrs)) != 0) {
		srv_cleanup(s); /* no unix: socket file left behind */
		return st;
	}
	st = cli_run_loop(&s->run);
	srv_cleanup(s);
	xp_broker_release(s->broker); /* freed with its last client */
	s->broker = NULL;
	return st;
}

/* ---- workers ----------------------------------------------------------- */

static void port_of(const xp_sockaddr *a, char *buf, size_t size)
{
	unsigned int port = 0;

	if (a->u.sa.sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)&a->u.ss)->sin_port);
	else if (a->u.sa.sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)&a->u.ss)->sin6_port);
	snprintf(buf, size, "%u", port);
}

static int worker_exited(void *arg)
{
	struct srv_main *m = arg;

	m->run.nconns--;
	cli_run_check_done(&m->run);
	return 0;
}

static void *worker_main(void *arg)
{
	struct srv *s = arg;
	struct srv_main *m = s->main;
	sigset_t all;
	int st;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	st = cli_run_init(&s->run, s->cli);
	if (!st) {
		s->run.worker = 1;
		st = srv_listen(s, s->port[0] ? s->port : NULL, 1);
	}
	pthread_mutex_lock(&m->mu);
	s->setup_status = st ? st : 0;
	m->setup_done++;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (!st)
		st = cli_run_loop(&s->run);
	srv_cleanup(s);
	s->setup_status = st;
	xp_call_soon_threadsafe(m->run.loop, worker_exited, m);
	return NULL;
}

static int w_stop(void *arg)
{
	cli_run_stop(arg);
	return 0;
}

static int w_usr1(void *arg)
{
	cli_run_usr1(arg);
	return 0;
}

static int w_abort(void *arg)
{
	struct cli_run *r = arg;

	cli_run_abort(r, r->status);
	return 0;
}

static void main_on_stop(struct cli_run *r)
{
	struct srv_main *m = XP_CONTAINER_OF(r, struct srv_main, run);

	for (unsigned int i = 0; i < m->n; i++)
		xp_call_soon_threadsafe(m->w[i].run.loop, w_stop, &m->w[i].run);
}

static void main_on_usr1(struct cli_run *r)
{
	struct srv_main *m = XP_CONTAINER_OF(r, struct srv_main, run);

	for (unsigned int i = 0; i < m->n; i++)
		xp_call_soon_threadsafe(m->w[i].run.loop, w_usr1, &m->w[i].run);
}

static void main_on_abort(struct cli_run *r, int status)
{
	struct srv_main *m = XP_CONTAINER_OF(r, struct srv_main, run);

	for (unsigned int i = 0; i < m->n; i++) {
		m->w[i].run.status = status;
		xp_call_soon_threadsafe(m->w[i].run.loop, w_abort, &m->w[i].run);
	}
}

/* Start worker i and wait until it listens (or failed). */
static int start_worker(struct srv_main *m, unsigned int i)
{
	struct srv *s = &m->w[i];
	int st;

	if (pthread_create(&s->th, NULL, worker_main, s) != 0) {
		cli_err("cannot start a worker thread: %s", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	pthread_mutex_lock(&m->mu);
	while (m->setup_done <= (int)i)
		pthread_cond_wait(&m->cv, &m->mu);
	st = s->setup_status;
	pthread_mutex_unlock(&m->mu);
	return st;
}

static int run_workers(struct srv *proto, unsigned int n)
{
	struct srv_main m;
	unsigned int i, started = 0;
	int st;

	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&m.mu, NULL);
	pthread_cond_init(&m.cv, NULL);
	if ((st = cli_run_init(&m.run, proto->cli)) != 0)
		return st;
	m.w = calloc(n, sizeof(*m.w));
	if (!m.w)
		return CLI_EXIT_FAIL;
	m.n = 0;
	m.run.on_stop = main_on_stop;
	m.run.on_usr1 = main_on_usr1;
	m.run.on_abort = main_on_abort;
	/* Handlers first: the workers inherit a mask with them blocked. */
	if ((st = cli_run_signals(&m.run)) != 0)
		return st;
	for (i = 0; i < n; i++) {
		struct srv *s = &m.w[i];

		s->cli = proto->cli;
		s->tls = proto->tls;
		s->keep_open = 1;
		s->main = &m;
		if (i > 0)
			port_of(&m.w[0].addrs[0], s->port, sizeof(s->port));
		st = start_worker(&m, i);
		started++;
		m.n = started;
		m.run.nconns++;
		if (st)
			break;
	}
	if (!st)
		st = cli_ready(proto->cli, m.w[0].addrs, m.w[0].naddrs);
	if (st) {
		/* Take down the workers already running. */
		m.run.stopping = 1;
		main_on_abort(&m.run, st);
	}
	m.run.no_more = 1;
	cli_run_loop(&m.run);
	for (i = 0; i < started; i++)
		pthread_join(m.w[i].th, NULL);
	if (!st)
		st = m.run.status;
	return st;
}

int cli_cmd_tcp_server(const struct cli_config *cli)
{
	static struct srv s;
	int st = 0;

	memset(&s, 0, sizeof(s));
	s.cli = cli;
	s.keep_open = cli_keep_open(cli);
	if (cli->tls) {
		s.tls = cli_tls_ctx(cli, 1, &st);
		if (!s.tls)
			return st;
	}
	if (cli->workers > 1 && s.keep_open) {
		st = run_workers(&s, cli->workers);
	} else {
		if ((st = cli_run_init(&s.run, cli)) != 0)
			return st;
		st = run_single(&s);
	}
	cli_run_finish(&s.run);
	return st;
}
