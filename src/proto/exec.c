// SPDX-License-Identifier: MIT
/*
 * exec.c - every connection gets its own `/bin/sh -c command`.
 *
 * On connection_made the connection is handed to a relay (end 0) before
 * anything is read; the relay holds its reading paused until the child (end
 * 1) is up.  The child sees the connection's addresses in XPORT_PEER_ADDR,
 * XPORT_PEER_PORT, XPORT_LOCAL_ADDR and XPORT_LOCAL_PORT.  This protocol
 * object only starts things: once the relay has the connection it frees
 * itself.
 */
#include "proto/common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/un.h>

extern char **environ;

struct exec_proto {
	xp_protocol base;
	xp_loop *loop;
	xp_exec_opts o;
	char *command;
};

/* What a spawn in flight needs when its future completes. */
struct exec_spawn {
	xp_relay *r;
	xp_future *fut;
};

/* "ADDR" and "PORT" of a socket address; empty strings if not IP. */
static void addr_parts(const xp_sockaddr *sa, char *addr, size_t alen, char *port, size_t plen)
{
	*addr = *port = '\0';
	if (!sa)
		return;
	if (sa->u.sa.sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&sa->u.ss;
		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)alen);
		snprintf(port, plen, "%u", ntohs(in->sin_port));
	} else if (sa->u.sa.sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&sa->u.ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)alen);
		snprintf(port, plen, "%u", ntohs(in6->sin6_port));
	} else if (sa->u.sa.sa_family == AF_UNIX) {
		xp_sockaddr_format(&sa->u.sa, sa->len, addr, alen);
	}
}

static const char *const env_names[4] = {"XPORT_PEER_ADDR", "XPORT_PEER_PORT", "XPORT_LOCAL_ADDR",
					 "XPORT_LOCAL_PORT"};

static bool is_ours(const char *var)
{
	for (int i = 0; i < 4; i++) {
		size_t n = strlen(env_names[i]);
		if (!strncmp(var, env_names[i], n) && var[n] == '=')
			return true;
	}
	return false;
}

/* environ without any XPORT_* of ours, plus the four variables; vars holds
 * their storage.  NULL if out of memory. */
static char **make_env(xp_transport *t, char vars[4][160])
{
	char val[4][128];
	size_t n = 0, k = 0;
	char **env;

	addr_parts(xp_transport_get_extra_info(t, "peername", NULL), val[0], sizeof(val[0]), val[1],
		   sizeof(val[1]));
	addr_parts(xp_transport_get_extra_info(t, "sockname", NULL), val[2], sizeof(val[2]), val[3],
		   sizeof(val[3]));
	while (environ && environ[n])
		n++;
	env = calloc(n + 5, sizeof(char *));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!is_ours(environ[i]))
			env[k++] = environ[i];
	for (int i = 0; i < 4; i++) {
		snprintf(vars[i], 160, "%s=%.127s", env_names[i], val[i]);
		env[k++] = vars[i];
	}
	env[k] = NULL;
	return env;
}

static xp_protocol *sub_factory(void *arg)
{
	return xp_relay_subprocess_protocol(arg, 1);
}

static void spawned(xp_future *fut, void *arg)
{
	struct exec_spawn *s = arg;
	int err = xp_future_error(fut);

	/* Failed before the relay's end ever connected: wind it down. */
	if (err && !xp__relay_end_made(s->r, 1)) {
		xp_loop_call_exception_handler(
		    xp_future_get_loop(fut),
		    &(xp_context){.message = "exec: cannot start /bin/sh", .error = err});
		xp_relay_fail_end(s->r, 1, err);
	}
	xp__relay_unref(s->r);
	xp_future_release(s->fut);
	free(s);
}

static void start_child(struct exec_proto *x, xp_relay *r, xp_transport *t)
{
	xp_subprocess_opts so = {.in.mode = XP_STDIO_PIPE, .out.mode = XP_STDIO_PIPE};
	char vars[4][160];
	char **env = make_env(t, vars);
	struct exec_spawn *s = calloc(1, sizeof(*s));
	xp_future *fut = NULL;

	switch (x->o.stderr_mode) {
	case XP_EXEC_STDERR_SEPARATE:
		so.err.mode = XP_STDIO_PIPE;
		xp_relay_set_stderr_fd(r, 1, 2);
		break;
	case XP_EXEC_STDERR_INHERIT:
		so.err.mode = XP_STDIO_INHERIT;
		break;
	default:
		so.err.mode = XP_STDIO_STDOUT;
		break;
	}
	so.envp = env;
	so.pty = x->o.pty;
	if (env && s)
		fut = xp_subprocess_shell(x->loop, sub_factory, r, x->command, &so);
	free(env);
	if (!fut) {
		free(s);
		xp_relay_fail_end(r, 1, errno ? -errno : -ENOMEM);
		return;
	}
	s->r = r;
	s->fut = fut;
	xp__relay_ref(r);
	xp_future_add_done_callback(fut, spawned, s);
}

static void exec_made(xp_protocol *p, xp_transport *t)
{
	struct exec_proto *x = XP_CONTAINER_OF(p, struct exec_proto, base);
	xp_relay *r = xp_relay_new(x->loop, &x->o.relay);
	xp_protocol *p0;

	if (!r) {
		xp_transport_abort(t);
		goto out;
	}
	p0 = xp_relay_stream_protocol(r, 0); /* cannot fail on a new relay */
	/* The relay takes the connection over; its end 0 reads nothing
	 * until the child is up. */
	xp_transport_set_protocol(t, p0);
	p0->ops->connection_made(p0, t);
	start_child(x, r, t);
out:
	free(x->command);
	free(x);
}

/* Only if the connection failed before connection_made. */
static void exec_lost(xp_protocol *p, int err)
{
	struct exec_proto *x = XP_CONTAINER_OF(p, struct exec_proto, base);

	free(x->command);
	free(x);
}

static const xp_protocol_ops exec_ops = {
    .connection_made = exec_made,
    .connection_lost = exec_lost,
};

xp_protocol *xp_exec_new(xp_loop *loop, const xp_exec_opts *opts)
{
	struct exec_proto *x;

	if (!loop || !opts || !opts->command) {
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->command = strdup(opts->command);
	if (!x->command) {
		free(x);
		return NULL;
	}
	x->base.ops = &exec_ops;
	x->loop = loop;
	x->o = *opts;
	x->o.command = x->command;
	return &x->base;
}
