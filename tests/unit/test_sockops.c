// SPDX-License-Identifier: MIT
/* One-shot socket operations (xp_sock_*) against real peers. */
#include "test.h"
#include "xport.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>
#include <sys/wait.h>

/* Let scheduled done callbacks run before the loop goes away. */
static int stop_cb(void *arg)
{
	xp_loop_stop(arg);
	return 0;
}
static void spin(xp_loop *loop)
{
	for (int i = 0; i < 3; i++) {
		xp_call_soon(loop, stop_cb, loop);
		xp_loop_run_forever(loop);
	}
}

static void finish(xp_loop *loop)
{
	spin(loop);
	xp_loop_free(loop);
}

static int udp_sock(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static struct sockaddr_in lo_addr(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return sa;
}

struct later_write {
	int fd;
	const char *s;
};
static int later_write_cb(void *arg)
{
	struct later_write *w = arg;
	CHECK_EQ(write(w->fd, w->s, strlen(w->s)), (ssize_t)strlen(w->s));
	return 0;
}

/* ---- recv -------------------------------------------------------------- */

TEST(sockops_recv_waits_for_data)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	char buf[32] = "";

	REQUIRE(xpt_socketpair(sv) == 0);
	xp_future *f = xp_sock_recv(loop, sv[0], buf, sizeof(buf));
	REQUIRE(f);
	CHECK(!xp_future_done(f));
	struct later_write w = {sv[1], "hello"};
	xp_call_later(loop, 0.01, later_write_cb, &w);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK_EQ(xp_future_result_num(f), 5);
	CHECK_MEM(buf, "hello", 5);
	xp_future_release(f);

	/* Data already there: done at once.  EOF reads as 0 bytes. */
	CHECK_EQ(write(sv[1], "xy", 2), 2);
	f = xp_sock_recv_into(loop, sv[0], buf, sizeof(buf));
	CHECK(xp_future_done(f));
	CHECK_EQ(xp_future_result_num(f), 2);
	xp_future_release(f);
	close(sv[1]);
	f = xp_sock_recv(loop, sv[0], buf, sizeof(buf));
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK_EQ(xp_future_result_num(f), 0);
	xp_future_release(f);
	close(sv[0]);
	finish(loop);
}

TEST(sockops_recv_error_and_blocking_socket)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	char buf[8];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	xp_future *f = xp_sock_recv(loop, sv[0], buf, sizeof(buf));
	REQUIRE(f);
	CHECK(xp_future_done(f));
	CHECK_EQ(xp_future_error(f), -EINVAL); /* must be non-blocking */
	xp_future_release(f);
	f = xp_sock_recv(loop, 999, buf, sizeof(buf));
	CHECK_EQ(xp_future_error(f), -EBADF);
	xp_future_release(f);
	close(sv[0]);
	close(sv[1]);
	finish(loop);
}

/* No loop to report through: NULL with EINVAL, before the socket is looked at. */
TEST(sockops_without_loop_einval)
{
	char buf[8];

	errno = 0;
	CHECK(xp_sock_recv(NULL, 999, buf, sizeof(buf)) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(xp_sock_sendall(NULL, 999, "x", 1) == NULL);
	CHECK_EQ(errno, EINVAL);
}

TEST(sockops_cancel_pending_recv)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	char a[8] = "", b[8] = "";

	REQUIRE(xpt_socketpair(sv) == 0);
	xp_future *f = xp_sock_recv(loop, sv[0], a, sizeof(a));
	CHECK_EQ(xp_future_cancel(f), 1);
	spin(loop);
	CHECK(xp_future_cancelled(f));
	/* The cancelled recv no longer waits: the data goes to the next one. */
	CHECK_EQ(write(sv[1], "zz", 2), 2);
	spin(loop);
	xp_future *g = xp_sock_recv(loop, sv[0], b, sizeof(b));
	CHECK_EQ(xp_loop_run_until_complete(loop, g), 0);
	CHECK_EQ(xp_future_result_num(g), 2);
	CHECK_MEM(b, "zz", 2);
	CHECK_EQ(a[0], 0);
	xp_future_release(f);
	xp_future_release(g);
	close(sv[0]);
	close(sv[1]);
	finish(loop);
}

/* Cancelled at the head of a queue, before its done callback runs. */
TEST(sockops_cancel_head_of_queue)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	char a[8] = "", b[8] = "";

	REQUIRE(xpt_socketpair(sv) == 0);
	xp_future *f = xp_sock_recv(loop, sv[0], a, sizeof(a));
	xp_future *g = xp_sock_recv(loop, sv[0], b, sizeof(b));
	CHECK_EQ(write(sv[1], "q", 1), 1);
	xp_future_cancel(f);
	CHECK_EQ(xp_loop_run_until_complete(loop, g), 0);
	CHECK_EQ(xp_future_result_num(g), 1);
	CHECK_EQ(b[0], 'q');
	CHECK_EQ(a[0], 0);
	xp_future_release(f);
	xp_future_release(g);
	close(sv[0]);
	close(sv[1]);
	finish(loop);
}

TEST(sockops_two_recvs_fifo_and_recv_with_sendall)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	char a[1] = "", b[1] = "";
	size_t big = 4 << 20;
	unsigned char *data = malloc(big), *got = malloc(big);

	REQUIRE(xpt_socketpair(sv) == 0);
	for (size_t i = 0; i < big; i++)
		data[i] = (unsigned char)(i % 251);
	xp_future *f = xp_sock_recv(loop, sv[0], a, 1);
	xp_future *g = xp_sock_recv(loop, sv[0], b, 1);
	/* A sendall on the same fd waits for writability meanwhile. */
	xp_future *s = xp_sock_sendall(loop, sv[0], data, big);
	CHECK(!xp_future_done(s));
	CHECK_EQ(write(sv[1], "12", 2), 2);
	CHECK_EQ(xp_loop_run_until_complete(loop, g), 0);
	CHECK(xp_future_done(f));
	CHECK_EQ(a[0], '1');
	CHECK_EQ(b[0], '2');
	CHECK(!xp_future_done(s));
	/* Now the peer drains: a blocking reader in another process. */
	CHECK_EQ(xpt_read_all(sv[1], got, 1, 10), 1);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		size_t n = 1 + (size_t)xpt_read_all(sv[1], got + 1, big - 1, 5000);
		int ok = n == big && !memcmp(got, data, big);
		free(data); /* valgrind checks the child's leaks too */
		free(got);
		_exit(ok ? 0 : 1);
	}
	CHECK_EQ(xp_loop_run_until_complete(loop, s), 0);
	CHECK_EQ(xp_future_result_num(s), (long long)big);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	xp_future_release(f);
	xp_future_release(g);
	xp_future_release(s);
	free(data);
	free(got);
	close(sv[0]);
	close(sv[1]);
	finish(loop);
}

/* ---- sendall to a slow reader ------------------------------------------ */

struct slow_reader {
	int fd;
	unsigned char *buf;
	size_t got, cap;
};
static int slow_read_cb(void *arg)
{
	struct slow_reader *r = arg;
	size_t want = r->cap - r->got < 4096 ? r->cap - r->got : 4096;
	ssize_t k = read(r->fd, r->buf + r->got, want);

	if (k > 0)
		r->got += (size_t)k;
	return 0;
}

TEST(sockops_sendall_8mib_slow_reader)
{
	xp_loop *loop = xp_loop_new();
	int sv[2], small = 16384;
	size_t n = 8 << 20;
	unsigned char *data = malloc(n);
	struct slow_reader r = {.buf = malloc(n), .cap = n};

	REQUIRE(xpt_socketpair(sv) == 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 31 + (i >> 13));
	r.fd = sv[1];
	xp_future *f = xp_sock_sendall(loop, sv[0], data, n);
	memset(data, 0xAA, 16); /* the operation copied the bytes */
	for (size_t i = 0; i < 16; i++)
		data[i] = (unsigned char)(i * 31);
	CHECK(!xp_future_done(f));
	REQUIRE(xp_add_reader(loop, sv[1], slow_read_cb, &r) == 0);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK_EQ(xp_future_result_num(f), (long long)n);
	xp_remove_reader(loop, sv[1]);
	r.got += (size_t)xpt_read_all(sv[1], r.buf + r.got, n - r.got, 3000);
	CHECK_EQ(r.got, n);
	CHECK_MEM(r.buf, data, n);
	xp_future_release(f);
	free(data);
	free(r.buf);
	close(sv[0]);
	close(sv[1]);
	finish(loop);
}

TEST(sockops_sendall_broken_pipe)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];

	REQUIRE(xpt_socketpair(sv) == 0);
	close(sv[1]);
	xp_future *f = xp_sock_sendall(loop, sv[0], "x", 1);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -EPIPE);
	xp_future_release(f);
	close(sv[0]);
	finish(loop);
}

/* ---- datagrams ------------------------------------------------------------ */

TEST(sockops_sendto_recvfrom)
{
	xp_loop *loop = xp_loop_new();
	int pa, pb, a = udp_sock(&pa), b = udp_sock(&pb);
	struct sockaddr_in to = lo_addr(pb);
	char buf[16] = "";
	xp_sockaddr from = {0};

	xp_future *r = xp_sock_recvfrom(loop, b, buf, sizeof(buf), &from);
	CHECK(!xp_future_done(r));
	xp_future *s = xp_sock_sendto(loop, a, "dgram", 5, (struct sockaddr *)&to, sizeof(to));
	CHECK_EQ(xp_loop_run_until_complete(loop, s), 0);
	CHECK_EQ(xp_future_result_num(s), 5);
	CHECK_EQ(xp_loop_run_until_complete(loop, r), 0);
	CHECK_EQ(xp_future_result_num(r), 5);
	CHECK_MEM(buf, "dgram", 5);
	CHECK_EQ(from.len, sizeof(struct sockaddr_in));
	CHECK_EQ(ntohs(((struct sockaddr_in *)&from.u.sa)->sin_port), pa);
	xp_future_release(r);
	xp_future_release(s);

	/* recvfrom_into, and an empty datagram. */
	xp_future *r2 = xp_sock_recvfrom_into(loop, b, buf, sizeof(buf), &from);
	xp_future *s2 = xp_sock_sendto(loop, a, "", 0, (struct sockaddr *)&to, sizeof(to));
	CHECK_EQ(xp_loop_run_until_complete(loop, r2), 0);
	CHECK_EQ(xp_future_result_num(r2), 0);
	CHECK_EQ(xp_loop_run_until_complete(loop, s2), 0);
	xp_future_release(r2);
	xp_future_release(s2);
	close(a);
	close(b);
	finish(loop);
}

/* ---- connect and accept ----------------------------------------------------- */

static int nb_tcp(void)
{
	return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

TEST(sockops_connect_listener_and_accept)
{
	xp_loop *loop = xp_loop_new();
	int port = 0, lfd = xpt_tcp_listener(&port);
	int c = nb_tcp();
	struct sockaddr_in to = lo_addr(port);
	xp_sockaddr peer = {0}, mine = {0};

	REQUIRE(lfd >= 0);
	xpt_set_nonblock(lfd);
	xp_future *a = xp_sock_accept(loop, lfd, &peer);
	CHECK(!xp_future_done(a));
	xp_future *f = xp_sock_connect(loop, c, (struct sockaddr *)&to, sizeof(to));
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK_EQ(xp_loop_run_until_complete(loop, a), 0);
	int fd = (int)xp_future_result_num(a);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	mine.len = sizeof(mine.u.ss);
	getsockname(c, &mine.u.sa, &mine.len);
	CHECK_EQ(peer.len, mine.len);
	CHECK_MEM(&peer.u.sa, &mine.u.sa, mine.len);
	/* The pair works. */
	CHECK_EQ(write(c, "ok", 2), 2);
	char buf[4];
	CHECK_EQ(xpt_read_all(fd, buf, 2, 2000), 2);
	xp_future_release(a);
	xp_future_release(f);
	close(fd);
	close(c);
	close(lfd);
	finish(loop);
}

TEST(sockops_connect_refused)
{
	xp_loop *loop = xp_loop_new();
	int port = 0, lfd = xpt_tcp_listener(&port);
	int c = nb_tcp();
	struct sockaddr_in to = lo_addr(port);

	close(lfd);
	xp_future *f = xp_sock_connect(loop, c, (struct sockaddr *)&to, sizeof(to));
	CHECK_EQ(xp_loop_run_until_complete(loop, f), -ECONNREFUSED);
	xp_future_release(f);
	close(c);
	finish(loop);
}

TEST(sockops_connect_unix_immediate)
{
	xp_loop *loop = xp_loop_new();
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/xp-sockops-%d", (int)getpid());
	unlink(sa.sun_path);
	REQUIRE(bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 4) == 0);
	xp_future *f = xp_sock_connect(loop, c, (struct sockaddr *)&sa, sizeof(sa));
	CHECK(xp_future_done(f)); /* Unix connects complete at once */
	CHECK_EQ(xp_future_error(f), 0);
	xp_future_release(f);
	close(c);
	unlink(sa.sun_path);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	f = xp_sock_connect(loop, c, (struct sockaddr *)&sa, sizeof(sa));
	CHECK_EQ(xp_future_error(f), -ENOENT);
	xp_future_release(f);
	close(c);
	close(l);
	finish(loop);
}

/* ---- sendfile ----------------------------------------------------------------- */

static int temp_file(const unsigned char *data, size_t n)
{
	char path[] = "/tmp/xp-sendfile-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, data, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

static void sendfile_case(int file_fd, off_t off, size_t count, const unsigned char *want,
			  size_t wantlen)
{
	xp_loop *loop = xp_loop_new();
	int sv[2];
	unsigned char *got = malloc(wantlen + 1);

	REQUIRE(xpt_socketpair(sv) == 0);
	xp_future *f = xp_sock_sendfile(loop, sv[0], file_fd, off, count);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(sv[0]); /* so that EOF arrives when the parent closes it */
		size_t n = (size_t)xpt_read_all(sv[1], got, wantlen + 1, 3000);
		int ok = n == wantlen && !memcmp(got, want, wantlen);
		free(got);
		_exit(ok ? 0 : 1);
	}
	close(sv[1]);
	CHECK_EQ(xp_loop_run_until_complete(loop, f), 0);
	CHECK_EQ(xp_future_result_num(f), (long long)wantlen);
	close(sv[0]);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	xp_future_release(f);
	free(got);
	finish(loop);
}

TEST(sockops_sendfile_temp_file)
{
	size_t n = 3 << 20;
	unsigned char *data = malloc(n);

	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i ^ (i >> 9));
	int fd = temp_file(data, n);
	REQUIRE(fd >= 0);
	sendfile_case(fd, 100, 0, data + 100, n - 100); /* to end of file */
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), (off_t)n);	/* position after the bytes sent */
	sendfile_case(fd, 10, 1000, data + 10, 1000);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 1010);
	close(fd);
	free(data);
}

TEST(sockops_sendfile_pipe_fallback)
{
	int p[2];
	unsigned char data[3000];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 13);
	REQUIRE(pipe(p) == 0);
	CHECK_EQ(write(p[1], data, sizeof(data)), (ssize_t)sizeof(data));
	close(p[1]);
	sendfile_case(p[0], 0, 0, data, sizeof(data));
	close(p[0]);
}
