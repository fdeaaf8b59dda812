// SPDX-License-Identifier: MIT
/*
 * driver.c - replays fuzz inputs without libFuzzer, so `make test` can run
 * every corpus file under gcc's ASan+UBSan.
 *
 *   replay_HARNESS [-n FIRST] FILE|DIR...
 *
 * Each file runs in its own forked child: a crash, a sanitizer report or a
 * leak (LeakSanitizer checks at the child's exit) is pinned to the file
 * that caused it, and the files after it still run.  Output is TAP lines
 * numbered from FIRST (default 1) without a plan, so a script can join
 * several harnesses into one TAP stream.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int next_num = 1, failed;

static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return -1;
	}
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (n < cap)
			break;
		cap *= 2;
		uint8_t *nb = realloc(buf, cap);
		if (!nb) {
			free(buf);
			fclose(f);
			return -1;
		}
		buf = nb;
	}
	fclose(f);
	*data = buf;
	*size = n;
	return 0;
}

static void run_one(const char *path)
{
	int num = next_num++, status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		uint8_t *data;
		size_t size;

		if (read_file(path, &data, &size) < 0) {
			fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
			_exit(2);
		}
		LLVMFuzzerTestOneInput(data, size);
		free(data);
		exit(0); /* not _exit: LeakSanitizer runs at exit */
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		printf("not ok %d - %s (fork: %s)\n", num, path, strerror(errno));
		failed = 1;
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok %d - %s\n", num, path);
		return;
	}
	failed = 1;
	if (WIFSIGNALED(status))
		printf("not ok %d - %s (signal %d)\n", num, path, WTERMSIG(status));
	else
		printf("not ok %d - %s (exit %d)\n", num, path, WEXITSTATUS(status));
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void run_path(const char *path)
{
	struct stat st;
	struct dirent **names;
	char sub[4096];
	int n;

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		run_one(path);
		return;
	}
	n = scandir(path, &names, NULL, by_name);
	if (n < 0) {
		printf("not ok %d - %s (%s)\n", next_num++, path, strerror(errno));
		failed = 1;
		return;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
			run_one(sub);
		}
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "-n")) {
		next_num = atoi(argv[2]);
		i = 3;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (; i < argc; i++)
		run_path(argv[i]);
	return failed;
}
