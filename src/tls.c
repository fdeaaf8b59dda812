// SPDX-License-Identifier: MIT
/*
 * tls.c - the TLS transport (its contexts are in tls_ctx.c).
 *
 * The transport follows asyncio's SSLProtocol design: it sits on top of any
 * stream transport (the "raw" one) as that transport's protocol, moves
 * ciphertext between the raw transport and OpenSSL through a BIO of our own
 * (tls_bio.c),
 * and shows the application a transport of its own (kind XP_TRANSPORT_TLS)
 * that reads and writes plaintext.  OpenSSL never sees a descriptor, so TLS
 * works over TCP, Unix sockets, and even over another TLS transport.
 *
 *   raw --data_received--> rbio -> SSL_read  -> app data_received
 *   app write -> SSL_write -> wbio --xp_transport_write--> raw
 *
 * Lifetime: the app transport owns everything (the SSL, the raw transport's
 * protocol, a reference on the raw transport).  The raw transport's
 * connection_lost always comes first; only then is the app transport's
 * connection_lost scheduled, so nothing here is freed while raw can still
 * call into it.
 *
 * Half-close goes beyond asyncio (whose SSL transport refuses write_eof):
 * TLS 1.3 allows one side to send close_notify and keep reading (RFC 8446
 * section 6.1), so there write_eof sends close_notify after the buffered
 * data and reading goes on until the peer's close_notify.  TLS 1.2 does not
 * (a close_notify must be answered at once), so there can_write_eof is 0
 * and write_eof returns -ENOTSUP, as in asyncio.
 */
#include "tls_bio.h"
#include "tls_ctx.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h> /* host name check flags */

/* asyncio's SSL watermarks (sem 43): the app-level buffer is plaintext not
 * yet encrypted plus the raw transport's buffer. */
#define TLS_HIGH (512 * 1024)
#define TLS_LOW (128 * 1024)
/* Plaintext per SSL_write: four full records, then hand them to raw. */
#define TLS_CHUNK (64 * 1024)
/* Raw is not read while more than this waits in its write buffer: what we
 * owe the peer (handshake flights, answers to key updates) only grows
 * when the peer does not read, and TCP, not our memory, must hold such a
 * peer back.  Above what one encrypted chunk leaves there. */
#define TLS_RAW_READ_LIMIT (4 * TLS_CHUNK)
#define TLS_DEFAULT_HANDSHAKE_TIMEOUT 60.0

enum tls_state {
	ST_NEW, /* raw not connected to us yet */
	ST_HANDSHAKE,
	ST_WRAPPED,  /* application data flows */
	ST_SHUTDOWN, /* app closed: flushing, then close_notify */
	ST_DEAD,     /* failed or aborted: waiting for raw's connection_lost */
};

#define KICK_READ 1u
#define KICK_WRITE 2u

struct tls {
	xp_transport base; /* the app-facing transport; first */
	xp_protocol proto; /* what the raw transport calls */
	xp_transport *raw; /* retained */
	xp_tls_ctx *ctx;
	SSL *ssl;
	struct xp_tls_io io;	/* network side: ciphertext in, ciphertext out */
	struct xp_wbuf pending; /* plaintext not yet encrypted */
	xp_future *waiter;
	xp_handle *timer, *kick;
	unsigned kick_what;
	enum tls_state state;
	double handshake_timeout;
	int app_err; /* connection_lost's error once raw is gone */
	bool have_app_err;
	bool raw_gone;		     /* raw's connection_lost arrived */
	bool raw_paused;	     /* raw is over its high watermark: stop encrypting */
	bool raw_eof;		     /* TCP EOF from the peer */
	bool raw_reading;	     /* raw is being read (tls_sync_raw_reading) */
	bool app_started;	     /* xp__transport_start(app) was called */
	xp_protocol_factory factory; /* makes the app protocol after the handshake */
	void *factory_arg;
	bool app_made;	  /* app's connection_made returned */
	bool peer_closed; /* close_notify received */
	bool eof_written; /* write_eof() called */
	bool shutdown_sent;
	bool write_wants_read; /* SSL_write needs peer data first */
	bool forced;
	bool have_fp;
	unsigned char fp[32];
	char alpn[256];
};

static const struct xp_transport_vt tls_vt;

static struct tls *T(xp_transport *t)
{
	return (struct tls *)t;
}

/*
 * Read raw only while it can lead somewhere: never after the peer's
 * close_notify (nothing may follow it; a peer that keeps sending would
 * otherwise pile up in the read BIO), not while the app is paused, and not
 * while raw's write buffer is over TLS_RAW_READ_LIMIT.  Paused raw still
 * watches its socket, so a reset is noticed all the same.
 */
static void tls_sync_raw_reading(struct tls *s)
{
	const xp_transport *t = &s->base;
	bool on;

	if (s->raw_gone)
		return;
	on = !s->peer_closed && !t->lost_scheduled && (s->state != ST_WRAPPED || t->reading) &&
	     xp_transport_get_write_buffer_size(s->raw) <= TLS_RAW_READ_LIMIT;
	if (on == s->raw_reading)
		return;
	s->raw_reading = on;
	if (on)
		xp_transport_resume_reading(s->raw);
	else
		xp_transport_pause_reading(s->raw);
}

/* Hand whatever OpenSSL produced to the raw transport. */
static void tls_flush(struct tls *s)
{
	if (!s->io.out_len)
		return;
	if (!s->raw_gone)
		xp_transport_write(s->raw, s->io.out, s->io.out_len);
	s->io.out_len = 0;
	tls_sync_raw_reading(s);
}

/* The reason of the last OpenSSL failure, and our error code for it. */
static int tls_classify(struct tls *s, char *why, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	int err = XP_ETLS;

	if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		long vr = SSL_get_verify_result(s->ssl);

		snprintf(why, size, "certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
		err = XP_ETLSVERIFY;
	} else if (e) {
		ERR_error_string_n(e, why, size);
	} else {
		snprintf(why, size, "TLS protocol error");
	}
	ERR_clear_error();
	return err;
}

/* asyncio sends SSL errors (OSErrors) to the debug log only; the debug
 * log here is the exception handler in debug mode. */
static void tls_debug_report(struct tls *s, const char *what, const char *why, int err)
{
	char msg[400];

	if (!xp_loop_get_debug(s->base.loop))
		return;
	snprintf(msg, sizeof(msg), "%s: %s", what, why);
	xp__loop_report(s->base.loop, msg, err, &s->base, NULL);
}

static void tls_fail_waiter(struct tls *s, int err)
{
	if (!s->waiter)
		return;
	if (!xp_future_done(s->waiter))
		xp_future_set_error(s->waiter, err);
	xp_future_release(s->waiter);
	s->waiter = NULL;
}

/* The handshake did not complete: fail the waiter, tell the peer (the
 * alert OpenSSL queued) when graceful, and drop the raw transport.  The app
 * transport goes once raw's connection_lost arrives, without a protocol
 * call: it never delivered connection_made, so it owes no connection_lost. */
static void tls_handshake_failed(struct tls *s, int err, const char *why, bool graceful)
{
	if (s->state == ST_DEAD)
		return;
	s->state = ST_DEAD;
	s->base.closing = true;
	xp__timer_cancel(&s->timer);
	tls_debug_report(s, "SSL handshake failed", why, err);
	tls_fail_waiter(s, err);
	s->app_err = err;
	s->have_app_err = true;
	if (s->raw_gone) {
		xp__transport_lost(&s->base, err);
		return;
	}
	tls_flush(s);
	if (graceful)
		xp_transport_close(s->raw);
	else
		xp_transport_abort(s->raw);
}

/* A failure after the handshake: connection_lost(err), no report (sem 13). */
static void tls_fatal(struct tls *s, int err, const char *why)
{
	if (s->state == ST_NEW || s->state == ST_HANDSHAKE) {
		tls_handshake_failed(s, err, why, true);
		return;
	}
	tls_debug_report(s, "Fatal error on SSL transport", why, err);
	xp__transport_fatal(&s->base, err, NULL);
}

static int tls_kick_cb(void *arg);

/* Work to do on the next iteration rather than inside a caller's
 * callback (resume_reading, raw's resume_writing). */
static void tls_kick(struct tls *s, unsigned what)
{
	s->kick_what |= what;
	if (!s->kick) {
		xp_handle *h = xp_call_soon(s->base.loop, tls_kick_cb, s);
		s->kick = h ? xp_handle_retain(h) : NULL;
	}
}

/* ---- writing -------------------------------------------------------- */

static bool tls13(const struct tls *s)
{
	return SSL_version(s->ssl) == TLS1_3_VERSION;
}

static void tls_send_close_notify(struct tls *s)
{
	if (s->shutdown_sent)
		return;
	s->shutdown_sent = true;
	ERR_clear_error();
	(void)SSL_shutdown(s->ssl);
	ERR_clear_error();
	tls_flush(s);
}

/* Encrypt up to len bytes into raw.  Stops early while raw is paused
 * (unless force) or when SSL_write first needs data from the peer.
 * Returns the bytes taken, or -1 if the transport failed. */
static ssize_t tls_encrypt(struct tls *s, const char *buf, size_t len, bool force)
{
	size_t done = 0;

	while (done < len && (force || !s->raw_paused) && !s->write_wants_read) {
		size_t n = len - done < TLS_CHUNK ? len - done : TLS_CHUNK;
		size_t w = 0;
		int r, e;
		char why[256];

		ERR_clear_error();
		r = SSL_write_ex(s->ssl, buf + done, n, &w);
		if (r == 1) {
			done += w;
			tls_flush(s);
			continue;
		}
		e = SSL_get_error(s->ssl, r);
		tls_flush(s);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			/* Post-handshake messages: retried once data came. */
			ERR_clear_error();
			s->write_wants_read = true;
			break;
		}
		tls_fatal(s, tls_classify(s, why, sizeof(why)), why);
		return -1;
	}
	return (ssize_t)done;
}

/* Encrypt queued plaintext while raw takes it; then a deferred
 * close_notify (write_eof) if the queue is empty. */
static int tls_encrypt_pending(struct tls *s, bool force)
{
	while (xp__wbuf_size(&s->pending) && (force || !s->raw_paused) && !s->write_wants_read) {
		struct iovec v;
		ssize_t n;

		xp__wbuf_peek(&s->pending, &v, 1);
		n = tls_encrypt(s, v.iov_base, v.iov_len, force);
		if (n < 0)
			return -1;
		xp__wbuf_consume(&s->pending, (size_t)n);
		if ((size_t)n < v.iov_len)
			break;
	}
	if (!xp__wbuf_size(&s->pending) && s->eof_written && !s->shutdown_sent) {
		tls_send_close_notify(s);
		/* The peer may wait for TCP EOF too; ours ends here. */
		if (!s->raw_gone && xp_transport_can_write_eof(s->raw) == 1)
			xp_transport_write_eof(s->raw);
	}
	return 0;
}

static int tls_write(xp_transport *t, const struct iovec *iov, int iovcnt, size_t len)
{
	struct tls *s = T(t);
	size_t off = 0;
	int i = 0;

	if (s->eof_written)
		return XP_ESTATE; /* negative already */
	for (int k = 0; k < iovcnt; k++)
		if (!iov[k].iov_base && iov[k].iov_len)
			return -EINVAL;
	if (s->state != ST_WRAPPED)
		return 0;
	/* Nothing queued: encrypt straight from the caller's memory. */
	if (!xp__wbuf_size(&s->pending) && !s->raw_paused && !s->write_wants_read) {
		for (; i < iovcnt; i++) {
			ssize_t n = tls_encrypt(s, iov[i].iov_base, iov[i].iov_len, false);

			if (n < 0)
				return 0; /* failed: connection_lost tells */
			if ((size_t)n < iov[i].iov_len) {
				off = (size_t)n;
				break;
			}
		}
	}
	if (i < iovcnt && xp__wbuf_appendv(&s->pending, iov + i, iovcnt - i, off) < 0) {
		xp__transport_fatal(t, -ENOMEM, "Fatal error: out of memory buffering a write");
		return -ENOMEM;
	}
	xp__fc_check_pause(t);
	return 0;
}

static int tls_can_write_eof(xp_transport *t)
{
	struct tls *s = T(t);

	return s->state == ST_WRAPPED && tls13(s);
}

static int tls_write_eof(xp_transport *t)
{
	struct tls *s = T(t);

	if (!tls_can_write_eof(t))
		return -ENOTSUP;
	if (s->eof_written)
		return 0;
	s->eof_written = true;
	tls_encrypt_pending(s, false);
	return 0;
}

static size_t tls_buffer_size(const xp_transport *t)
{
	const struct tls *s = (const struct tls *)t;
	size_t n = xp__wbuf_size(&s->pending);

	if (!s->raw_gone)
		n += xp_transport_get_write_buffer_size(s->raw);
	return n + s->io.out_len;
}

/* ---- reading -------------------------------------------------------- */

static bool app_wants_data(const struct tls *s)
{
	const xp_transport *t = &s->base;

	return s->app_made && t->reading && !t->closing && !t->eof && !t->lost_scheduled;
}

/* close_notify arrived. */
static void tls_peer_closed(struct tls *s)
{
	xp_transport *t = &s->base;
	int r;

	s->peer_closed = true;
	tls_sync_raw_reading(s);
	r = xp__proto_eof(t);
	if (r < 0)
		return;
	if (r > 0 && tls13(s)) {
		/* TLS 1.3 half-close: a true return keeps the connection
		 * half open, as with TCP (sem 18); the app may still write
		 * and closes when done.  (asyncio closes regardless; sem 21
		 * describes that for TLS 1.2, below.) */
		return;
	}
	if (r > 0)
		xp__loop_report(t->loop,
				"returning true from eof_received() has no effect when using ssl",
				0, t, t->protocol);
	xp_transport_close(t);
}

/*
 * Decrypt records into buf until it is full or OpenSSL wants more input.
 * Returns the bytes decrypted; *e gets SSL_ERROR_NONE (buf is full) or
 * the error that stopped it, classified at once (the app's callbacks may
 * use OpenSSL before we act on it).
 */
static size_t tls_decrypt(struct tls *s, char *buf, size_t want, int *e, int *err, char *why,
			  size_t whysize)
{
	size_t got = 0, n;

	*e = SSL_ERROR_NONE;
	ERR_clear_error(); /* a successful read leaves the queue empty */
	while (got < want) {
		n = 0;
		if (SSL_read_ex(s->ssl, buf + got, want - got, &n) == 1) {
			got += n;
			continue;
		}
		*e = SSL_get_error(s->ssl, 0);
		if (*e == SSL_ERROR_WANT_READ || *e == SSL_ERROR_ZERO_RETURN)
			ERR_clear_error();
		else
			*err = tls_classify(s, why, whysize);
		break;
	}
	return got;
}

/*
 * Decrypt what the read BIO holds and hand it to the app while it reads.
 * Many records go to the app at once: a relay then writes one large chunk
 * downstream instead of one per 16 KiB record, which is a quarter of the
 * system calls and of the peer's wake-ups.
 */
static void tls_read_step(struct tls *s)
{
	xp_transport *t = &s->base;
	bool discard = s->state == ST_SHUTDOWN;

	while (discard ? s->write_wants_read : app_wants_data(s)) {
		size_t cap, got;
		char *buf = xp__loop_plain_buffer(t->loop, &cap);
		size_t want = t->read_size && t->read_size < cap ? t->read_size : cap;
		int e, err = 0;
		char why[256];

		if (!buf)
			return;
		/* TLS over TLS: the ciphertext is the outer layer's plaintext,
		 * in the very buffer we decrypt into.  Move it out first. */
		if (s->io.in_len && s->io.in < buf + cap && s->io.in + s->io.in_len > buf &&
		    xp__tls_io_end_chunk(&s->io) < 0) {
			tls_fatal(s, -ENOMEM, "out of memory");
			return;
		}
		got = tls_decrypt(s, buf, want, &e, &err, why, sizeof(why));
		if (got && !discard && xp__proto_data(t, buf, got) < 0)
			return;
		if (e == SSL_ERROR_NONE)
			continue;
		tls_flush(s); /* key update answers and the like */
		if (e == SSL_ERROR_WANT_READ) {
			if (s->raw_eof && !discard && app_wants_data(s))
				xp__transport_fatal(t, XP_ETRUNCATED, NULL);
			break;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			if (!discard && app_wants_data(s))
				tls_peer_closed(s); /* else when the app reads again */
			break;
		}
		if (!t->lost_scheduled)
			tls_fatal(s, err, why);
		return;
	}
	tls_flush(s);
}

static void tls_finish_close(struct tls *s)
{
	tls_send_close_notify(s);
	if (!s->raw_gone)
		xp_transport_close(s->raw);
}

/* After new data: retry a write that waited for the peer. */
static void tls_retry_write(struct tls *s)
{
	if (!s->write_wants_read || (s->state != ST_WRAPPED && s->state != ST_SHUTDOWN))
		return;
	s->write_wants_read = false;
	if (tls_encrypt_pending(s, s->state == ST_SHUTDOWN) < 0)
		return;
	if (s->state == ST_SHUTDOWN && !xp__wbuf_size(&s->pending))
		tls_finish_close(s);
	else if (s->state == ST_WRAPPED)
		xp__fc_check_resume(&s->base);
}

/* The app protocol, made by the factory now if it was deferred. */
static xp_protocol *t_protocol(struct tls *s)
{
	if (!s->base.protocol && s->factory)
		s->base.protocol = s->factory(s->factory_arg);
	return s->base.protocol;
}

/* ---- the handshake -------------------------------------------------- */

static void tls_handshake_done(struct tls *s)
{
	X509 *peer = SSL_get0_peer_certificate(s->ssl);
	const unsigned char *alpn = NULL;
	unsigned int alpn_len = 0;
	unsigned int n = 0;

	xp__timer_cancel(&s->timer);
	if (peer && X509_digest(peer, EVP_sha256(), s->fp, &n) == 1)
		s->have_fp = true;
	/* An optional client certificate that was not sent has nothing to
	 * match; one that was sent must match. */
	if (s->ctx->have_pin && (s->have_fp || !s->ctx->client_optional) &&
	    (!s->have_fp || memcmp(s->fp, s->ctx->pin, 32))) {
		tls_handshake_failed(s, XP_EPIN, "peer certificate does not match the pin", false);
		return;
	}
	if (s->waiter && xp_future_cancelled(s->waiter)) {
		/* asyncio: cancelling the connect drops the connection. */
		tls_handshake_failed(s, -ECANCELED, "cancelled", false);
		return;
	}
	SSL_get0_alpn_selected(s->ssl, &alpn, &alpn_len);
	if (alpn && alpn_len) {
		memcpy(s->alpn, alpn, alpn_len);
		s->alpn[alpn_len] = '\0';
	}
	if (!t_protocol(s)) {
		tls_handshake_failed(s, XP_ECALLBACK, "protocol factory refused", false);
		return;
	}
	s->state = ST_WRAPPED;
	s->app_started = true;
	/* connection_made comes now, then the waiter completes. */
	if (xp__transport_start(&s->base, s->waiter) < 0) {
		tls_handshake_failed(s, XP_ECLOSED, "loop closed", false);
		return;
	}
	xp_future_release(s->waiter);
	s->waiter = NULL;
}

static void tls_handshake_step(struct tls *s)
{
	int r, e;
	char why[256];

	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		tls_flush(s);
		tls_handshake_done(s);
		return;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		tls_flush(s);
		return;
	}
	r = tls_classify(s, why, sizeof(why));
	tls_handshake_failed(s, r, why, true);
}

static void tls_process(struct tls *s)
{
	if (s->state == ST_HANDSHAKE)
		tls_handshake_step(s);
	if (s->state == ST_WRAPPED || s->state == ST_SHUTDOWN) {
		tls_read_step(s);
		tls_retry_write(s);
	}
}

static int tls_timeout_cb(void *arg)
{
	struct tls *s = arg;

	xp_handle_release(s->timer);
	s->timer = NULL;
	if (s->state == ST_NEW || s->state == ST_HANDSHAKE)
		tls_handshake_failed(s, -ETIMEDOUT, "handshake timed out", false);
	return 0;
}

static void tls_begin(struct tls *s)
{
	if (s->state != ST_NEW)
		return;
	s->state = ST_HANDSHAKE;
	s->timer = xp__timer_start(s->base.loop, s->handshake_timeout, tls_timeout_cb, s);
	tls_handshake_step(s);
}

static int tls_kick_cb(void *arg)
{
	struct tls *s = arg;
	unsigned what = s->kick_what;

	xp_handle_release(s->kick);
	s->kick = NULL;
	s->kick_what = 0;
	if (s->state != ST_WRAPPED && s->state != ST_SHUTDOWN)
		return 0;
	if (what & KICK_WRITE) {
		if (tls_encrypt_pending(s, false) < 0)
			return 0;
		xp__fc_check_resume(&s->base);
	}
	if (what & KICK_READ)
		tls_process(s);
	return 0;
}

/* ---- the protocol the raw transport sees ---------------------------- */

static struct tls *P(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct tls, proto);
}

static void raw_made(xp_protocol *p, xp_transport *raw)
{
	tls_begin(P(p));
}

static void raw_lost(xp_protocol *p, int err)
{
	struct tls *s = P(p);

	s->raw_gone = true;
	if (s->state == ST_NEW || s->state == ST_HANDSHAKE)
		tls_handshake_failed(s, err ? err : -ECONNRESET, "connection lost during handshake",
				     false);
	s->state = ST_DEAD;
	xp__timer_cancel(&s->timer);
	xp__transport_lost(&s->base, s->have_app_err ? s->app_err : err);
}

static void raw_pause_writing(xp_protocol *p)
{
	P(p)->raw_paused = true;
}

static void raw_resume_writing(xp_protocol *p)
{
	struct tls *s = P(p);

	s->raw_paused = false;
	tls_sync_raw_reading(s);
	tls_kick(s, KICK_WRITE);
}

static int raw_data(xp_protocol *p, const void *data, size_t len)
{
	struct tls *s = P(p);
	/* Nothing may follow close_notify: bytes that do are dropped, not
	 * kept (raw was paused at close_notify; this is what one read
	 * already held). */
	if (s->state == ST_NEW || s->state == ST_DEAD || s->peer_closed)
		return 0;
	s->io.in = data;
	s->io.in_len = len;
	tls_process(s);
	if (s->state == ST_DEAD || s->peer_closed)
		s->io.in_len = 0;
	if (xp__tls_io_end_chunk(&s->io) < 0)
		tls_fatal(s, -ENOMEM, "out of memory");
	return 0;
}

/* TCP EOF.  We keep raw open (return 1) and close it ourselves: after a
 * close_notify a TLS 1.3 app may still be writing. */
static int raw_eof(xp_protocol *p)
{
	struct tls *s = P(p);

	s->raw_eof = true;
	if (s->state == ST_NEW || s->state == ST_HANDSHAKE)
		tls_handshake_failed(s, -ECONNRESET, "connection closed during handshake", true);
	else if (s->state == ST_WRAPPED && !s->peer_closed)
		tls_read_step(s); /* finds the truncation once the BIO is empty */
	return 1;
}

static const xp_protocol_ops raw_ops = {
    .connection_made = raw_made,
    .connection_lost = raw_lost,
    .pause_writing = raw_pause_writing,
    .resume_writing = raw_resume_writing,
    .data_received = raw_data,
    .eof_received = raw_eof,
};

/* ---- the app transport's methods ------------------------------------ */

static void tls_made(xp_transport *t)
{
	struct tls *s = T(t);

	s->app_made = true;
	tls_process(s); /* what came with or after the handshake */
}

static void tls_close(xp_transport *t)
{
	struct tls *s = T(t);

	if (s->state == ST_NEW || s->state == ST_HANDSHAKE) {
		tls_handshake_failed(s, -ECONNABORTED, "closed during the handshake", true);
		return;
	}
	if (s->state != ST_WRAPPED)
		return;
	s->state = ST_SHUTDOWN;
	if (tls_encrypt_pending(s, true) < 0)
		return;
	if (!xp__wbuf_size(&s->pending))
		tls_finish_close(s);
	/* else tls_retry_write() finishes once the peer's data came */
}

static void tls_force_close(xp_transport *t, int err)
{
	struct tls *s = T(t);

	if (s->forced || t->lost_scheduled)
		return;
	s->forced = true;
	if (s->state == ST_NEW || s->state == ST_HANDSHAKE) {
		tls_handshake_failed(s, err ? err : -ECONNABORTED, "aborted", false);
		return;
	}
	s->state = ST_DEAD;
	s->app_err = err;
	s->have_app_err = true;
	xp__wbuf_clear(&s->pending);
	if (s->raw_gone)
		xp__transport_lost(t, err);
	else
		xp_transport_abort(s->raw);
}

static void tls_update_reading(xp_transport *t)
{
	struct tls *s = T(t);

	if (s->raw_gone)
		return;
	tls_sync_raw_reading(s);
	if (t->reading)
		tls_kick(s, KICK_READ);
}

static const void *tls_extra(xp_transport *t, const char *key, const void *dflt)
{
	struct tls *s = T(t);
	bool up = s->app_started && s->ssl;

	if (!strcmp(key, "sslcontext"))
		return s->ctx->ssl_ctx;
	if (!strcmp(key, "ssl_object"))
		return s->ssl ? (const void *)s->ssl : dflt;
	if (!strcmp(key, "cipher"))
		return up && SSL_get_current_cipher(s->ssl) ? SSL_get_cipher_name(s->ssl) : dflt;
	if (!strcmp(key, "peercert")) {
		X509 *x = up ? SSL_get0_peer_certificate(s->ssl) : NULL;
		return x ? (const void *)x : dflt;
	}
	if (!strcmp(key, "compression")) {
		const COMP_METHOD *m = up ? SSL_get_current_compression(s->ssl) : NULL;
		return m ? SSL_COMP_get_name(m) : dflt;
	}
	if (!strcmp(key, "tls_version"))
		return up ? SSL_get_version(s->ssl) : dflt;
	if (!strcmp(key, "alpn_protocol"))
		return up && s->alpn[0] ? s->alpn : dflt;
	if (!strcmp(key, "peercert_sha256"))
		return up && s->have_fp ? s->fp : dflt;
	/* Socket keys belong to the transport below (sem 67): gone with it. */
	if (s->raw_gone)
		return dflt;
	return xp_transport_get_extra_info(s->raw, key, dflt);
}

static void tls_destroy(xp_transport *t)
{
	struct tls *s = T(t);

	xp__timer_cancel(&s->timer);
	xp__timer_cancel(&s->kick);
	tls_fail_waiter(s, s->have_app_err && s->app_err ? s->app_err : XP_ECLOSED);
	SSL_free(s->ssl); /* and the BIO */
	s->ssl = NULL;
	xp__tls_io_free(&s->io);
	xp__wbuf_clear(&s->pending);
	xp_tls_ctx_release(s->ctx);
	s->ctx = NULL;
	xp_transport_release(s->raw);
	s->raw = NULL;
	s->raw_gone = true;
}

static const struct xp_transport_vt tls_vt = {
    .kind = XP_TRANSPORT_TLS,
    .name = "tls",
    .made = tls_made,
    .close = tls_close,
    .force_close = tls_force_close,
    .write = tls_write,
    .write_eof = tls_write_eof,
    .can_write_eof = tls_can_write_eof,
    .update_reading = tls_update_reading,
    .get_write_buffer_size = tls_buffer_size,
    .get_extra_info = tls_extra,
    .destroy = tls_destroy,
};

/* ---- setting up ----------------------------------------------------- */

static bool is_ip_literal(const char *h)
{
	unsigned char b[16];

	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* SNI and the name to verify (clients). */
static int tls_setup_client(struct tls *s, const char *hostname)
{
	bool check = s->ctx->verify && !s->ctx->have_pin;

	if (!hostname || !*hostname)
		return check ? -EINVAL : 0; /* asyncio: server_hostname needed */
	if (is_ip_literal(hostname)) {
		/* No SNI for addresses (RFC 6066 section 3). */
		if (check && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), hostname) != 1)
			return -EINVAL;
		return 0;
	}
	if (SSL_set_tlsext_host_name(s->ssl, hostname) != 1)
		return -EINVAL;
	if (check) {
		SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(s->ssl, hostname) != 1)
			return -EINVAL;
	}
	return 0;
}

static int tls_setup_ssl(struct tls *s, int server_side, const char *hostname)
{
	BIO *bio;

	s->ssl = SSL_new(s->ctx->ssl_ctx);
	bio = s->ssl ? xp__tls_bio_new(&s->io) : NULL;
	if (!bio) {
		ERR_clear_error();
		return -ENOMEM; /* the caller frees the SSL */
	}
	SSL_set_bio(s->ssl, bio, bio); /* one reference for both directions */
	if (server_side) {
		SSL_set_accept_state(s->ssl);
		return 0;
	}
	SSL_set_connect_state(s->ssl);
	return tls_setup_client(s, hostname);
}

/*
 * The app's write buffer counts raw's bytes too, but raw tells us about its
 * drain only through resume_writing, which comes only after a pause.  With
 * raw's limits at 0/0, raw is paused exactly while it holds bytes, so every
 * drain of raw reaches us (and the app's resume_writing with it), and
 * plaintext waits in pending meanwhile.
 */
static void raw_limits(xp_transport *raw)
{
	xp_transport_set_write_buffer_limits(raw, 0, 0);
	/* Only we read raw: take what is there, up to the loop's buffer,
	 * in one call (the app's read size applies to the plaintext). */
	xp_transport_set_read_size(raw, (size_t)1 << 30);
}

/* A failed future; a fresh raw transport is ours to dispose of. */
static xp_future *wrap_failed(xp_future *fut, xp_transport *raw, bool fresh, int err)
{
	if (fresh)
		xp_transport_abort(raw);
	xp_future_set_error(fut, err);
	return fut;
}

xp_future *xp__tls_wrap(xp_loop *loop, xp_transport *raw, xp_protocol *app,
			xp_protocol_factory factory, void *factory_arg, xp_tls_ctx *tls,
			int server_side, const char *server_hostname, double handshake_timeout,
			xp_transport **tls_out)
{
	/* connect.c and server.c hand over a raw transport that has no
	 * protocol and was not started; start_tls one that runs. */
	bool fresh = raw && !raw->made && !raw->protocol;
	xp_future *fut = xp_future_new(loop);
	xp_transport *t;
	struct tls *s;
	int r;

	if (!fut) {
		if (fresh)
			xp_transport_abort(raw);
		return NULL;
	}
	if (!raw || (!app && !factory) || !tls || handshake_timeout < 0)
		return wrap_failed(fut, raw, fresh, -EINVAL);
	if (raw->closing)
		return wrap_failed(fut, raw, fresh, XP_ECLOSED);
	t = xp__transport_new(sizeof(*s), &tls_vt, loop, app);
	if (!t)
		return wrap_failed(fut, raw, fresh, -ENOMEM);
	s = T(t);
	t->high = TLS_HIGH;
	t->low = TLS_LOW;
	s->proto.ops = &raw_ops;
	s->ctx = xp_tls_ctx_retain(tls);
	s->raw = xp_transport_retain(raw);
	s->handshake_timeout =
	    handshake_timeout > 0 ? handshake_timeout : TLS_DEFAULT_HANDSHAKE_TIMEOUT;
	xp__wbuf_init(&s->pending);
	xp__wbuf_init(&s->io.keep);
	r = tls_setup_ssl(s, server_side, server_hostname);
	if (r < 0) {
		/* Never started: lost without any protocol call. */
		s->raw_gone = true;
		xp__transport_lost(t, r);
		return wrap_failed(fut, raw, fresh, r);
	}
	s->waiter = xp_future_retain(fut);
	s->raw_reading = true; /* xp__transport_start / resume_reading below */
	s->factory = factory;
	s->factory_arg = factory_arg;
	if (tls_out)
		*tls_out = t;
	if (fresh) {
		raw->protocol = &s->proto;
		raw_limits(raw);
		if (xp__transport_start(raw, NULL) < 0)
			tls_handshake_failed(s, XP_ECLOSED, "loop closed", false);
		return fut;
	}
	/* start_tls: the raw transport's flow-control state carries over. */
	xp_transport_set_protocol(raw, &s->proto);
	raw_limits(raw);
	s->raw_paused = raw->proto_paused;
	xp_transport_resume_reading(raw);
	tls_begin(s);
	return fut;
}

xp_future *xp_start_tls(xp_loop *loop, xp_transport *t, xp_protocol *protocol, xp_tls_ctx *tls,
			int server_side, const char *server_hostname, double handshake_timeout)
{
	int kind;

	if (!loop || !t || !protocol || !tls) {
		errno = EINVAL;
		return NULL;
	}
	kind = xp_transport_kind(t);
	if ((kind != XP_TRANSPORT_STREAM && kind != XP_TRANSPORT_TLS) || !t->made) {
		errno = EINVAL; /* asyncio's TypeError */
		return NULL;
	}
	/* The raw transport stays attached to its server, if any: that
	 * keeps wait_closed() counting this connection. */
	return xp__tls_wrap(loop, t, protocol, NULL, NULL, tls, server_side, server_hostname,
			    handshake_timeout, NULL);
}
