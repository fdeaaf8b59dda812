/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - what the fuzz harnesses (tests/fuzz/fuzz_*.c) share: reading
 * the input as a script, checks that abort (so libFuzzer and the replay
 * driver both see a crash), and stepping an event loop one iteration at a
 * time so a harness can interleave its own actions with the loop's.
 */
#ifndef XP_FUZZ_H
#define XP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Straight to fd 2: a harness may have pointed stderr elsewhere. */
#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dprintf(2, "fuzz check failed: %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input, consumed from the front; an exhausted input reads as zeros. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline unsigned fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline unsigned fz_u16(struct fz_in *in)
{
	unsigned hi = fz_u8(in);

	return hi << 8 | fz_u8(in);
}

/* Up to want bytes, pointing into the input. */
static inline size_t fz_bytes(struct fz_in *in, size_t want, const uint8_t **out)
{
	size_t n = want < in->n ? want : in->n;

	*out = in->p;
	in->p += n;
	in->n -= n;
	return n;
}

/* One loop iteration that never blocks (stop first: the poll timeout is 0). */
static inline void fz_step(xp_loop *loop)
{
	xp_loop_stop(loop);
	FZ_CHECK(xp_loop_run_forever(loop) == 0);
}

/* Errors the harness provokes on purpose are not worth a line each. */
static inline int fz_quiet_handler(xp_loop *loop, const xp_context *ctx, void *arg)
{
	return 0;
}

/* Byte k of a stream whose bytes are all distinguishable from a shifted or
 * reordered copy of themselves (unlike a plain counter mod 256). */
static inline uint8_t fz_pattern(uint64_t k, unsigned salt)
{
	return (uint8_t)(k ^ (k >> 8) ^ (k >> 16) ^ (k >> 24) ^ salt);
}

#endif /* XP_FUZZ_H */
