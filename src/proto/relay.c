// SPDX-License-Identifier: MIT
/*
 * relay.c - two byte streams joined, both ways.
 *
 * Each end is a stream transport, a pair of pipe transports (reader and
 * writer), or a subprocess (its stdin pipe is the writer, its stdout (and
 * stderr) pipes the readers).  Direction i carries bytes read from end i to
 * end 1-i's writer.
 *
 * Flow control: the reading side of a direction runs only while the writer
 * it feeds is connected, not paused (pause_writing) and not gone.  So an end
 * that is not connected yet holds the other one's reading paused, and a
 * slow consumer stops its producer at the high watermark: memory stays
 * flat whatever the speeds.
 *
 * Ending: EOF from end i is passed on as a write_eof to end 1-i (half
 * close) and the direction is done; when both are, both ends are flushed
 * and closed (finish).  With no_half_close the first EOF finishes, and
 * eof_ends makes that so for one end's EOF.  one_way relays one direction
 * only: the other is read and dropped (or, from a pipe end, not read at
 * all) and never needs to end; the used one ending finishes.  An end
 * lost with an error aborts the other (a TCP reset, so that its peer does
 * not take the cut for a clean end; SIGTERM for a child).  The relay
 * reports once both ends are gone, then frees itself.
 *
 * Memory: the relay is referenced by "not done yet" and by every callback
 * in progress (enter/leave), so on_done may run anywhere and the memory
 * goes away only when the outermost call returns.
 */
#include "proto/common.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

enum end_kind { K_NONE, K_STREAM, K_PIPE, K_SUBPROC };
enum relay_state { R_RUN, R_FINISH, R_ABORT, R_DONE };

struct rend;

/* One protocol object: the stream or subprocess protocol of an end, or
 * the reader (part 0) or writer (part 1) of a pipe end. */
struct rpart {
	xp_protocol proto;
	struct rend *e;
	xp_transport *t; /* from connection_made to connection_lost */
	bool expected;	 /* handed out: its connection_made will come */
	bool made, lost;
};

struct rend {
	xp_relay *r;
	int idx;
	enum end_kind kind;
	struct rpart part[2];
	xp_transport *sp;    /* subprocess transport */
	xp_transport *rt[2]; /* reading transports */
	xp_transport *wt;    /* writing transport */
	bool writer_up;	     /* writes can be made (or the writer is gone) */
	bool writer_gone;    /* nothing can be written any more */
	bool wpaused;	     /* the writer asked us to pause */
	bool eof_sent;	     /* EOF passed on to the writer */
	bool read_eof;	     /* nothing more will be read */
	bool started;	     /* a part was made */
	bool failed, gone, signalled;
	int nreaders;	    /* subprocess: read pipes still open that count */
	int stderr_fd;	    /* subprocess: fd-2 data goes here if >= 0 */
	xp_future *pending; /* creating this end's transport */
	xp_handle *kill_timer;
	struct xp_wbuf stash; /* bytes for this end before its writer was up */
};

struct xp_relay {
	xp_loop *loop;
	xp_relay_opts o;
	struct rend end[2];
	enum relay_state state;
	bool dir_done[2]; /* i: from end i to end 1-i */
	xp_conn_stats st;
	const char *reason;
	int reason_err;
	bool on_start_called;
	bool spliced; /* both directions go through splice(2) */
	xp_handle *eof_timer;
	struct xp__idle idle;
	int refs;
};

static void finish(xp_relay *r);
static void abort_all(xp_relay *r);

/* ---- lifetime ------------------------------------------------------- */

static void relay_free(xp_relay *r)
{
	for (int i = 0; i < 2; i++) {
		xp__timer_cancel(&r->end[i].kill_timer);
		xp__wbuf_clear(&r->end[i].stash);
	}
	xp__timer_cancel(&r->eof_timer);
	xp__idle_stop(&r->idle);
	free(r);
}

static void enter(xp_relay *r)
{
	r->refs++;
}

static void stop_timers(xp_relay *r)
{
	xp__timer_cancel(&r->eof_timer);
	xp__idle_stop(&r->idle);
}

/* Both ends gone: report once and drop the "not done" reference. */
static void maybe_done(xp_relay *r)
{
	const xp_proto_hooks *h = &r->o.proto.hooks;

	if (r->state == R_DONE || !r->end[0].gone || !r->end[1].gone)
		return;
	r->state = R_DONE;
	stop_timers(r);
	r->st.seconds = xp_loop_time(r->loop) - r->st.started;
	r->st.end = r->reason ? r->reason : "eof";
	r->st.error = r->reason_err;
	if (r->on_start_called && h->on_end)
		h->on_end(h->arg, &r->st);
	if (r->o.on_done)
		r->o.on_done(r, &r->st, r->o.arg);
	r->refs--; /* the caller's enter() still holds one */
}

static void leave(xp_relay *r)
{
	maybe_done(r);
	if (--r->refs == 0)
		relay_free(r);
}

void xp__relay_ref(xp_relay *r)
{
	enter(r);
}

void xp__relay_unref(xp_relay *r)
{
	leave(r);
}

static struct rend *other(struct rend *e)
{
	return &e->r->end[1 - e->idx];
}

static void set_reason(xp_relay *r, const char *reason, int err)
{
	if (r->reason)
		return;
	r->reason = reason;
	r->reason_err = err;
}

/* Direction i (end i to end 1-i) carries bytes. */
static bool dir_used(const xp_relay *r, int i)
{
	return r->o.one_way == XP_RELAY_BOTH_WAYS ||
	       r->o.one_way == (i == 0 ? XP_RELAY_0_TO_1 : XP_RELAY_1_TO_0);
}

/* Every direction that carries bytes has ended, and a child's dropped
 * output too: cutting it off could kill the child with SIGPIPE. */
static bool all_dirs_done(const xp_relay *r)
{
	for (int i = 0; i < 2; i++)
		if ((dir_used(r, i) || r->end[i].kind == K_SUBPROC) && !r->dir_done[i])
			return false;
	return true;
}

/* ---- flow control ------------------------------------------------------ */

static void end_set_reading(struct rend *e, bool on)
{
	for (int i = 0; i < 2; i++) {
		if (!e->rt[i])
			continue;
		if (on)
			xp_transport_resume_reading(e->rt[i]);
		else
			xp_transport_pause_reading(e->rt[i]);
	}
}

/* Read from an end only while what it feeds can take it. */
static void sync_reading(xp_relay *r)
{
	for (int i = 0; i < 2; i++) {
		struct rend *e = &r->end[i], *o = &r->end[1 - i];
		bool on = r->state == R_RUN && !r->dir_done[i];

		if (dir_used(r, i))
			on = on && o->writer_up && !o->writer_gone && !o->wpaused;
		else
			on = on && e->kind != K_PIPE; /* dropped; stdin left alone */
		end_set_reading(e, on);
	}
}

/* ---- moving bytes ------------------------------------------------------ */

static void account(xp_relay *r, int from, const void *data, size_t len)
{
	const xp_proto_hooks *h = &r->o.proto.hooks;
	char dir = from == r->o.stats_end ? '<' : '>';

	if (dir == '<')
		r->st.received += len;
	else
		r->st.sent += len;
	xp__idle_touch(&r->idle);
	if (h->on_data)
		h->on_data(h->arg, &r->st, dir, data, len);
}

static void fail(xp_relay *r, int err)
{
	set_reason(r, xp__end_for_err(err), err);
	if (r->state == R_RUN)
		abort_all(r);
}

static void relay_data(struct rend *from, const void *data, size_t len)
{
	xp_relay *r = from->r;
	struct rend *to = other(from);
	int rc;

	if (r->state != R_RUN || !len)
		return;
	if (!dir_used(r, from->idx)) {
		/* Dropped.  Read from the peer still counts as received; read
		 * from our side, it was never sent. */
		if (from->idx == r->o.stats_end)
			account(r, from->idx, data, len);
		else
			xp__idle_touch(&r->idle);
		return;
	}
	if (to->writer_gone || to->eof_sent)
		return;
	account(r, from->idx, data, len);
	if (!to->writer_up) /* reading should have been paused: keep it anyway */
		rc = xp__wbuf_append(&to->stash, data, len);
	else
		rc = xp_transport_write(to->wt, data, len);
	if (rc < 0)
		fail(r, rc);
}

static void flush_stash(struct rend *e)
{
	struct iovec iov[16];

	while (xp__wbuf_size(&e->stash) && e->wt && !e->writer_gone) {
		int n = xp__wbuf_peek(&e->stash, iov, 16);
		size_t len = 0;
		for (int i = 0; i < n; i++)
			len += iov[i].iov_len;
		int rc = xp_transport_writelines(e->wt, iov, n);
		xp__wbuf_consume(&e->stash, len);
		if (rc < 0) {
			fail(e->r, rc);
			break;
		}
	}
	xp__wbuf_clear(&e->stash);
}

/* ---- ending directions ------------------------------------------------- */

static int eof_timeout_cb(void *arg)
{
	xp_relay *r = arg;

	enter(r);
	xp_handle_release(r->eof_timer);
	r->eof_timer = NULL;
	set_reason(r, "timeout", -ETIMEDOUT);
	abort_all(r);
	leave(r);
	return 0;
}

static void idle_fire(void *arg)
{
	xp_relay *r = arg;

	enter(r);
	set_reason(r, "timeout", -ETIMEDOUT);
	abort_all(r);
	leave(r);
}

static void dir_end(xp_relay *r, int i)
{
	if (r->dir_done[i])
		return;
	r->dir_done[i] = true;
	if (r->state != R_RUN)
		return;
	if (all_dirs_done(r)) {
		finish(r);
		return;
	}
	sync_reading(r);
	if (dir_used(r, i) && r->o.eof_timeout > 0 && !r->eof_timer)
		r->eof_timer = xp__timer_start(r->loop, r->o.eof_timeout, eof_timeout_cb, r);
}

/* Pass EOF on to an end's writer: shutdown, or close once flushed. */
static void send_eof(struct rend *o)
{
	xp_transport *t = o->wt;

	if (o->eof_sent || o->writer_gone || !o->writer_up)
		return; /* not up yet: sent when it connects */
	o->eof_sent = true;
	if (!t)
		return;
	if (o->kind == K_STREAM && xp_transport_can_write_eof(t) > 0) {
		if (xp_transport_write_eof(t) < 0)
			xp_transport_close(t);
	} else {
		xp_transport_close(t);
	}
}

static void on_read_eof(struct rend *e)
{
	xp_relay *r = e->r;

	if (e->read_eof)
		return;
	e->read_eof = true;
	if (r->state != R_RUN)
		return;
	if (r->o.no_half_close || (r->o.eof_ends & (1u << e->idx))) {
		finish(r);
		return;
	}
	if (dir_used(r, e->idx))
		send_eof(other(e));
	dir_end(r, e->idx);
}

static void on_writer_gone(struct rend *e)
{
	e->writer_gone = true;
	e->wt = NULL;
	xp__wbuf_clear(&e->stash);
	dir_end(e->r, 1 - e->idx);
}

/* ---- closing and aborting ends ----------------------------------------- */

static int kill_timer_cb(void *arg)
{
	struct rend *e = arg;
	xp_relay *r = e->r;

	enter(r);
	xp_handle_release(e->kill_timer);
	e->kill_timer = NULL;
	if (e->sp)
		xp_transport_kill(e->sp);
	leave(r);
	return 0;
}

static void signal_child(struct rend *e)
{
	xp_relay *r = e->r;

	if (!e->sp || e->signalled)
		return;
	e->signalled = true;
	xp_transport_send_signal(e->sp, r->o.child_signal > 0 ? r->o.child_signal : SIGTERM);
	if (r->o.kill_after > 0)
		e->kill_timer = xp__timer_start(r->loop, r->o.kill_after, kill_timer_cb, e);
}

/* Graceful (hard false): what is buffered is still delivered. */
static void shut(xp_transport *t, bool hard)
{
	if (hard)
		xp_transport_abort(t);
	else
		xp_transport_close(t);
}

static void close_pipes(xp_transport *sp, bool hard)
{
	for (int fd = 0; fd < 3; fd++) {
		xp_transport *p = xp_transport_get_pipe_transport(sp, fd);
		if (p)
			shut(p, hard);
	}
}

static void shut_parts(struct rend *e, bool hard)
{
	for (int i = 0; i < 2; i++)
		if (e->part[i].t)
			shut(e->part[i].t, hard);
}

/* Either way of ending an end stops its connect if still pending; false
 * when the end is already gone. */
static bool end_live(struct rend *e)
{
	if (e->gone)
		return false;
	if (e->pending)
		xp_future_cancel(e->pending);
	return true;
}

static void close_end(struct rend *e)
{
	if (!end_live(e))
		return;
	switch (e->kind) {
	case K_STREAM:
	case K_PIPE:
		shut_parts(e, false);
		break;
	case K_SUBPROC:
		/* Not the subprocess transport: its close() is a SIGKILL.
		 * With its pipes closed the child is expected to end. */
		if (e->sp)
			close_pipes(e->sp, false);
		break;
	case K_NONE:
		break;
	}
}

/* A reset rather than a FIN, so the peer knows the stream was cut. */
static void reset_stream(xp_transport *t)
{
	const int *fd = xp_transport_get_extra_info(t, "socket", NULL);

	if (fd && *fd >= 0) {
		struct linger l = {1, 0};
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	xp_transport_abort(t);
}

static void abort_end(struct rend *e)
{
	if (!end_live(e))
		return;
	switch (e->kind) {
	case K_STREAM:
		if (e->part[0].t)
			reset_stream(e->part[0].t);
		break;
	case K_PIPE:
		shut_parts(e, true);
		break;
	case K_SUBPROC:
		if (e->sp) {
			close_pipes(e->sp, true);
			signal_child(e);
		}
		break;
	case K_NONE:
		break;
	}
}

static void finish(xp_relay *r)
{
	if (r->state != R_RUN)
		return;
	r->state = R_FINISH;
	stop_timers(r);
	for (int i = 0; i < 2; i++)
		close_end(&r->end[i]);
}

static void abort_all(xp_relay *r)
{
	if (r->state == R_ABORT || r->state == R_DONE)
		return;
	r->state = R_ABORT;
	stop_timers(r);
	for (int i = 0; i < 2; i++)
		abort_end(&r->end[i]);
}

/* ---- ends coming and going ---------------------------------------------- */

static void end_gone(struct rend *e, int err)
{
	xp_relay *r = e->r;

	e->gone = true;
	e->sp = e->wt = e->rt[0] = e->rt[1] = NULL;
	e->writer_gone = e->read_eof = true;
	xp__timer_cancel(&e->kill_timer);
	xp__wbuf_clear(&e->stash);
	if (err)
		fail(r, err);
	else
		finish(r); /* gone cleanly: the other end has nothing more to do */
}

static void check_gone(struct rend *e)
{
	if (e->gone)
		return;
	if (e->kind == K_NONE && !e->failed)
		return;
	for (int i = 0; i < 2; i++)
		if (e->part[i].expected && !e->part[i].lost)
			return;
	end_gone(e, 0);
}

static void end_started(struct rend *e, xp_transport *t)
{
	xp_relay *r = e->r;
	const xp_proto_hooks *h = &r->o.proto.hooks;

	if (e->started)
		return;
	e->started = true;
	if (e->idx != r->o.stats_end)
		return;
	if (e->kind == K_STREAM) {
		xp__peer_label(t, "peer", r->st.peer, sizeof(r->st.peer));
	} else if (e->kind == K_SUBPROC) {
		pid_t pid = 0;

		xp_transport_get_pid(t, &pid);
		snprintf(r->st.peer, sizeof(r->st.peer), "subprocess[%ld]", (long)pid);
	} else {
		snprintf(r->st.peer, sizeof(r->st.peer), "pipe");
	}
	r->on_start_called = true;
	if (h->on_start)
		h->on_start(h->arg, &r->st);
}

/* The writer of e just came up. */
static void writer_up(struct rend *e)
{
	e->writer_up = true;
	if (!e->wt) {
		on_writer_gone(e);
		return;
	}
	flush_stash(e);
	if (!dir_used(e->r, 1 - e->idx)) {
		if (e->kind == K_SUBPROC)
			send_eof(e); /* never fed: its stdin is as /dev/null */
	} else if (other(e)->read_eof && !e->r->o.no_half_close) {
		send_eof(e);
	}
}

static void spliced(void *arg, size_t n)
{
	struct rend *from = arg;

	account(from->r, from->idx, NULL, n);
}

/* Two plain sockets and nobody looking at the bytes (no hexdump): move them
 * kernel-side with splice(2).  Flow control, EOF and errors still come
 * through the protocols as before; only data_received is replaced. */
static void maybe_splice(xp_relay *r)
{
	struct rend *a = &r->end[0], *b = &r->end[1];

	if (r->o.proto.hooks.on_data || a->kind != K_STREAM || b->kind != K_STREAM ||
	    !a->part[0].t || !b->part[0].t || r->spliced || r->o.no_splice)
		return;
	if (xp_transport_get_write_buffer_size(a->part[0].t) ||
	    xp_transport_get_write_buffer_size(b->part[0].t) || xp__wbuf_size(&a->stash) ||
	    xp__wbuf_size(&b->stash))
		return; /* spliced bytes must not overtake queued ones */
	/* A dropped direction is never spliced: its bytes must not arrive. */
	if (dir_used(r, 0) && xp__stream_splice(a->part[0].t, b->part[0].t, spliced, a) < 0)
		return;
	if (dir_used(r, 1) && xp__stream_splice(b->part[0].t, a->part[0].t, spliced, b) < 0 &&
	    !dir_used(r, 0))
		return;
	/* Or one direction spliced, the other copied: both still correct. */
	r->spliced = true;
}

/* Common tail of every connection_made. */
static void part_made_tail(struct rend *e)
{
	xp_relay *r = e->r;

	if (r->state == R_FINISH) {
		close_end(e);
	} else if (r->state == R_ABORT) {
		abort_end(e);
	} else {
		maybe_splice(r);
		sync_reading(r);
	}
}

/*
 * A write pipe ended without our closing it: its reader went away (the
 * consumer of our stdout exited).  Whatever the other end sends from now
 * on could only be dropped, so the session fails at once with a broken
 * pipe, as nc's next write would (status 1), instead of running on deaf.
 * A child's stdin is not a pipe end (K_SUBPROC): a child may close it.
 */
static bool reader_vanished(const struct rend *e)
{
	const xp_relay *r = e->r;
	int feeding = 1 - e->idx;

	return r->state == R_RUN && !e->eof_sent && dir_used(r, feeding) && !r->dir_done[feeding];
}

static void part_lost(struct rpart *pt, int err)
{
	struct rend *e = pt->e;

	pt->lost = true;
	pt->t = NULL;
	if (e->kind != K_PIPE) {
		end_gone(e, err);
		return;
	}
	if (pt == &e->part[0]) {
		e->rt[0] = NULL;
		if (err)
			fail(e->r, err);
		else
			on_read_eof(e);
	} else {
		e->wt = NULL;
		if (!err && reader_vanished(e))
			err = -EPIPE;
		if (err)
			fail(e->r, err);
		else
			on_writer_gone(e);
	}
	check_gone(e);
}

static struct rpart *P(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct rpart, proto);
}

/* ---- the protocols -------------------------------------------------------- */

/* A stream, or one pipe of a pipe end, is up: it reads for its end, writes
 * for it, or both. */
static void part_made(xp_protocol *p, xp_transport *t, bool reader, bool writer)
{
	struct rpart *pt = P(p);
	struct rend *e = pt->e;
	xp_relay *r = e->r;

	enter(r);
	pt->made = true;
	pt->t = t;
	if (reader)
		e->rt[0] = t;
	if (writer)
		e->wt = t;
	xp__proto_apply(t, &r->o.proto, reader, writer);
	end_started(e, t);
	if (writer && r->state == R_RUN) {
		/* Before sync_reading: nothing may be read before the other
		 * end is up, and this callback runs before reading starts. */
		writer_up(e);
	}
	part_made_tail(e);
	leave(r);
}

static void stream_made(xp_protocol *p, xp_transport *t)
{
	part_made(p, t, true, true);
}

static void part_lost_cb(xp_protocol *p, int err)
{
	struct rpart *pt = P(p);
	xp_relay *r = pt->e->r;

	enter(r);
	part_lost(pt, err);
	leave(r);
}

static void writer_pause(xp_protocol *p)
{
	struct rend *e = P(p)->e;

	e->wpaused = true;
	sync_reading(e->r);
}

static void writer_resume(xp_protocol *p)
{
	struct rend *e = P(p)->e;

	e->wpaused = false;
	sync_reading(e->r);
}

static int reader_data(xp_protocol *p, const void *data, size_t len)
{
	struct rend *e = P(p)->e;
	xp_relay *r = e->r;

	enter(r);
	relay_data(e, data, len);
	leave(r);
	return 0;
}

static int reader_eof(xp_protocol *p)
{
	struct rend *e = P(p)->e;
	xp_relay *r = e->r;

	enter(r);
	on_read_eof(e);
	leave(r);
	return 1; /* keep our writing side: the other direction may go on */
}

static const xp_protocol_ops stream_ops = {
    .connection_made = stream_made,
    .connection_lost = part_lost_cb,
    .pause_writing = writer_pause,
    .resume_writing = writer_resume,
    .data_received = reader_data,
    .eof_received = reader_eof,
};

static void preader_made(xp_protocol *p, xp_transport *t)
{
	part_made(p, t, true, false);
}

static void pwriter_made(xp_protocol *p, xp_transport *t)
{
	part_made(p, t, false, true);
}

static const xp_protocol_ops preader_ops = {
    .connection_made = preader_made,
    .connection_lost = part_lost_cb,
    .data_received = reader_data,
    .eof_received = reader_eof,
};

static const xp_protocol_ops pwriter_ops = {
    .connection_made = pwriter_made,
    .connection_lost = part_lost_cb,
    .pause_writing = writer_pause,
    .resume_writing = writer_resume,
};

static void sub_made(xp_protocol *p, xp_transport *t)
{
	struct rpart *pt = P(p);
	struct rend *e = pt->e;
	xp_relay *r = e->r;

	enter(r);
	pt->made = true;
	pt->t = e->sp = t;
	e->wt = xp_transport_get_pipe_transport(t, 0);
	for (int i = 0; i < 2; i++) {
		e->rt[i] = xp_transport_get_pipe_transport(t, i + 1);
		/* Separate stderr does not hold the stream open. */
		if (e->rt[i] && !(i == 1 && e->stderr_fd >= 0))
			e->nreaders++;
		xp__proto_apply(e->rt[i], &r->o.proto, true, false);
	}
	xp__proto_apply(e->wt, &r->o.proto, false, true);
	end_started(e, t);
	if (r->state == R_RUN) {
		writer_up(e);
		if (!e->nreaders)
			on_read_eof(e);
	}
	part_made_tail(e);
	leave(r);
}

/* A plain blocking-style write of a child's stderr to ours.  SIGPIPE is
 * held off (as pipe.c does) so a closed stderr cannot kill the process. */
static void write_stderr(int fd, const char *data, size_t len)
{
	sigset_t set, old;
	bool epipe = false;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			epipe = n < 0 && errno == EPIPE;
			break; /* our stderr is gone or full: not worth a stall */
		}
		data += n;
		len -= (size_t)n;
	}
	if (epipe && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int sub_pipe_data(xp_protocol *p, int fd, const void *data, size_t len)
{
	struct rend *e = P(p)->e;
	xp_relay *r = e->r;

	if (fd == 2 && e->stderr_fd >= 0) {
		write_stderr(e->stderr_fd, data, len);
		return 0;
	}
	enter(r);
	relay_data(e, data, len);
	leave(r);
	return 0;
}

static void sub_pipe_lost(xp_protocol *p, int fd, int err)
{
	struct rend *e = P(p)->e;
	xp_relay *r = e->r;

	enter(r);
	if (fd == 0) {
		/* The child closed its stdin (or exited): not a failure of the
		 * relay, just the end of that direction. */
		if (!e->gone)
			on_writer_gone(e);
	} else if (fd == 1 || fd == 2) {
		bool counted = e->rt[fd - 1] && !(fd == 2 && e->stderr_fd >= 0);
		e->rt[fd - 1] = NULL;
		if (counted && --e->nreaders == 0)
			on_read_eof(e);
	}
	leave(r);
}

static const xp_protocol_ops sub_ops = {
    .connection_made = sub_made,
    .connection_lost = part_lost_cb,
    .pause_writing = writer_pause,
    .resume_writing = writer_resume,
    .pipe_data_received = sub_pipe_data,
    .pipe_connection_lost = sub_pipe_lost,
};

/* ---- public --------------------------------------------------------------- */

xp_relay *xp_relay_new(xp_loop *loop, const xp_relay_opts *opts)
{
	xp_relay *r;

	if (!loop || (opts && (opts->stats_end < 0 || opts->stats_end > 1 || opts->one_way < 0 ||
			       opts->one_way > XP_RELAY_1_TO_0 || opts->eof_ends > 3))) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->loop = loop;
	if (opts)
		r->o = *opts;
	r->refs = 1;
	r->st.end = "open";
	r->st.started = xp_loop_time(loop);
	for (int i = 0; i < 2; i++) {
		struct rend *e = &r->end[i];
		e->r = r;
		e->idx = i;
		e->stderr_fd = -1;
		xp__wbuf_init(&e->stash);
		for (int j = 0; j < 2; j++)
			e->part[j].e = e;
	}
	xp__idle_start(&r->idle, loop, r->o.proto.idle_timeout, idle_fire, r);
	return r;
}

static xp_protocol *claim(xp_relay *r, int end, int part, enum end_kind kind,
			  const xp_protocol_ops *ops)
{
	struct rend *e;

	if (!r || end < 0 || end > 1 || (e = &r->end[end])->gone ||
	    (e->kind != K_NONE && e->kind != kind)) {
		errno = EINVAL;
		return NULL;
	}
	e->kind = kind;
	e->part[part].expected = true;
	e->part[part].proto.ops = ops;
	return &e->part[part].proto;
}

xp_protocol *xp_relay_stream_protocol(xp_relay *r, int end)
{
	return claim(r, end, 0, K_STREAM, &stream_ops);
}

xp_protocol *xp_relay_pipe_protocol(xp_relay *r, int end, int writer)
{
	writer = writer ? 1 : 0;
	return claim(r, end, writer, K_PIPE, writer ? &pwriter_ops : &preader_ops);
}

xp_protocol *xp_relay_subprocess_protocol(xp_relay *r, int end)
{
	return claim(r, end, 0, K_SUBPROC, &sub_ops);
}

void xp_relay_fail_end(xp_relay *r, int end, int err)
{
	struct rend *e;

	if (!r || end < 0 || end > 1 || (e = &r->end[end])->gone || e->failed)
		return;
	enter(r);
	e->failed = true;
	/* Parts that never connected never will. */
	for (int i = 0; i < 2; i++)
		if (!e->part[i].made)
			e->part[i].expected = false;
	set_reason(r, "error", err ? err : XP_ECALLBACK);
	finish(r);
	check_gone(e);
	leave(r);
}

void xp_relay_close(xp_relay *r)
{
	if (!r || r->state == R_ABORT || r->state == R_DONE)
		return;
	enter(r);
	set_reason(r, "closed", 0);
	finish(r);
	for (int i = 0; i < 2; i++)
		if (r->end[i].kind == K_SUBPROC && !r->end[i].gone)
			signal_child(&r->end[i]);
	leave(r);
}

void xp_relay_abort(xp_relay *r)
{
	if (!r || r->state == R_ABORT || r->state == R_DONE)
		return;
	enter(r);
	set_reason(r, "closed", 0);
	abort_all(r);
	leave(r);
}

const xp_conn_stats *xp_relay_stats(const xp_relay *r)
{
	return &r->st;
}

void xp_relay_set_stderr_fd(xp_relay *r, int end, int fd)
{
	r->end[end].stderr_fd = fd;
}

void xp__relay_set_pending(xp_relay *r, int end, xp_future *fut)
{
	r->end[end].pending = fut;
}

bool xp__relay_end_made(const xp_relay *r, int end)
{
	return r->end[end].part[0].made || r->end[end].part[1].made;
}
