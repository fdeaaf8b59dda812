// SPDX-License-Identifier: MIT
/* Self-tests of the unit test framework; must not use any xport symbol. */
#include "test.h"

#include <sys/wait.h>

TEST(framework_checks)
{
	char a[] = "abc";
	CHECK(1);
	CHECK_EQ(2 + 2, 4);
	CHECK_EQ(-1, -1LL);
	CHECK_STR(a, "abc");
	CHECK_MEM(a, "abc", 4);
	REQUIRE(xpt_failures == 0);
}

TEST(framework_socketpair_fork)
{
	int sv[2];
	char buf[8] = "";
	REQUIRE(xpt_socketpair(sv) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		_exit(xpt_write_all(sv[1], "ping", 4) == 4 ? 0 : 1);
	}
	CHECK_EQ(xpt_read_all(sv[0], buf, 4, 2000), 4);
	CHECK_MEM(buf, "ping", 4);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sv[0]);
	close(sv[1]);
}

TEST(framework_tcp_listener)
{
	int port = 0;
	int lfd = xpt_tcp_listener(&port);
	REQUIRE(lfd >= 0);
	CHECK(port > 0);
	close(lfd);
}
