// SPDX-License-Identifier: MIT
/*
 * tls_bio.c - the BIO between OpenSSL and the TLS transport.
 *
 * OpenSSL's memory BIOs cost three passes over every byte besides the
 * cipher's: a copy in, a copy out, and zeroing (BUF_MEM_grow_clean clears
 * each growth, BIO_reset clears the whole buffer).  This BIO serves reads
 * from the raw transport's own read buffer and collects writes in a plain
 * buffer, so ciphertext is copied once on the way in (into OpenSSL's
 * record buffer, which no BIO can avoid) and once on the way out.
 */
#include "tls_bio.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Made on first use; a failure (out of memory) is tried again next time. */
static BIO_METHOD *method;
static pthread_mutex_t method_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t take(struct xp_tls_io *io, char *dst, size_t want)
{
	size_t got = 0;

	while (got < want && xp__wbuf_size(&io->keep)) {
		struct iovec v;
		size_t n;

		xp__wbuf_peek(&io->keep, &v, 1);
		n = v.iov_len < want - got ? v.iov_len : want - got;
		memcpy(dst + got, v.iov_base, n);
		xp__wbuf_consume(&io->keep, n);
		got += n;
	}
	if (got < want && io->in_len) {
		size_t n = io->in_len < want - got ? io->in_len : want - got;

		memcpy(dst + got, io->in, n);
		io->in += n;
		io->in_len -= n;
		got += n;
	}
	return got;
}

/* Nothing there means "wait for more", never EOF: raw tells EOF. */
static int io_read(BIO *b, char *dst, size_t want, size_t *got)
{
	struct xp_tls_io *io = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	*got = take(io, dst, want);
	if (*got)
		return 1;
	BIO_set_retry_read(b);
	return 0;
}

static int io_write(BIO *b, const char *src, size_t len, size_t *put)
{
	struct xp_tls_io *io = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len > io->out_cap - io->out_len) {
		/* Small at first: a pending handshake holds one flight. */
		size_t cap = io->out_cap ? io->out_cap : 4096;
		char *p;

		while (cap - io->out_len < len)
			cap *= 2;
		p = realloc(io->out, cap);
		if (!p)
			return 0;
		io->out = p;
		io->out_cap = cap;
	}
	memcpy(io->out + io->out_len, src, len);
	io->out_len += len;
	*put = len;
	return 1;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct xp_tls_io *io = BIO_get_data(b);
	size_t n;

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
		n = xp__tls_io_pending_in(io);
		return n > LONG_MAX ? LONG_MAX : (long)n;
	case BIO_CTRL_WPENDING:
		return (long)io->out_len;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int io_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *get_method(void)
{
	BIO_METHOD *m;

	pthread_mutex_lock(&method_lock);
	if (!method && (m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "xport tls io"))) {
		if (BIO_meth_set_read_ex(m, io_read) == 1 &&
		    BIO_meth_set_write_ex(m, io_write) == 1 && BIO_meth_set_ctrl(m, io_ctrl) == 1 &&
		    BIO_meth_set_create(m, io_create) == 1)
			method = m;
		else
			BIO_meth_free(m);
	}
	m = method;
	pthread_mutex_unlock(&method_lock);
	return m;
}

BIO *xp__tls_bio_new(struct xp_tls_io *io)
{
	BIO_METHOD *m = get_method();
	BIO *b;

	if (!m || !(b = BIO_new(m)))
		return NULL;
	BIO_set_data(b, io);
	return b;
}

int xp__tls_io_end_chunk(struct xp_tls_io *io)
{
	int r = 0;

	if (io->in_len && xp__wbuf_append(&io->keep, io->in, io->in_len) < 0)
		r = -ENOMEM;
	io->in = NULL;
	io->in_len = 0;
	return r;
}

size_t xp__tls_io_pending_in(const struct xp_tls_io *io)
{
	return xp__wbuf_size(&io->keep) + io->in_len;
}

void xp__tls_io_free(struct xp_tls_io *io)
{
	xp__wbuf_clear(&io->keep);
	free(io->out);
	io->out = NULL;
	io->out_len = io->out_cap = 0;
	io->in = NULL;
	io->in_len = 0;
}
