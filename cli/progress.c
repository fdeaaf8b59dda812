// SPDX-License-Identifier: MIT
/*
 * progress.c - --progress: a live line on stderr (bytes each way, rate),
 * redrawn a few times a second, only while stderr is a terminal.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "run.h"

#define PROGRESS_PERIOD 0.25

static atomic_uint_fast64_t total_sent, total_received;
static xp_loop *ploop;
static xp_handle *timer;
static double t0;
static int drawn;

void cli_progress_add(uint64_t sent, uint64_t received)
{
	atomic_fetch_add(&total_sent, sent);
	atomic_fetch_add(&total_received, received);
}

static void human(char *buf, size_t size, double v)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void draw(void)
{
	uint64_t s = atomic_load(&total_sent), r = atomic_load(&total_received);
	double dt = xp_loop_time(ploop) - t0;
	char bs[32], br[32], rate[32];

	human(bs, sizeof(bs), (double)s);
	human(br, sizeof(br), (double)r);
	human(rate, sizeof(rate), dt > 0 ? (double)(s + r) / dt : 0);
	fprintf(stderr, "\r\033[Kxport: sent %s, received %s, %s/s, %.0f s", bs, br, rate, dt);
	fflush(stderr);
	drawn = 1;
}

static int tick(void *arg)
{
	draw();
	timer = xp_call_later(ploop, PROGRESS_PERIOD, tick, NULL);
	return 0;
}

void cli_progress_start(xp_loop *loop, const struct cli_config *c)
{
	if (!c->progress || c->quiet || !isatty(2) || timer)
		return;
	ploop = loop;
	t0 = xp_loop_time(loop);
	timer = xp_call_later(loop, PROGRESS_PERIOD, tick, NULL);
}

void cli_progress_stop(void)
{
	if (!timer)
		return;
	xp_handle_cancel(timer);
	timer = NULL;
	draw();
	if (drawn)
		fputc('\n', stderr);
}
