// SPDX-License-Identifier: MIT
/*
 * signal.c - add_signal_handler through signalfd: the signal is blocked
 * and read as data by the loop, so no user code ever runs in signal
 * context and a signal arriving mid-poll wakes the loop.
 */
#include "internal.h"
#include "loop_impl.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct sig_entry {
	xp_callback cb;
	void *arg;
	bool set;
};

struct xp_signals {
	struct sig_entry e[_NSIG];
	sigset_t mask;	/* the signals we handle */
	sigset_t saved; /* the thread's mask before we blocked any */
	struct xp_io io;
	int fd;
};

static int valid_signal(int sig)
{
	if (sig <= 0 || sig >= _NSIG)
		return -EINVAL;
	if (sig == SIGKILL || sig == SIGSTOP)
		return -EINVAL; /* cannot be caught: asyncio's RuntimeError */
	return 0;
}

static int dispatch_one(void *arg);

struct sig_call {
	xp_loop *loop;
	int sig;
};

static void sigfd_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct signalfd_siginfo si[16];
	ssize_t n;
	while ((n = read(w->fd, si, sizeof(si))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
			struct sig_call *c = malloc(sizeof(*c));
			if (!c)
				continue;
			c->loop = loop;
			c->sig = (int)si[i].ssi_signo;
			if (!xp__call_soon_owned(loop, dispatch_one, c, free))
				free(c);
		}
	}
}

/* Runs as an ordinary callback; the handler may have been removed since. */
static int dispatch_one(void *arg)
{
	struct sig_call *c = arg;
	struct xp_signals *s = c->loop->signals;
	int r = 0;
	if (s && s->e[c->sig].set)
		r = s->e[c->sig].cb(s->e[c->sig].arg);
	free(c);
	return r;
}

static struct xp_signals *signals_get(xp_loop *loop)
{
	if (loop->signals)
		return loop->signals;
	struct xp_signals *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	sigemptyset(&s->mask);
	pthread_sigmask(SIG_SETMASK, NULL, &s->saved);
	s->fd = -1;
	loop->signals = s;
	return s;
}

static int apply_mask(xp_loop *loop, struct xp_signals *s)
{
	int fd = signalfd(s->fd, &s->mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (s->fd < 0) {
		s->fd = fd;
		xp__io_init(&s->io, fd, sigfd_cb);
		return xp__io_start(loop, &s->io, XP_IO_READ);
	}
	return 0;
}

int xp_add_signal_handler(xp_loop *loop, int sig, xp_callback cb, void *arg)
{
	if (loop->closed)
		return XP_ECLOSED;
	int r = valid_signal(sig);
	if (r < 0 || !cb)
		return r < 0 ? r : -EINVAL;
	struct xp_signals *s = signals_get(loop);
	if (!s)
		return -ENOMEM;
	sigaddset(&s->mask, sig);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	r = apply_mask(loop, s);
	if (r < 0) {
		sigdelset(&s->mask, sig);
		if (!sigismember(&s->saved, sig))
			pthread_sigmask(SIG_UNBLOCK, &one, NULL);
		return r;
	}
	s->e[sig] = (struct sig_entry){cb, arg, true};
	return 0;
}

int xp_remove_signal_handler(xp_loop *loop, int sig)
{
	struct xp_signals *s = loop->signals;
	if (valid_signal(sig) < 0)
		return -EINVAL;
	if (!s || !s->e[sig].set)
		return 0;
	s->e[sig].set = false;
	sigdelset(&s->mask, sig);
	apply_mask(loop, s);
	/* Unblock only what we blocked; a pending instance is consumed by
	 * the signalfd read first so the default action cannot fire late. */
	if (!sigismember(&s->saved, sig)) {
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, sig);
		pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	}
	return 1;
}

void xp__signal_shutdown(xp_loop *loop)
{
	struct xp_signals *s = loop->signals;
	if (!s)
		return;
	for (int sig = 1; sig < _NSIG; sig++)
		if (s->e[sig].set)
			xp_remove_signal_handler(loop, sig);
	if (s->fd >= 0) {
		xp__io_close(loop, &s->io);
		close(s->fd);
	}
	free(s);
	loop->signals = NULL;
}
