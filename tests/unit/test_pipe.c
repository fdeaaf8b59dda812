// SPDX-License-Identifier: MIT
/* Pipe transports: read and write pipes over pipes, FIFOs, files, ttys. */
#include "test.h"
#include "recorder.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- helpers ------------------------------------------------------------ */

static int cond_true_never(void *arg)
{
	return 0;
}

/* Let the loop spin for a while (bounded) when the point is that nothing
 * happens. */
static void spin(xp_loop *loop, double seconds)
{
	rec_run_until(loop, cond_true_never, NULL, seconds);
}

static xp_transport *connect_pipe(xp_loop *loop, struct rec *r, int fd, bool writer)
{
	xp_future *f = writer ? xp_connect_write_pipe(loop, rec_factory_one, r, fd)
			      : xp_connect_read_pipe(loop, rec_factory_one, r, fd);
	xp_transport *t = NULL;

	if (!f)
		return NULL;
	if (xp_loop_run_until_complete(loop, f) == 0)
		t = xp_future_result(f);
	xp_future_release(f);
	return t;
}

struct reports {
	int n;
	int err;
	char msg[128];
};

static int count_reports(xp_loop *loop, const xp_context *ctx, void *arg)
{
	struct reports *rp = arg;
	rp->n++;
	rp->err = ctx->error;
	snprintf(rp->msg, sizeof(rp->msg), "%s", ctx->message ? ctx->message : "");
	return 0;
}

/* Drains a descriptor from the loop (xp_add_reader) into memory. */
struct drain {
	xp_loop *loop;
	int fd;
	unsigned char *buf;
	size_t len, cap;
	bool eof;
};

static int drain_cb(void *arg)
{
	struct drain *d = arg;
	for (;;) {
		if (d->len == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 65536;
			d->buf = realloc(d->buf, d->cap);
		}
		ssize_t n = read(d->fd, d->buf + d->len, d->cap - d->len);
		if (n > 0) {
			d->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			d->eof = true;
			xp_remove_reader(d->loop, d->fd);
		}
		return 0;
	}
}

static int drain_done(void *arg)
{
	struct drain *d = arg;
	return d->eof;
}

static unsigned char *pattern(size_t n)
{
	unsigned char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + i / 251);
	return p;
}

static int mk_pipe(int p[2])
{
	return pipe2(p, O_CLOEXEC);
}

/* ---- read pipes --------------------------------------------------------- */

TEST(pipe_read_data_eof_lost_sem_22)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[0], false);
	REQUIRE(t);
	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_READ_PIPE);
	CHECK(xp_transport_is_reading(t));
	CHECK_EQ(write(p[1], "hello", 5), 5);
	close(p[1]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:5 eof lost:0");
	CHECK_MEM(r->in, "hello", 5);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_eof_true_still_closes_sem_22)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	r->eof_ret = 1; /* "keep open" means nothing for a read pipe */
	REQUIRE(mk_pipe(p) == 0);
	REQUIRE(connect_pipe(loop, r, p[0], false));
	CHECK_EQ(write(p[1], "abc", 3), 3);
	close(p[1]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:3 eof lost:0");
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_buffered_protocol_sem_22)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_buffered_ops, loop);
	int p[2];
	r->bufsize = 3;
	REQUIRE(mk_pipe(p) == 0);
	REQUIRE(connect_pipe(loop, r, p[0], false));
	CHECK_EQ(write(p[1], "12345", 5), 5);
	close(p[1]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made getbuf:-1 updated:3 getbuf:-1 updated:2 getbuf:-1 eof lost:0");
	CHECK_EQ(r->inlen, 5);
	CHECK_MEM(r->in, "12345", 5);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_regular_file)
{
	char path[] = "/tmp/xport_pipe_XXXXXX";
	int fd = mkstemp(path);
	size_t n = 300 * 1000;
	unsigned char *data = pattern(n);
	REQUIRE(fd >= 0);
	unlink(path);
	CHECK_EQ(xpt_write_all(fd, data, n), (ssize_t)n);
	lseek(fd, 0, SEEK_SET);

	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	REQUIRE(connect_pipe(loop, r, fd, false));
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->inlen, n);
	CHECK_MEM(r->in, data, n);
	CHECK_EQ(r->neof, 1);
	CHECK_EQ(r->lost_err, 0);
	CHECK(strstr(r->log, "eof lost:0") != NULL);
	xp_loop_free(loop);
	rec_free(r);
	free(data);
}

TEST(pipe_read_devnull)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	REQUIRE(connect_pipe(loop, r, fd, false));
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made eof lost:0");
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_extra_info_pipe_sem_68)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2], dflt = 0;
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[0], false);
	REQUIRE(t);
	const int *fdp = xp_transport_get_extra_info(t, "pipe", NULL);
	REQUIRE(fdp);
	CHECK_EQ(*fdp, p[0]);
	CHECK(xp_transport_get_extra_info(t, "no-such-key", NULL) == NULL);
	CHECK(xp_transport_get_extra_info(t, "socket", &dflt) == &dflt);
	CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	/* Not a write transport. */
	CHECK_EQ(xp_transport_write(t, "x", 1), -ENOTSUP);
	CHECK_EQ(xp_transport_write_eof(t), -ENOTSUP);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	close(p[1]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_pause_resume_twice_sem_56)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[0], false);
	REQUIRE(t);
	xp_transport_pause_reading(t);
	CHECK(!xp_transport_is_reading(t));
	xp_transport_pause_reading(t);
	CHECK(!xp_transport_is_reading(t));
	CHECK_EQ(write(p[1], "abcd", 4), 4);
	spin(loop, 0.05);
	CHECK_STR(r->log, "made");
	xp_transport_resume_reading(t);
	CHECK(xp_transport_is_reading(t));
	xp_transport_resume_reading(t);
	CHECK(xp_transport_is_reading(t));
	close(p[1]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:4 eof lost:0");
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_pause_in_made_sem_2)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	r->pause_in_made = 1;
	REQUIRE(mk_pipe(p) == 0);
	CHECK_EQ(write(p[1], "xy", 2), 2);
	xp_transport *t = connect_pipe(loop, r, p[0], false);
	REQUIRE(t);
	spin(loop, 0.05);
	CHECK(!xp_transport_is_reading(t));
	CHECK_STR(r->log, "made");
	xp_transport_resume_reading(t);
	close(p[1]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:2 eof lost:0");
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_pause_resume_on_closed_sem_57)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[0], false);
	REQUIRE(t);
	xp_transport_close(t);
	CHECK(xp_transport_is_closing(t));
	CHECK(!xp_transport_is_reading(t));
	xp_transport_pause_reading(t);
	xp_transport_resume_reading(t);
	CHECK(!xp_transport_is_reading(t));
	xp_transport_close(t); /* twice: a no-op */
	CHECK_EQ(write(p[1], "zz", 2), 2);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	close(p[1]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_data_error_is_fatal)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	struct reports rp = {0};
	int p[2];
	r->data_ret = -EPROTO;
	xp_loop_set_exception_handler(loop, count_reports, &rp);
	REQUIRE(mk_pipe(p) == 0);
	REQUIRE(connect_pipe(loop, r, p[0], false));
	CHECK_EQ(write(p[1], "bad", 3), 3);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:3 lost:-71");
	CHECK_EQ(rp.n, 1);
	CHECK_STR(rp.msg, "Fatal error: protocol.data_received() call failed.");
	close(p[1]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_read_close_inside_data)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	r->close_on_data = 1;
	REQUIRE(mk_pipe(p) == 0);
	REQUIRE(connect_pipe(loop, r, p[0], false));
	xp_transport_set_read_size(r->t, 2);
	CHECK_EQ(write(p[1], "123456", 6), 6);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made data:2 lost:0");
	close(p[1]);
	xp_loop_free(loop);
	rec_free(r);
}

static int cond_got2(void *arg)
{
	return ((struct rec *)arg)->inlen >= 2;
}

TEST(pipe_read_terminal)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	REQUIRE(m >= 0);
	REQUIRE(grantpt(m) == 0 && unlockpt(m) == 0);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	REQUIRE(s >= 0);

	/* Read pipe on the tty side; the other side types a line. */
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	REQUIRE(connect_pipe(loop, r, s, false));
	CHECK_EQ(write(m, "hi\n", 3), 3);
	CHECK(rec_run_until(loop, cond_got2, r, 5));
	CHECK(r->inlen >= 2);
	CHECK_MEM(r->in, "hi", 2);
	xp_transport_close(r->t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	close(m);
	xp_loop_free(loop);
	rec_free(r);
}

/* ---- write pipes -------------------------------------------------------- */

TEST(pipe_write_basic_and_sem_68)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	char buf[16] = "";
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	CHECK_EQ(xp_transport_kind(t), XP_TRANSPORT_WRITE_PIPE);
	const int *fdp = xp_transport_get_extra_info(t, "pipe", NULL);
	REQUIRE(fdp);
	CHECK_EQ(*fdp, p[1]);
	CHECK_EQ(xp_transport_can_write_eof(t), 1);
	CHECK_EQ(xp_transport_is_reading(t), -ENOTSUP); /* a write pipe never reads */
	CHECK_EQ(xp_transport_write(t, "abc", 3), 0);
	struct iovec iov[2] = {{"de", 2}, {"f", 1}};
	CHECK_EQ(xp_transport_writelines(t, iov, 2), 0);
	CHECK_EQ(xp_transport_write(t, "", 0), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	CHECK_EQ(xpt_read_all(p[0], buf, 6, 2000), 6);
	CHECK_MEM(buf, "abcdef", 6);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	CHECK_EQ(read(p[0], buf, 1), 0); /* the transport closed its end */
	close(p[0]);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_default_limits_sem_43)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	struct rec *r2 = rec_new(&rec_stream_ops, loop);
	size_t low = 0, high = 0;
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *w = connect_pipe(loop, r, p[1], true);
	xp_transport *rd = connect_pipe(loop, r2, p[0], false);
	REQUIRE(w && rd);
	xp_transport_get_write_buffer_limits(w, &low, &high);
	CHECK_EQ(low, 16384);
	CHECK_EQ(high, 65536);
	CHECK_EQ(xp_transport_set_write_buffer_limits(w, 100, -1), 0);
	xp_transport_get_write_buffer_limits(w, &low, &high);
	CHECK_EQ(low, 25);
	CHECK_EQ(high, 100);
	xp_transport_close(w);
	CHECK(rec_run_until(loop, rec_cond_lost, r2, 5));
	CHECK_STR(r2->log, "made eof lost:0");
	CHECK_STR(r->log, "made lost:0");
	xp_loop_free(loop);
	rec_free(r);
	rec_free(r2);
}

/* Fill the pipe until the transport buffers; returns what was written. */
static size_t fill_until_buffered(xp_transport *t, const unsigned char *data, size_t max,
				  size_t chunk)
{
	size_t off = 0;
	while (off < max && xp_transport_get_write_buffer_size(t) == 0) {
		size_t n = max - off < chunk ? max - off : chunk;
		xp_transport_write(t, data + off, n);
		off += n;
	}
	return off;
}

TEST(pipe_write_write_eof_empty_sem_29)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	char buf[8];
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	CHECK_EQ(xp_transport_write(t, "ab", 2), 0);
	CHECK_EQ(xp_transport_write_eof(t), 0);
	CHECK(xp_transport_is_closing(t));
	CHECK_STR(r->log, "made"); /* never synchronously */
	CHECK_EQ(xp_transport_write_eof(t), 0);
	CHECK_EQ(xp_transport_write(t, "zz", 2), 0); /* dropped */
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	CHECK_EQ(xpt_read_all(p[0], buf, sizeof(buf), 2000), 2);
	CHECK_MEM(buf, "ab", 2);
	close(p[0]);
	xp_loop_free(loop);
	rec_free(r);
}

static void write_eof_or_close_pending(bool use_close)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	size_t max = 4 << 20;
	unsigned char *data = pattern(max);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xpt_set_nonblock(p[0]);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	size_t sent = fill_until_buffered(t, data, max, 8192);
	CHECK(xp_transport_get_write_buffer_size(t) > 0);
	/* more after the buffer is in use: FIFO order */
	size_t more = max - sent < 200000 ? max - sent : 200000;
	xp_transport_write(t, data + sent, more);
	sent += more;
	if (use_close)
		xp_transport_close(t);
	else
		CHECK_EQ(xp_transport_write_eof(t), 0);
	CHECK(xp_transport_is_closing(t));
	spin(loop, 0.02);
	CHECK_EQ(r->nlost, 0); /* not before the buffer drained */
	struct drain d = {.loop = loop, .fd = p[0]};
	CHECK_EQ(xp_add_reader(loop, p[0], drain_cb, &d), 0);
	CHECK(rec_run_until(loop, drain_done, &d, 10));
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->lost_err, 0);
	CHECK_EQ(d.len, sent);
	CHECK_MEM(d.buf, data, sent);
	close(p[0]);
	free(d.buf);
	free(data);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_write_eof_pending_sem_29)
{
	write_eof_or_close_pending(false);
}

TEST(pipe_write_close_pending_sem_29)
{
	write_eof_or_close_pending(true);
}

TEST(pipe_write_flow_control_pause_resume)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	size_t max = 4 << 20;
	unsigned char *data = pattern(max);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xpt_set_nonblock(p[0]);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	size_t sent = fill_until_buffered(t, data, max, 4096);
	size_t buffered = xp_transport_get_write_buffer_size(t);
	CHECK_EQ(r->npause, buffered > 65536);
	/* exactly high: still no pause; one more byte: pause */
	if (buffered < 65536) {
		xp_transport_write(t, data + sent, 65536 - buffered);
		sent += 65536 - buffered;
		CHECK_EQ(xp_transport_get_write_buffer_size(t), 65536);
		CHECK_EQ(r->npause, 0);
		xp_transport_write(t, data + sent, 1);
		sent += 1;
	}
	CHECK_EQ(r->npause, 1);
	xp_transport_write(t, data + sent, 1000);
	sent += 1000;
	CHECK_EQ(r->npause, 1);
	struct drain d = {.loop = loop, .fd = p[0]};
	CHECK_EQ(xp_add_reader(loop, p[0], drain_cb, &d), 0);
	xp_transport_write_eof(t);
	CHECK(rec_run_until(loop, drain_done, &d, 10));
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->nresume, 1);
	CHECK(strstr(r->log, "made pause resume lost:0") != NULL);
	CHECK_EQ(d.len, sent);
	CHECK_MEM(d.buf, data, sent);
	close(p[0]);
	free(d.buf);
	free(data);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_abort_drops_buffer)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	size_t max = 1 << 20;
	unsigned char *data = pattern(max);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	fill_until_buffered(t, data, max, 8192);
	CHECK(xp_transport_get_write_buffer_size(t) > 0);
	xp_transport_abort(t);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	xp_transport_abort(t);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->nlost, 1);
	CHECK_EQ(r->lost_err, 0);
	close(p[0]);
	free(data);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_epipe_no_sigpipe)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	signal(SIGPIPE, SIG_DFL); /* the write must not kill us */
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	close(p[0]);
	CHECK_EQ(xp_transport_write(t, "x", 1), 0);
	CHECK(xp_transport_is_closing(t));
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:-32");
	sigset_t pend;
	sigpending(&pend);
	CHECK(!sigismember(&pend, SIGPIPE));
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_reader_gone_idle_closes)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	REQUIRE(connect_pipe(loop, r, p[1], true));
	close(p[0]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_reader_gone_with_buffer_epipe)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	size_t max = 1 << 20;
	unsigned char *data = pattern(max);
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_transport *t = connect_pipe(loop, r, p[1], true);
	REQUIRE(t);
	fill_until_buffered(t, data, max, 8192);
	CHECK(xp_transport_get_write_buffer_size(t) > 0);
	close(p[0]);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_EQ(r->lost_err, -EPIPE);
	free(data);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_devnull)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	size_t n = 1 << 20;
	unsigned char *data = pattern(n);
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	xp_transport *t = connect_pipe(loop, r, fd, true);
	REQUIRE(t);
	CHECK_EQ(xp_transport_write(t, data, n), 0);
	CHECK_EQ(xp_transport_get_write_buffer_size(t), 0);
	spin(loop, 0.02); /* always ready: must not be mistaken for a gone reader */
	CHECK_STR(r->log, "made");
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	free(data);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_write_regular_file)
{
	char path[] = "/tmp/xport_wpipe_XXXXXX";
	int fd = mkstemp(path);
	size_t n = 200000;
	unsigned char *data = pattern(n), *back = malloc(n);
	REQUIRE(fd >= 0);
	int rfd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_transport *t = connect_pipe(loop, r, fd, true);
	REQUIRE(t);
	CHECK_EQ(xp_transport_write(t, data, n), 0);
	spin(loop, 0.02);
	CHECK_EQ(xp_transport_write_eof(t), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	CHECK_EQ(xpt_read_all(rfd, back, n, 2000), (ssize_t)n);
	CHECK_MEM(back, data, n);
	close(rfd);
	free(data);
	free(back);
	xp_loop_free(loop);
	rec_free(r);
}

TEST(pipe_fifo_both_ends)
{
	char dir[] = "/tmp/xport_fifo_XXXXXX", path[64];
	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	REQUIRE(mkfifo(path, 0600) == 0);
	int rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	unlink(path);
	rmdir(dir);
	REQUIRE(rfd >= 0 && wfd >= 0);

	size_t n = 1 << 20;
	unsigned char *data = pattern(n);
	xp_loop *loop = xp_loop_new();
	struct rec *rr = rec_new(&rec_stream_ops, loop);
	struct rec *wr = rec_new(&rec_stream_ops, loop);
	REQUIRE(connect_pipe(loop, rr, rfd, false));
	xp_transport *w = connect_pipe(loop, wr, wfd, true);
	REQUIRE(w);
	CHECK_EQ(xp_transport_write(w, data, n), 0);
	CHECK_EQ(xp_transport_write_eof(w), 0);
	CHECK(rec_run_until(loop, rec_cond_lost, rr, 10));
	CHECK(rec_run_until(loop, rec_cond_lost, wr, 5));
	CHECK_EQ(rr->inlen, n);
	CHECK_MEM(rr->in, data, n);
	CHECK_EQ(rr->neof, 1);
	CHECK_EQ(rr->lost_err, 0);
	CHECK_STR(wr->log, "made pause resume lost:0");
	free(data);
	xp_loop_free(loop);
	rec_free(rr);
	rec_free(wr);
}

TEST(pipe_write_terminal)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char buf[16] = "";
	REQUIRE(m >= 0);
	REQUIRE(grantpt(m) == 0 && unlockpt(m) == 0);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	REQUIRE(s >= 0);
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_transport *t = connect_pipe(loop, r, s, true);
	REQUIRE(t);
	CHECK_EQ(xp_transport_write(t, "ok", 2), 0);
	spin(loop, 0.02); /* a tty is not watched for a gone reader */
	CHECK_STR(r->log, "made");
	CHECK_EQ(xpt_read_all(m, buf, 2, 2000), 2);
	CHECK_MEM(buf, "ok", 2);
	xp_transport_close(t);
	CHECK(rec_run_until(loop, rec_cond_lost, r, 5));
	CHECK_STR(r->log, "made lost:0");
	close(m);
	xp_loop_free(loop);
	rec_free(r);
}

/* No loop to report through, or no factory: NULL with EINVAL at once,
 * and the fd is not taken. */
TEST(pipe_connect_without_loop_or_factory_einval)
{
	xp_loop *loop = xp_loop_new();
	int p[2];

	REQUIRE(mk_pipe(p) == 0);
	errno = 0;
	CHECK(xp_connect_read_pipe(NULL, rec_factory_one, NULL, p[0]) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_connect_write_pipe(loop, NULL, NULL, p[1]) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(fcntl(p[0], F_GETFD) >= 0 && fcntl(p[1], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
	xp_loop_free(loop);
}

TEST(pipe_connect_bad_fd)
{
	xp_loop *loop = xp_loop_new();
	struct rec *r = rec_new(&rec_stream_ops, loop);
	xp_future *f = xp_connect_read_pipe(loop, rec_factory_one, r, -1);
	REQUIRE(f);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -EBADF);
	xp_future_release(f);
	CHECK_EQ(r->nmade, 0);
	xp_loop_free(loop);
	rec_free(r);
}

static xp_protocol *null_factory(void *arg)
{
	return NULL;
}

TEST(pipe_connect_factory_refuses)
{
	xp_loop *loop = xp_loop_new();
	int p[2];
	REQUIRE(mk_pipe(p) == 0);
	xp_future *f = xp_connect_write_pipe(loop, null_factory, NULL, p[1]);
	REQUIRE(f);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), XP_ECALLBACK);
	xp_future_release(f);
	CHECK(fcntl(p[1], F_GETFD) < 0); /* taken and closed */
	close(p[0]);
	xp_loop_free(loop);
}
