// SPDX-License-Identifier: MIT
/*
 * fuzz_relay.c - the relay between two stream transports, driven by a
 * script of what the peers do.
 *
 * Each end of the relay is one side of a socketpair; the harness is the
 * peer on the other side and, as the input says, sends bytes, shuts down
 * its writing side, closes (cleanly, or with unread bytes: then the relay
 * reads ECONNRESET, the AF_UNIX reset), stops reading, reads, closes or
 * aborts the relay through the API, or runs the loop a few iterations.
 * Then every peer still there ends cleanly and keeps reading.
 *
 * Checked: each peer receives an in-order prefix of what the other sent;
 * a direction whose sender ended cleanly, with a receiver that kept
 * reading and a relay that ended with "eof", delivers every byte then EOF;
 * the relay's write buffers stay under the high watermark plus one read
 * chunk; the stats never count more than was sent nor less than was
 * delivered; on_done comes within a bounded number of loop iterations.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

struct peer {
	int fd; /* the harness's side; -1 once closed */
	bool paused, shut, closed;
	bool reset;	    /* closed with unread bytes */
	bool ended_clean;   /* shut or closed without a reset */
	bool closed_early;  /* closed before reading EOF */
	bool eof, read_err; /* what reading gave */
	uint64_t sent, recvd;
};

struct fix {
	xp_loop *loop;
	xp_relay *r; /* NULL after on_done */
	xp_transport *t[2];
	struct peer p[2];
	size_t high, read_size;
	uint64_t budget; /* bytes the peers may still send */
	int stats_end;
	bool no_half_close, api_closed, done;
	xp_conn_stats st;
	char end[16];
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void on_done(xp_relay *r, const xp_conn_stats *st, void *arg)
{
	struct fix *f = arg;

	FZ_CHECK(!f->done);
	f->done = true;
	f->st = *st;
	snprintf(f->end, sizeof(f->end), "%s", st->end);
	f->r = NULL;
}

static void on_data(void *arg, const xp_conn_stats *st, char dir, const void *data, size_t len)
{
	FZ_CHECK(len > 0 && (dir == '<' || dir == '>'));
}

static xp_protocol *factory_one(void *arg)
{
	return arg;
}

/* Bytes counted as read from end i. */
static uint64_t counted(const struct fix *f, const xp_conn_stats *st, int i)
{
	return i == f->stats_end ? st->received : st->sent;
}

/* Read what peer i has, up to max bytes, checking it against what the
 * other peer sent. */
static void peer_read(struct fix *f, int i, size_t max)
{
	struct peer *p = &f->p[i];
	uint8_t buf[16384];

	while (p->fd >= 0 && !p->eof && !p->read_err && max) {
		ssize_t n = recv(p->fd, buf, max < sizeof(buf) ? max : sizeof(buf), 0);

		if (n < 0) {
			FZ_CHECK(errno == EAGAIN || errno == ECONNRESET);
			if (errno == ECONNRESET)
				p->read_err = true;
			return;
		}
		if (n == 0) {
			p->eof = true;
			return;
		}
		for (ssize_t k = 0; k < n; k++)
			FZ_CHECK(buf[k] == fz_pattern(p->recvd + (uint64_t)k, 1 - i));
		p->recvd += (uint64_t)n;
		FZ_CHECK(p->recvd <= f->p[1 - i].sent);
		max -= (size_t)n;
	}
}

static void peer_send(struct fix *f, int i, size_t n)
{
	struct peer *p = &f->p[i];
	uint8_t buf[4096];

	if (n > f->budget)
		n = (size_t)f->budget;
	while (p->fd >= 0 && !p->shut && n) {
		size_t len = n < sizeof(buf) ? n : sizeof(buf);
		ssize_t w;

		for (size_t k = 0; k < len; k++)
			buf[k] = fz_pattern(p->sent + k, i);
		w = send(p->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w <= 0)
			return; /* full, or the relay's side is gone */
		p->sent += (uint64_t)w;
		f->budget -= (uint64_t)w;
		n -= (size_t)w;
	}
}

static void peer_shut(struct peer *p)
{
	if (p->fd < 0 || p->shut)
		return;
	shutdown(p->fd, SHUT_WR);
	p->shut = p->ended_clean = true;
}

/* A close with unread bytes is what the relay sees as a reset. */
static void peer_close(struct fix *f, int i, bool drain)
{
	struct peer *p = &f->p[i];
	int unread = 0;

	if (p->fd < 0)
		return;
	if (drain)
		peer_read(f, i, SIZE_MAX);
	FZ_CHECK(ioctl(p->fd, FIONREAD, &unread) == 0);
	if (unread > 0)
		p->reset = true;
	else
		p->ended_clean = true;
	p->closed_early = !p->eof;
	close(p->fd);
	p->fd = -1;
	p->closed = true;
}

static void step(struct fix *f)
{
	for (int i = 0; i < 2; i++)
		if (!f->p[i].paused)
			peer_read(f, i, SIZE_MAX);
	fz_step(f->loop);
	for (int i = 0; i < 2; i++)
		FZ_CHECK(xp_transport_get_write_buffer_size(f->t[i]) <= f->high + f->read_size);
	if (f->r) {
		const xp_conn_stats *st = xp_relay_stats(f->r);
		for (int i = 0; i < 2; i++)
			FZ_CHECK(counted(f, st, i) <= f->p[i].sent);
	}
}

static int setup(struct fix *f, struct fz_in *in)
{
	unsigned flags = fz_u8(in);
	unsigned high = fz_u16(in), low = fz_u16(in), rsize = fz_u16(in);
	xp_relay_opts o = {0};

	f->no_half_close = flags & 1;
	f->stats_end = flags >> 1 & 1;
	f->high = high;
	f->read_size = 1 + rsize;
	/* Small reads move few bytes per iteration: keep the run short. */
	f->budget = f->read_size * 2048 < 256 * 1024 ? f->read_size * 2048 : 256 * 1024;
	o.proto.high = high;
	o.proto.low = high ? low % (high + 1) : 0;
	o.proto.has_limits = 1;
	o.proto.read_size = f->read_size;
	if (flags & 4) /* a hexdump-like observer: no splice(2) */
		o.proto.hooks.on_data = on_data;
	o.stats_end = f->stats_end;
	o.no_half_close = f->no_half_close;
	o.on_done = on_done;
	o.arg = f;

	f->loop = xp_loop_new();
	FZ_CHECK(f->loop);
	xp_loop_set_exception_handler(f->loop, fz_quiet_handler, NULL);
	f->r = xp_relay_new(f->loop, &o);
	FZ_CHECK(f->r);
	for (int i = 0; i < 2; i++) {
		int sv[2];
		xp_future *fut;

		FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) ==
			 0);
		if (flags & 8) { /* small kernel buffers: flow control sooner */
			int sz = 4096;
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
			setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		}
		f->p[i].fd = sv[1];
		fut = xp_connect_accepted_socket(f->loop, factory_one,
						 xp_relay_stream_protocol(f->r, i), sv[0], NULL);
		FZ_CHECK(fut);
		FZ_CHECK(xp_loop_run_until_complete(f->loop, fut) == 0);
		f->t[i] = xp_future_take_result(fut);
		xp_future_release(fut);
		FZ_CHECK(f->t[i]);
	}
	return 0;
}

static void run_script(struct fix *f, struct fz_in *in)
{
	while (in->n && !f->done) {
		unsigned b = fz_u8(in);
		int i = b & 1;

		switch (b >> 1 & 7) {
		case 0:
			peer_send(f, i, fz_u16(in));
			break;
		case 1:
			peer_shut(&f->p[i]);
			break;
		case 2:
			peer_close(f, i, true);
			break;
		case 3:
			peer_close(f, i, false);
			break;
		case 4:
			peer_read(f, i, fz_u16(in));
			break;
		case 5:
			f->p[i].paused = !f->p[i].paused;
			break;
		case 6:
			for (unsigned k = fz_u8(in) % 32 + 1; k; k--)
				step(f);
			break;
		case 7:
			f->api_closed = true;
			if (fz_u8(in) & 1)
				xp_relay_abort(f->r);
			else
				xp_relay_close(f->r);
			break;
		}
	}
}

/* Every peer still there ends cleanly (with no_half_close the first EOF
 * ends the relay, so only one) and reads on: the relay must finish. */
static void wind_down(struct fix *f)
{
	uint64_t total = f->p[0].sent + f->p[1].sent;
	unsigned long limit = 1000 + 8 * (unsigned long)(total / f->read_size);
	unsigned long n = 0;

	f->p[0].paused = f->p[1].paused = false;
	if (!f->no_half_close) {
		peer_shut(&f->p[0]);
		peer_shut(&f->p[1]);
	} else if (!f->p[0].shut && !f->p[0].closed && !f->p[1].shut && !f->p[1].closed) {
		peer_shut(&f->p[0]);
	}
	while (!f->done && n++ < limit)
		step(f);
	if (!f->done)
		dprintf(2, "relay not done after %lu iterations (sent %llu/%llu)\n", limit,
			(unsigned long long)f->p[0].sent, (unsigned long long)f->p[1].sent);
	FZ_CHECK(f->done);
	/* The relay's sockets are closed: what is left, then EOF or reset. */
	for (n = 0; n < 100; n++) {
		step(f);
		peer_read(f, 0, SIZE_MAX);
		peer_read(f, 1, SIZE_MAX);
	}
}

static void check_result(struct fix *f)
{
	bool clean = !strcmp(f->end, "eof") && !f->api_closed;

	for (int i = 0; i < 2; i++) {
		struct peer *from = &f->p[i], *to = &f->p[1 - i];
		bool complete = clean && from->ended_clean && !from->reset && !to->closed_early;

		FZ_CHECK(counted(f, &f->st, i) <= from->sent);
		FZ_CHECK(counted(f, &f->st, i) >= to->recvd);
		if (f->no_half_close && (to->shut || to->closed))
			complete = false; /* its own EOF may have ended the relay */
		if (!complete)
			continue;
		/* no_half_close closes a socket that may still hold the
		 * receiver's unread bytes: an AF_UNIX peer then reads
		 * ECONNRESET after all the data (TCP would send a RST). */
		if (f->no_half_close && to->read_err && to->recvd == from->sent)
			continue;
		if (!to->eof || to->recvd != from->sent)
			dprintf(2, "direction %d: sent %llu, delivered %llu, eof %d, end %s\n", i,
				(unsigned long long)from->sent, (unsigned long long)to->recvd,
				to->eof, f->end);
		FZ_CHECK(to->eof && to->recvd == from->sent);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	struct fix f = {0};

	setup(&f, &in);
	run_script(&f, &in);
	wind_down(&f);
	check_result(&f);
	for (int i = 0; i < 2; i++) {
		if (f.p[i].fd >= 0)
			close(f.p[i].fd);
		xp_transport_release(f.t[i]);
	}
	FZ_CHECK(xp_loop_close(f.loop) == 0);
	xp_loop_free(f.loop);
	return 0;
}
