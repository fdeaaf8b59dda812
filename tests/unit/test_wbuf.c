// SPDX-License-Identifier: MIT
/*
 * test_wbuf.c - the write buffer (src/wbuf.c) on its own.
 */
#include "test.h"
#include "internal.h"

#include <sys/uio.h>

/* Concatenate what peek shows, to compare with what was appended. */
static size_t wbuf_dump(const struct xp_wbuf *b, unsigned char *out, size_t cap)
{
	struct iovec iov[64];
	int n = xp__wbuf_peek(b, iov, 64);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		if (len + iov[i].iov_len > cap)
			return (size_t)-1;
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return len;
}

TEST(wbuf_small_writes_coalesce)
{
	struct xp_wbuf b;
	struct iovec iov[8];
	unsigned char out[64];

	xp__wbuf_init(&b);
	CHECK_EQ(xp__wbuf_size(&b), 0);
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(xp__wbuf_append(&b, "abc", 3), 0);
	CHECK_EQ(xp__wbuf_size(&b), 30);
	/* ten writes, one chunk */
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 1);
	CHECK_EQ(iov[0].iov_len, 30);
	CHECK_EQ(wbuf_dump(&b, out, sizeof(out)), 30);
	CHECK_MEM(out, "abcabcabcabcabcabcabcabcabcabc", 30);
	xp__wbuf_clear(&b);
	CHECK_EQ(xp__wbuf_size(&b), 0);
}

TEST(wbuf_large_write_exact_chunk)
{
	struct xp_wbuf b;
	struct iovec iov[8];
	size_t big = 100000;
	unsigned char *p = malloc(big);

	for (size_t i = 0; i < big; i++)
		p[i] = (unsigned char)(i * 7);
	xp__wbuf_init(&b);
	CHECK_EQ(xp__wbuf_append(&b, p, big), 0);
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 1);
	CHECK_EQ(iov[0].iov_len, big);
	CHECK_MEM(iov[0].iov_base, p, big);
	/* a small write after a full exact chunk starts a new chunk */
	CHECK_EQ(xp__wbuf_append(&b, "x", 1), 0);
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 2);
	CHECK_EQ(iov[1].iov_len, 1);
	CHECK_EQ(xp__wbuf_size(&b), big + 1);
	xp__wbuf_clear(&b);
	free(p);
}

TEST(wbuf_consume_partial_and_spare_reuse)
{
	struct xp_wbuf b;
	struct iovec iov[8];
	unsigned char out[32];

	xp__wbuf_init(&b);
	xp__wbuf_append(&b, "hello world", 11);
	xp__wbuf_consume(&b, 6);
	CHECK_EQ(xp__wbuf_size(&b), 5);
	CHECK_EQ(wbuf_dump(&b, out, sizeof(out)), 5);
	CHECK_MEM(out, "world", 5);
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 1);
	void *chunk_base = (char *)iov[0].iov_base - 6;
	xp__wbuf_consume(&b, 5);
	CHECK_EQ(xp__wbuf_size(&b), 0);
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 0);
	CHECK(b.spare != NULL);
	/* the drained chunk is reused, not reallocated */
	xp__wbuf_append(&b, "again", 5);
	CHECK(b.spare == NULL);
	CHECK_EQ(xp__wbuf_peek(&b, iov, 8), 1);
	CHECK(iov[0].iov_base == chunk_base);
	/* consuming more than is there empties the buffer */
	xp__wbuf_consume(&b, 1000);
	CHECK_EQ(xp__wbuf_size(&b), 0);
	xp__wbuf_clear(&b);
	CHECK(b.spare == NULL && b.head == NULL);
}

TEST(wbuf_appendv_skip)
{
	struct xp_wbuf b;
	unsigned char out[32];
	struct iovec v[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};

	xp__wbuf_init(&b);
	CHECK_EQ(xp__wbuf_appendv(&b, v, 3, 4), 0);
	CHECK_EQ(xp__wbuf_size(&b), 4);
	CHECK_EQ(wbuf_dump(&b, out, sizeof(out)), 4);
	CHECK_MEM(out, "efgh", 4);
	CHECK_EQ(xp__wbuf_appendv(&b, v, 3, 0), 0);
	CHECK_EQ(wbuf_dump(&b, out, sizeof(out)), 12);
	CHECK_MEM(out, "efghabcdefgh", 12);
	CHECK_EQ(xp__wbuf_appendv(&b, v, 3, 8), 0); /* everything skipped */
	CHECK_EQ(xp__wbuf_size(&b), 12);
	xp__wbuf_clear(&b);
}

TEST(wbuf_peek_limit_and_move)
{
	struct xp_wbuf a, b;
	struct iovec iov[2];
	unsigned char *big = calloc(1, 20000);
	static unsigned char out[80000];

	xp__wbuf_init(&a);
	xp__wbuf_init(&b);
	for (int i = 0; i < 3; i++) {
		memset(big, 'a' + i, 20000);
		xp__wbuf_append(&a, big, 20000);
	}
	CHECK_EQ(xp__wbuf_peek(&a, iov, 2), 2);
	xp__wbuf_append(&b, "tail", 4);
	xp__wbuf_move(&a, &b);
	CHECK_EQ(xp__wbuf_size(&b), 0);
	CHECK(b.head == NULL && b.tail == NULL);
	CHECK_EQ(xp__wbuf_size(&a), 60004);
	CHECK_EQ(wbuf_dump(&a, out, sizeof(out)), 60004);
	CHECK_EQ(out[0], 'a');
	CHECK_EQ(out[20000], 'b');
	CHECK_EQ(out[59999], 'c');
	CHECK_MEM(out + 60000, "tail", 4);
	/* appends after a move still go to the end */
	xp__wbuf_append(&a, "!", 1);
	CHECK_EQ(wbuf_dump(&a, out, sizeof(out)), 60005);
	CHECK_EQ(out[60004], '!');
	/* moving into an empty buffer */
	xp__wbuf_move(&b, &a);
	CHECK_EQ(xp__wbuf_size(&b), 60005);
	CHECK_EQ(xp__wbuf_size(&a), 0);
	xp__wbuf_clear(&a);
	xp__wbuf_clear(&b);
	free(big);
}

/* Random appends and consumes against a flat reference copy. */
TEST(wbuf_random_fifo_matches_reference)
{
	struct xp_wbuf b;
	size_t cap = 1 << 20;
	unsigned char *ref = malloc(cap), *out = malloc(cap), *src = malloc(70000);
	size_t rstart = 0, rend = 0;
	unsigned seed = 12345;

	xp__wbuf_init(&b);
	for (size_t i = 0; i < 70000; i++)
		src[i] = (unsigned char)(i * 31 + 7);
	for (int step = 0; step < 400; step++) {
		seed = seed * 1103515245 + 12345;
		size_t r = (seed >> 8) % 1000;
		if (r < 600) {
			size_t len = r < 500 ? r % 300 + 1 : 17000 + r * 50;
			size_t off = (seed >> 4) % 1000;
			if (rend + len > cap)
				break;
			CHECK_EQ(xp__wbuf_append(&b, src + off, len), 0);
			memcpy(ref + rend, src + off, len);
			rend += len;
		} else {
			size_t n = ((seed >> 3) % 40000);
			if (n > rend - rstart)
				n = rend - rstart;
			xp__wbuf_consume(&b, n);
			rstart += n;
		}
		REQUIRE(xp__wbuf_size(&b) == rend - rstart);
	}
	struct iovec iov[1024];
	int n = xp__wbuf_peek(&b, iov, 1024);
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	CHECK_EQ(len, rend - rstart);
	CHECK_MEM(out, ref + rstart, len);
	xp__wbuf_clear(&b);
	free(ref);
	free(out);
	free(src);
}
