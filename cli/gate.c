// SPDX-License-Identifier: MIT
/*
 * gate.c - the protocol every accepted connection starts with.  A server's
 * protocol factory does not know the peer; connection_made does, and runs
 * before the transport reads a byte.  So the gate checks --allow/--deny
 * and --max-conns there, refuses at once or asks the command for the real
 * protocol, hands the transport over to it and frees itself.
 */
#include <stdlib.h>

#include "run.h"

struct gate {
	xp_protocol base;
	struct xp_gate_cfg *cfg;
};

static void gate_made(xp_protocol *p, xp_transport *t)
{
	struct gate *g = XP_CONTAINER_OF(p, struct gate, base);
	struct xp_gate_cfg *cfg = g->cfg;
	struct xp_run *r = cfg->run;
	const xp_sockaddr *peer = xp_transport_get_extra_info(t, "peername", NULL);
	char name[160];
	xp_protocol *inner;

	xp_cli_sockaddr_str(peer ? &peer->u.sa : NULL, peer ? peer->len : 0, name, sizeof(name));
	if (r->no_more) {
		xp_log(1, "refused %s: not accepting any more", name);
		xp_transport_close(t);
		return;
	}
	if (peer && !xp_cli_peer_allowed(r->cli, &peer->u.sa, peer->len)) {
		xp_log(1, "refused %s: --allow/--deny", name);
		xp_cli_set_linger0(t);
		xp_transport_abort(t);
		return;
	}
	if (cfg->max_conns && r->nconns >= cfg->max_conns) {
		if (r->cli->max_conns)
			xp_log(0, "refused %s: over --max-conns %u", name, cfg->max_conns);
		else
			xp_log(0, "refused %s: busy (stdio serves one connection at a time)", name);
		xp_transport_close(t);
		return;
	}
	xp_log(2, "accepted %s", name);
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

/* A TLS client that never finishes its handshake would hold a
 * descriptor for ever: --handshake-timeout (none: as good as for ever). */
void xp_gate_server_opts(struct xp_gate_cfg *cfg, xp_server_opts *so)
{
	const struct xp_cli *c = cfg->run->cli;

	if (so->tls)
		so->tls_handshake_timeout = c->handshake_timeout < 0 ? 1e9 : c->handshake_timeout;
}

xp_protocol *xp_gate_factory(void *cfg)
{
	struct gate *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->base.ops = &gate_ops;
	g->cfg = cfg;
	return &g->base;
}
