// SPDX-License-Identifier: MIT
/*
 * fuzz_tls_peer.c - the TLS transport against a real OpenSSL peer that
 * follows a script: an SSL object in the harness on the other end of a
 * socketpair, driven step by step (non-blocking) as the input says.
 *
 * Input: a flags byte (bit 0: we are the server; bit 1: the peer stops at
 * TLS 1.2; bit 2: our side stays half open on EOF), then operations:
 * handshake step, write N bytes, read, close_notify, KeyUpdate (TLS 1.3)
 * or renegotiation (TLS 1.2), raw junk bytes, a raw shutdown or close of
 * the peer's socket, our side writing, sending EOF, closing, aborting or
 * pausing, and running the loop.
 *
 * Checked: what each side reads is an in-order prefix of what the other
 * wrote (both write fz_pattern streams), nothing crashes or leaks, and
 * once the peer is gone our side finishes within bounded iterations.
 * The peer's certificate is made here at start-up; no key is committed.
 */
#include <errno.h>
#include <sys/ioctl.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fuzz.h"
#include "fuzz_tls.h"

#define OUR_SALT 0x5a
#define PEER_SALT 0xa5

static SSL_CTX *peer_srv, *peer_cli;
static xp_tls_ctx *our_srv, *our_cli;

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();

	FZ_CHECK(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 365);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	FZ_CHECK(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x;
	unsigned char fp[32];
	unsigned int fplen = sizeof(fp);

	signal(SIGPIPE, SIG_IGN);
	FZ_CHECK(k);
	x = self_signed(k);
	peer_srv = SSL_CTX_new(TLS_server_method());
	peer_cli = SSL_CTX_new(TLS_client_method());
	FZ_CHECK(peer_srv && peer_cli);
	FZ_CHECK(SSL_CTX_use_certificate(peer_srv, x) == 1);
	FZ_CHECK(SSL_CTX_use_PrivateKey(peer_srv, k) == 1);
	SSL_CTX_set_verify(peer_cli, SSL_VERIFY_NONE, NULL);
	/* Our client accepts exactly the peer's certificate. */
	FZ_CHECK(X509_digest(x, EVP_sha256(), fp, &fplen) == 1);
	X509_free(x);
	EVP_PKEY_free(k);

	our_srv = xp_tls_ctx_new(1);
	our_cli = xp_tls_ctx_new(0);
	FZ_CHECK(our_srv && our_cli);
	FZ_CHECK(xp_tls_ctx_use_self_signed(our_srv, "localhost", NULL) == 0);
	FZ_CHECK(xp_tls_ctx_set_pin(our_cli, fp) == 0);
	return 0;
}

struct peer {
	SSL *ssl;
	int fd;
	bool dead;	       /* a fatal SSL error: only raw actions are left */
	int retry_len;	       /* an SSL_write to repeat with the same length */
	uint64_t sent;	       /* pattern bytes SSL_write took */
	uint64_t recvd;	       /* pattern bytes read from our side */
	uint64_t *our_written; /* what our side wrote */
};

/* Retryable results are fine; anything else ends the peer's TLS. */
static void peer_result(struct peer *p, int ret)
{
	int e = SSL_get_error(p->ssl, ret);

	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_NONE)
		p->dead = true;
	ERR_clear_error();
}

static void peer_write(struct peer *p, int len)
{
	uint8_t buf[16384];
	int ret;

	if (p->retry_len)
		len = p->retry_len;
	if (len <= 0 || len > (int)sizeof(buf))
		return;
	for (int k = 0; k < len; k++)
		buf[k] = fz_pattern(p->sent + (uint64_t)k, PEER_SALT);
	ret = SSL_write(p->ssl, buf, len);
	if (ret > 0) {
		p->sent += (uint64_t)ret;
		p->retry_len = 0;
		return;
	}
	p->retry_len = SSL_get_error(p->ssl, ret) == SSL_ERROR_WANT_WRITE ? len : 0;
	peer_result(p, ret);
}

static void peer_read(struct peer *p)
{
	uint8_t buf[16384];

	for (;;) {
		int ret = SSL_read(p->ssl, buf, sizeof(buf));

		if (ret <= 0) {
			peer_result(p, ret);
			return;
		}
		for (int k = 0; k < ret; k++)
			FZ_CHECK(buf[k] == fz_pattern(p->recvd + (uint64_t)k, OUR_SALT));
		p->recvd += (uint64_t)ret;
		FZ_CHECK(p->recvd <= *p->our_written);
	}
}

static void peer_raw_close(struct peer *p)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
	p->dead = true;
}

/* TLS 1.3: KeyUpdate; TLS 1.2: renegotiation (ours may refuse it). */
static void peer_rekey(struct peer *p, unsigned arg)
{
	int ret;

	if (!SSL_is_init_finished(p->ssl))
		return;
	if (SSL_version(p->ssl) >= TLS1_3_VERSION)
		ret = SSL_key_update(p->ssl, arg & 1 ? SSL_KEY_UPDATE_REQUESTED
						     : SSL_KEY_UPDATE_NOT_REQUESTED);
	else
		ret = SSL_renegotiate(p->ssl);
	if (ret != 1) {
		ERR_clear_error();
		return;
	}
	peer_result(p, SSL_do_handshake(p->ssl));
}

static void peer_op(struct peer *p, unsigned op, struct fz_in *in)
{
	const uint8_t *junk;
	size_t n;

	if (p->dead && op < 5)
		return;
	switch (op) {
	case 0:
		peer_result(p, SSL_do_handshake(p->ssl));
		break;
	case 1:
		peer_write(p, (int)(fz_u16(in) % 16384));
		break;
	case 2:
		peer_read(p);
		break;
	case 3:
		peer_result(p, SSL_shutdown(p->ssl));
		break;
	case 4:
		peer_rekey(p, fz_u8(in));
		break;
	case 5: /* junk: the TLS stream is broken from here on */
		n = fz_bytes(in, fz_u8(in), &junk);
		if (p->fd >= 0 && n && send(p->fd, junk, n, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
			p->dead = true;
		break;
	case 6:
		if (p->fd >= 0 && fz_u8(in) & 1)
			shutdown(p->fd, SHUT_WR);
		else
			peer_raw_close(p);
		break;
	}
}

static void our_op(struct ours *o, xp_future *fut, unsigned arg, struct fz_in *in)
{
	uint8_t buf[16384];
	size_t len;

	if (!o->t)
		return;
	switch (arg % 6) {
	case 0:
		len = fz_u16(in) % sizeof(buf);
		for (size_t k = 0; k < len; k++)
			buf[k] = fz_pattern(o->written + k, OUR_SALT);
		/* Bytes written after write_eof or close are refused or
		 * dropped; count only what the transport takes. */
		if (!xp_transport_is_closing(o->t) && xp_transport_write(o->t, buf, len) == 0)
			o->written += len;
		break;
	case 1:
		xp_transport_write_eof(o->t);
		break;
	case 2:
		xp_transport_close(o->t);
		break;
	case 3:
		xp_transport_abort(o->t);
		break;
	case 4:
		xp_transport_pause_reading(o->t);
		break;
	case 5:
		xp_transport_resume_reading(o->t);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	unsigned flags = fz_u8(&in);
	bool server = flags & 1;
	struct ours o = {.keep_open = flags & 4, .check = true, .peer_salt = PEER_SALT};
	struct peer p = {.our_written = &o.written};
	xp_loop *loop = fz_tls_loop();
	xp_future *fut;
	int sv[2];

	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	p.fd = sv[1];
	p.ssl = SSL_new(server ? peer_cli : peer_srv);
	FZ_CHECK(p.ssl && SSL_set_fd(p.ssl, sv[1]) == 1);
	SSL_set_mode(p.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (flags & 2)
		SSL_set_max_proto_version(p.ssl, TLS1_2_VERSION);
	if (server) {
		SSL_set_connect_state(p.ssl);
		SSL_set_tlsext_host_name(p.ssl, "localhost");
	} else {
		SSL_set_accept_state(p.ssl);
	}
	fut = fz_tls_ours(loop, &o, sv[0], server ? our_srv : our_cli, server);
	FZ_CHECK(fut);

	while (in.n) {
		unsigned b = fz_u8(&in), op = b & 15;

		/* The peer's stream counter is where the check reads it. */
		o.peer_sent = p.sent;
		if (op < 7)
			peer_op(&p, op, &in);
		else if (op < 10)
			our_op(&o, fut, b >> 4, &in);
		else
			for (unsigned k = (b >> 4) + 1; k; k--)
				fz_step(loop);
		o.peer_sent = p.sent;
		fz_step(loop);
	}
	/* The peer says goodbye as well as it still can, then goes. */
	if (!p.dead)
		SSL_shutdown(p.ssl);
	ERR_clear_error();
	peer_raw_close(&p);
	fz_tls_wind_down(loop, &o, fut);
	SSL_free(p.ssl);
	fz_tls_free(loop, fut);
	return 0;
}
