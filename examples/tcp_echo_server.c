// SPDX-License-Identifier: MIT
/*
 * tcp_echo_server.c - the asyncio documentation's "TCP Echo Server" with
 * xport: every connection gets an EchoServerProtocol that sends the
 * received data back and closes the connection.
 *
 *   tcp_echo_server [PORT [HOST]]      (default 8888 on 127.0.0.1)
 */
#include <xport.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct echo_server {
	xp_protocol base;
	xp_transport *transport;
};

static void echo_connection_made(xp_protocol *p, xp_transport *t)
{
	struct echo_server *e = XP_CONTAINER_OF(p, struct echo_server, base);
	const xp_sockaddr *peer = xp_transport_get_extra_info(t, "peername", NULL);
	char name[128] = "?";

	if (peer)
		xp_sockaddr_format(&peer->u.sa, peer->len, name, sizeof(name));
	printf("Connection from %s\n", name);
	e->transport = t;
}

static int echo_data_received(xp_protocol *p, const void *data, size_t len)
{
	struct echo_server *e = XP_CONTAINER_OF(p, struct echo_server, base);

	printf("Data received: '%.*s'\n", (int)len, (const char *)data);
	printf("Send: '%.*s'\n", (int)len, (const char *)data);
	xp_transport_write(e->transport, data, len);
	printf("Close the client socket\n");
	xp_transport_close(e->transport);
	fflush(stdout);
	return 0;
}

/* The protocol belongs to us: connection_lost is where it goes away. */
static void echo_connection_lost(xp_protocol *p, int err)
{
	free(XP_CONTAINER_OF(p, struct echo_server, base));
}

static const xp_protocol_ops echo_server_ops = {
    .connection_made = echo_connection_made,
    .data_received = echo_data_received,
    .connection_lost = echo_connection_lost,
};

static xp_protocol *echo_server_factory(void *arg)
{
	struct echo_server *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL; /* refuses the connection */
	e->base.ops = &echo_server_ops;
	return &e->base;
}

/* Ctrl-C: cancelling serve_forever() closes the server. */
static int on_sigint(void *arg)
{
	xp_future_cancel(arg);
	return 0;
}

int main(int argc, char **argv)
{
	const char *port = argc > 1 ? argv[1] : "8888";
	const char *host = argc > 2 ? argv[2] : "127.0.0.1";
	xp_loop *loop = xp_loop_new();
	xp_future *f;
	xp_server *server;
	int err;

	if (!loop)
		return 1;
	f = xp_create_server(loop, echo_server_factory, NULL, host, port, NULL);
	err = xp_loop_run_until_complete(loop, f);
	if (err) {
		fprintf(stderr, "tcp_echo_server: cannot listen on %s port %s: %s\n", host, port,
			xp_strerror(err));
		xp_future_release(f);
		xp_loop_free(loop);
		return 1;
	}
	server = xp_future_result(f);
	xp_future_release(f);

	xp_sockaddr addr;
	char name[128];
	if (xp_server_sockname(server, 0, &addr) == 0 &&
	    xp_sockaddr_format(&addr.u.sa, addr.len, name, sizeof(name)) >= 0)
		printf("Serving on %s\n", name);
	fflush(stdout);

	/* await server.serve_forever() (until interrupted). */
	f = xp_server_serve_forever(server);
	xp_add_signal_handler(loop, SIGINT, on_sigint, f);
	xp_add_signal_handler(loop, SIGTERM, on_sigint, f);
	err = xp_loop_run_until_complete(loop, f);
	xp_future_release(f);
	if (err == -ECANCELED)
		err = 0;
	xp_server_close(server);
	xp_server_free(server);
	xp_loop_free(loop);
	return err ? 1 : 0;
}
