// SPDX-License-Identifier: MIT
/*
 * backend_epoll.c - level-triggered epoll.  Watchers ride in data.ptr; a
 * watcher forgotten mid-batch has its collected events erased so that a
 * freed watcher is never called.
 */
#include "internal.h"

#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 256

struct xp_backend {
	int epfd;
	struct epoll_event ev[MAX_EVENTS];
	int nev, cur; /* events of the batch being dispatched */
};

const char *xp__backend_name(void)
{
	return "epoll";
}

int xp__backend_init(struct xp_backend **out)
{
	struct xp_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		int e = errno;
		free(b);
		return -e;
	}
	*out = b;
	return 0;
}

void xp__backend_destroy(struct xp_backend *b)
{
	if (!b)
		return;
	close(b->epfd);
	free(b);
}

static int epoll_set(struct xp_backend *b, struct xp_io *w, unsigned events)
{
	struct epoll_event ev = {.data.ptr = w};
	int op;
	if (events & XP_IO_READ)
		ev.events |= EPOLLIN;
	if (events & XP_IO_WRITE)
		ev.events |= EPOLLOUT;
	if (!events)
		op = EPOLL_CTL_DEL;
	else
		op = w->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(b->epfd, op, w->fd, &ev) < 0) {
		if (op == EPOLL_CTL_ADD && errno == EEXIST)
			op = EPOLL_CTL_MOD, errno = 0;
		if (errno || epoll_ctl(b->epfd, op, w->fd, &ev) < 0)
			return errno == EPERM ? -EPERM : -errno;
	}
	w->registered = events;
	return 0;
}

/*
 * Dropping read interest alone is lazy: a transport paused and resumed
 * before its peer sends anything (flow control, a forward waiting for its
 * upstream, a TLS layer after close_notify) costs no system call.  If data
 * does come meanwhile, the wait drops the interest then (xp__backend_wait).
 */
int xp__backend_update(struct xp_backend *b, struct xp_io *w, unsigned events)
{
	unsigned have = w->registered & XP_IO_RW, want = events & XP_IO_RW;

	if (!w->registered && !events)
		return 0;
	if (w->registered && events && (want == have || (want | XP_IO_READ) == have)) {
		if (want == have)
			w->registered = events; /* the kernel's side is the same */
		return 0;
	}
	return epoll_set(b, w, events);
}

void xp__backend_forget(struct xp_backend *b, struct xp_io *w)
{
	if (w->registered) {
		struct epoll_event ev = {0};
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, w->fd, &ev);
		w->registered = 0;
	}
	for (int i = b->cur; i < b->nev; i++)
		if (b->ev[i].data.ptr == w)
			b->ev[i].data.ptr = NULL;
}

static unsigned to_xp(uint32_t e)
{
	unsigned r = 0;
	if (e & EPOLLIN)
		r |= XP_IO_READ;
	if (e & EPOLLOUT)
		r |= XP_IO_WRITE;
	if (e & EPOLLERR)
		r |= XP_IO_ERR | XP_IO_READ | XP_IO_WRITE;
	if (e & EPOLLHUP)
		r |= XP_IO_HUP | XP_IO_READ;
	return r;
}

int xp__backend_wait(struct xp_backend *b, xp_loop *loop, int timeout_ms)
{
	int n = epoll_wait(b->epfd, b->ev, MAX_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	b->nev = n;
	for (b->cur = 0; b->cur < b->nev; b->cur++) {
		struct xp_io *w = b->ev[b->cur].data.ptr;
		if (!w || !w->events)
			continue;
		unsigned r = to_xp(b->ev[b->cur].events);
		/* Read interest dropped lazily, and data came: drop it now.  (A
		 * hang-up or an error is reported whatever the interest.) */
		if ((r & XP_IO_READ) && !(r & (XP_IO_HUP | XP_IO_ERR)) &&
		    (w->registered & ~w->events & XP_IO_READ) && epoll_set(b, w, w->events) < 0)
			r |= XP_IO_ERR;
		/* Report only what is wanted, plus error bits. */
		unsigned want = w->events | XP_IO_ERR | XP_IO_HUP;
		r &= want;
		if (r & (XP_IO_ERR | XP_IO_HUP))
			r |= w->events & (XP_IO_READ | XP_IO_WRITE);
		if (r)
			w->cb(loop, w, r);
	}
	b->nev = b->cur = 0;
	return n;
}
