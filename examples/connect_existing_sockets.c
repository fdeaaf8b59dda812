// SPDX-License-Identifier: MIT
/*
 * connect_existing_sockets.c - the asyncio documentation's "Connecting
 * Existing Sockets" example with xport: wrap one end of a socketpair in a
 * transport, simulate the network with a write on the other end, print
 * what arrives and close.
 */
#include <xport.h>

#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

struct my_protocol {
	xp_protocol base;
	xp_transport *transport;
	xp_future *on_con_lost;
};

static void my_connection_made(xp_protocol *p, xp_transport *t)
{
	XP_CONTAINER_OF(p, struct my_protocol, base)->transport = t;
}

static int my_data_received(xp_protocol *p, const void *data, size_t len)
{
	struct my_protocol *m = XP_CONTAINER_OF(p, struct my_protocol, base);

	printf("Received: %.*s\n", (int)len, (const char *)data);
	/* We are done: close the transport; connection_lost() will be
	 * called automatically. */
	xp_transport_close(m->transport);
	return 0;
}

static void my_connection_lost(xp_protocol *p, int err)
{
	/* The socket has been closed. */
	xp_future_set_result(XP_CONTAINER_OF(p, struct my_protocol, base)->on_con_lost, NULL);
}

static const xp_protocol_ops my_ops = {
    .connection_made = my_connection_made,
    .data_received = my_data_received,
    .connection_lost = my_connection_lost,
};

static xp_protocol *my_factory(void *arg)
{
	return &((struct my_protocol *)arg)->base;
}

/* loop.call_soon(wsock.send, 'abc'.encode()) */
static int send_abc(void *arg)
{
	return send(*(int *)arg, "abc", 3, 0) == 3 ? 0 : -1;
}

int main(void)
{
	xp_loop *loop = xp_loop_new();
	struct my_protocol proto = {.base.ops = &my_ops};
	xp_connect_opts opts = {.use_sock = 1};
	int sv[2], err;
	xp_future *f;

	if (!loop)
		return 1;
	/* Create a pair of connected sockets. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		return 1;
	}
	proto.on_con_lost = xp_future_new(loop);

	/* Register the socket to wait for data (the transport takes sv[0]). */
	opts.sock = sv[0];
	f = xp_create_connection(loop, my_factory, &proto, NULL, NULL, &opts);
	err = xp_loop_run_until_complete(loop, f);
	xp_future_release(f);
	if (err) {
		fprintf(stderr, "connect_existing_sockets: %s\n", xp_strerror(err));
		return 1;
	}

	/* Simulate the reception of data from the network. */
	xp_call_soon(loop, send_abc, &sv[1]);

	xp_loop_run_until_complete(loop, proto.on_con_lost);
	close(sv[1]);
	xp_future_release(proto.on_con_lost);
	xp_loop_free(loop);
	return 0;
}
