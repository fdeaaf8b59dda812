/* SPDX-License-Identifier: MIT */
/*
 * loop_impl.h - the loop's own structures, shared by loop.c, future.c,
 * executor.c and signal.c.  Transports and backends never include it.
 *
 * Those four files are one module, the loop, cut by concept: the loop
 * shuts down its executor and signal handling when it closes, and they
 * complete futures and wake the loop through it.  These are the only
 * calls that go both ways between files of src/, and they stay inside
 * this module.
 */
#ifndef XP_LOOP_IMPL_H
#define XP_LOOP_IMPL_H

#include "internal.h"

#include <pthread.h>
#include <signal.h>

#define XP_READ_BUFFER_SIZE (256 * 1024)

struct xp_handle {
	int refs;
	bool cancelled;
	bool is_timer;
	double when;
	uint64_t seq;	   /* scheduling order: equal deadlines fire FIFO */
	size_t heap_index; /* SIZE_MAX when not in the heap */
	xp_callback cb;
	void *arg;
	void (*dtor)(void *); /* frees arg if the callback never runs */
	bool ran;
	xp_loop *loop;
	struct xp_handle *next; /* ready queue */
};

struct fd_watch;

/* A FIFO of handles linked through next. */
struct xp_hqueue {
	xp_handle *head, *tail;
	size_t n;
};
struct xp_executor;
struct xp_signals;

struct xp_loop {
	struct xp_backend *backend;
	bool running, stopping, closed, debug;
	pthread_t thread;
	double slow_callback;

	struct xp_hqueue ready;
	/* What I/O callbacks schedule while the poll runs them: the next
	 * iteration's, as in asyncio where I/O callbacks are handles too. */
	struct xp_hqueue io_later;
	bool in_poll;
	xp_handle **heap;
	size_t nheap, heapcap;
	uint64_t timer_seq;

	struct xp_list always_ready; /* xp_io refused by the backend */
	struct xp_list transports;   /* live transports, for the debug report */
	struct fd_watch **fdw;	     /* add_reader/add_writer, by fd */
	size_t nfdw;

	/* call_soon_threadsafe */
	pthread_mutex_t ts_lock;
	struct xp_hqueue ts; /* head read unlocked, atomically */
	int wakefd;
	struct xp_io wake;

	xp_exception_handler exc_handler;
	void *exc_arg;

	void *rbuf[2]; /* shared read and plaintext buffers, XP_READ_BUFFER_SIZE */

	struct xp_executor *executor;
	struct xp_signals *signals;
	int sigfd;
};

void xp__executor_shutdown(xp_loop *loop);
void xp__signal_shutdown(xp_loop *loop);

#endif
