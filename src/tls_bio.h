/* SPDX-License-Identifier: MIT */
/*
 * tls_bio.h - the BIO between OpenSSL and the TLS transport (tls_bio.c).
 * Nothing but tls.c includes it.
 */
#ifndef XP_TLS_BIO_H
#define XP_TLS_BIO_H

#include "wbuf.h"

#include <openssl/bio.h>

/*
 * Ciphertext on its way in and out.  In: OpenSSL reads straight from the
 * chunk the raw transport just handed over (in, in_len), with no copy;
 * only what it leaves there when the app stops reading is copied, to keep.
 * Out: records are appended to out, with no zeroing, until the transport
 * hands them to raw in one write.
 */
struct xp_tls_io {
	const char *in;
	size_t in_len;
	struct xp_wbuf keep; /* read first: left over from earlier chunks */
	char *out;
	size_t out_len, out_cap;
};

/* One BIO for both directions over io (which it does not own); NULL when
 * out of memory. */
BIO *xp__tls_bio_new(struct xp_tls_io *io);
/* Done with the chunk raw handed over: keep what OpenSSL did not read.
 * Returns 0 or -ENOMEM. */
int xp__tls_io_end_chunk(struct xp_tls_io *io);
size_t xp__tls_io_pending_in(const struct xp_tls_io *io);
void xp__tls_io_free(struct xp_tls_io *io);

#endif
