/* SPDX-License-Identifier: MIT */
/*
 * wbuf.h - a FIFO of bytes (wbuf.c): the transports' write buffers, and
 * the one piece of the library's internals a built-in protocol may use
 * for its own queues (see proto_iface.h).
 */
#ifndef XP_WBUF_H
#define XP_WBUF_H

#include <stddef.h>
#include <sys/uio.h>

/* A FIFO of bytes the transport owns.  Appends copy (coalescing small
 * writes into the tail chunk, so no malloc per write); flushes use writev
 * over the chunks. */
struct xp_wchunk;
struct xp_wbuf {
	struct xp_wchunk *head, *tail;
	struct xp_wchunk *spare; /* one freed chunk kept to avoid malloc churn */
	size_t size;
};
void xp__wbuf_init(struct xp_wbuf *b);
int xp__wbuf_append(struct xp_wbuf *b, const void *data, size_t len);
/* Append the iovecs minus their first `skip` bytes (already sent). */
int xp__wbuf_appendv(struct xp_wbuf *b, const struct iovec *iov, int iovcnt, size_t skip);
/* Fill up to max iovecs from the head; returns how many. */
int xp__wbuf_peek(const struct xp_wbuf *b, struct iovec *iov, int max);
void xp__wbuf_consume(struct xp_wbuf *b, size_t n);
void xp__wbuf_clear(struct xp_wbuf *b);
static inline size_t xp__wbuf_size(const struct xp_wbuf *b)
{
	return b->size;
}

#endif
