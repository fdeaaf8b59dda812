// SPDX-License-Identifier: MIT
/*
 * loop.c - the event loop: ready queue, timer heap, io watchers, the
 * thread-safe wake-up, and one iteration in the manner of asyncio's
 * _run_once().
 */
#include "internal.h"
#include "loop_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static __thread xp_loop *running_loop;
static __thread xp_loop *default_loop;

/* ---- handles -------------------------------------------------------- */

static xp_handle *handle_new(xp_loop *loop, xp_callback cb, void *arg)
{
	xp_handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->refs = 1; /* the loop's reference while scheduled */
	h->loop = loop;
	h->cb = cb;
	h->arg = arg;
	h->heap_index = SIZE_MAX;
	return h;
}

xp_handle *xp_handle_retain(xp_handle *h)
{
	if (h)
		h->refs++;
	return h;
}

void xp_handle_release(xp_handle *h)
{
	if (!h || --h->refs > 0)
		return;
	if (!h->ran && h->dtor)
		h->dtor(h->arg);
	free(h);
}

xp_handle *xp__call_soon_owned(xp_loop *loop, xp_callback cb, void *arg, void (*dtor)(void *))
{
	xp_handle *h = xp_call_soon(loop, cb, arg);
	if (h)
		h->dtor = dtor;
	return h;
}

int xp_handle_cancelled(const xp_handle *h)
{
	return h->cancelled;
}

double xp_handle_when(const xp_handle *h)
{
	return h->is_timer ? h->when : 0;
}

/* ---- timer heap: ordered by (when, seq) so equal deadlines are FIFO -- */

static bool timer_less(const xp_handle *a, const xp_handle *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(xp_loop *loop, size_t i, xp_handle *h)
{
	loop->heap[i] = h;
	h->heap_index = i;
}

static void heap_up(xp_loop *loop, size_t i)
{
	xp_handle *h = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_less(h, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, h);
}

static void heap_down(xp_loop *loop, size_t i)
{
	xp_handle *h = loop->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap && timer_less(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_less(loop->heap[c], h))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, h);
}

static int heap_push(xp_loop *loop, xp_handle *h)
{
	if (loop->nheap == loop->heapcap) {
		size_t cap = loop->heapcap ? loop->heapcap * 2 : 64;
		xp_handle **n = realloc(loop->heap, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		loop->heap = n;
		loop->heapcap = cap;
	}
	heap_set(loop, loop->nheap++, h);
	heap_up(loop, loop->nheap - 1);
	return 0;
}

static void heap_remove(xp_loop *loop, xp_handle *h)
{
	size_t i = h->heap_index;
	xp_handle *last = loop->heap[--loop->nheap];
	h->heap_index = SIZE_MAX;
	if (i == loop->nheap)
		return;
	heap_set(loop, i, last);
	heap_up(loop, i);
	heap_down(loop, last->heap_index);
}

/* ---- scheduling ----------------------------------------------------- */

static void hq_push(struct xp_hqueue *q, xp_handle *h)
{
	h->next = NULL;
	if (q->tail)
		q->tail->next = h;
	else
		q->head = h;
	q->tail = h;
	q->n++;
}

static xp_handle *hq_pop(struct xp_hqueue *q)
{
	xp_handle *h = q->head;
	if (h) {
		q->head = h->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
	}
	return h;
}

/* Move all of src to the end of dst. */
static void hq_splice(struct xp_hqueue *dst, struct xp_hqueue *src)
{
	if (!src->head)
		return;
	if (dst->tail)
		dst->tail->next = src->head;
	else
		dst->head = src->head;
	dst->tail = src->tail;
	dst->n += src->n;
	*src = (struct xp_hqueue){0};
}

static bool check_open(xp_loop *loop, const char *what)
{
	if (loop->closed) {
		errno = EBADF;
		return false;
	}
	return xp__loop_thread_ok(loop, what);
}

static void ts_drain(xp_loop *loop);

xp_handle *xp_call_soon(xp_loop *loop, xp_callback cb, void *arg)
{
	if (!check_open(loop, "call_soon"))
		return NULL;
	xp_handle *h = handle_new(loop, cb, arg);
	if (h) {
		ts_drain(loop); /* thread-safe calls made before this one go first */
		hq_push(loop->in_poll ? &loop->io_later : &loop->ready, h);
	}
	return h;
}

xp_handle *xp_call_at(xp_loop *loop, double when, xp_callback cb, void *arg)
{
	if (when != when) { /* NaN: asyncio's TypeError for None */
		errno = EINVAL;
		return NULL;
	}
	if (!check_open(loop, "call_at"))
		return NULL;
	xp_handle *h = handle_new(loop, cb, arg);
	if (!h)
		return NULL;
	h->is_timer = true;
	h->when = when;
	h->seq = loop->timer_seq++;
	if (heap_push(loop, h) < 0) {
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

xp_handle *xp_call_later(xp_loop *loop, double delay, xp_callback cb, void *arg)
{
	if (delay != delay) {
		errno = EINVAL;
		return NULL;
	}
	return xp_call_at(loop, xp_loop_time(loop) + delay, cb, arg);
}

void xp_handle_cancel(xp_handle *h)
{
	if (!h || h->cancelled)
		return;
	h->cancelled = true;
	/* A queued timer leaves the heap now (memory stays bounded); a ready
	 * handle is skipped and dropped when its turn comes. */
	if (h->is_timer && h->heap_index != SIZE_MAX) {
		heap_remove(h->loop, h);
		xp_handle_release(h);
	}
}

xp_handle *xp__timer_start(xp_loop *loop, double delay, xp_callback cb, void *arg)
{
	return xp_handle_retain(xp_call_later(loop, delay, cb, arg));
}

void xp__timer_cancel(xp_handle **h)
{
	if (!*h)
		return;
	xp_handle_cancel(*h);
	xp_handle_release(*h);
	*h = NULL;
}

/* ---- thread-safe calls ---------------------------------------------- */

/* Other threads queue complete handles on loop->ts under ts_lock; the loop
 * thread splices them onto the ready queue when the eventfd wakes it, and
 * before any call_soon, so that the two kinds of call keep one FIFO order
 * as in asyncio.  The unlocked look at the head keeps call_soon cheap. */
static void ts_drain(xp_loop *loop)
{
	if (!__atomic_load_n(&loop->ts.head, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&loop->ts_lock);
	struct xp_hqueue q = {loop->ts.head, loop->ts.tail, loop->ts.n};
	__atomic_store_n(&loop->ts.head, NULL, __ATOMIC_RELAXED);
	loop->ts.tail = NULL;
	loop->ts.n = 0;
	pthread_mutex_unlock(&loop->ts_lock);
	hq_splice(&loop->ready, &q);
}

int xp_call_soon_threadsafe(xp_loop *loop, xp_callback cb, void *arg)
{
	if (loop->running && pthread_equal(pthread_self(), loop->thread))
		return xp_call_soon(loop, cb, arg) ? 0 : -errno;
	xp_handle *h = handle_new(loop, cb, arg);
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&loop->ts_lock);
	if (loop->closed) {
		pthread_mutex_unlock(&loop->ts_lock);
		free(h);
		return XP_ECLOSED;
	}
	if (loop->ts.tail)
		loop->ts.tail->next = h;
	else
		__atomic_store_n(&loop->ts.head, h, __ATOMIC_RELEASE);
	loop->ts.tail = h;
	loop->ts.n++;
	pthread_mutex_unlock(&loop->ts_lock);
	uint64_t one = 1;
	ssize_t n = write(loop->wakefd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is already non-zero, the loop wakes */
	return 0;
}

static void wake_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	uint64_t v;
	ssize_t n = read(w->fd, &v, sizeof(v));
	(void)n;
	ts_drain(loop);
}

/* ---- io watchers ---------------------------------------------------- */

void xp__io_init(struct xp_io *w, int fd, xp_io_cb cb)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->cb = cb;
	w->backend_index = -1;
	xp_list_init(&w->ready_node);
}

static int io_apply(xp_loop *loop, struct xp_io *w, unsigned events)
{
	if (events == w->events)
		return 0;
	if (!loop->backend) /* closed: a transport tidying up after the loop */
		return events ? XP_ECLOSED : 0;
	w->events = events;
	if (!w->always_ready) {
		int r = xp__backend_update(loop->backend, w, events);
		if (r != -EPERM)
			return r;
		w->always_ready = true; /* regular file, /dev/null: never blocks */
	}
	/* A regular file never fails or hangs up: WATCH alone is nothing. */
	if ((events & XP_IO_RW) && xp_list_empty(&w->ready_node))
		xp_list_insert_tail(&loop->always_ready, &w->ready_node);
	else if (!(events & XP_IO_RW) && !xp_list_empty(&w->ready_node))
		xp_list_remove(&w->ready_node);
	return 0;
}

int xp__io_start(xp_loop *loop, struct xp_io *w, unsigned events)
{
	return io_apply(loop, w, w->events | events);
}

int xp__io_stop(xp_loop *loop, struct xp_io *w, unsigned events)
{
	return io_apply(loop, w, w->events & ~events);
}

void xp__io_close(xp_loop *loop, struct xp_io *w)
{
	if (!w->always_ready && loop->backend)
		xp__backend_forget(loop->backend, w);
	if (!xp_list_empty(&w->ready_node))
		xp_list_remove(&w->ready_node);
	w->events = 0;
}

/* Descriptors the backend refused are ready whenever they are wanted. */
static void run_always_ready(xp_loop *loop)
{
	size_t n = 0;
	struct xp_list *p;
	for (p = loop->always_ready.next; p != &loop->always_ready; p = p->next)
		n++;
	while (n-- && !xp_list_empty(&loop->always_ready)) {
		struct xp_list *node = loop->always_ready.next;
		struct xp_io *w = xp_list_entry(node, struct xp_io, ready_node);
		/* Rotate first: the callback may stop or free w. */
		xp_list_remove(node);
		xp_list_insert_tail(&loop->always_ready, node);
		w->cb(loop, w, w->events & XP_IO_RW);
	}
}

/* ---- add_reader / add_writer: one watcher per fd -------------------- */

struct fd_watch {
	struct xp_io io;
	xp_callback cb[2]; /* reader, writer */
	void *arg[2];
};

static void fd_watch_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	struct fd_watch *fw = XP_CONTAINER_OF(w, struct fd_watch, io);
	int fd = w->fd;
	int r;
	if ((revents & (XP_IO_READ | XP_IO_ERR | XP_IO_HUP)) && fw->cb[0]) {
		r = fw->cb[0](fw->arg[0]);
		if (r < 0)
			xp__loop_report(loop, "Exception in reader callback", r, NULL, NULL);
	}
	/* The reader may have removed this watcher. */
	if ((size_t)fd >= loop->nfdw || loop->fdw[fd] != fw)
		return;
	if ((revents & (XP_IO_WRITE | XP_IO_ERR | XP_IO_HUP)) && fw->cb[1]) {
		r = fw->cb[1](fw->arg[1]);
		if (r < 0)
			xp__loop_report(loop, "Exception in writer callback", r, NULL, NULL);
	}
}

static int add_fd_cb(xp_loop *loop, int fd, int which, xp_callback cb, void *arg)
{
	if (!check_open(loop, "add_reader"))
		return XP_ECLOSED;
	if (fd < 0 || !cb)
		return -EINVAL;
	if ((size_t)fd >= loop->nfdw) {
		size_t n = (size_t)fd + 64;
		struct fd_watch **a = realloc(loop->fdw, n * sizeof(*a));
		if (!a)
			return -ENOMEM;
		memset(a + loop->nfdw, 0, (n - loop->nfdw) * sizeof(*a));
		loop->fdw = a;
		loop->nfdw = n;
	}
	struct fd_watch *fw = loop->fdw[fd];
	if (!fw) {
		fw = calloc(1, sizeof(*fw));
		if (!fw)
			return -ENOMEM;
		xp__io_init(&fw->io, fd, fd_watch_cb);
		loop->fdw[fd] = fw;
	}
	fw->cb[which] = cb;
	fw->arg[which] = arg;
	int r = xp__io_start(loop, &fw->io, which ? XP_IO_WRITE : XP_IO_READ);
	if (r < 0) {
		fw->cb[which] = NULL;
		if (!fw->cb[!which]) {
			xp__io_close(loop, &fw->io);
			loop->fdw[fd] = NULL;
			free(fw);
		}
	}
	return r;
}

static int remove_fd_cb(xp_loop *loop, int fd, int which)
{
	if (fd < 0 || (size_t)fd >= loop->nfdw || !loop->fdw[fd] || !loop->fdw[fd]->cb[which])
		return 0;
	struct fd_watch *fw = loop->fdw[fd];
	fw->cb[which] = NULL;
	if (fw->cb[!which]) {
		xp__io_stop(loop, &fw->io, which ? XP_IO_WRITE : XP_IO_READ);
	} else {
		xp__io_close(loop, &fw->io);
		loop->fdw[fd] = NULL;
		free(fw);
	}
	return 1;
}

int xp_add_reader(xp_loop *loop, int fd, xp_callback cb, void *arg)
{
	return add_fd_cb(loop, fd, 0, cb, arg);
}

int xp_add_writer(xp_loop *loop, int fd, xp_callback cb, void *arg)
{
	return add_fd_cb(loop, fd, 1, cb, arg);
}

int xp_remove_reader(xp_loop *loop, int fd)
{
	return remove_fd_cb(loop, fd, 0);
}

int xp_remove_writer(xp_loop *loop, int fd)
{
	return remove_fd_cb(loop, fd, 1);
}

/* ---- the loop ------------------------------------------------------- */

double xp_loop_time(const xp_loop *loop)
{
	struct timespec ts;
	(void)loop;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

xp_loop *xp_loop_new(void)
{
	xp_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	xp_list_init(&loop->always_ready);
	xp_list_init(&loop->transports);
	pthread_mutex_init(&loop->ts_lock, NULL);
	loop->slow_callback = 0.1;
	loop->sigfd = -1;
	const char *dbg = getenv("XPORT_DEBUG");
	loop->debug = dbg && *dbg && strcmp(dbg, "0") != 0;
	int r = xp__backend_init(&loop->backend);
	if (r < 0)
		goto fail;
	loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->wakefd < 0) {
		r = -errno;
		xp__backend_destroy(loop->backend);
		loop->backend = NULL;
		goto fail;
	}
	xp__io_init(&loop->wake, loop->wakefd, wake_cb);
	r = xp__io_start(loop, &loop->wake, XP_IO_READ);
	if (r < 0) {
		close(loop->wakefd);
		xp__backend_destroy(loop->backend);
		loop->backend = NULL;
		goto fail;
	}
	return loop;
fail:
	pthread_mutex_destroy(&loop->ts_lock);
	free(loop);
	errno = -r;
	return NULL;
}

static int next_timeout_ms(xp_loop *loop)
{
	if (loop->ready.head || loop->stopping || !xp_list_empty(&loop->always_ready))
		return 0;
	if (loop->nheap == 0)
		return -1;
	double d = loop->heap[0]->when - xp_loop_time(loop);
	if (d <= 0)
		return 0;
	/* Round up: waking early would spin until the deadline. */
	double ms = d * 1000.0 + 0.999;
	return ms > 86400000.0 ? 86400000 : (int)ms;
}

static void collect_timers(xp_loop *loop)
{
	double now = xp_loop_time(loop);
	while (loop->nheap && loop->heap[0]->when <= now) {
		xp_handle *h = loop->heap[0];
		heap_remove(loop, h);
		hq_push(&loop->ready, h);
	}
}

static void run_handle(xp_loop *loop, xp_handle *h)
{
	double t0 = loop->debug ? xp_loop_time(loop) : 0;
	int r = h->cb(h->arg);
	if (r < 0) {
		xp_context ctx = {.message = "Exception in callback", .error = r, .handle = h};
		xp_loop_call_exception_handler(loop, &ctx);
	}
	if (loop->debug) {
		double dt = xp_loop_time(loop) - t0;
		if (dt >= loop->slow_callback)
			fprintf(stderr, "xport: debug: executing callback %p took %.3f seconds\n",
				(void *)h, dt);
	}
}

/* One iteration, as asyncio's _run_once(): wait for io (not at all if work
 * is ready), move due timers, then run exactly the callbacks ready now.
 * Whatever they schedule waits for the next iteration.  Unlike asyncio (and
 * like uvloop) I/O callbacks are not queued but run from the poll, ahead of
 * the callbacks ready now; what they schedule still waits for the next
 * iteration, and queues ahead of what this one's callbacks schedule. */
static void run_once(xp_loop *loop)
{
	loop->in_poll = true;
	xp__backend_wait(loop->backend, loop, next_timeout_ms(loop));
	run_always_ready(loop);
	loop->in_poll = false;
	collect_timers(loop);
	size_t ntodo = loop->ready.n;
	hq_splice(&loop->ready, &loop->io_later);
	while (ntodo--) {
		xp_handle *h = hq_pop(&loop->ready);
		if (!h->cancelled) {
			h->ran = true;
			run_handle(loop, h);
		}
		xp_handle_release(h);
	}
}

int xp_loop_run_forever(xp_loop *loop)
{
	if (loop->closed)
		return XP_ECLOSED;
	if (loop->running || running_loop)
		return -EBUSY;
	loop->running = true;
	loop->thread = pthread_self();
	xp_loop *prev = running_loop;
	running_loop = loop;
	for (;;) {
		run_once(loop);
		if (loop->stopping)
			break;
	}
	loop->stopping = false;
	loop->running = false;
	running_loop = prev;
	return 0;
}

static void stop_on_done(xp_future *fut, void *arg)
{
	xp_loop_stop(arg);
}

int xp_loop_run_until_complete(xp_loop *loop, xp_future *fut)
{
	if (!xp_future_done(fut)) {
		int r = xp_future_add_done_callback(fut, stop_on_done, loop);
		if (r < 0)
			return r;
		r = xp_loop_run_forever(loop);
		xp_future_remove_done_callback(fut, stop_on_done, loop);
		if (r < 0)
			return r;
		if (!xp_future_done(fut))
			return XP_ESTATE; /* stopped before the future completed */
	}
	return xp_future_error(fut);
}

void xp_loop_stop(xp_loop *loop)
{
	loop->stopping = true;
}

int xp_loop_is_running(const xp_loop *loop)
{
	return loop->running;
}

int xp_loop_is_closed(const xp_loop *loop)
{
	return loop->closed;
}

xp_loop *xp_get_running_loop(void)
{
	return running_loop;
}

xp_loop *xp_get_event_loop(void)
{
	if (running_loop)
		return running_loop;
	if (!default_loop)
		default_loop = xp_loop_new();
	return default_loop;
}

void xp_set_event_loop(xp_loop *loop)
{
	default_loop = loop;
}

static void report_unclosed(xp_loop *loop)
{
	struct xp_list *p;
	for (p = loop->transports.next; p != &loop->transports; p = p->next) {
		struct xp_tracked *tr = xp_list_entry(p, struct xp_tracked, node);
		fprintf(stderr, "xport: debug: unclosed transport %p (%s)\n", (void *)tr, tr->what);
	}
}

int xp_loop_close(xp_loop *loop)
{
	if (loop->running)
		return -EBUSY;
	if (loop->closed)
		return 0;
	if (loop->debug)
		report_unclosed(loop);
	/* Closed first: completions made while shutting down (executor jobs)
	 * can no longer schedule anything. */
	pthread_mutex_lock(&loop->ts_lock);
	loop->closed = true;
	pthread_mutex_unlock(&loop->ts_lock);
	xp__executor_shutdown(loop);
	xp__signal_shutdown(loop);
	ts_drain(loop); /* dropped below with the rest of the ready queue */
	xp_handle *h;
	while ((h = hq_pop(&loop->ready)))
		xp_handle_release(h);
	while (loop->nheap) {
		h = loop->heap[0];
		heap_remove(loop, h);
		xp_handle_release(h);
	}
	for (size_t fd = 0; fd < loop->nfdw; fd++) {
		if (loop->fdw[fd]) {
			xp__io_close(loop, &loop->fdw[fd]->io);
			free(loop->fdw[fd]);
		}
	}
	free(loop->fdw);
	loop->fdw = NULL;
	loop->nfdw = 0;
	xp__io_close(loop, &loop->wake);
	close(loop->wakefd);
	xp__backend_destroy(loop->backend);
	loop->backend = NULL;
	free(loop->heap);
	loop->heap = NULL;
	for (int i = 0; i < 2; i++) {
		free(loop->rbuf[i]);
		loop->rbuf[i] = NULL;
	}
	if (running_loop == loop)
		running_loop = NULL;
	return 0;
}

void xp_loop_free(xp_loop *loop)
{
	if (!loop)
		return;
	xp_loop_close(loop);
	if (default_loop == loop)
		default_loop = NULL;
	pthread_mutex_destroy(&loop->ts_lock);
	free(loop);
}

/* ---- debug and reporting -------------------------------------------- */

void xp_loop_set_debug(xp_loop *loop, int enabled)
{
	loop->debug = enabled != 0;
}

int xp_loop_get_debug(const xp_loop *loop)
{
	return loop->debug;
}

void xp_loop_set_slow_callback_duration(xp_loop *loop, double seconds)
{
	loop->slow_callback = seconds;
}

bool xp__loop_thread_ok(xp_loop *loop, const char *what)
{
	if (!loop->debug || !loop->running || pthread_equal(pthread_self(), loop->thread))
		return true;
	fprintf(stderr,
		"xport: debug: %s called from a thread other than the loop's; use "
		"xp_call_soon_threadsafe\n",
		what);
	errno = EPERM;
	return false;
}

void xp_loop_set_exception_handler(xp_loop *loop, xp_exception_handler h, void *arg)
{
	loop->exc_handler = h;
	loop->exc_arg = arg;
}

xp_exception_handler xp_loop_get_exception_handler(const xp_loop *loop, void **arg)
{
	if (arg)
		*arg = loop->exc_arg;
	return loop->exc_handler;
}

void xp_loop_default_exception_handler(xp_loop *loop, const xp_context *ctx)
{
	(void)loop;
	const char *msg = ctx->message ? ctx->message : "Unhandled error in event loop";
	if (ctx->error)
		fprintf(stderr, "xport: %s: %s\n", msg, xp_strerror(ctx->error));
	else
		fprintf(stderr, "xport: %s\n", msg);
}

void xp_loop_call_exception_handler(xp_loop *loop, const xp_context *ctx)
{
	if (!loop->exc_handler) {
		xp_loop_default_exception_handler(loop, ctx);
		return;
	}
	if (loop->exc_handler(loop, ctx, loop->exc_arg) != 0) {
		xp_context c = {.message = "Unhandled error in exception handler",
				.error = XP_ECALLBACK};
		xp_loop_default_exception_handler(loop, &c);
		xp_loop_default_exception_handler(loop, ctx);
	}
}

void xp__loop_report(xp_loop *loop, const char *message, int err, xp_transport *t, xp_protocol *p)
{
	xp_context ctx = {.message = message, .error = err, .transport = t, .protocol = p};
	xp_loop_call_exception_handler(loop, &ctx);
}

static void *read_buffer(xp_loop *loop, int i, size_t *len)
{
	if (!loop->rbuf[i]) {
		loop->rbuf[i] = malloc(XP_READ_BUFFER_SIZE);
		if (!loop->rbuf[i])
			return NULL;
	}
	*len = XP_READ_BUFFER_SIZE;
	return loop->rbuf[i];
}

void *xp__loop_read_buffer(xp_loop *loop, size_t *len)
{
	return read_buffer(loop, 0, len);
}

void *xp__loop_plain_buffer(xp_loop *loop, size_t *len)
{
	return read_buffer(loop, 1, len);
}

void xp__loop_track(xp_loop *loop, struct xp_tracked *tr)
{
	xp_list_insert_tail(&loop->transports, &tr->node);
}
