// SPDX-License-Identifier: MIT
/*
 * udp_echo_client.c - the UDP echo client of the asyncio documentation
 * ("Transports and Protocols", UDP Echo Client), in C.
 *
 *   udp_echo_client [PORT [HOST [MESSAGE]]]   (default 9999 on 127.0.0.1
 *                                              "Hello World!")
 *
 * Sends the message, prints the answer and closes the endpoint.  Unlike the
 * Python original it gives up after 5 seconds without an answer, so that
 * it cannot hang when no server runs.
 */
#include <xport.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct echo_client {
	xp_protocol base;
	const char *message;
	xp_future *on_con_lost;
	xp_transport *transport;
	int answered;
};

static void client_made(xp_protocol *p, xp_transport *t)
{
	struct echo_client *c = XP_CONTAINER_OF(p, struct echo_client, base);

	c->transport = t;
	printf("Send: %s\n", c->message);
	xp_transport_sendto(t, c->message, strlen(c->message), NULL, 0);
}

static int client_datagram(xp_protocol *p, const void *data, size_t len,
			   const struct sockaddr *addr, socklen_t addrlen)
{
	struct echo_client *c = XP_CONTAINER_OF(p, struct echo_client, base);

	printf("Received: %.*s\n", (int)len, (const char *)data);
	printf("Close the socket\n");
	c->answered = 1;
	xp_transport_close(c->transport);
	return 0;
}

static void client_error(xp_protocol *p, int err)
{
	printf("Error received: %s\n", xp_strerror(err));
}

static void client_lost(xp_protocol *p, int err)
{
	struct echo_client *c = XP_CONTAINER_OF(p, struct echo_client, base);

	printf("Connection closed\n");
	c->transport = NULL;
	xp_future_set_result(c->on_con_lost, NULL);
}

static const xp_protocol_ops client_ops = {
    .connection_made = client_made,
    .connection_lost = client_lost,
    .datagram_received = client_datagram,
    .error_received = client_error,
};

static xp_protocol *client_factory(void *arg)
{
	return &((struct echo_client *)arg)->base;
}

static int give_up(void *arg)
{
	struct echo_client *c = arg;

	if (c->transport && !xp_transport_is_closing(c->transport)) {
		printf("No answer\n");
		xp_transport_close(c->transport);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct echo_client client = {
	    .base.ops = &client_ops,
	    .message = argc > 3 ? argv[3] : "Hello World!",
	};
	xp_datagram_opts opts = {
	    .remote_host = argc > 2 ? argv[2] : "127.0.0.1",
	    .remote_port = argc > 1 ? argv[1] : "9999",
	};
	xp_loop *loop;
	xp_future *fut;
	xp_handle *timer;
	int err;

	if (argc > 4) {
		fprintf(stderr, "usage: %s [PORT [HOST [MESSAGE]]]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	loop = xp_loop_new();
	if (!loop) {
		perror("xp_loop_new");
		return 1;
	}
	client.on_con_lost = xp_future_new(loop);

	fut = xp_create_datagram_endpoint(loop, client_factory, &client, &opts);
	err = fut ? xp_loop_run_until_complete(loop, fut) : -ENOMEM;
	if (fut)
		xp_future_release(fut);
	if (err) {
		fprintf(stderr, "cannot reach %s:%s: %s\n", opts.remote_host, opts.remote_port,
			xp_strerror(err));
		xp_future_release(client.on_con_lost);
		xp_loop_free(loop);
		return 1;
	}

	timer = xp_handle_retain(xp_call_later(loop, 5.0, give_up, &client));
	xp_loop_run_until_complete(loop, client.on_con_lost);
	xp_handle_cancel(timer);
	xp_handle_release(timer);
	xp_future_release(client.on_con_lost);
	xp_loop_free(loop);
	return client.answered ? 0 : 1;
}
