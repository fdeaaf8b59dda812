// SPDX-License-Identifier: MIT
/*
 * udp_echo_server.c - the UDP echo server of the asyncio documentation
 * ("Transports and Protocols", UDP Echo Server), in C.
 *
 *   udp_echo_server [PORT [HOST]]     (default 9999 on 127.0.0.1)
 *
 * One protocol instance serves every client: each datagram is sent back
 * to its sender.  Serves for an hour, or until SIGINT/SIGTERM.
 */
#include <xport.h>

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

struct echo_server {
	xp_protocol base;
	xp_transport *transport;
	xp_future *closed; /* done at connection_lost */
};

/* Like Python's repr of an address tuple: ('127.0.0.1', 9999). */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (!sa || getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			       NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(out, size, "None");
	else
		snprintf(out, size, "('%s', %s)", host, serv);
}

static void server_made(xp_protocol *p, xp_transport *t)
{
	XP_CONTAINER_OF(p, struct echo_server, base)->transport = t;
}

static int server_datagram(xp_protocol *p, const void *data, size_t len,
			   const struct sockaddr *addr, socklen_t addrlen)
{
	struct echo_server *s = XP_CONTAINER_OF(p, struct echo_server, base);
	char from[NI_MAXHOST + NI_MAXSERV + 8];

	format_addr(addr, addrlen, from, sizeof(from));
	printf("Received '%.*s' from %s\n", (int)len, (const char *)data, from);
	printf("Send '%.*s' to %s\n", (int)len, (const char *)data, from);
	fflush(stdout);
	xp_transport_sendto(s->transport, data, len, addr, addrlen);
	return 0;
}

static void server_lost(xp_protocol *p, int err)
{
	struct echo_server *s = XP_CONTAINER_OF(p, struct echo_server, base);

	s->transport = NULL;
	xp_future_set_result(s->closed, NULL);
}

static const xp_protocol_ops server_ops = {
    .connection_made = server_made,
    .connection_lost = server_lost,
    .datagram_received = server_datagram,
};

static xp_protocol *server_factory(void *arg)
{
	return &((struct echo_server *)arg)->base;
}

static int stop_loop(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}

int main(int argc, char **argv)
{
	struct echo_server server = {.base.ops = &server_ops};
	xp_datagram_opts opts = {
	    .local_host = argc > 2 ? argv[2] : "127.0.0.1",
	    .local_port = argc > 1 ? argv[1] : "9999",
	};
	xp_loop *loop;
	xp_future *fut;
	int err;

	if (argc > 3) {
		fprintf(stderr, "usage: %s [PORT [HOST]]\n", argv[0]);
		return 2;
	}
	loop = xp_loop_new();
	if (!loop) {
		perror("xp_loop_new");
		return 1;
	}
	server.closed = xp_future_new(loop);
	printf("Starting UDP server\n");
	fflush(stdout);

	fut = xp_create_datagram_endpoint(loop, server_factory, &server, &opts);
	err = fut ? xp_loop_run_until_complete(loop, fut) : -ENOMEM;
	if (fut)
		xp_future_release(fut);
	if (err) {
		fprintf(stderr, "cannot listen on %s:%s: %s\n", opts.local_host, opts.local_port,
			xp_strerror(err));
		xp_future_release(server.closed);
		xp_loop_free(loop);
		return 1;
	}

	/* Serve for 1 hour (or until interrupted). */
	xp_call_later(loop, 3600, stop_loop, loop);
	xp_add_signal_handler(loop, SIGINT, stop_loop, loop);
	xp_add_signal_handler(loop, SIGTERM, stop_loop, loop);
	xp_loop_run_forever(loop);

	if (server.transport)
		xp_transport_close(server.transport);
	xp_loop_run_until_complete(loop, server.closed);
	xp_future_release(server.closed);
	xp_loop_free(loop);
	return 0;
}
