// SPDX-License-Identifier: MIT
/*
 * cmd_pipe.c - `xport pipe ENDPOINT ENDPOINT`: relay bytes both ways
 * between two endpoints (socat-like).  Connect-type endpoints (stdio,
 * tcp:, tls:, unix:, udp:, unixgram:, exec:, fd:) are opened per relay; a
 * listening endpoint (tcp-listen:, tls-listen:, unix-listen:, udp-listen:,
 * unixgram-listen:) is opened once and each accepted connection (each new
 * sender, for the datagram ones: dglisten.c) starts a relay, the other
 * endpoint being opened anew for it.  With two listening endpoints, a
 * connection on one waits (reading held by the relay) for the next one on
 * the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "run.h"

struct pipe_ctx;

#define UDP_READ_SIZE (64 * 1024)

struct lsn {
	struct cli_gate_cfg gate;
	struct pipe_ctx *px;
	int idx;
	xp_server *srv;
	struct cli_dgl *dgl; /* udp-listen:, unixgram-listen: */
	int closed;
};

struct waiting {
	struct waiting *next;
	xp_relay *r;
	int need_end;
};

struct pipe_ctx {
	struct cli_run run;
	const struct cli_config *cli;
	xp_tls_ctx *tls_client, *tls_server;
	struct lsn lsn[2];
	struct waiting *waitq;
	xp_transport *child; /* the last exec: child, for its status */
	int spawn_status;
};

static int is_dgram_listen(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_UDP_LISTEN || e->kind == CLI_EP_UNIXGRAM_LISTEN;
}

static int is_listen(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_TCP_LISTEN || e->kind == CLI_EP_TLS_LISTEN ||
	       e->kind == CLI_EP_UNIX_LISTEN || is_dgram_listen(e);
}

/* A datagram end: relayed through a socket pair (udpadapt.c). */
static int is_dgram(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_UDP || e->kind == CLI_EP_UNIXGRAM || is_dgram_listen(e);
}

/* Replies are accepted for --eof-timeout after EOF from the other side:
 * 0.5 s when not given, for ever with 0. */
static double dgram_linger(const struct cli_config *c)
{
	return c->eof_timeout < 0 ? 0.5 : c->eof_timeout;
}

struct efact {
	struct pipe_ctx *px;
	xp_relay *r;
	int end;
	char name[320];
	struct cli_dial dial; /* tcp:, tls:, unix: */
};

static struct efact *efact_new(struct pipe_ctx *px, xp_relay *r, int end)
{
	struct efact *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->px = px;
	f->r = r;
	f->end = end;
	return f;
}

static xp_protocol *stream_factory(void *arg)
{
	struct efact *f = arg;

	return xp_relay_stream_protocol(f->r, f->end);
}

static xp_protocol *child_factory(void *arg)
{
	struct efact *f = arg;

	return xp_relay_subprocess_protocol(f->r, f->end);
}

/*
 * Without -k, the first end that fails decides the job: the other end
 * failing too (both connects refused) is a consequence, not news, and the
 * contract allows one failure line only.
 */
static int first_failure(struct pipe_ctx *px)
{
	return !(px->run.single && px->run.status_set);
}

static void connect_done(xp_future *fut, void *arg)
{
	struct efact *f = arg;
	int err = xp_future_error(fut);

	if (err && err != -ECANCELED) {
		char what[700];

		if (first_failure(f->px))
			cli_err("%s: %s",
				cli_connect_what(f->px->cli, f->name, err, what, sizeof(what)),
				cli_strerror(err));
		cli_run_fail(&f->px->run, cli_connect_status(err));
		xp_relay_fail_end(f->r, f->end, err);
	} else if (!err) {
		cli_log(1, "connected to %s", f->name);
	}
	xp_future_release(fut);
	free(f);
}

/* The end of a dial; fut NULL and -ECANCELED: the run stopped while it
 * waited to retry, and the end must still wind its relay down. */
static void dial_done(struct cli_dial *d, xp_future *fut, int err)
{
	struct efact *f = XP_CONTAINER_OF(d, struct efact, dial);

	if (err && (err != -ECANCELED || !fut)) {
		int st = cli_dial_fail(d, err, first_failure(f->px) && err != -ECANCELED);

		if (err != -ECANCELED)
			cli_run_fail(&f->px->run, st);
		xp_relay_fail_end(f->r, f->end, err);
	} else if (!err) {
		cli_log(1, "connected to %s", f->name);
	}
	free(f);
}

static void exec_done(xp_future *fut, void *arg)
{
	struct efact *f = arg;
	struct pipe_ctx *px = f->px;
	int err = xp_future_error(fut);

	if (!err) {
		cli_transport_hold(&px->child, xp_future_result(fut));
	} else if (err != -ECANCELED) {
		int st = cli_spawn_status(err);

		if (first_failure(px))
			cli_err("%s: %s", f->name, cli_strerror(err));
		px->spawn_status = st;
		cli_run_fail(&px->run, st);
		xp_relay_fail_end(f->r, f->end, err);
	}
	xp_future_release(fut);
	free(f);
}

static void watch(struct efact *f, xp_future *fut, xp_future_cb cb)
{
	if (!fut) {
		xp_future *ef = xp_future_new(f->px->run.loop);

		xp_future_set_error(ef, errno ? -errno : -ENOMEM);
		fut = ef;
	}
	xp_future_add_done_callback(fut, cb, f);
}

static void open_connect(struct pipe_ctx *px, xp_relay *r, int i, int tls)
{
	const struct cli_endpoint *e = &px->cli->ep[i];
	struct efact *f = efact_new(px, r, i);
	struct cli_dial *d;

	if (!f) {
		xp_relay_fail_end(r, i, -ENOMEM);
		return;
	}
	cli_conn_name(px->cli, &e->addr, f->name, sizeof(f->name));
	d = &f->dial;
	d->run = &px->run;
	d->addr = &e->addr;
	d->name = f->name;
	if (tls) {
		d->opts.tls = px->tls_client;
		d->opts.server_hostname = px->cli->servername;
	}
	d->factory = stream_factory;
	d->arg = f;
	d->done = dial_done;
	cli_dial_start(d);
}

static void open_exec(struct pipe_ctx *px, xp_relay *r, int i)
{
	const struct cli_endpoint *e = &px->cli->ep[i];
	struct efact *f = efact_new(px, r, i);
	xp_subprocess_opts o;

	if (!f) {
		xp_relay_fail_end(r, i, -ENOMEM);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.err.mode = XP_STDIO_INHERIT;
	o.pty = px->cli->pty;
	snprintf(f->name, sizeof(f->name), "exec:%s", e->command);
	watch(f, xp_subprocess_shell(px->run.loop, child_factory, f, e->command, &o), exec_done);
}

static void open_fd(struct pipe_ctx *px, xp_relay *r, int i)
{
	int n = px->cli->ep[i].fd, fd, wfd;
	struct stat sb;
	struct efact *f;

	fd = fcntl(n, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (first_failure(px))
			cli_err("fd:%d: %s", n, strerror(errno));
		cli_run_fail(&px->run, CLI_EXIT_FAIL);
		if (fd >= 0)
			close(fd);
		xp_relay_fail_end(r, i, -EBADF);
		return;
	}
	if (S_ISSOCK(sb.st_mode)) {
		f = efact_new(px, r, i);
		if (!f) {
			close(fd);
			xp_relay_fail_end(r, i, -ENOMEM);
			return;
		}
		snprintf(f->name, sizeof(f->name), "fd:%d", n);
		watch(f, xp_connect_accepted_socket(px->run.loop, stream_factory, f, fd, NULL),
		      connect_done);
		return;
	}
	/* Both directions go through a non-socket fd too: one opened for
	 * reading only (a pipe's read end) would swallow what it is given. */
	int mode = fcntl(n, F_GETFL) & O_ACCMODE;
	if (mode != O_RDWR) {
		if (first_failure(px))
			cli_err("fd:%d: not open for %s", n,
				mode == O_RDONLY ? "writing" : "reading");
		cli_run_fail(&px->run, CLI_EXIT_FAIL);
		close(fd);
		xp_relay_fail_end(r, i, -EBADF);
		return;
	}
	wfd = fcntl(n, F_DUPFD_CLOEXEC, 3);
	if (wfd < 0) {
		close(fd);
		xp_relay_fail_end(r, i, -errno);
		return;
	}
	cli_fd_attach(px->run.loop, r, i, fd, wfd, 0);
}

/* Open a non-listening endpoint as end i of r. */
static void ep_open(struct pipe_ctx *px, xp_relay *r, int i)
{
	const struct cli_endpoint *e = &px->cli->ep[i];

	switch (e->kind) {
	case CLI_EP_STDIO:
		cli_stdio_attach(px->run.loop, r, i, px->cli->crlf, !cli_keep_open(px->cli));
		break;
	case CLI_EP_TCP:
	case CLI_EP_UNIX:
		open_connect(px, r, i, 0);
		break;
	case CLI_EP_TLS:
		open_connect(px, r, i, 1);
		break;
	case CLI_EP_UDP:
		cli_udp_attach(&px->run, r, i, &e->addr, dgram_linger(px->cli));
		break;
	case CLI_EP_UNIXGRAM:
		cli_unixgram_attach(&px->run, r, i, &e->addr, dgram_linger(px->cli));
		break;
	case CLI_EP_EXEC:
		open_exec(px, r, i);
		break;
	case CLI_EP_FD:
		open_fd(px, r, i);
		break;
	default:
		break;
	}
}

/* The end that counts as "the peer" in stats: the first network one. */
static int stats_end(const struct cli_config *c)
{
	for (int i = 0; i < 2; i++)
		switch (c->ep[i].kind) {
		case CLI_EP_STDIO:
		case CLI_EP_EXEC:
		case CLI_EP_FD:
			continue;
		default:
			return i;
		}
	return 0;
}

/* The name of the stats end when the library cannot give one: a udp:
 * endpoint is relayed through an internal socket pair, and an fd:N socket
 * may be an unnamed one. */
static void peer_label(const struct cli_endpoint *e, char *buf, size_t size)
{
	char a[120]; /* "udp:" + this fits in a label */

	if (e->kind == CLI_EP_UDP) {
		cli_addr_str(&e->addr, 0, a, sizeof(a));
		snprintf(buf, size, "udp:%s", a);
	} else if (e->kind == CLI_EP_UNIXGRAM) {
		snprintf(buf, size, "unixgram:%s%.100s",
			 e->addr.kind == CLI_ADDR_UNIX_ABSTRACT ? "@" : "", e->addr.path);
	} else if (e->kind == CLI_EP_FD) {
		snprintf(buf, size, "fd:%d", e->fd);
	}
}

static xp_relay *new_relay(struct pipe_ctx *px, xp_transport *t)
{
	struct cli_conn *c = cli_run_conn_new(&px->run, t);
	xp_relay_opts ro;
	xp_relay *r;

	if (!c)
		return NULL;
	cli_run_relay_opts(c, &ro);
	ro.stats_end = stats_end(px->cli);
	cli_one_way(px->cli, &ro, 1);
	for (int i = 0; i < 2; i++)
		if (px->cli->ep[i].kind == CLI_EP_STDIO)
			cli_stdio_session(&ro, i, cli_keep_open(px->cli));
	peer_label(&px->cli->ep[ro.stats_end], c->label, sizeof(c->label));
	/* A datagram end has no EOF of its own: after EOF from the other
	 * side it accepts replies for --eof-timeout, then closes
	 * (udpadapt.c).  That is the relay's EOF wait, so the relay does not
	 * run a second timer for it (the two would fire together and the
	 * relay's would win, turning the clean end into a timeout). */
	if (is_dgram(&px->cli->ep[0]) || is_dgram(&px->cli->ep[1])) {
		ro.eof_timeout = 0;
		/* Its packets must be read whole (a shorter read of a
		 * SOCK_SEQPACKET drops the rest) and fit the socket pair's
		 * buffer: 64K holds the largest datagram. */
		ro.proto.read_size = UDP_READ_SIZE;
	}
	r = xp_relay_new(px->run.loop, &ro);
	if (!r) {
		cli_run_conn_end(c, NULL);
		return NULL;
	}
	c->relay = r;
	return r;
}

static void listener_used(struct pipe_ctx *px, struct lsn *l)
{
	if (cli_keep_open(px->cli) || l->closed)
		return;
	l->closed = 1;
	if (l->srv)
		xp_server_close(l->srv); /* a datagram one serves its sender */
	if (!is_listen(&px->cli->ep[1 - l->idx]) || px->lsn[1 - l->idx].closed)
		px->run.no_more = 1;
}

/* The relay a new connection (or sender) on listener l becomes end i of. */
static xp_relay *listen_relay(struct lsn *l, xp_transport *t)
{
	struct pipe_ctx *px = l->px;
	int i = l->idx, other = 1 - i;
	struct waiting **pw, *w;
	xp_relay *r;

	listener_used(px, l);
	if (!is_listen(&px->cli->ep[other])) {
		r = new_relay(px, t);
		if (r)
			ep_open(px, r, other);
		return r;
	}
	/* Two listeners: join the oldest relay waiting for this end. */
	for (pw = &px->waitq; *pw; pw = &(*pw)->next)
		if ((*pw)->need_end == i)
			break;
	if (*pw) {
		w = *pw;
		*pw = w->next;
		r = w->r;
		free(w);
		return r;
	}
	w = calloc(1, sizeof(*w));
	r = w ? new_relay(px, t) : NULL;
	if (!r) {
		free(w);
		return NULL;
	}
	w->r = r;
	w->need_end = other;
	for (pw = &px->waitq; *pw; pw = &(*pw)->next)
		;
	*pw = w;
	return r;
}

static xp_protocol *listen_start(struct cli_run *run, xp_transport *t, void *arg)
{
	struct lsn *l = arg;
	xp_relay *r = listen_relay(l, t);

	return r ? xp_relay_stream_protocol(r, l->idx) : NULL;
}

static xp_relay *dgram_start(void *arg)
{
	return listen_relay(arg, NULL);
}

/* The first signal: udp: ends waiting for replies close, and a relay
 * still waiting for its second listener is given up. */
static void pipe_on_stop(struct cli_run *run)
{
	struct pipe_ctx *px = XP_CONTAINER_OF(run, struct pipe_ctx, run);

	cli_udp_stop(run);
	for (int i = 0; i < 2; i++)
		if (px->lsn[i].dgl)
			cli_dgl_stop(px->lsn[i].dgl);
	while (px->waitq) {
		struct waiting *w = px->waitq;

		px->waitq = w->next;
		xp_relay_fail_end(w->r, w->need_end, -ECANCELED);
		free(w);
	}
}

static int open_dgram_listener(struct pipe_ctx *px, int i, xp_sockaddr *addrs, int *n)
{
	struct lsn *l = &px->lsn[i];
	struct cli_dgl_cfg cfg = {.run = &px->run,
				  .ep = &px->cli->ep[i],
				  .end = i,
				  .single = !cli_keep_open(px->cli),
				  .linger = dgram_linger(px->cli),
				  .start = dgram_start,
				  .arg = l};
	int st;

	l->px = px;
	l->idx = i;
	st = cli_dgl_open(&cfg, &l->dgl, &addrs[*n]);
	if (!st && addrs[*n].len)
		(*n)++;
	return st;
}

static int open_listener(struct pipe_ctx *px, int i, xp_sockaddr *addrs, int *n)
{
	const struct cli_endpoint *e = &px->cli->ep[i];
	struct lsn *l = &px->lsn[i];
	xp_server_opts so;
	xp_future *f;
	char name[320];
	int err;

	if (is_dgram_listen(e))
		return open_dgram_listener(px, i, addrs, n);
	memset(&so, 0, sizeof(so));
	so.backlog = px->cli->backlog;
	so.reuse_port = px->cli->reuse_port;
	if (e->kind == CLI_EP_TLS_LISTEN)
		so.tls = px->tls_server;
	l->px = px;
	l->idx = i;
	l->gate = (struct cli_gate_cfg){
	    .run = &px->run, .start = listen_start, .arg = l, .max_conns = px->cli->max_conns};
	cli_gate_server_opts(&l->gate, &so);
	f = cli_listen(px->run.loop, cli_gate_factory, &l->gate, &e->addr, &so);
	err = f ? xp_loop_run_until_complete(px->run.loop, f) : -errno;
	if (err < 0) {
		cli_addr_str(&e->addr, 1, name, sizeof(name));
		cli_err("listen %s: %s", name, cli_strerror(err));
		return cli_listen_status(err);
	}
	l->srv = xp_future_result(f);
	xp_future_release(f);
	cli_run_add_server(&px->run, l->srv);
	for (int k = 0; k < xp_server_sockets(l->srv, NULL) && *n < 8; k++)
		if (xp_server_sockname(l->srv, k, &addrs[*n]) == 0)
			(*n)++;
	return 0;
}

static int make_tls(struct pipe_ctx *px)
{
	int st = 0;

	for (int i = 0; i < 2; i++) {
		enum cli_ep_kind k = px->cli->ep[i].kind;

		if (k == CLI_EP_TLS && !px->tls_client)
			px->tls_client = cli_tls_ctx(px->cli, 0, &st);
		else if (k == CLI_EP_TLS_LISTEN && !px->tls_server)
			px->tls_server = cli_tls_ctx(px->cli, 1, &st);
		if (st)
			return st;
	}
	return 0;
}

/*
 * As `subprocess` does: the exec: child's status when it is not 0 (128+N
 * for signal N, sh's 126/127 included), the relay's own otherwise.  Not
 * when a signal stopped xport (128+N, or 0 for a listener: the child only
 * died of the --signal passed on), nor for -k, with no one child.
 */
static int child_status(struct pipe_ctx *px, int st)
{
	int code = cli_child_status(&px->run, px->spawn_status, px->run.single ? px->child : NULL);

	return code > 0 ? code : st;
}

int cli_cmd_pipe(const struct cli_config *cli)
{
	static struct pipe_ctx px;
	xp_sockaddr addrs[8];
	int st, n = 0, listeners = 0;

	memset(&px, 0, sizeof(px));
	px.cli = cli;
	if ((st = make_tls(&px)) != 0)
		return st;
	if ((st = cli_run_init(&px.run, cli)) != 0)
		return st;
	px.run.single = !cli_keep_open(cli);
	px.run.on_stop = pipe_on_stop;
	px.run.at_once = !is_listen(&cli->ep[0]) && !is_listen(&cli->ep[1]);
	if ((st = cli_run_signals(&px.run)) != 0)
		return st;
	for (int i = 0; i < 2; i++) {
		if (!is_listen(&cli->ep[i]))
			continue;
		listeners++;
		if ((st = open_listener(&px, i, addrs, &n)) != 0)
			break;
	}
	if (!st && listeners)
		st = cli_ready(cli, addrs, n);
	if (st) {
		/* The first listener is open when the second fails (e.g. the
		 * same path twice): close it, so no socket file is left. */
		cli_run_close_servers(&px.run);
		for (int i = 0; i < 2; i++)
			cli_dgl_free(px.lsn[i].dgl);
		return st;
	}
	if (!listeners) {
		xp_relay *r = new_relay(&px, NULL);

		if (!r)
			return CLI_EXIT_FAIL;
		px.run.no_more = 1;
		ep_open(&px, r, 0);
		ep_open(&px, r, 1);
	}
	st = cli_run_loop(&px.run);
	st = child_status(&px, st);
	for (int i = 0; i < 2; i++)
		cli_dgl_free(px.lsn[i].dgl);
	if (px.child)
		xp_transport_release(px.child);
	cli_run_finish(&px.run);
	return st;
}
