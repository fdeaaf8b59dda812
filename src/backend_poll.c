// SPDX-License-Identifier: MIT
/*
 * backend_poll.c - portable poll(2).  The watched set is a dense array
 * (each watcher remembers its slot); a snapshot of ready watchers is
 * dispatched, and forgetting a watcher erases it from the snapshot.
 */
#include "internal.h"

#include <poll.h>

struct xp_backend {
	struct xp_io **ws; /* watched, dense */
	struct pollfd *pfd;
	size_t n, cap;
	struct xp_io **ready; /* snapshot being dispatched */
	unsigned *rev;
	size_t nready, cur;
};

const char *xp__backend_name(void)
{
	return "poll";
}

int xp__backend_init(struct xp_backend **out)
{
	struct xp_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	*out = b;
	return 0;
}

void xp__backend_destroy(struct xp_backend *b)
{
	if (!b)
		return;
	free(b->ws);
	free(b->pfd);
	free(b->ready);
	free(b->rev);
	free(b);
}

static int grow(struct xp_backend *b)
{
	size_t cap = b->cap ? b->cap * 2 : 64;
	struct xp_io **ws = realloc(b->ws, cap * sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	b->ws = ws;
	struct pollfd *p = realloc(b->pfd, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	b->pfd = p;
	b->cap = cap;
	return 0;
}

static void drop_slot(struct xp_backend *b, struct xp_io *w)
{
	size_t i = (size_t)w->backend_index;
	b->ws[i] = b->ws[--b->n];
	b->ws[i]->backend_index = (int)i;
	w->backend_index = -1;
	w->registered = 0;
}

int xp__backend_update(struct xp_backend *b, struct xp_io *w, unsigned events)
{
	if (!events) {
		if (w->backend_index >= 0)
			drop_slot(b, w);
		return 0;
	}
	if (w->backend_index < 0) {
		if (b->n == b->cap && grow(b) < 0)
			return -ENOMEM;
		w->backend_index = (int)b->n;
		b->ws[b->n++] = w;
	}
	w->registered = events;
	return 0;
}

void xp__backend_forget(struct xp_backend *b, struct xp_io *w)
{
	if (w->backend_index >= 0)
		drop_slot(b, w);
	for (size_t i = b->cur; i < b->nready; i++)
		if (b->ready[i] == w)
			b->ready[i] = NULL;
}

static unsigned to_xp(short e)
{
	unsigned r = 0;
	if (e & POLLIN)
		r |= XP_IO_READ;
	if (e & POLLOUT)
		r |= XP_IO_WRITE;
	if (e & (POLLERR | POLLNVAL))
		r |= XP_IO_ERR | XP_IO_READ | XP_IO_WRITE;
	if (e & POLLHUP)
		r |= XP_IO_HUP | XP_IO_READ;
	return r;
}

static int snapshot(struct xp_backend *b, size_t n)
{
	struct xp_io **r = realloc(b->ready, (n ? n : 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	b->ready = r;
	unsigned *rev = realloc(b->rev, (n ? n : 1) * sizeof(*rev));
	if (!rev)
		return -ENOMEM;
	b->rev = rev;
	b->nready = 0;
	for (size_t i = 0; i < n; i++) {
		if (!b->pfd[i].revents)
			continue;
		b->ready[b->nready] = b->ws[i];
		b->rev[b->nready++] = to_xp(b->pfd[i].revents);
	}
	return 0;
}

int xp__backend_wait(struct xp_backend *b, xp_loop *loop, int timeout_ms)
{
	size_t n = b->n;
	for (size_t i = 0; i < n; i++) {
		b->pfd[i].fd = b->ws[i]->fd;
		b->pfd[i].events = (short)(((b->ws[i]->registered & XP_IO_READ) ? POLLIN : 0) |
					   ((b->ws[i]->registered & XP_IO_WRITE) ? POLLOUT : 0));
		b->pfd[i].revents = 0;
	}
	int rc = poll(b->pfd, n, timeout_ms);
	if (rc <= 0)
		return rc < 0 && errno != EINTR ? -errno : 0;
	if (snapshot(b, n) < 0)
		return -ENOMEM;
	for (b->cur = 0; b->cur < b->nready; b->cur++) {
		struct xp_io *w = b->ready[b->cur];
		if (!w || !w->events)
			continue;
		unsigned r = b->rev[b->cur] & (w->events | XP_IO_ERR | XP_IO_HUP);
		if (r & (XP_IO_ERR | XP_IO_HUP))
			r |= w->events & (XP_IO_READ | XP_IO_WRITE);
		if (r)
			w->cb(loop, w, r);
	}
	b->nready = b->cur = 0;
	return rc;
}
