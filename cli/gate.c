// SPDX-License-Identifier: MIT
/*
 * gate.c - who gets in.  --allow/--deny and --max-conns are checked by the
 * server's accept filter, on the bare socket: a refused peer is closed
 * before a byte is read and before any TLS handshake, and --max-conns
 * counts handshakes in progress.  Every accepted connection then starts
 * with the gate protocol, whose connection_made asks the command for the
 * real protocol, hands the transport over to it and frees itself.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "run.h"

struct gate {
	xp_protocol base;
	struct cli_gate_cfg *cfg;
};

static void gate_made(xp_protocol *p, xp_transport *t)
{
	struct gate *g = XP_CONTAINER_OF(p, struct gate, base);
	struct cli_gate_cfg *cfg = g->cfg;
	struct cli_run *r = cfg->run;
	const xp_sockaddr *peer = xp_transport_get_extra_info(t, "peername", NULL);
	char name[160];
	xp_protocol *inner;

	cli_sockaddr_str(peer ? &peer->u.sa : NULL, peer ? peer->len : 0, name, sizeof(name));
	/* Accepted, then the command stopped taking more during the TLS
	 * handshake (a one-connection server got its connection). */
	if (r->no_more) {
		cli_log(1, "refused %s: not accepting any more", name);
		xp_transport_close(t);
		return;
	}
	cli_log(2, "accepted %s", name);
	inner = cfg->start(r, t, cfg->arg);
	if (!inner) {
		xp_transport_abort(t);
		return;
	}
	xp_transport_set_protocol(t, inner);
	free(g); /* the transport no longer refers to the gate */
	if (inner->ops->connection_made)
		inner->ops->connection_made(inner, t);
}

/* Only a refused connection comes here. */
static void gate_lost(xp_protocol *p, int err)
{
	free(XP_CONTAINER_OF(p, struct gate, base));
}

static const xp_protocol_ops gate_ops = {
    .connection_made = gate_made,
    .connection_lost = gate_lost,
};

/* Connections from accept on: the command's own, plus those accepted
 * but not started yet (TLS handshakes in progress) on every listener. */
static size_t conns_from_accept(struct cli_run *r, xp_server *s)
{
	size_t n = r->nconns;
	int listed = 0;

	for (int i = 0; i < r->nservers; i++) {
		n += xp_server_pending_count(r->servers[i]);
		listed |= r->servers[i] == s;
	}
	if (!listed) /* not registered yet: accepting during the setup */
		n += xp_server_pending_count(s);
	return n;
}

static int gate_accept(void *arg, xp_server *s, int fd, const xp_sockaddr *peer)
{
	struct cli_gate_cfg *cfg = arg;
	struct cli_run *r = cfg->run;
	struct linger rst = {.l_onoff = 1, .l_linger = 0};
	char name[160];

	cli_sockaddr_str(&peer->u.sa, peer->len, name, sizeof(name));
	if (r->no_more) {
		cli_log(1, "refused %s: not accepting any more", name);
		return 1;
	}
	if (!cli_peer_allowed(r->cli, &peer->u.sa, peer->len)) {
		cli_log(1, "refused %s: --allow/--deny", name);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		return 1;
	}
	if (cfg->max_conns && conns_from_accept(r, s) >= cfg->max_conns) {
		if (r->cli->max_conns)
			cli_log(0, "refused %s: over --max-conns %u", name, cfg->max_conns);
		else
			cli_log(0, "refused %s: busy (stdio serves one connection at a time)",
				name);
		return 1;
	}
	return 0;
}

/* The accept filter above, -4/-6, and --handshake-timeout: a TLS client that
 * never finishes its handshake would hold a descriptor (and, with
 * --max-conns, a slot) for ever.  "None" is as good as for ever. */
void cli_gate_server_opts(struct cli_gate_cfg *cfg, xp_server_opts *so)
{
	const struct cli_config *c = cfg->run->cli;

	so->accept_filter = gate_accept;
	so->accept_filter_arg = cfg;
	so->family = c->family; /* -4/-6; Unix listeners ignore it */
	if (so->tls)
		so->tls_handshake_timeout = c->handshake_timeout < 0 ? 1e9 : c->handshake_timeout;
}

xp_protocol *cli_gate_factory(void *cfg)
{
	struct gate *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->base.ops = &gate_ops;
	g->cfg = cfg;
	return &g->base;
}
