/* SPDX-License-Identifier: MIT */
/*
 * Minimal unit test framework for xport.
 *
 *   #include "test.h"
 *   TEST(stream_write_basic) { CHECK_EQ(1 + 1, 2); }
 *
 * Every .c file in tests/unit/ is linked into one runner (build/tests/unit).
 * Each test runs in a forked child with a timeout; see main.c for options.
 * Test names must be unique across all files.
 *
 * CHECK*   report a failure and continue the test.
 * REQUIRE  reports a failure and ends the test at once.
 */
#ifndef XP_TEST_H
#define XP_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

struct xpt_test {
	const char *name;
	void (*fn)(void);
	const char *file;
	int line;
	struct xpt_test *next;
};

/* Defined in main.c. */
extern int xpt_failures;
void xpt_register(struct xpt_test *t);
void xpt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void xpt_require_fail(const char *file, int line, const char *expr) __attribute__((noreturn));

#define TEST(name)                                                                                 \
	static void xpt_fn_##name(void);                                                           \
	static struct xpt_test xpt_node_##name = {#name, xpt_fn_##name, __FILE__, __LINE__, NULL}; \
	__attribute__((constructor)) static void xpt_reg_##name(void)                              \
	{                                                                                          \
		xpt_register(&xpt_node_##name);                                                    \
	}                                                                                          \
	static void xpt_fn_##name(void)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			xpt_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                   \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long xpt_a_ = (long long)(a), xpt_b_ = (long long)(b);                        \
		if (xpt_a_ != xpt_b_)                                                              \
			xpt_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s) failed: %lld != %lld", #a,  \
				 #b, xpt_a_, xpt_b_);                                              \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *xpt_a_ = (a), *xpt_b_ = (b);                                           \
		if (!xpt_a_ || !xpt_b_ ? xpt_a_ != xpt_b_ : strcmp(xpt_a_, xpt_b_) != 0)           \
			xpt_fail(__FILE__, __LINE__, "CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"", \
				 #a, #b, xpt_a_ ? xpt_a_ : "(null)", xpt_b_ ? xpt_b_ : "(null)");  \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                         \
	do {                                                                                       \
		const unsigned char *xpt_a_ = (const void *)(a), *xpt_b_ = (const void *)(b);      \
		size_t xpt_n_ = (n), xpt_i_ = 0;                                                   \
		while (xpt_i_ < xpt_n_ && xpt_a_[xpt_i_] == xpt_b_[xpt_i_])                        \
			xpt_i_++;                                                                  \
		if (xpt_i_ < xpt_n_)                                                               \
			xpt_fail(__FILE__, __LINE__,                                               \
				 "CHECK_MEM(%s, %s, %s) failed: first difference at offset %zu "   \
				 "(0x%02x != 0x%02x)",                                             \
				 #a, #b, #n, xpt_i_, xpt_a_[xpt_i_], xpt_b_[xpt_i_]);              \
	} while (0)

#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			xpt_require_fail(__FILE__, __LINE__, #cond);                               \
	} while (0)

/* ------------------------------------------------------------------ helpers */

static inline int xpt_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Blocking TCP listener on 127.0.0.1, ephemeral port stored in *port. -1 on error. */
static inline int xpt_tcp_listener(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	if (port)
		*port = ntohs(sa.sin_port);
	return fd;
}

/* AF_UNIX stream pair, both ends nonblocking and close-on-exec. 0 or -1. */
static inline int xpt_socketpair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

static inline long long xpt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read until n bytes, EOF or timeout_ms elapsed (blocking or nonblocking fd).
 * Returns the number of bytes read, or -1 on a read error before any byte.
 */
static inline ssize_t xpt_read_all(int fd, void *buf, size_t n, int timeout_ms)
{
	long long deadline = xpt_now_ms() + timeout_ms;
	size_t got = 0;
	while (got < n) {
		long long left = deadline - xpt_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0)
			break;
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k == 0)
			break;
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return got ? (ssize_t)got : -1;
		}
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* Write all n bytes (waits on a nonblocking fd). Returns n, or -1 on error. */
static inline ssize_t xpt_write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = write(fd, (const char *)buf + done, n - done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				poll(&p, 1, 1000);
				continue;
			}
			return -1;
		}
		done += (size_t)k;
	}
	return (ssize_t)n;
}

#endif
