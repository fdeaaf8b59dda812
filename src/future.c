// SPDX-License-Identifier: MIT
/*
 * future.c - the future object every asynchronous call completes.  C has
 * no coroutines; a future plus its done callbacks stands in for them.
 */
#include "internal.h"
#include "loop_impl.h"

enum { FUT_PENDING, FUT_DONE, FUT_CANCELLED };

struct done_cb {
	xp_future_cb cb;
	void *arg;
	struct done_cb *next;
};

struct xp_future {
	int refs;
	int state;
	int err;
	void *ptr;
	long long num;
	void (*dtor)(void *);
	xp_loop *loop;
	struct done_cb *cbs;
};

/* What a scheduled done callback needs once the future may be gone. */
struct done_call {
	xp_future *fut;
	xp_future_cb cb;
	void *arg;
};

xp_future *xp_future_new(xp_loop *loop)
{
	xp_future *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->refs = 1;
	f->loop = loop;
	return f;
}

xp_future *xp_future_retain(xp_future *f)
{
	if (f)
		f->refs++;
	return f;
}

void xp_future_release(xp_future *f)
{
	if (!f || --f->refs > 0)
		return;
	if (f->dtor && f->ptr)
		f->dtor(f->ptr);
	while (f->cbs) {
		struct done_cb *n = f->cbs->next;
		free(f->cbs);
		f->cbs = n;
	}
	free(f);
}

xp_loop *xp_future_get_loop(const xp_future *f)
{
	return f->loop;
}

static int run_done_call(void *arg)
{
	struct done_call *c = arg;
	c->cb(c->fut, c->arg);
	xp_future_release(c->fut);
	free(c);
	return 0;
}

static void drop_done_call(void *arg)
{
	struct done_call *c = arg;
	xp_future_release(c->fut);
	free(c);
}

static void schedule(xp_future *f, xp_future_cb cb, void *arg)
{
	struct done_call *c = malloc(sizeof(*c));
	if (!c)
		return;
	c->fut = xp_future_retain(f);
	c->cb = cb;
	c->arg = arg;
	if (!xp__call_soon_owned(f->loop, run_done_call, c, drop_done_call)) {
		/* A closed loop runs nothing more. */
		xp_future_release(f);
		free(c);
	}
}

static void complete(xp_future *f, int state)
{
	f->state = state;
	struct done_cb *l = f->cbs;
	f->cbs = NULL;
	while (l) {
		struct done_cb *n = l->next;
		schedule(f, l->cb, l->arg);
		free(l);
		l = n;
	}
}

int xp_future_set_result(xp_future *f, void *ptr)
{
	return xp_future_set_result_owned(f, ptr, NULL);
}

int xp_future_set_result_owned(xp_future *f, void *ptr, void (*dtor)(void *))
{
	if (f->state != FUT_PENDING)
		return XP_ESTATE;
	f->ptr = ptr;
	f->dtor = dtor;
	complete(f, FUT_DONE);
	return 0;
}

int xp_future_set_result_num(xp_future *f, long long num)
{
	if (f->state != FUT_PENDING)
		return XP_ESTATE;
	f->num = num;
	complete(f, FUT_DONE);
	return 0;
}

int xp_future_set_error(xp_future *f, int err)
{
	if (f->state != FUT_PENDING)
		return XP_ESTATE;
	f->err = err < 0 ? err : XP_ECALLBACK;
	complete(f, FUT_DONE);
	return 0;
}

int xp_future_cancel(xp_future *f)
{
	if (f->state != FUT_PENDING)
		return 0;
	f->err = -ECANCELED;
	complete(f, FUT_CANCELLED);
	return 1;
}

int xp_future_done(const xp_future *f)
{
	return f->state != FUT_PENDING;
}

int xp_future_cancelled(const xp_future *f)
{
	return f->state == FUT_CANCELLED;
}

int xp_future_error(const xp_future *f)
{
	return f->state == FUT_PENDING ? XP_ESTATE : f->err;
}

void *xp_future_result(const xp_future *f)
{
	return f->ptr;
}

long long xp_future_result_num(const xp_future *f)
{
	return f->num;
}

void *xp_future_take_result(xp_future *f)
{
	void *p = f->ptr;
	f->dtor = NULL;
	return p;
}

int xp_future_add_done_callback(xp_future *f, xp_future_cb cb, void *arg)
{
	if (f->state != FUT_PENDING) {
		schedule(f, cb, arg);
		return 0;
	}
	struct done_cb *n = malloc(sizeof(*n)), **pp = &f->cbs;
	if (!n)
		return -ENOMEM;
	n->cb = cb;
	n->arg = arg;
	n->next = NULL;
	while (*pp)
		pp = &(*pp)->next;
	*pp = n;
	return 0;
}

int xp_future_remove_done_callback(xp_future *f, xp_future_cb cb, void *arg)
{
	int removed = 0;
	struct done_cb **pp = &f->cbs;
	while (*pp) {
		if ((*pp)->cb == cb && (*pp)->arg == arg) {
			struct done_cb *d = *pp;
			*pp = d->next;
			free(d);
			removed++;
		} else {
			pp = &(*pp)->next;
		}
	}
	return removed;
}

xp_future *xp__future_begin(xp_loop *loop, bool args_ok)
{
	if (!loop || !args_ok) {
		errno = EINVAL;
		return NULL;
	}
	return xp_future_new(loop);
}

xp_future *xp__future_failed(xp_loop *loop, int err)
{
	xp_future *f = xp__future_begin(loop, true);

	if (f)
		xp_future_set_error(f, err);
	return f;
}
