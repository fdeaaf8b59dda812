// SPDX-License-Identifier: MIT
/*
 * executor.c - a small thread pool per loop for blocking work (name
 * resolution above all).  Workers never touch the loop: finished jobs go
 * on a locked list and one thread-safe call drains it on the loop thread.
 */
#include "internal.h"
#include "loop_impl.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#define MAX_WORKERS 4

struct job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct job *next;
};

struct xp_executor {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo, *todo_tail; /* waiting for a worker */
	struct job *finished;	      /* waiting for the loop */
	pthread_t threads[MAX_WORKERS];
	int nthreads, idle;
	bool stop, drain_queued;
	xp_loop *loop;
};

static void push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static int drain(void *arg)
{
	struct xp_executor *ex = arg;
	pthread_mutex_lock(&ex->lock);
	struct job *j = ex->finished;
	ex->finished = NULL;
	ex->drain_queued = false;
	pthread_mutex_unlock(&ex->lock);
	/* finished is LIFO; restore completion order */
	struct job *rev = NULL;
	while (j) {
		struct job *n = j->next;
		j->next = rev;
		rev = j;
		j = n;
	}
	while (rev) {
		struct job *n = rev->next;
		rev->done(rev->arg);
		free(rev);
		rev = n;
	}
	return 0;
}

static void *worker(void *arg)
{
	struct xp_executor *ex = arg;
	pthread_mutex_lock(&ex->lock);
	for (;;) {
		while (!ex->todo && !ex->stop) {
			ex->idle++;
			pthread_cond_wait(&ex->cond, &ex->lock);
			ex->idle--;
		}
		if (ex->stop)
			break;
		struct job *j = ex->todo;
		ex->todo = j->next;
		if (!ex->todo)
			ex->todo_tail = NULL;
		pthread_mutex_unlock(&ex->lock);
		j->work(j->arg);
		pthread_mutex_lock(&ex->lock);
		j->next = ex->finished;
		ex->finished = j;
		if (!ex->drain_queued) {
			ex->drain_queued = true;
			xp_call_soon_threadsafe(ex->loop, drain, ex);
		}
	}
	pthread_mutex_unlock(&ex->lock);
	return NULL;
}

static struct xp_executor *executor_get(xp_loop *loop)
{
	if (loop->executor)
		return loop->executor;
	struct xp_executor *ex = calloc(1, sizeof(*ex));
	if (!ex)
		return NULL;
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->cond, NULL);
	ex->loop = loop;
	loop->executor = ex;
	return ex;
}

/* Workers block every signal: signals belong to the loop's signalfd. */
static int spawn(struct xp_executor *ex)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&ex->threads[ex->nthreads], NULL, worker, ex);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	ex->nthreads++;
	return 0;
}

int xp__executor_submit(xp_loop *loop, void (*work)(void *), void (*done)(void *), void *arg)
{
	if (loop->closed)
		return XP_ECLOSED;
	struct xp_executor *ex = executor_get(loop);
	struct job *j = malloc(sizeof(*j));
	if (!ex || !j) {
		free(j);
		return -ENOMEM;
	}
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&ex->lock);
	push(&ex->todo, &ex->todo_tail, j);
	int r = 0;
	if (ex->idle == 0 && ex->nthreads < MAX_WORKERS)
		r = spawn(ex);
	if (r < 0 && ex->nthreads > 0)
		r = 0; /* the existing workers will get to it */
	if (r < 0) {
		ex->todo = ex->todo_tail = NULL;
		free(j);
	} else {
		pthread_cond_signal(&ex->cond);
	}
	pthread_mutex_unlock(&ex->lock);
	return r;
}

/* At close: let running jobs finish, then complete everything on this
 * thread (jobs never started complete without their work: their done sees
 * the result their work would have set, i.e. none). */
void xp__executor_shutdown(xp_loop *loop)
{
	struct xp_executor *ex = loop->executor;
	if (!ex)
		return;
	pthread_mutex_lock(&ex->lock);
	ex->stop = true;
	pthread_cond_broadcast(&ex->cond);
	pthread_mutex_unlock(&ex->lock);
	for (int i = 0; i < ex->nthreads; i++)
		pthread_join(ex->threads[i], NULL);
	drain(ex);
	struct job *j = ex->todo;
	while (j) {
		struct job *n = j->next;
		j->done(j->arg);
		free(j);
		j = n;
	}
	pthread_mutex_destroy(&ex->lock);
	pthread_cond_destroy(&ex->cond);
	free(ex);
	loop->executor = NULL;
}

/* ---- run_in_executor and the resolver ------------------------------- */

struct call {
	xp_future *fut;
	xp_work_fn fn;
	void *arg;
	void *result;
	int err;
	bool ran;
	void (*dtor)(void *);	  /* how to free an unwanted result */
	void (*arg_dtor)(void *); /* how to free arg if fn never runs */
};

static void call_work(void *arg)
{
	struct call *c = arg;
	c->result = c->fn(c->arg, &c->err);
	c->ran = true;
}

static void call_done(void *arg)
{
	struct call *c = arg;
	xp_future *f = c->fut;
	bool keep = false;
	if (!c->ran) {
		if (c->arg_dtor)
			c->arg_dtor(c->arg);
		xp_future_set_error(f, XP_ECLOSED);
	} else if (!xp_future_done(f)) { /* not cancelled meanwhile */
		if (c->err < 0)
			xp_future_set_error(f, c->err);
		else
			keep = xp_future_set_result_owned(f, c->result, c->dtor) == 0;
	}
	if (!keep && c->dtor && c->result)
		c->dtor(c->result);
	xp_future_release(f);
	free(c);
}

static xp_future *submit_call(xp_loop *loop, xp_work_fn fn, void *arg, void (*dtor)(void *),
			      void (*arg_dtor)(void *))
{
	xp_future *f = xp_future_new(loop);
	struct call *c = calloc(1, sizeof(*c));
	if (!f || !c) {
		free(c);
		xp_future_release(f);
		errno = ENOMEM;
		return NULL;
	}
	c->fut = xp_future_retain(f);
	c->fn = fn;
	c->arg = arg;
	c->dtor = dtor;
	c->arg_dtor = arg_dtor;
	int r = xp__executor_submit(loop, call_work, call_done, c);
	if (r < 0) {
		if (arg_dtor)
			arg_dtor(arg);
		xp_future_set_error(f, r);
		xp_future_release(f);
		free(c);
	}
	return f;
}

xp_future *xp_run_in_executor(xp_loop *loop, xp_work_fn fn, void *arg)
{
	return submit_call(loop, fn, arg, NULL, NULL);
}

struct gai_req {
	char *host, *port;
	struct addrinfo hints;
	bool has_hints;
};

static int resolve_error(int rc)
{
	if (rc == EAI_SYSTEM)
		return errno ? -errno : XP_ERESOLVE;
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	return XP_ERESOLVE;
}

static void gai_req_free(void *arg)
{
	struct gai_req *q = arg;
	free(q->host);
	free(q->port);
	free(q);
}

static void *gai_work(void *arg, int *err)
{
	struct gai_req *q = arg;
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(q->host, q->port, q->has_hints ? &q->hints : NULL, &res);
	gai_req_free(q);
	if (rc != 0) {
		*err = resolve_error(rc);
		return NULL;
	}
	return res;
}

static void free_addrinfo(void *p)
{
	freeaddrinfo(p);
}

xp_future *xp_getaddrinfo(xp_loop *loop, const char *host, const char *port,
			  const struct addrinfo *hints)
{
	struct gai_req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->host = host ? strdup(host) : NULL;
	q->port = port ? strdup(port) : NULL;
	if (hints) {
		q->hints = *hints;
		q->hints.ai_addr = NULL;
		q->hints.ai_canonname = NULL;
		q->hints.ai_next = NULL;
		q->has_hints = true;
	}
	return submit_call(loop, gai_work, q, free_addrinfo, gai_req_free);
}

static bool all_digits(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int xp__resolve(xp_loop *loop, const char *host, const char *port, const struct addrinfo *hints,
		struct addrinfo **ai, xp_future **fut)
{
	struct addrinfo h = *hints;
	int r;

	*ai = NULL;
	*fut = NULL;
	/* Literals need no executor round trip. */
	h.ai_flags |= AI_NUMERICHOST | (all_digits(port) ? AI_NUMERICSERV : 0);
	r = getaddrinfo(host, port, &h, ai);
	if (r == 0)
		return 0;
	*ai = NULL;
	if (r != EAI_NONAME || !host)
		return resolve_error(r);
	h.ai_flags = hints->ai_flags;
	*fut = xp_getaddrinfo(loop, host, port, &h);
	return *fut ? 0 : (errno ? -errno : -ENOMEM);
}

struct gni_req {
	xp_sockaddr addr;
	int flags;
};

static void *gni_work(void *arg, int *err)
{
	struct gni_req *q = arg;
	xp_nameinfo *ni = calloc(1, sizeof(*ni));
	if (!ni) {
		*err = -ENOMEM;
		free(q);
		return NULL;
	}
	int rc = getnameinfo(&q->addr.u.sa, q->addr.len, ni->host, sizeof(ni->host), ni->serv,
			     sizeof(ni->serv), q->flags);
	free(q);
	if (rc != 0) {
		*err = resolve_error(rc);
		free(ni);
		return NULL;
	}
	return ni;
}

xp_future *xp_getnameinfo(xp_loop *loop, const struct sockaddr *sa, socklen_t len, int flags)
{
	struct gni_req *q = calloc(1, sizeof(*q));
	if (!q || len > sizeof(q->addr.u.ss)) {
		free(q);
		errno = q ? EINVAL : ENOMEM;
		return NULL;
	}
	memcpy(&q->addr.u.ss, sa, len);
	q->addr.len = len;
	q->flags = flags;
	return submit_call(loop, gni_work, q, free, free);
}
