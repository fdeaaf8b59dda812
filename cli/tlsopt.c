// SPDX-License-Identifier: MIT
/*
 * tlsopt.c - a TLS context from the TLS options.  A file that cannot be
 * read is exit 66 (checked before OpenSSL so the message names the file);
 * a server without --cert makes an ephemeral self-signed certificate and
 * prints its fingerprint (before the readiness line).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

static int readable(const char *opt, const char *file, int *status)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		cli_err("%s %s: %s", opt, file, strerror(errno));
		*status = CLI_EXIT_NOINPUT;
		return 0;
	}
	close(fd);
	return 1;
}

static xp_tls_ctx *fail(xp_tls_ctx *ctx, int *status, int code, const char *what, int err)
{
	cli_err("%s: %s", what, cli_strerror(err));
	*status = code;
	xp_tls_ctx_release(ctx);
	return NULL;
}

xp_tls_ctx *cli_tls_ctx(const struct cli_config *c, int server_side, int *status)
{
	xp_tls_ctx *ctx;
	int err;

	if (c->cert && !readable("--cert", c->cert, status))
		return NULL;
	if (c->key && !readable("--key", c->key, status))
		return NULL;
	if (c->ca && !readable("--ca", c->ca, status))
		return NULL;
	ctx = xp_tls_ctx_new(server_side);
	if (!ctx) {
		*status = CLI_EXIT_FAIL;
		cli_err("TLS: %s", strerror(errno));
		return NULL;
	}
	if (c->cert) {
		err = xp_tls_ctx_load_cert_chain(ctx, c->cert, c->key ? c->key : c->cert);
		if (err < 0)
			return fail(ctx, status, CLI_EXIT_NOINPUT, c->cert, err);
	} else if (server_side) {
		unsigned char fp[32];
		char hex[65];

		err = xp_tls_ctx_use_self_signed(ctx, "xport", fp);
		if (err < 0)
			return fail(ctx, status, CLI_EXIT_FAIL, "self-signed certificate", err);
		for (int i = 0; i < 32; i++)
			sprintf(hex + 2 * i, "%02x", fp[i]);
		if (!c->quiet) {
			fprintf(stderr, "fingerprint sha256:%s\n", hex);
			fflush(stderr);
		}
	}
	if (c->ca) {
		err = xp_tls_ctx_load_verify_locations(ctx, c->ca);
		if (err < 0)
			return fail(ctx, status, CLI_EXIT_NOINPUT, c->ca, err);
		/* A server given CAs asks for client certificates. */
		if (server_side)
			xp_tls_ctx_set_verify(ctx, 1);
	}
	if (c->insecure)
		xp_tls_ctx_set_verify(ctx, 0);
	if (c->has_pin && (err = xp_tls_ctx_set_pin(ctx, c->pin)) < 0)
		return fail(ctx, status, CLI_EXIT_FAIL, "--pin", err);
	/* After --ca and --pin, which make a server require a certificate. */
	if (server_side && c->verify_client_optional &&
	    (err = xp_tls_ctx_set_verify_client(ctx, XP_VERIFY_CLIENT_OPTIONAL)) < 0)
		return fail(ctx, status, CLI_EXIT_FAIL, "--verify-client", err);
	if (c->alpn && (err = xp_tls_ctx_set_alpn(ctx, c->alpn)) < 0)
		return fail(ctx, status, CLI_EXIT_FAIL, "--alpn", err);
	return ctx;
}
