// SPDX-License-Identifier: MIT
/*
 * tcp_echo_client.c - the asyncio documentation's "TCP Echo Client" with
 * xport: send "Hello World!", print what comes back, and wait until the
 * server closes the connection.
 *
 *   tcp_echo_client [PORT [HOST]]      (default 8888 on 127.0.0.1)
 */
#include <xport.h>

#include <stdio.h>
#include <string.h>

struct echo_client {
	xp_protocol base;
	const char *message;
	xp_future *on_con_lost;
};

static void client_connection_made(xp_protocol *p, xp_transport *t)
{
	struct echo_client *c = XP_CONTAINER_OF(p, struct echo_client, base);

	xp_transport_write(t, c->message, strlen(c->message));
	printf("Data sent: '%s'\n", c->message);
}

static int client_data_received(xp_protocol *p, const void *data, size_t len)
{
	printf("Data received: '%.*s'\n", (int)len, (const char *)data);
	return 0;
}

static void client_connection_lost(xp_protocol *p, int err)
{
	struct echo_client *c = XP_CONTAINER_OF(p, struct echo_client, base);

	printf("The server closed the connection\n");
	xp_future_set_result(c->on_con_lost, NULL);
}

static const xp_protocol_ops echo_client_ops = {
    .connection_made = client_connection_made,
    .data_received = client_data_received,
    .connection_lost = client_connection_lost,
};

/* One connection, one protocol: the factory hands out the one we have. */
static xp_protocol *client_factory(void *arg)
{
	return &((struct echo_client *)arg)->base;
}

int main(int argc, char **argv)
{
	const char *port = argc > 1 ? argv[1] : "8888";
	const char *host = argc > 2 ? argv[2] : "127.0.0.1";
	xp_loop *loop = xp_loop_new();
	struct echo_client client = {.base.ops = &echo_client_ops, .message = "Hello World!"};
	xp_future *f;
	xp_transport *transport;
	int err;

	if (!loop)
		return 1;
	client.on_con_lost = xp_future_new(loop);
	f = xp_create_connection(loop, client_factory, &client, host, port, NULL);
	err = xp_loop_run_until_complete(loop, f);
	if (err) {
		fprintf(stderr, "tcp_echo_client: cannot connect to %s port %s: %s\n", host, port,
			xp_strerror(err));
		xp_future_release(f);
		xp_future_release(client.on_con_lost);
		xp_loop_free(loop);
		return 1;
	}
	transport = xp_future_result(f);
	xp_future_release(f);
	fflush(stdout);

	/* Wait until the protocol signals that the connection is lost.  The
	 * transport is gone by then (connection_lost has returned); closing
	 * it first is only needed when leaving early. */
	(void)transport;
	xp_loop_run_until_complete(loop, client.on_con_lost);
	fflush(stdout);
	xp_future_release(client.on_con_lost);
	xp_loop_free(loop);
	return 0;
}
