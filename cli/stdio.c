// SPDX-License-Identifier: MIT
/*
 * stdio.c - standard input and output (or any inherited descriptor) as
 * one end of a relay: a read pipe transport on a dup of the input and a
 * write pipe transport on a dup of the output.  The pipe transports work
 * on regular files, /dev/null, FIFOs, pipes and terminals alike.
 *
 * They make their descriptors non-blocking, which a dup shares with the
 * original (and with the shell that started us): the flags of 0 and 1
 * are saved first and put back at exit.
 *
 * When the session is the only one that will ever write our stdout, the
 * end of its writer also points fd 1 itself at /dev/null: closing the dup
 * alone would leave the pipe open through fd 1 until exit, and `xport ...
 * | sha256sum` would wait for that.  /dev/null, not a close, so that no
 * later open() is handed descriptor 1.
 *
 * --crlf: the relay's reader protocol is wrapped in a small filter (LF ->
 * CRLF), so the relay itself needs no knowledge of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"

static int saved_flags[2] = {-1, -1};

void cli_stdio_save(void)
{
	for (int i = 0; i < 2; i++)
		if (saved_flags[i] < 0)
			saved_flags[i] = fcntl(i, F_GETFL);
}

void cli_stdio_restore(void)
{
	for (int i = 0; i < 2; i++)
		if (saved_flags[i] >= 0)
			fcntl(i, F_SETFL, saved_flags[i]);
}

/* ---- fd 1 released at the end of the writer ---------------------------- */

static int devnull_fd = -1;

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static void stdout_release(void)
{
	if (devnull_fd < 0)
		return;
	/* Its flags go back now, as fd 1 will not reach it at exit; unless
	 * stdin may share the description (a terminal, a socket): its reader
	 * may still run, and the exit restore through fd 0 covers it. */
	if (saved_flags[1] >= 0 && !same_file(0, 1))
		fcntl(1, F_SETFL, saved_flags[1]);
	saved_flags[1] = -1;
	while (dup2(devnull_fd, 1) < 0 && errno == EINTR)
		;
	close(devnull_fd);
	devnull_fd = -1;
}

/* A protocol passed through to the relay's own (inner): the base of the
 * stdout wrapper and of the --crlf filter, each its first member. */
struct passthru {
	xp_protocol p;
	xp_protocol *inner;
};

static xp_protocol *pt_inner(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct passthru, p)->inner;
}

static void pt_made(xp_protocol *p, xp_transport *t)
{
	xp_protocol *in = pt_inner(p);

	in->ops->connection_made(in, t);
}

static void pt_lost(xp_protocol *p, int err)
{
	xp_protocol *in = pt_inner(p);

	free(XP_CONTAINER_OF(p, struct passthru, p));
	in->ops->connection_lost(in, err);
}

/* The relay's writer protocol, with stdout_release() once it is lost. */
static void ow_lost(xp_protocol *p, int err)
{
	stdout_release();
	pt_lost(p, err);
}

static void ow_pause(xp_protocol *p)
{
	xp_protocol *in = pt_inner(p);

	in->ops->pause_writing(in);
}

static void ow_resume(xp_protocol *p)
{
	xp_protocol *in = pt_inner(p);

	in->ops->resume_writing(in);
}

static const xp_protocol_ops ow_ops = {
    .connection_made = pt_made,
    .connection_lost = ow_lost,
    .pause_writing = ow_pause,
    .resume_writing = ow_resume,
};

/* ---- the --crlf filter ---------------------------------------------- */

/*
 * The relay's reader protocol, passed through, with LF turned into CRLF
 * on the way.  A wrapper rather than a filter process of its own: the
 * relay closes the very transport that reads stdin, at once, so a -k
 * server's next session gets every byte that follows.
 */
struct crlf {
	struct passthru w;
	unsigned char last;
};

static int crlf_data(xp_protocol *p, const void *data, size_t len)
{
	struct crlf *c = XP_CONTAINER_OF(p, struct crlf, w.p);
	const unsigned char *s = data;
	unsigned char *buf = malloc(len * 2);
	size_t o = 0;
	int err;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && c->last != '\r')
			buf[o++] = '\r';
		buf[o++] = s[i];
		c->last = s[i];
	}
	err = c->w.inner->ops->data_received(c->w.inner, buf, o);
	free(buf);
	return err;
}

static int crlf_eof(xp_protocol *p)
{
	xp_protocol *in = pt_inner(p);

	return in->ops->eof_received ? in->ops->eof_received(in) : 0;
}

static const xp_protocol_ops crlf_ops = {
    .connection_made = pt_made,
    .connection_lost = pt_lost,
    .data_received = crlf_data,
    .eof_received = crlf_eof,
};

struct pfact {
	xp_relay *r;
	int end, writer;
	bool release; /* writer: stdout_release() when it is lost */
	bool crlf;    /* reader: --crlf */
};

/* NULL (the end then fails) rather than unconverted bytes. */
static xp_protocol *crlf_factory(struct pfact *f)
{
	struct crlf *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->w.inner = xp_relay_pipe_protocol(f->r, f->end, f->writer);
	if (!c->w.inner) {
		free(c);
		return NULL;
	}
	c->w.p.ops = &crlf_ops;
	return &c->w.p;
}

static xp_protocol *pipe_factory(void *arg)
{
	struct pfact *f = arg;
	xp_protocol *p;
	struct passthru *w;

	if (f->crlf)
		return crlf_factory(f);
	p = xp_relay_pipe_protocol(f->r, f->end, f->writer);
	if (!p || !f->release)
		return p;
	w = malloc(sizeof(*w));
	if (!w)
		return p; /* fd 1 then stays the pipe until exit: late, not lost */
	w->p.ops = &ow_ops;
	w->inner = p;
	return &w->p;
}

struct pwatch {
	struct pfact f;
	const char *what;
};

/* A pipe transport that could not be set up fails its end of the relay. */
static void pipe_done(xp_future *fut, void *arg)
{
	struct pwatch *w = arg;
	int err = xp_future_error(fut);

	if (err && err != -ECANCELED) {
		cli_err("%s: %s", w->what, cli_strerror(err));
		xp_relay_fail_end(w->f.r, w->f.end, err);
	}
	xp_future_release(fut);
	free(w);
}

static int start_pipe(xp_loop *loop, xp_relay *r, int end, int writer, int fd, bool release,
		      bool crlf)
{
	struct pwatch *w = calloc(1, sizeof(*w));
	xp_future *fut;

	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	w->f = (struct pfact){r, end, writer, release, crlf};
	w->what = writer ? "standard output" : "standard input";
	fut = writer ? xp_connect_write_pipe(loop, pipe_factory, &w->f, fd)
		     : xp_connect_read_pipe(loop, pipe_factory, &w->f, fd);
	if (!fut) {
		int err = -errno;

		cli_err("%s: %s", w->what, cli_strerror(err));
		close(fd);
		free(w);
		xp_relay_fail_end(r, end, err);
		return err;
	}
	xp_future_add_done_callback(fut, pipe_done, w);
	return 0;
}

static int attach(xp_loop *loop, xp_relay *r, int end, int rfd, int wfd, int crlf, bool release)
{
	int err = start_pipe(loop, r, end, 0, rfd, false, crlf);

	if (err < 0) {
		close(wfd);
		return err;
	}
	return start_pipe(loop, r, end, 1, wfd, release, false);
}

int cli_fd_attach(xp_loop *loop, xp_relay *r, int end, int rfd, int wfd, int crlf)
{
	return attach(loop, r, end, rfd, wfd, crlf, false);
}

int cli_stdio_attach(xp_loop *loop, xp_relay *r, int end, int crlf, int last)
{
	int in, out;

	cli_stdio_save();
	in = fcntl(0, F_DUPFD_CLOEXEC, 3);
	out = fcntl(1, F_DUPFD_CLOEXEC, 3);
	if (in < 0 || out < 0) {
		int err = -errno;

		cli_err("standard input/output: %s", strerror(errno));
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		xp_relay_fail_end(r, end, err);
		return err;
	}
	if (last && devnull_fd < 0)
		devnull_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	return attach(loop, r, end, in, out, crlf, last && devnull_fd >= 0);
}
