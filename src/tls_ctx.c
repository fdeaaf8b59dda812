// SPDX-License-Identifier: MIT
/*
 * tls_ctx.c - TLS contexts: an OpenSSL SSL_CTX with what xport adds to it
 * (verification on by default for clients, a certificate pin, ALPN in both
 * roles, an ephemeral self-signed certificate for servers without one).
 * A context is reference counted and shared by every TLS transport made
 * with it (tls.c), as s2n-tls keeps its config apart from its connections.
 */
#include "tls_ctx.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* A pin replaces the CA check: accept any chain here and compare the
 * fingerprint once the handshake is done. */
static int verify_accept_any(int ok, X509_STORE_CTX *store)
{
	return 1;
}

static void apply_verify(xp_tls_ctx *c)
{
	int mode = SSL_VERIFY_PEER;

	if (c->server_side && !c->client_optional)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	if (c->have_pin)
		SSL_CTX_set_verify(c->ssl_ctx, mode, verify_accept_any);
	else if (c->verify)
		SSL_CTX_set_verify(c->ssl_ctx, mode, NULL);
	else
		SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_NONE, NULL);
}

/* Server side of ALPN: the first of our names the client also offered. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	xp_tls_ctx *c = arg;

	for (size_t i = 0; c->alpn && i < c->alpn_len; i += 1u + c->alpn[i]) {
		for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
			if (j + 1u + in[j] > inlen)
				break;
			if (in[j] == c->alpn[i] && !memcmp(in + j + 1, c->alpn + i + 1, in[j])) {
				*out = in + j + 1;
				*outlen = in[j];
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	/* No common protocol: go on without ALPN, as Python's ssl does. */
	return SSL_TLSEXT_ERR_NOACK;
}

xp_tls_ctx *xp_tls_ctx_new(int server_side)
{
	xp_tls_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	c->server_side = server_side != 0;
	c->verify = !server_side;
	c->ssl_ctx = SSL_CTX_new(server_side ? TLS_server_method() : TLS_client_method());
	if (!c->ssl_ctx) {
		ERR_clear_error();
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
	/* Renegotiation would make SSL_write wait for reads; nobody needs
	 * it since TLS 1.3 (Python's ssl turns it off too). */
	SSL_CTX_set_options(c->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* A retried SSL_write may come from a moved buffer (our queue). */
	SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (server_side) {
		SSL_CTX_set_alpn_select_cb(c->ssl_ctx, alpn_select, c);
		/* Needed for session resumption when clients are verified. */
		SSL_CTX_set_session_id_context(c->ssl_ctx, (const unsigned char *)"xport", 5);
		/* One TLS 1.3 ticket per full handshake, not OpenSSL's two (as
		 * Go's crypto/tls): every resumption brings a fresh one, so a
		 * client that reconnects in turn never runs out, and a full
		 * handshake saves the second ticket's session encoding, key
		 * derivation and encryption.  A client that opens parallel
		 * connections resumes one of them. */
		SSL_CTX_set_num_tickets(c->ssl_ctx, 1);
	} else if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
		ERR_clear_error(); /* no system store: verification fails later */
	}
	apply_verify(c);
	return c;
}

xp_tls_ctx *xp_tls_ctx_retain(xp_tls_ctx *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void xp_tls_ctx_release(xp_tls_ctx *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	SSL_CTX_free(c->ssl_ctx);
	free(c->alpn);
	free(c);
}

void *xp_tls_ctx_ssl_ctx(xp_tls_ctx *c)
{
	return c ? c->ssl_ctx : NULL;
}

/* -errno when the file cannot be read, else XP_ETLS (bad contents). */
static int file_error(const char *path)
{
	ERR_clear_error();
	if (path && access(path, R_OK) < 0)
		return -errno;
	return XP_ETLS;
}

int xp_tls_ctx_load_cert_chain(xp_tls_ctx *c, const char *cert_file, const char *key_file)
{
	if (!c || !cert_file)
		return -EINVAL;
	if (!key_file)
		key_file = cert_file;
	if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, cert_file) != 1)
		return file_error(cert_file);
	if (SSL_CTX_use_PrivateKey_file(c->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1)
		return file_error(key_file);
	if (SSL_CTX_check_private_key(c->ssl_ctx) != 1) {
		ERR_clear_error();
		return XP_ETLS;
	}
	return 0;
}

int xp_tls_ctx_load_verify_locations(xp_tls_ctx *c, const char *ca_file)
{
	struct stat st;
	int r;

	if (!c || !ca_file)
		return -EINVAL;
	if (stat(ca_file, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		r = SSL_CTX_load_verify_locations(c->ssl_ctx, NULL, ca_file);
	else
		r = SSL_CTX_load_verify_locations(c->ssl_ctx, ca_file, NULL);
	return r == 1 ? 0 : file_error(ca_file);
}

int xp_tls_ctx_set_verify(xp_tls_ctx *c, int verify)
{
	if (!c)
		return -EINVAL;
	c->verify = verify != 0;
	c->client_optional = false; /* on a server, verify means REQUIRE */
	apply_verify(c);
	return 0;
}

int xp_tls_ctx_set_verify_client(xp_tls_ctx *c, int mode)
{
	if (!c || !c->server_side || mode < XP_VERIFY_CLIENT_NONE ||
	    mode > XP_VERIFY_CLIENT_REQUIRE)
		return -EINVAL;
	c->verify = mode != XP_VERIFY_CLIENT_NONE;
	c->client_optional = mode == XP_VERIFY_CLIENT_OPTIONAL;
	apply_verify(c);
	return 0;
}

int xp_tls_ctx_set_pin(xp_tls_ctx *c, const unsigned char sha256[32])
{
	if (!c)
		return -EINVAL;
	c->have_pin = sha256 != NULL;
	if (sha256)
		memcpy(c->pin, sha256, 32);
	apply_verify(c);
	return 0;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1"; NULL or "" clears. */
int xp_tls_ctx_set_alpn(xp_tls_ctx *c, const char *list)
{
	size_t n = list ? strlen(list) : 0;
	unsigned char *wire = NULL;
	size_t len = 0;

	if (!c)
		return -EINVAL;
	if (n) {
		wire = malloc(n + 1);
		if (!wire)
			return -ENOMEM;
		for (const char *p = list;;) {
			const char *end = strchr(p, ',');
			size_t k = end ? (size_t)(end - p) : strlen(p);

			if (k == 0 || k > 255) {
				free(wire);
				return -EINVAL;
			}
			wire[len++] = (unsigned char)k;
			memcpy(wire + len, p, k);
			len += k;
			if (!end)
				break;
			p = end + 1;
		}
	}
	/* Clients offer the list (0 is success here, unlike elsewhere). */
	if (SSL_CTX_set_alpn_protos(c->ssl_ctx, wire, (unsigned int)len) != 0) {
		free(wire);
		ERR_clear_error();
		return -ENOMEM;
	}
	free(c->alpn);
	c->alpn = wire;
	c->alpn_len = len;
	return 0;
}

static EVP_PKEY *gen_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		k = EVP_RSA_gen(2048);
	return k;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A name usable as a DNS SAN entry (letters, digits, '-', '.', '*'). */
static bool dns_name_ok(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
		      ('0' <= *s && *s <= '9') || *s == '-' || *s == '.' || *s == '*'))
			return false;
	return true;
}

static X509 *make_self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[8];
	BIGNUM *bn = NULL;
	char san[600];
	bool ok;

	if (!x)
		return NULL;
	ok = RAND_bytes(serial, sizeof(serial)) == 1;
	serial[0] &= 0x7f; /* positive */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	/* A day back covers clocks slightly behind ours. */
	ok = ok && X509_set_version(x, 2) && X509_gmtime_adj(X509_getm_notBefore(x), -86400L) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400L) && X509_set_pubkey(x, k);
	name = X509_get_subject_name(x);
	ok = ok &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) &&
	     X509_set_issuer_name(x, name);
	if (strcmp(cn, "localhost") && dns_name_ok(cn))
		snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", cn);
	else
		snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
	ok = ok && add_ext(x, NID_subject_alt_name, san) && X509_sign(x, k, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int xp_tls_ctx_use_self_signed(xp_tls_ctx *c, const char *common_name, unsigned char fp[32])
{
	EVP_PKEY *k;
	X509 *x = NULL;
	unsigned int n = 0;
	int r = XP_ETLS;

	if (!c)
		return -EINVAL;
	k = gen_key();
	if (k)
		x = make_self_signed(k, common_name && *common_name ? common_name : "localhost");
	if (x && SSL_CTX_use_certificate(c->ssl_ctx, x) == 1 &&
	    SSL_CTX_use_PrivateKey(c->ssl_ctx, k) == 1 &&
	    (!fp || X509_digest(x, EVP_sha256(), fp, &n) == 1))
		r = 0;
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

/* ---- the transport -------------------------------------------------- */
