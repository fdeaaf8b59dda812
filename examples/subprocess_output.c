// SPDX-License-Identifier: MIT
/*
 * subprocess_output.c - the asyncio documentation's "loop.subprocess_exec()
 * and SubprocessProtocol" example in C: run a command that prints the date,
 * collect its output through pipe_data_received() and wait for its exit.
 *
 * It runs the doc's Python one-liner when python3 is installed, else date(1)
 * (a failed exec fails the future with -ENOENT and no transport).
 *
 *   $ build/examples/subprocess_output
 *   Current date: 2024-05-01 12:34:56.789012
 *   Exit status: 0
 */
#include <xport.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct date_protocol {
	xp_protocol base;
	xp_transport *transport; /* retained in connection_made */
	xp_future *exit_future;	 /* done once the process exited */
	xp_future *done;	 /* done at connection_lost: every byte is in */
	char *output;
	size_t len;
};

/* Keep a reference: the transport must outlive connection_lost here, to
 * read the exit status after it.  (Taking it from the future's result would
 * race with a child quick enough to finish before we look.) */
static void date_connection_made(xp_protocol *p, xp_transport *t)
{
	struct date_protocol *dp = XP_CONTAINER_OF(p, struct date_protocol, base);

	dp->transport = xp_transport_retain(t);
}

static int date_pipe_data_received(xp_protocol *p, int fd, const void *data, size_t len)
{
	struct date_protocol *dp = XP_CONTAINER_OF(p, struct date_protocol, base);
	char *grown = realloc(dp->output, dp->len + len + 1);

	if (!grown)
		return -ENOMEM;
	memcpy(grown + dp->len, data, len);
	dp->output = grown;
	dp->len += len;
	dp->output[dp->len] = '\0';
	return 0;
}

static void date_process_exited(xp_protocol *p)
{
	struct date_protocol *dp = XP_CONTAINER_OF(p, struct date_protocol, base);

	xp_future_set_result(dp->exit_future, NULL);
}

static void date_connection_lost(xp_protocol *p, int err)
{
	struct date_protocol *dp = XP_CONTAINER_OF(p, struct date_protocol, base);

	xp_future_set_result(dp->done, NULL);
}

static const xp_protocol_ops date_ops = {
    .connection_made = date_connection_made,
    .pipe_data_received = date_pipe_data_received,
    .process_exited = date_process_exited,
    .connection_lost = date_connection_lost,
};

static xp_protocol *date_factory(void *arg)
{
	return &((struct date_protocol *)arg)->base;
}

/* Start the command; NULL (and *err) if it cannot run. */
static xp_transport *spawn(xp_loop *loop, struct date_protocol *dp, char *const argv[], int *err)
{
	/* stdin and stderr inherited (asyncio's stdin=None, stderr=None);
	 * stdout into a pipe. */
	xp_subprocess_opts opts = {
	    .in = {XP_STDIO_INHERIT, 0},
	    .out = {XP_STDIO_PIPE, 0},
	    .err = {XP_STDIO_INHERIT, 0},
	};
	xp_future *fut = xp_subprocess_exec(loop, date_factory, dp, argv[0], argv, &opts);
	xp_transport *t = NULL;

	if (!fut) {
		*err = -errno;
		return NULL;
	}
	*err = xp_loop_run_until_complete(loop, fut);
	if (*err == 0)
		t = dp->transport;
	xp_future_release(fut);
	return t;
}

int main(void)
{
	static char *const python[] = {"python3", "-c",
				       "import datetime; print(datetime.datetime.now())", NULL};
	static char *const date[] = {"date", "+%Y-%m-%d %H:%M:%S", NULL};
	struct date_protocol dp = {.base.ops = &date_ops};
	xp_loop *loop = xp_loop_new();
	xp_transport *t;
	int err, code = 0, status = 1;

	if (!loop) {
		perror("xp_loop_new");
		return 1;
	}
	dp.exit_future = xp_future_new(loop);
	dp.done = xp_future_new(loop);

	t = spawn(loop, &dp, python, &err);
	if (!t && err == -ENOENT)
		t = spawn(loop, &dp, date, &err);
	if (!t) {
		fprintf(stderr, "cannot run the command: %s\n", xp_strerror(err));
		goto out;
	}

	/* Wait for the subprocess exit using the process_exited() method of
	 * the protocol. */
	xp_loop_run_until_complete(loop, dp.exit_future);

	/* The Python example closes the transport (and so the stdout pipe)
	 * right here, which can drop output still in the pipe when the exit
	 * is seen first.  Wait for connection_lost instead: it comes only
	 * after the exit and the pipe's EOF.  close() is then a no-op, kept
	 * to mirror the original. */
	xp_loop_run_until_complete(loop, dp.done);
	xp_transport_close(t);

	xp_transport_get_returncode(t, &code);
	while (dp.len && (dp.output[dp.len - 1] == '\n' || dp.output[dp.len - 1] == '\r'))
		dp.output[--dp.len] = '\0'; /* rstrip() */
	printf("Current date: %s\n", dp.output ? dp.output : "");
	printf("Exit status: %d\n", code);
	status = code == 0 ? 0 : 1;
	xp_transport_release(t);
out:
	xp_future_release(dp.exit_future);
	xp_future_release(dp.done);
	free(dp.output);
	xp_loop_free(loop);
	return status;
}
