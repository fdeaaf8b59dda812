// SPDX-License-Identifier: MIT
/*
 * Unit test runner.
 *
 *   build/tests/unit [-l] [SUBSTRING...]
 *
 * Runs every registered test whose name contains any SUBSTRING (all when
 * none), sorted by name, each in a forked child with its own process group.
 * Prints "ok NAME" or "FAIL NAME (exit N | signal N | timeout)" per test and
 * finally exactly "N passed, N failed". Exit status 1 if any test failed.
 *
 *   -l                 list matching test names and exit
 *   XP_TEST_NOFORK=1   run tests in-process (for gdb; REQUIRE then aborts)
 *   XP_TEST_SLOW=1     30 s timeout per test instead of 10 s (valgrind)
 *   XP_TEST_TIMEOUT=N  timeout per test in seconds (overrides both)
 */
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/wait.h>

int xpt_failures;

static struct xpt_test *registry;
static size_t nregistered;
static bool nofork;
static volatile sig_atomic_t current_child;

void xpt_register(struct xpt_test *t)
{
	t->next = registry;
	registry = t;
	nregistered++;
}

void xpt_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	xpt_failures++;
}

void xpt_require_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", file, line, expr);
	fflush(NULL);
	if (nofork)
		abort();
	_exit(1);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct xpt_test *const *)a)->name, (*(struct xpt_test *const *)b)->name);
}

static bool selected(const char *name, int nfilters, char **filters)
{
	if (nfilters == 0)
		return true;
	for (int i = 0; i < nfilters; i++)
		if (strstr(name, filters[i]))
			return true;
	return false;
}

/* Kill the running test's process group when the runner is interrupted. */
static void on_signal(int sig)
{
	if (current_child > 0)
		kill(-(pid_t)current_child, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int timeout_seconds(void)
{
	const char *s = getenv("XP_TEST_TIMEOUT");
	if (s && atoi(s) > 0)
		return atoi(s);
	s = getenv("XP_TEST_SLOW");
	return s && *s && strcmp(s, "0") != 0 ? 30 : 10;
}

/* Returns true on success; writes a failure reason into why otherwise. */
static bool run_forked(struct xpt_test *t, int timeout, char *why, size_t whylen)
{
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		return false;
	}
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		alarm((unsigned)timeout);
		xpt_failures = 0;
		t->fn();
		/* exit(), not _exit(): sanitizer and valgrind leak checks run at exit. */
		exit(xpt_failures ? 1 : 0);
	}
	setpgid(pid, pid);
	current_child = pid;

	/*
	 * The child's alarm() is the primary timeout; this parent-side deadline
	 * covers a test that blocks or handles SIGALRM itself.
	 */
	long long deadline = xpt_now_ms() + (timeout + 5) * 1000LL;
	bool killed = false;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			snprintf(why, whylen, "waitpid: %s", strerror(errno));
			break;
		}
		long long left = deadline - xpt_now_ms();
		if (left <= 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			killed = true;
			deadline = xpt_now_ms() + 5000;
			continue;
		}
		struct timespec ts = {left / 1000, (left % 1000) * 1000000};
		sigtimedwait(&chld, NULL, &ts);
	}
	/* Leftover grandchildren of the test would otherwise hold pipes open. */
	kill(-pid, SIGKILL);
	current_child = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);

	if (killed || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)) {
		snprintf(why, whylen, "timeout");
		return false;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, whylen, "signal %d", WTERMSIG(status));
		return false;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		snprintf(why, whylen, "exit %d", WEXITSTATUS(status));
		return false;
	}
	return WIFEXITED(status);
}

static bool run_inprocess(struct xpt_test *t, char *why, size_t whylen)
{
	xpt_failures = 0;
	t->fn();
	if (xpt_failures) {
		snprintf(why, whylen, "%d check%s failed", xpt_failures,
			 xpt_failures == 1 ? "" : "s");
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	bool list = false;
	int nfilters = 0;
	char **filters = calloc((size_t)argc, sizeof(*filters));

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-l") == 0)
			list = true;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: %s [-l] [SUBSTRING...]\n", argv[0]);
			free(filters);
			return 0;
		} else
			filters[nfilters++] = argv[i];
	}

	struct xpt_test **tests = calloc(nregistered + 1, sizeof(*tests));
	size_t n = 0;
	for (struct xpt_test *t = registry; t; t = t->next)
		tests[n++] = t;
	qsort(tests, n, sizeof(*tests), by_name);

	for (size_t i = 1; i < n; i++) {
		if (strcmp(tests[i]->name, tests[i - 1]->name) == 0) {
			fprintf(stderr, "duplicate test name %s (%s:%d and %s:%d)\n",
				tests[i]->name, tests[i - 1]->file, tests[i - 1]->line,
				tests[i]->file, tests[i]->line);
			printf("0 passed, 1 failed\n");
			return 1;
		}
	}

	if (list) {
		for (size_t i = 0; i < n; i++)
			if (selected(tests[i]->name, nfilters, filters))
				printf("%s\n", tests[i]->name);
		free(tests);
		free(filters);
		return 0;
	}

	const char *nf = getenv("XP_TEST_NOFORK");
	nofork = nf && *nf && strcmp(nf, "0") != 0;
	int timeout = timeout_seconds();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct xpt_test *t = tests[i];
		char why[128] = "";
		if (!selected(t->name, nfilters, filters))
			continue;
		bool ok = nofork ? run_inprocess(t, why, sizeof(why))
				 : run_forked(t, timeout, why, sizeof(why));
		if (ok) {
			passed++;
			printf("ok %s\n", t->name);
		} else {
			failed++;
			printf("FAIL %s (%s)\n", t->name, why);
		}
		fflush(stdout);
	}
	if (passed + failed == 0 && nfilters > 0)
		fprintf(stderr, "no test matches the given filters\n");
	printf("%d passed, %d failed\n", passed, failed);
	free(tests);
	free(filters);
	return failed ? 1 : 0;
}
