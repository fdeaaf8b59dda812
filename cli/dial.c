// SPDX-License-Identifier: MIT
/*
 * dial.c - one outgoing connection of a command, retried while --wait-for
 * lasts: tcp-client and pipe's tcp:, tls: and unix: endpoints share it.
 *
 * Only a connection that was never made is retried (refused, unreachable,
 * no such socket yet, timed out): once the protocol factory has run, the
 * server is up and a failure (a TLS handshake refused) is final.  Each
 * attempt gets --connect-timeout, cut to what is left of --wait-for.
 */
#include <errno.h>
#include <string.h>

#include "run.h"

#define RETRY_DELAY 0.2
#define MIN_ATTEMPT 0.05

static void dial_attempt(struct cli_dial *d);

static xp_protocol *dial_factory(void *arg)
{
	struct cli_dial *d = arg;

	d->made = 1;
	return d->factory(d->arg);
}

static const char *what(const struct cli_dial *d, int err)
{
	static char buf[700];

	return cli_connect_what(d->run->cli, d->name, err, buf, sizeof(buf));
}

static int retry_cb(void *arg)
{
	struct cli_dial *d = arg;

	d->retry = NULL;
	dial_attempt(d);
	return 0;
}

static int may_retry(const struct cli_dial *d, int err)
{
	double now = xp_loop_time(d->run->loop);

	if (d->made || d->deadline <= 0 || d->run->stopping || err == -ECANCELED)
		return 0;
	if (err == -ECONNRESET && d->no_retry_reset)
		return 0;
	return now + RETRY_DELAY < d->deadline;
}

static void dial_done(xp_future *f, void *arg)
{
	struct cli_dial *d = arg;
	int err = xp_future_error(f);

	if (err && may_retry(d, err)) {
		xp_future_release(f);
		cli_log(1, "%s: %s (retrying)", what(d, err), cli_strerror(err));
		d->retry = xp_call_later(d->run->loop, RETRY_DELAY, retry_cb, d);
		if (d->retry)
			return;
		err = -ENOMEM;
		f = NULL;
	}
	d->expired = err && !d->made && d->deadline > 0 && err != -ECANCELED;
	d->done(d, f, err);
	if (f)
		xp_future_release(f);
}

static void dial_attempt(struct cli_dial *d)
{
	double t = d->timeout;
	xp_future *f;

	if (d->run->stopping) {
		d->done(d, NULL, -ECANCELED);
		return;
	}
	if (d->deadline > 0) {
		double left = d->deadline - xp_loop_time(d->run->loop);

		if (left < MIN_ATTEMPT)
			left = MIN_ATTEMPT;
		if (!t || left < t)
			t = left;
	}
	d->opts.timeout = t;
	f = cli_connect(d->run->loop, dial_factory, d, d->addr, &d->opts);
	if (!f) {
		d->done(d, NULL, errno ? -errno : -ENOMEM);
		return;
	}
	xp_future_add_done_callback(f, dial_done, d);
}

void cli_dial_start(struct cli_dial *d)
{
	const struct cli_config *c = d->run->cli;
	xp_tls_ctx *tls = d->opts.tls;
	const char *sn = d->opts.server_hostname;

	cli_connect_opts(c, d->addr, &d->opts, &d->proxy);
	d->opts.tls = tls;
	d->opts.server_hostname = sn;
	d->timeout = d->opts.timeout;
	d->deadline = c->wait_for >= 0 ? xp_loop_time(d->run->loop) + c->wait_for : 0;
	d->made = 0;
	d->expired = 0;
	dial_attempt(d);
}

int cli_dial_fail(const struct cli_dial *d, int err, int print)
{
	if (d->expired) {
		if (print)
			cli_err("%s: not reachable within %g s: %s", what(d, err),
				d->run->cli->wait_for, cli_strerror(err));
		return CLI_EXIT_TEMPFAIL;
	}
	if (print)
		cli_err("%s: %s", what(d, err), cli_strerror(err));
	return cli_connect_status(err);
}
