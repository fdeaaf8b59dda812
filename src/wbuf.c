// SPDX-License-Identifier: MIT
/*
 * wbuf.c - the write buffer of stream-like transports.
 *
 * A FIFO of chunks.  Small writes are copied into the free space at the end
 * of the tail chunk, so a burst of tiny writes costs one allocation per
 * XP_WCHUNK_MIN bytes rather than one per write; a write of at least that
 * size gets a chunk of exactly its size.  One drained standard-size chunk
 * is kept as a spare, so a transport that alternates between "buffer a
 * little" and "drained" does not call malloc at all.
 */
#include "internal.h"

#include <sys/uio.h>

#define XP_WCHUNK_MIN 16384u

struct xp_wchunk {
	struct xp_wchunk *next;
	size_t cap;   /* bytes of data[] */
	size_t start; /* first unsent byte */
	size_t end;   /* one past the last stored byte */
	unsigned char data[];
};

void xp__wbuf_init(struct xp_wbuf *b)
{
	b->head = b->tail = b->spare = NULL;
	b->size = 0;
}

static struct xp_wchunk *chunk_get(struct xp_wbuf *b, size_t cap)
{
	struct xp_wchunk *c;

	if (cap == XP_WCHUNK_MIN && b->spare) {
		c = b->spare;
		b->spare = NULL;
	} else {
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
	}
	c->next = NULL;
	c->start = c->end = 0;
	return c;
}

/* Only standard chunks are cached: a huge exact-size chunk would pin its
 * memory for the transport's lifetime. */
static void chunk_put(struct xp_wbuf *b, struct xp_wchunk *c)
{
	if (c->cap == XP_WCHUNK_MIN && !b->spare)
		b->spare = c;
	else
		free(c);
}

static void chunk_link(struct xp_wbuf *b, struct xp_wchunk *c)
{
	if (b->tail)
		b->tail->next = c;
	else
		b->head = c;
	b->tail = c;
}

/* Undo appends back to a state saved before them (used when an allocation
 * fails half way through an appendv, so that appends are all or nothing). */
static void wbuf_truncate(struct xp_wbuf *b, struct xp_wchunk *old_tail, size_t old_end,
			  size_t old_size)
{
	struct xp_wchunk *c = old_tail ? old_tail->next : b->head;

	while (c) {
		struct xp_wchunk *next = c->next;
		chunk_put(b, c);
		c = next;
	}
	if (old_tail) {
		old_tail->next = NULL;
		old_tail->end = old_end;
	} else {
		b->head = NULL;
	}
	b->tail = old_tail;
	b->size = old_size;
}

static int wbuf_add(struct xp_wbuf *b, const unsigned char *p, size_t len)
{
	struct xp_wchunk *t = b->tail;

	if (t && t->cap > t->end) {
		size_t n = t->cap - t->end < len ? t->cap - t->end : len;
		memcpy(t->data + t->end, p, n);
		t->end += n;
		b->size += n;
		p += n;
		len -= n;
	}
	if (!len)
		return 0;
	t = chunk_get(b, len < XP_WCHUNK_MIN ? XP_WCHUNK_MIN : len);
	if (!t)
		return -ENOMEM;
	memcpy(t->data, p, len);
	t->end = len;
	b->size += len;
	chunk_link(b, t);
	return 0;
}

int xp__wbuf_append(struct xp_wbuf *b, const void *data, size_t len)
{
	return xp__wbuf_appendv(b, &(struct iovec){(void *)data, len}, 1, 0);
}

int xp__wbuf_appendv(struct xp_wbuf *b, const struct iovec *iov, int iovcnt, size_t skip)
{
	struct xp_wchunk *old_tail = b->tail;
	size_t old_end = old_tail ? old_tail->end : 0, old_size = b->size;

	for (int i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len;
		const unsigned char *p = iov[i].iov_base;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		if (wbuf_add(b, p + skip, len - skip) < 0) {
			wbuf_truncate(b, old_tail, old_end, old_size);
			return -ENOMEM;
		}
		skip = 0;
	}
	return 0;
}

int xp__wbuf_peek(const struct xp_wbuf *b, struct iovec *iov, int max)
{
	int n = 0;

	for (const struct xp_wchunk *c = b->head; c && n < max; c = c->next) {
		if (c->end == c->start)
			continue;
		iov[n].iov_base = (void *)(c->data + c->start);
		iov[n].iov_len = c->end - c->start;
		n++;
	}
	return n;
}

void xp__wbuf_consume(struct xp_wbuf *b, size_t n)
{
	if (n > b->size)
		n = b->size;
	b->size -= n;
	while (b->head) {
		struct xp_wchunk *c = b->head;
		size_t avail = c->end - c->start;

		if (n < avail) {
			c->start += n;
			return;
		}
		n -= avail;
		b->head = c->next;
		if (!b->head)
			b->tail = NULL;
		chunk_put(b, c);
	}
}

/* Frees everything, the spare included: used by abort and by destroy. */
void xp__wbuf_clear(struct xp_wbuf *b)
{
	struct xp_wchunk *c = b->head;

	while (c) {
		struct xp_wchunk *next = c->next;
		free(c);
		c = next;
	}
	free(b->spare);
	xp__wbuf_init(b);
}

/* Move all of src's bytes to the end of dst without copying. */
void xp__wbuf_move(struct xp_wbuf *dst, struct xp_wbuf *src)
{
	if (src->head) {
		if (dst->tail)
			dst->tail->next = src->head;
		else
			dst->head = src->head;
		dst->tail = src->tail;
		dst->size += src->size;
	}
	free(src->spare);
	xp__wbuf_init(src);
}
