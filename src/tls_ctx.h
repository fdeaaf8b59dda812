/* SPDX-License-Identifier: MIT */
/*
 * tls_ctx.h - what the TLS transport (tls.c) reads of a TLS context
 * (tls_ctx.c).  Nothing else includes it.
 */
#ifndef XP_TLS_CTX_H
#define XP_TLS_CTX_H

#include "internal.h"

#include <openssl/ssl.h>

struct xp_tls_ctx {
	int refs;
	SSL_CTX *ssl_ctx;
	bool server_side;
	bool verify;
	bool client_optional; /* servers: a client may send no certificate */
	bool have_pin;
	unsigned char pin[32];
	unsigned char *alpn; /* wire format: len-prefixed names */
	size_t alpn_len;
};

#endif
