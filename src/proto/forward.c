// SPDX-License-Identifier: MIT
/*
 * forward.c - every connection is relayed to a new connection to a fixed
 * target (a TCP or Unix proxy).
 *
 * The accepted connection becomes end 0 of a relay at once, so nothing is
 * read from it before the target (end 1) is connected.  If connecting
 * fails, the relay closes the accepted connection with end "error".  The
 * protocol object lives on as the context of the connect until its future
 * completes (it owns the strings the connect was given).
 */
#include "proto/common.h"

struct forward {
	xp_protocol base;
	xp_loop *loop;
	char *host, *port, *unix_path, *server_hostname;
	xp_proxy proxy; /* connect.proxy points here, its strings ours */
	xp_connect_opts connect;
	xp_sockaddr local; /* copy of connect.local_addr */
	xp_relay_opts relay;
	xp_relay *r;
	xp_future *fut;
};

static void forward_free(struct forward *f)
{
	if (f->connect.tls)
		xp_tls_ctx_release(f->connect.tls);
	free(f->host);
	free(f->port);
	free(f->unix_path);
	free(f->server_hostname);
	free((char *)f->proxy.host);
	free((char *)f->proxy.port);
	free((char *)f->proxy.user);
	free((char *)f->proxy.password);
	free(f);
}

static xp_protocol *target_factory(void *arg)
{
	return xp_relay_stream_protocol(arg, 1);
}

static void connected(xp_future *fut, void *arg)
{
	struct forward *f = arg;
	int err = xp_future_error(fut);

	xp__relay_set_pending(f->r, 1, NULL);
	/* No connection_made reached end 1: it never will. */
	if (err && !xp__relay_end_made(f->r, 1))
		xp_relay_fail_end(f->r, 1, err);
	xp__relay_unref(f->r);
	xp_future_release(f->fut);
	forward_free(f);
}

static void forward_made(xp_protocol *p, xp_transport *t)
{
	struct forward *f = XP_CONTAINER_OF(p, struct forward, base);
	xp_relay *r = xp_relay_new(f->loop, &f->relay);
	xp_protocol *p0;

	if (!r) {
		xp_transport_abort(t);
		forward_free(f);
		return;
	}
	p0 = xp_relay_stream_protocol(r, 0);
	xp_transport_set_protocol(t, p0);
	p0->ops->connection_made(p0, t);
	if (f->unix_path)
		f->fut = xp_create_unix_connection(f->loop, target_factory, r, f->unix_path,
						   &f->connect);
	else
		f->fut =
		    xp_create_connection(f->loop, target_factory, r, f->host, f->port, &f->connect);
	if (!f->fut) {
		xp_relay_fail_end(r, 1, errno ? -errno : -ENOMEM);
		forward_free(f);
		return;
	}
	f->r = r;
	xp__relay_ref(r);
	xp__relay_set_pending(r, 1, f->fut);
	xp_future_add_done_callback(f->fut, connected, f);
}

/* Only if the connection failed before connection_made. */
static void forward_lost(xp_protocol *p, int err)
{
	forward_free(XP_CONTAINER_OF(p, struct forward, base));
}

static const xp_protocol_ops forward_ops = {
    .connection_made = forward_made,
    .connection_lost = forward_lost,
};

static int dup_proxy(struct forward *f, const xp_proxy *px)
{
	char *s[4] = {NULL, NULL, NULL, NULL};

	f->proxy.kind = px->kind;
	f->connect.proxy = &f->proxy;
	if (xp__dup_str(&s[0], px->host) || xp__dup_str(&s[1], px->port) ||
	    xp__dup_str(&s[2], px->user) || xp__dup_str(&s[3], px->password)) {
		for (int i = 0; i < 4; i++)
			free(s[i]);
		return -ENOMEM;
	}
	f->proxy.host = s[0];
	f->proxy.port = s[1];
	f->proxy.user = s[2];
	f->proxy.password = s[3];
	return 0;
}

xp_protocol *xp_forward_new(xp_loop *loop, const xp_forward_opts *opts)
{
	struct forward *f;

	if (!loop || !opts || (!opts->unix_path && !opts->port) ||
	    opts->connect.local_addrlen > sizeof(f->local.u)) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->base.ops = &forward_ops;
	f->loop = loop;
	f->connect = opts->connect;
	f->connect.tls = NULL; /* retained below, once nothing can fail */
	f->relay = opts->relay;
	if (xp__dup_str(&f->host, opts->host) || xp__dup_str(&f->port, opts->port) ||
	    xp__dup_str(&f->unix_path, opts->unix_path) ||
	    xp__dup_str(&f->server_hostname, opts->connect.server_hostname)) {
		forward_free(f);
		errno = ENOMEM;
		return NULL;
	}
	f->connect.server_hostname = f->server_hostname;
	if (opts->connect.proxy && dup_proxy(f, opts->connect.proxy) < 0) {
		forward_free(f);
		errno = ENOMEM;
		return NULL;
	}
	if (opts->connect.local_addr) {
		memcpy(&f->local.u, opts->connect.local_addr, opts->connect.local_addrlen);
		f->local.len = opts->connect.local_addrlen;
		f->connect.local_addr = &f->local.u.sa;
	}
	if (opts->connect.tls)
		f->connect.tls = xp_tls_ctx_retain(opts->connect.tls);
	return &f->base;
}
