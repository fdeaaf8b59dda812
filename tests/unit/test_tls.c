// SPDX-License-Identifier: MIT
/*
 * test_tls.c - the TLS context and transport.
 *
 * Certificates are made at run time with the OpenSSL API (a CA, leaves
 * signed by it, an expired one, one from an unknown CA) into a mkdtemp
 * directory that the test removes; no key is ever committed.  Peers: our
 * own loop on both ends, `openssl s_server` / `openssl s_client`, and
 * Python's ssl module when /usr/bin/python3 has it.
 */
#include "test.h"
#include "recorder.h"

#include <dirent.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- certificates ---------------------------------------------------- */

struct pki {
	char dir[64];
	char ca[128], ca2[128];		     /* trusted CA, unknown CA */
	char cert[128], key[128];	     /* leaf for localhost, by ca */
	char expired[128], expired_key[128]; /* expired leaf, by ca */
	char rogue[128], rogue_key[128];     /* leaf by ca2 */
};

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!e)
		return 0;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for key k, signed by (ik, issuer) or self-signed. */
static X509 *make_cert(EVP_PKEY *k, const char *cn, EVP_PKEY *ik, X509 *issuer, bool ca, long from,
		       long to)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++ + (long)getpid() * 100);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	if (ca) {
		add_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
	}
	X509_sign(x, ik ? ik : k, EVP_sha256());
	return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	if (x)
		PEM_write_X509(f, x);
	if (k)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static void pki_leaf(struct pki *p, const char *cert, const char *key, EVP_PKEY *cak, X509 *ca,
		     long from, long to)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = make_cert(k, "localhost", cak, ca, false, from, to);
	write_pem(cert, x, NULL);
	write_pem(key, NULL, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void pki_make(struct pki *p)
{
	strcpy(p->dir, "/tmp/xptls.XXXXXX");
	REQUIRE(mkdtemp(p->dir));
	snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
	snprintf(p->ca2, sizeof(p->ca2), "%s/ca2.pem", p->dir);
	snprintf(p->cert, sizeof(p->cert), "%s/leaf.pem", p->dir);
	snprintf(p->key, sizeof(p->key), "%s/leaf.key", p->dir);
	snprintf(p->expired, sizeof(p->expired), "%s/expired.pem", p->dir);
	snprintf(p->expired_key, sizeof(p->expired_key), "%s/expired.key", p->dir);
	snprintf(p->rogue, sizeof(p->rogue), "%s/rogue.pem", p->dir);
	snprintf(p->rogue_key, sizeof(p->rogue_key), "%s/rogue.key", p->dir);

	EVP_PKEY *cak = EVP_EC_gen("P-256"), *ca2k = EVP_EC_gen("P-256");
	X509 *ca = make_cert(cak, "xport test CA", NULL, NULL, true, -86400, 86400 * 10);
	X509 *ca2 = make_cert(ca2k, "unknown CA", NULL, NULL, true, -86400, 86400 * 10);
	write_pem(p->ca, ca, NULL);
	write_pem(p->ca2, ca2, NULL);
	pki_leaf(p, p->cert, p->key, cak, ca, -3600, 86400 * 5);
	pki_leaf(p, p->expired, p->expired_key, cak, ca, -86400 * 10, -86400);
	pki_leaf(p, p->rogue, p->rogue_key, ca2k, ca2, -3600, 86400 * 5);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ca2k);
}

static void pki_remove(struct pki *p)
{
	DIR *d = opendir(p->dir);
	struct dirent *e;
	char path[512];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(p->dir);
}

/* ---- fixture: a TLS server and client on one loop --------------------- */

#define MAXSRV 4

struct fx {
	xp_loop *loop;
	struct pki pki;
	xp_tls_ctx *sctx, *cctx;
	xp_server *server;
	char port[16];
	struct rec *srv[MAXSRV];
	int nsrv;
	int srv_eof_ret;
	const xp_protocol_ops *srv_ops;
	struct rec *cli;
	xp_transport *ct; /* client transport */
	int nexc;
	char excmsg[2048];
	int excerr;
};

static xp_protocol *srv_factory(void *arg)
{
	struct fx *f = arg;
	if (f->nsrv >= MAXSRV)
		return NULL;
	struct rec *r = rec_new(f->srv_ops ? f->srv_ops : &rec_stream_ops, f->loop);
	r->eof_ret = f->srv_eof_ret;
	f->srv[f->nsrv++] = r;
	return &r->base;
}

static int fx_exc(xp_loop *loop, const xp_context *ctx, void *arg)
{
	struct fx *f = arg;
	size_t n = strlen(f->excmsg);
	f->nexc++;
	f->excerr = ctx->error;
	/* all messages, "|"-separated */
	snprintf(f->excmsg + n, sizeof(f->excmsg) - n, "%s%s", n ? "|" : "",
		 ctx->message ? ctx->message : "");
	return 0;
}

/* PKI, contexts (server: leaf cert; client: trusts ca), nothing started. */
static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->loop = xp_loop_new();
	REQUIRE(f->loop);
	xp_loop_set_exception_handler(f->loop, fx_exc, f);
	pki_make(&f->pki);
	f->sctx = xp_tls_ctx_new(1);
	f->cctx = xp_tls_ctx_new(0);
	REQUIRE(f->sctx && f->cctx);
	REQUIRE(xp_tls_ctx_load_cert_chain(f->sctx, f->pki.cert, f->pki.key) == 0);
	REQUIRE(xp_tls_ctx_load_verify_locations(f->cctx, f->pki.ca) == 0);
	f->cli = rec_new(&rec_stream_ops, f->loop);
}

static void fx_serve(struct fx *f)
{
	xp_server_opts so = {.tls = f->sctx};
	xp_future *fut = xp_create_server(f->loop, srv_factory, f, "127.0.0.1", "0", &so);
	REQUIRE(fut);
	REQUIRE(xp_loop_run_until_complete(f->loop, fut) == 0);
	f->server = xp_future_result(fut);
	xp_future_release(fut);
	xp_sockaddr sa;
	REQUIRE(xp_server_sockname(f->server, 0, &sa) == 0);
	snprintf(f->port, sizeof(f->port), "%d", ntohs(((struct sockaddr_in *)&sa.u.sa)->sin_port));
}

/* Connect the client; returns the future's error. */
static int fx_connect_host(struct fx *f, const char *host)
{
	xp_connect_opts co = {.tls = f->cctx, .server_hostname = host};
	xp_future *fut =
	    xp_create_connection(f->loop, rec_factory_one, f->cli, "127.0.0.1", f->port, &co);
	REQUIRE(fut);
	int err = xp_loop_run_until_complete(f->loop, fut);
	f->ct = err ? NULL : xp_future_result(fut);
	xp_future_release(fut);
	return err;
}

static int fx_connect(struct fx *f)
{
	return fx_connect_host(f, "localhost");
}

static int cond_srv_made(void *arg)
{
	struct fx *f = arg;
	return f->nsrv > 0 && f->srv[f->nsrv - 1]->nmade > 0;
}

static int stop_cb(void *loop)
{
	xp_loop_stop(loop);
	return 0;
}

static void fx_free(struct fx *f)
{
	if (f->cli && f->cli->t)
		xp_transport_abort(f->cli->t);
	for (int i = 0; i < f->nsrv; i++)
		if (f->srv[i]->t)
			xp_transport_abort(f->srv[i]->t);
	if (f->server) {
		xp_server_close(f->server);
		xp_future *w = xp_server_wait_closed(f->server);
		xp_loop_run_until_complete(f->loop, w);
		xp_future_release(w);
		xp_server_free(f->server);
	}
	/* Let every pending connection_lost run. */
	for (int i = 0; i < 5; i++) {
		xp_call_soon(f->loop, stop_cb, f->loop);
		xp_loop_run_forever(f->loop);
	}
	xp_loop_free(f->loop);
	xp_tls_ctx_release(f->sctx);
	xp_tls_ctx_release(f->cctx);
	for (int i = 0; i < f->nsrv; i++)
		rec_free(f->srv[i]);
	if (f->cli)
		rec_free(f->cli);
	pki_remove(&f->pki);
}

struct need {
	struct rec *r;
	size_t n;
};
static int cond_inlen(void *arg)
{
	struct need *w = arg;
	return w->r->inlen >= w->n || w->r->nlost;
}
static void wait_bytes(struct fx *f, struct rec *r, size_t n, double secs)
{
	struct need w = {r, n};
	rec_run_until(f->loop, cond_inlen, &w, secs);
}
static int cond_eof_or_lost(void *arg)
{
	struct rec *r = arg;
	return r->neof || r->nlost;
}

/* Small socket buffers, so that transports buffer (and pause) early. */
static void shrink_bufs(xp_transport *t)
{
	const int *fd = xp_transport_get_extra_info(t, "socket", NULL);
	int sz = 32768;
	REQUIRE(fd);
	setsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

/* ---- contexts ---------------------------------------------------------- */

TEST(tls_ctx_basics)
{
	struct pki p;
	pki_make(&p);
	xp_tls_ctx *c = xp_tls_ctx_new(0);
	REQUIRE(c);
	CHECK(xp_tls_ctx_ssl_ctx(c) != NULL);
	CHECK(xp_tls_ctx_retain(c) == c);
	xp_tls_ctx_release(c);
	CHECK_EQ(SSL_CTX_get_min_proto_version(xp_tls_ctx_ssl_ctx(c)), TLS1_2_VERSION);
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(c)), SSL_VERIFY_PEER);
	CHECK_EQ(xp_tls_ctx_set_alpn(c, "h2,,x"), -EINVAL);
	CHECK_EQ(xp_tls_ctx_set_alpn(c, "h2,http/1.1"), 0);
	CHECK_EQ(xp_tls_ctx_load_verify_locations(c, "/nonexistent/ca.pem"), -ENOENT);
	CHECK_EQ(xp_tls_ctx_load_cert_chain(c, "/nonexistent/c.pem", NULL), -ENOENT);
	CHECK_EQ(xp_tls_ctx_load_cert_chain(c, "/etc/hostname", NULL), XP_ETLS);
	/* a key that does not belong to the certificate */
	CHECK_EQ(xp_tls_ctx_load_cert_chain(c, p.cert, p.rogue_key), XP_ETLS);
	CHECK_EQ(xp_tls_ctx_load_cert_chain(c, p.cert, p.key), 0);
	CHECK_EQ(xp_tls_ctx_set_verify(c, 0), 0);
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(c)), SSL_VERIFY_NONE);
	xp_tls_ctx_release(c);

	/* self-signed: fp is SHA-256 of the DER, SAN covers localhost */
	xp_tls_ctx *s = xp_tls_ctx_new(1);
	unsigned char fp[32], want[32];
	unsigned int n;
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(s)), SSL_VERIFY_NONE);
	REQUIRE(xp_tls_ctx_use_self_signed(s, "example.test", fp) == 0);
	X509 *x = SSL_CTX_get0_certificate(xp_tls_ctx_ssl_ctx(s));
	REQUIRE(x);
	X509_digest(x, EVP_sha256(), want, &n);
	CHECK_MEM(fp, want, 32);
	CHECK_EQ(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	CHECK_EQ(X509_check_host(x, "example.test", 0, 0, NULL), 1);
	CHECK_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	CHECK_EQ(X509_check_ip_asc(x, "::1", 0), 1);
	CHECK(X509_cmp_time(X509_get0_notBefore(x), NULL) < 0);
	CHECK(X509_cmp_time(X509_get0_notAfter(x), NULL) > 0);
	xp_tls_ctx_release(s);
	pki_remove(&p);
}

/* ---- handshake and echo ---------------------------------------------- */

TEST(tls_echo_both_ways)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	CHECK_EQ(xp_transport_kind(f.ct), XP_TRANSPORT_TLS);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	CHECK_EQ(xp_server_connection_count(f.server), 1);
	CHECK_EQ(xp_transport_write(f.ct, "ping", 4), 0);
	wait_bytes(&f, s, 4, 5);
	CHECK_MEM(s->in, "ping", 4);
	CHECK_EQ(xp_transport_write(s->t, "pong!", 5), 0);
	wait_bytes(&f, f.cli, 5, 5);
	CHECK_MEM(f.cli->in, "pong!", 5);
	/* close: close_notify is the peer's EOF, then connection_lost(0) */
	xp_transport_close(f.ct);
	CHECK(xp_transport_is_closing(f.ct));
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	CHECK_STR(f.cli->log, "made data:5 lost:0");
	CHECK_STR(s->log, "made data:4 eof lost:0");
	fx_free(&f);
}

/* A protocol that checks extra info in connection_made / connection_lost. */
struct xrec {
	struct rec r;
	xp_tls_ctx *ctx;
	int made_ok, lost_ok;
	char version[32], cipher[64];
};

static void xrec_made(xp_protocol *p, xp_transport *t)
{
	struct xrec *x = (struct xrec *)XP_CONTAINER_OF(p, struct rec, base);
	const char *d = "dflt";
	rec_made(p, t);
	x->made_ok =
	    xp_transport_get_extra_info(t, "sslcontext", NULL) == xp_tls_ctx_ssl_ctx(x->ctx) &&
	    xp_transport_get_extra_info(t, "ssl_object", NULL) != NULL &&
	    xp_transport_get_extra_info(t, "peercert", NULL) != NULL &&
	    xp_transport_get_extra_info(t, "peercert_sha256", NULL) != NULL &&
	    xp_transport_get_extra_info(t, "compression", d) == d &&
	    xp_transport_get_extra_info(t, "no-such-key", d) == d &&
	    xp_transport_get_extra_info(t, "peername", NULL) != NULL &&
	    xp_transport_get_extra_info(t, "sockname", NULL) != NULL &&
	    xp_transport_get_extra_info(t, "socket", NULL) != NULL;
	const char *v = xp_transport_get_extra_info(t, "tls_version", "");
	const char *c = xp_transport_get_extra_info(t, "cipher", "");
	snprintf(x->version, sizeof(x->version), "%s", v);
	snprintf(x->cipher, sizeof(x->cipher), "%s", c);
}

static void xrec_lost(xp_protocol *p, int err)
{
	struct xrec *x = (struct xrec *)XP_CONTAINER_OF(p, struct rec, base);
	xp_transport *t = x->r.t;
	const char *d = "dflt";
	/* socket keys are gone with the connection; TLS ones still answer */
	x->lost_ok =
	    xp_transport_get_extra_info(t, "peername", d) == d &&
	    xp_transport_get_extra_info(t, "sockname", d) == d &&
	    xp_transport_get_extra_info(t, "socket", d) == d &&
	    xp_transport_get_extra_info(t, "sslcontext", NULL) == xp_tls_ctx_ssl_ctx(x->ctx);
	rec_lost(p, err);
}

static const xp_protocol_ops xrec_ops = {
    .connection_made = xrec_made,
    .connection_lost = xrec_lost,
    .data_received = rec_data,
    .eof_received = rec_eof,
};

TEST(tls_extra_info_sem_67)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	struct xrec *x = calloc(1, sizeof(*x));
	x->r.base.ops = &xrec_ops;
	x->ctx = f.cctx;
	rec_free(f.cli);
	f.cli = &x->r; /* freed by fx_free (rec_free = free(in) + free) */
	REQUIRE(fx_connect(&f) == 0);
	CHECK(x->made_ok);
	CHECK_STR(x->version, "TLSv1.3");
	CHECK(strlen(x->cipher) > 0);
	unsigned char want[32];
	unsigned int n;
	X509_digest(SSL_CTX_get0_certificate(xp_tls_ctx_ssl_ctx(f.sctx)), EVP_sha256(), want, &n);
	const unsigned char *got = xp_transport_get_extra_info(f.ct, "peercert_sha256", NULL);
	REQUIRE(got);
	CHECK_MEM(got, want, 32);
	CHECK(X509_cmp(xp_transport_get_extra_info(f.ct, "peercert", NULL),
		       SSL_CTX_get0_certificate(xp_tls_ctx_ssl_ctx(f.sctx))) == 0);
	CHECK(xp_transport_get_extra_info(f.ct, "alpn_protocol", NULL) == NULL);
	size_t lo, hi;
	xp_transport_get_write_buffer_limits(f.ct, &lo, &hi);
	CHECK_EQ(lo, 131072); /* sem 43: asyncio's SSL defaults */
	CHECK_EQ(hi, 524288);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	xp_transport_abort(f.srv[0]->t);
	rec_run_until(f.loop, rec_cond_lost, &x->r, 5);
	CHECK(x->lost_ok);
	fx_free(&f);
}

/* ---- verification ------------------------------------------------------- */

TEST(tls_verify_unknown_ca)
{
	struct fx f;
	fx_init(&f);
	REQUIRE(xp_tls_ctx_load_cert_chain(f.sctx, f.pki.rogue, f.pki.rogue_key) == 0);
	fx_serve(&f);
	xp_loop_set_debug(f.loop, 1);
	CHECK_EQ(fx_connect(&f), XP_ETLSVERIFY);
	/* debug mode: the exception handler hears OpenSSL's reason */
	CHECK(strstr(f.excmsg, "SSL handshake failed: certificate verify failed: unable to get "
			       "local issuer certificate") != NULL);
	CHECK_EQ(f.cli->nmade, 0);
	CHECK_EQ(f.cli->nlost, 0);
	xp_loop_set_debug(f.loop, 0);
	/* the server side saw an alert: its factory is never called, so no
	 * protocol is left without callbacks */
	rec_run_until(f.loop, cond_srv_made, &f, 0.3);
	CHECK_EQ(f.nsrv, 0);
	fx_free(&f);
}

TEST(tls_verify_wrong_host_name)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	CHECK_EQ(fx_connect_host(&f, "example.com"), XP_ETLSVERIFY);
	CHECK_EQ(f.nexc, 0); /* not in debug mode: no report */
	xp_loop_set_debug(f.loop, 1);
	CHECK_EQ(fx_connect_host(&f, "example.com"), XP_ETLSVERIFY);
	CHECK(strstr(f.excmsg, "certificate verify failed: hostname mismatch") != NULL);
	xp_loop_set_debug(f.loop, 0);
	/* IP literals are checked against IP SANs */
	CHECK_EQ(fx_connect_host(&f, "127.0.0.2"), XP_ETLSVERIFY);
	CHECK_EQ(fx_connect_host(&f, "127.0.0.1"), 0);
	fx_free(&f);
}

TEST(tls_verify_expired_certificate)
{
	struct fx f;
	fx_init(&f);
	REQUIRE(xp_tls_ctx_load_cert_chain(f.sctx, f.pki.expired, f.pki.expired_key) == 0);
	fx_serve(&f);
	xp_loop_set_debug(f.loop, 1);
	CHECK_EQ(fx_connect(&f), XP_ETLSVERIFY);
	CHECK(strstr(f.excmsg, "certificate verify failed: certificate has expired") != NULL);
	xp_loop_set_debug(f.loop, 0);
	fx_free(&f);
}

TEST(tls_verify_off_accepts_unknown_ca)
{
	struct fx f;
	fx_init(&f);
	REQUIRE(xp_tls_ctx_load_cert_chain(f.sctx, f.pki.rogue, f.pki.rogue_key) == 0);
	fx_serve(&f);
	xp_tls_ctx_set_verify(f.cctx, 0);
	CHECK_EQ(fx_connect_host(&f, "anything.invalid"), 0);
	fx_free(&f);
}

TEST(tls_pin_right_and_wrong)
{
	struct fx f;
	unsigned char fp[32];
	fx_init(&f);
	/* a self-signed server nobody's CA knows: the pin alone decides */
	xp_tls_ctx_release(f.sctx);
	f.sctx = xp_tls_ctx_new(1);
	REQUIRE(xp_tls_ctx_use_self_signed(f.sctx, "pinned", fp) == 0);
	fx_serve(&f);
	CHECK_EQ(xp_tls_ctx_set_pin(f.cctx, fp), 0);
	CHECK_EQ(fx_connect_host(&f, "not-the-cert-name"), 0);
	const unsigned char *got = xp_transport_get_extra_info(f.ct, "peercert_sha256", NULL);
	REQUIRE(got);
	CHECK_MEM(got, fp, 32);
	xp_transport_close(f.ct);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	fp[0] ^= 1;
	xp_tls_ctx_set_pin(f.cctx, fp);
	struct rec *c2 = rec_new(&rec_stream_ops, f.loop);
	xp_connect_opts co = {.tls = f.cctx, .server_hostname = "localhost"};
	xp_future *fut =
	    xp_create_connection(f.loop, rec_factory_one, c2, "127.0.0.1", f.port, &co);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), XP_EPIN);
	xp_future_release(fut);
	CHECK_EQ(c2->nmade, 0);
	rec_free(c2);
	fx_free(&f);
}

/* ---- client certificates (mutual TLS) ---------------------------------- */

#define MAXTRY 8

struct mtls {
	struct fx f;
	struct rec *tries[MAXTRY];
	int ntries;
};

static int cond_served_or_lost(void *arg)
{
	struct mtls *m = arg;
	struct rec *r = m->tries[m->ntries - 1];
	return r->nlost || (m->f.nsrv > 0 && m->f.srv[m->f.nsrv - 1]->nmade > 0 &&
			    m->f.srv[m->f.nsrv - 1]->inlen > 0);
}

/*
 * A client with (cert, key) or without a certificate says "hi": 1 if the
 * server took the connection (its protocol got the bytes), else 0.  With
 * TLS 1.3 the client may finish its handshake before the server rejects
 * its certificate, so the server's side is what counts.
 */
static int mtls_try(struct mtls *m, const char *cert, const char *key)
{
	struct fx *f = &m->f;
	xp_tls_ctx *c = xp_tls_ctx_new(0);
	int before = f->nsrv;
	REQUIRE(c && m->ntries < MAXTRY);
	REQUIRE(xp_tls_ctx_load_verify_locations(c, f->pki.ca) == 0);
	if (cert)
		REQUIRE(xp_tls_ctx_load_cert_chain(c, cert, key) == 0);
	struct rec *r = rec_new(&rec_stream_ops, f->loop);
	m->tries[m->ntries++] = r;
	xp_connect_opts co = {.tls = c, .server_hostname = "localhost"};
	xp_future *fut =
	    xp_create_connection(f->loop, rec_factory_one, r, "127.0.0.1", f->port, &co);
	REQUIRE(fut);
	int err = xp_loop_run_until_complete(f->loop, fut);
	xp_future_release(fut);
	xp_tls_ctx_release(c);
	if (err)
		return f->nsrv > before;
	xp_transport_write(r->t, "hi", 2);
	rec_run_until(f->loop, cond_served_or_lost, m, 5);
	return f->nsrv > before && f->srv[f->nsrv - 1]->inlen == 2;
}

static void mtls_init(struct mtls *m)
{
	memset(m, 0, sizeof(*m));
	fx_init(&m->f);
}

static void mtls_free(struct mtls *m)
{
	for (int i = 0; i < m->ntries; i++)
		if (m->tries[i]->t)
			xp_transport_abort(m->tries[i]->t);
	fx_free(&m->f);
	for (int i = 0; i < m->ntries; i++)
		rec_free(m->tries[i]);
}

TEST(tls_verify_client_modes_on_context)
{
	xp_tls_ctx *s = xp_tls_ctx_new(1), *c = xp_tls_ctx_new(0);
	REQUIRE(s && c);
	CHECK_EQ(xp_tls_ctx_set_verify_client(c, XP_VERIFY_CLIENT_OPTIONAL), -EINVAL);
	CHECK_EQ(xp_tls_ctx_set_verify_client(s, 3), -EINVAL);
	CHECK_EQ(xp_tls_ctx_set_verify_client(s, -1), -EINVAL);
	CHECK_EQ(xp_tls_ctx_set_verify_client(NULL, XP_VERIFY_CLIENT_NONE), -EINVAL);
	CHECK_EQ(xp_tls_ctx_set_verify_client(s, XP_VERIFY_CLIENT_REQUIRE), 0);
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(s)),
		 SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	CHECK_EQ(xp_tls_ctx_set_verify_client(s, XP_VERIFY_CLIENT_OPTIONAL), 0);
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(s)), SSL_VERIFY_PEER);
	CHECK_EQ(xp_tls_ctx_set_verify_client(s, XP_VERIFY_CLIENT_NONE), 0);
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(s)), SSL_VERIFY_NONE);
	/* verify on, on a server, is REQUIRE again */
	CHECK_EQ(xp_tls_ctx_set_verify_client(s, XP_VERIFY_CLIENT_OPTIONAL), 0);
	CHECK_EQ(xp_tls_ctx_set_verify(s, 1), 0);
	CHECK_EQ(SSL_CTX_get_verify_mode(xp_tls_ctx_ssl_ctx(s)),
		 SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	xp_tls_ctx_release(s);
	xp_tls_ctx_release(c);
}

TEST(tls_verify_client_require)
{
	struct mtls m;
	mtls_init(&m);
	REQUIRE(xp_tls_ctx_load_verify_locations(m.f.sctx, m.f.pki.ca) == 0);
	CHECK_EQ(xp_tls_ctx_set_verify_client(m.f.sctx, XP_VERIFY_CLIENT_REQUIRE), 0);
	fx_serve(&m.f);
	CHECK_EQ(mtls_try(&m, NULL, NULL), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.rogue, m.f.pki.rogue_key), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.expired, m.f.pki.expired_key), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.cert, m.f.pki.key), 1);
	mtls_free(&m);
}

TEST(tls_verify_client_optional)
{
	struct mtls m;
	mtls_init(&m);
	REQUIRE(xp_tls_ctx_load_verify_locations(m.f.sctx, m.f.pki.ca) == 0);
	CHECK_EQ(xp_tls_ctx_set_verify_client(m.f.sctx, XP_VERIFY_CLIENT_OPTIONAL), 0);
	fx_serve(&m.f);
	CHECK_EQ(mtls_try(&m, NULL, NULL), 1);
	CHECK_EQ(xp_transport_get_extra_info(m.f.srv[m.f.nsrv - 1]->t, "peercert_sha256", NULL),
		 NULL);
	CHECK_EQ(mtls_try(&m, m.f.pki.rogue, m.f.pki.rogue_key), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.cert, m.f.pki.key), 1);
	CHECK(xp_transport_get_extra_info(m.f.srv[m.f.nsrv - 1]->t, "peercert_sha256", NULL) !=
	      NULL);
	mtls_free(&m);
}

TEST(tls_verify_client_pin_required_or_optional)
{
	struct mtls m;
	unsigned char fp[32];
	unsigned int n = 0;
	mtls_init(&m);
	/* the pin of the client's certificate */
	FILE *pf = fopen(m.f.pki.cert, "r");
	REQUIRE(pf);
	X509 *x = PEM_read_X509(pf, NULL, NULL, NULL);
	fclose(pf);
	REQUIRE(x && X509_digest(x, EVP_sha256(), fp, &n) == 1);
	X509_free(x);
	CHECK_EQ(xp_tls_ctx_set_pin(m.f.sctx, fp), 0);
	fx_serve(&m.f);
	CHECK_EQ(mtls_try(&m, NULL, NULL), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.rogue, m.f.pki.rogue_key), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.cert, m.f.pki.key), 1);
	/* optional: no certificate is fine, a wrong one is not */
	CHECK_EQ(xp_tls_ctx_set_verify_client(m.f.sctx, XP_VERIFY_CLIENT_OPTIONAL), 0);
	CHECK_EQ(mtls_try(&m, NULL, NULL), 1);
	CHECK_EQ(mtls_try(&m, m.f.pki.rogue, m.f.pki.rogue_key), 0);
	CHECK_EQ(mtls_try(&m, m.f.pki.cert, m.f.pki.key), 1);
	mtls_free(&m);
}

TEST(tls_alpn_negotiation)
{
	struct fx f;
	fx_init(&f);
	xp_tls_ctx_set_alpn(f.sctx, "h2,http/1.1");
	xp_tls_ctx_set_alpn(f.cctx, "http/1.1,h2");
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	/* the server's preference wins among what the client offered */
	CHECK_STR(xp_transport_get_extra_info(f.ct, "alpn_protocol", NULL), "h2");
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	CHECK_STR(xp_transport_get_extra_info(f.srv[0]->t, "alpn_protocol", NULL), "h2");
	xp_transport_close(f.ct);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);

	/* no overlap: the connection goes on without ALPN */
	xp_tls_ctx_set_alpn(f.cctx, "spdy/1");
	rec_free(f.cli);
	f.cli = rec_new(&rec_stream_ops, f.loop);
	REQUIRE(fx_connect(&f) == 0);
	CHECK(xp_transport_get_extra_info(f.ct, "alpn_protocol", NULL) == NULL);
	fx_free(&f);
}

/* ---- bulk data ---------------------------------------------------------- */

static unsigned char *pattern(size_t n, unsigned seed)
{
	unsigned char *b = malloc(n);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
	return b;
}

static size_t big_size(void)
{
	/* valgrind runs ~50x slower: 16 MiB would not fit its timeout */
	return getenv("XP_TEST_SLOW") ? (size_t)4 << 20 : (size_t)16 << 20;
}

TEST(tls_16mib_byte_exact_both_directions)
{
	struct fx f;
	size_t n = big_size();
	unsigned char *up = pattern(n, 1), *down = pattern(n, 2);
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	/* one write each way at once: full duplex */
	CHECK_EQ(xp_transport_write(f.ct, up, n), 0);
	CHECK_EQ(xp_transport_write(s->t, down, n), 0);
	wait_bytes(&f, s, n, 60);
	wait_bytes(&f, f.cli, n, 60);
	CHECK_EQ(s->inlen, n);
	CHECK_EQ(f.cli->inlen, n);
	if (s->inlen == n)
		CHECK_MEM(s->in, up, n);
	if (f.cli->inlen == n)
		CHECK_MEM(f.cli->in, down, n);
	CHECK_EQ(s->nlost + f.cli->nlost, 0);
	free(up);
	free(down);
	fx_free(&f);
}

/* TLS inside TLS (a TLS connection through a TLS proxy): the inner layer's
 * ciphertext is the outer layer's plaintext, so it arrives in the buffer
 * the inner layer decrypts into.  Every byte must still come out intact. */
TEST(tls_over_tls_byte_exact_both_directions)
{
	struct fx f;
	size_t n = big_size() / 4;
	unsigned char *up = pattern(n, 3), *down = pattern(n, 4);
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *cin = rec_new(&rec_stream_ops, f.loop), *sin = rec_new(&rec_stream_ops, f.loop);
	xp_future *sf = xp_start_tls(f.loop, f.srv[0]->t, &sin->base, f.sctx, 1, NULL, 0);
	xp_future *cf = xp_start_tls(f.loop, f.ct, &cin->base, f.cctx, 0, "localhost", 0);
	REQUIRE(sf && cf);
	REQUIRE(xp_loop_run_until_complete(f.loop, cf) == 0);
	REQUIRE(xp_loop_run_until_complete(f.loop, sf) == 0);
	xp_transport *ct = xp_future_result(cf), *st = xp_future_result(sf);
	CHECK_EQ(xp_transport_write(ct, up, n), 0);
	CHECK_EQ(xp_transport_write(st, down, n), 0);
	wait_bytes(&f, sin, n, 60);
	wait_bytes(&f, cin, n, 60);
	CHECK_EQ(sin->inlen, n);
	CHECK_EQ(cin->inlen, n);
	if (sin->inlen == n)
		CHECK_MEM(sin->in, up, n);
	if (cin->inlen == n)
		CHECK_MEM(cin->in, down, n);
	CHECK_EQ(sin->nlost + cin->nlost, 0);
	/* the outer protocols hear nothing after the upgrade */
	CHECK_EQ(f.cli->inlen + f.srv[0]->inlen, 0);
	xp_transport_close(ct);
	rec_run_until(f.loop, rec_cond_lost, sin, 10);
	rec_run_until(f.loop, rec_cond_lost, cin, 10);
	CHECK(strstr(sin->log, "lost:0") != NULL);
	/* the outer transports went with the inner ones */
	f.cli->t = f.srv[0]->t = NULL;
	xp_future_release(sf);
	xp_future_release(cf);
	rec_free(cin);
	rec_free(sin);
	free(up);
	free(down);
	fx_free(&f);
}

/* Counts TLS 1.3 KeyUpdate messages sent (write_p 1) and received (0). */
static int key_updates[2];
static void count_key_update(int write_p, int version, int content_type, const void *buf,
			     size_t len, SSL *ssl, void *arg)
{
	if (content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_KEY_UPDATE)
		key_updates[write_p ? 1 : 0]++;
}

TEST(tls_key_update_mid_transfer)
{
	struct fx f;
	size_t n = (size_t)1 << 20;
	unsigned char *a = pattern(2 * n, 3), *b = pattern(n, 4);
	fx_init(&f);
	SSL_CTX_set_msg_callback(xp_tls_ctx_ssl_ctx(f.cctx), count_key_update);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	SSL *sssl = (SSL *)xp_transport_get_extra_info(s->t, "ssl_object", NULL);
	REQUIRE(sssl);
	CHECK_EQ(xp_transport_write(s->t, a, n), 0);
	wait_bytes(&f, f.cli, n / 2, 10);
	/* the server rekeys and asks the client to rekey too */
	CHECK_EQ(SSL_key_update(sssl, SSL_KEY_UPDATE_REQUESTED), 1);
	CHECK_EQ(xp_transport_write(s->t, a + n, n), 0);
	wait_bytes(&f, f.cli, 2 * n, 20);
	CHECK_EQ(f.cli->inlen, 2 * n);
	if (f.cli->inlen == 2 * n)
		CHECK_MEM(f.cli->in, a, 2 * n);
	CHECK(key_updates[0] >= 1);
	/* the client's data now goes under its updated keys */
	CHECK_EQ(xp_transport_write(f.ct, b, n), 0);
	wait_bytes(&f, s, n, 20);
	CHECK_EQ(s->inlen, n);
	if (s->inlen == n)
		CHECK_MEM(s->in, b, n);
	CHECK(key_updates[1] >= 1);
	CHECK_EQ(s->nlost + f.cli->nlost, 0);
	free(a);
	free(b);
	fx_free(&f);
}

/* ---- endings ---------------------------------------------------------- */

TEST(tls_truncation_without_close_notify)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	xp_transport_write(s->t, "last words", 10);
	rec_run_until(f.loop, cond_eof_or_lost, f.cli, 0.2);
	/* TCP FIN straight from the socket: no close_notify */
	const int *fd = xp_transport_get_extra_info(s->t, "socket", NULL);
	REQUIRE(fd);
	shutdown(*fd, SHUT_WR);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	CHECK_STR(f.cli->log, "made data:10 lost:-10007");
	CHECK_EQ(f.cli->lost_err, XP_ETRUNCATED);
	fx_free(&f);
}

TEST(tls_close_flushes_buffered_data)
{
	struct fx f;
	size_t n = (size_t)3 << 20;
	unsigned char *a = pattern(n, 5);
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	shrink_bufs(s->t);
	shrink_bufs(f.ct);
	xp_transport_pause_reading(s->t); /* make the client buffer */
	CHECK_EQ(xp_transport_write(f.ct, a, n), 0);
	CHECK(xp_transport_get_write_buffer_size(f.ct) > 0);
	xp_transport_close(f.ct);
	CHECK_EQ(xp_transport_write(f.ct, "x", 1), 0); /* dropped */
	xp_transport_resume_reading(s->t);
	rec_run_until(f.loop, rec_cond_lost, s, 20);
	CHECK_EQ(s->inlen, n);
	if (s->inlen == n)
		CHECK_MEM(s->in, a, n);
	CHECK_EQ(s->neof, 1);
	CHECK_EQ(s->lost_err, 0);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	/* resume_writing still comes while the buffer drains (as asyncio) */
	CHECK_STR(f.cli->log, "made pause resume lost:0");
	free(a);
	fx_free(&f);
}

TEST(tls_abort_drops_buffer)
{
	struct fx f;
	size_t n = (size_t)3 << 20;
	unsigned char *a = pattern(n, 6);
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	shrink_bufs(s->t);
	shrink_bufs(f.ct);
	xp_transport_pause_reading(s->t);
	xp_transport_write(f.ct, a, n);
	xp_transport_abort(f.ct);
	CHECK_EQ(xp_transport_get_write_buffer_size(f.ct), 0);
	CHECK_EQ(f.cli->nlost, 0); /* later, never inside abort() */
	xp_transport_abort(f.ct);
	xp_transport_close(f.ct);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	CHECK_EQ(f.cli->nlost, 1);
	CHECK_EQ(f.cli->lost_err, 0);
	xp_transport_resume_reading(s->t);
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	CHECK(s->inlen < n);
	CHECK(s->lost_err == XP_ETRUNCATED || s->lost_err == -ECONNRESET);
	free(a);
	fx_free(&f);
}

TEST(tls_write_eof_half_close_tls13)
{
	struct fx f;
	fx_init(&f);
	f.srv_eof_ret = 1; /* keep the half-open connection */
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	CHECK_EQ(xp_transport_can_write_eof(f.ct), 1);
	CHECK_EQ(xp_transport_can_write_eof(s->t), 1);
	xp_transport_write(f.ct, "request", 7);
	CHECK_EQ(xp_transport_write_eof(f.ct), 0);
	CHECK_EQ(xp_transport_write_eof(f.ct), 0);
	CHECK_EQ(xp_transport_write(f.ct, "more", 4), XP_ESTATE);
	rec_run_until(f.loop, cond_eof_or_lost, s, 5);
	CHECK_STR(s->log, "made data:7 eof");
	CHECK(!xp_transport_is_closing(s->t));
	CHECK(!xp_transport_is_reading(s->t));
	/* the server still sends after the client's close_notify */
	CHECK_EQ(xp_transport_write(s->t, "response", 8), 0);
	wait_bytes(&f, f.cli, 8, 5);
	CHECK_MEM(f.cli->in, "response", 8);
	xp_transport_close(s->t);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	CHECK_STR(f.cli->log, "made data:8 eof lost:0");
	CHECK_STR(s->log, "made data:7 eof lost:0");
	fx_free(&f);
}

TEST(tls_write_eof_enotsup_tls12_sem_28)
{
	struct fx f;
	fx_init(&f);
	SSL_CTX_set_max_proto_version(xp_tls_ctx_ssl_ctx(f.sctx), TLS1_2_VERSION);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	CHECK_STR(xp_transport_get_extra_info(f.ct, "tls_version", NULL), "TLSv1.2");
	CHECK_EQ(xp_transport_can_write_eof(f.ct), 0);
	CHECK_EQ(xp_transport_write_eof(f.ct), -ENOTSUP);
	CHECK_EQ(xp_transport_write(f.ct, "still fine", 10), 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	wait_bytes(&f, f.srv[0], 10, 5);
	CHECK_EQ(f.srv[0]->inlen, 10);
	fx_free(&f);
}

TEST(tls_eof_true_tls12_warns_and_closes_sem_21)
{
	struct fx f;
	fx_init(&f);
	f.srv_eof_ret = 1;
	SSL_CTX_set_max_proto_version(xp_tls_ctx_ssl_ctx(f.sctx), TLS1_2_VERSION);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	xp_transport_close(f.ct);
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	CHECK_STR(s->log, "made eof lost:0");
	CHECK_EQ(f.nexc, 1);
	CHECK_STR(f.excmsg, "returning true from eof_received() has no effect when using ssl");
	fx_free(&f);
}

TEST(tls_eof_true_tls13_keeps_open_sem_18)
{
	struct fx f;
	fx_init(&f);
	f.srv_eof_ret = 1;
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	CHECK_EQ(xp_transport_write_eof(f.ct), 0);
	rec_run_until(f.loop, cond_eof_or_lost, s, 5);
	rec_run_until(f.loop, rec_cond_lost, s, 0.2);
	CHECK_STR(s->log, "made eof");
	CHECK_EQ(f.nexc, 0);
	xp_transport_close(s->t);
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	CHECK_STR(s->log, "made eof lost:0");
	fx_free(&f);
}

TEST(tls_over_unix_socket)
{
	struct fx f;
	char path[160];
	fx_init(&f);
	snprintf(path, sizeof(path), "%s/sock", f.pki.dir);
	xp_server_opts so = {.tls = f.sctx};
	xp_future *fut = xp_create_unix_server(f.loop, srv_factory, &f, path, &so);
	REQUIRE(xp_loop_run_until_complete(f.loop, fut) == 0);
	f.server = xp_future_result(fut);
	xp_future_release(fut);
	xp_connect_opts co = {.tls = f.cctx, .server_hostname = "localhost"};
	fut = xp_create_unix_connection(f.loop, rec_factory_one, f.cli, path, &co);
	REQUIRE(xp_loop_run_until_complete(f.loop, fut) == 0);
	f.ct = xp_future_result(fut);
	xp_future_release(fut);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	xp_transport_write(f.ct, "over unix", 9);
	wait_bytes(&f, f.srv[0], 9, 5);
	CHECK_MEM(f.srv[0]->in, "over unix", 9);
	CHECK(xp_transport_get_extra_info(f.ct, "peername", NULL) != NULL);
	fx_free(&f);
}

/* ---- failures of one connection --------------------------------------- */

static int connect_plain(const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct plain_wait {
	int fd;
	char buf[4096];
	ssize_t got;
	bool eof;
};
static int cond_plain_eof(void *arg)
{
	struct plain_wait *w = arg;
	struct pollfd p = {.fd = w->fd, .events = POLLIN};
	while (!w->eof && poll(&p, 1, 0) > 0) {
		ssize_t k = read(w->fd, w->buf, sizeof(w->buf));
		if (k <= 0)
			w->eof = true;
		else
			w->got += k;
	}
	return w->eof;
}

TEST(tls_garbage_to_server_then_good_client)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	struct plain_wait w = {.fd = connect_plain(f.port)};
	REQUIRE(w.fd >= 0);
	const char *http = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
	CHECK_EQ(write(w.fd, http, strlen(http)), (ssize_t)strlen(http));
	CHECK(rec_run_until(f.loop, cond_plain_eof, &w, 5));
	close(w.fd);
	CHECK_EQ(f.nsrv, 0); /* no protocol made for a failed handshake */
	/* the server goes on serving */
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	CHECK_EQ(f.nsrv, 1);
	xp_transport_write(f.ct, "ok", 2);
	wait_bytes(&f, f.srv[0], 2, 5);
	CHECK_EQ(f.srv[0]->inlen, 2);
	CHECK_EQ(xp_server_connection_count(f.server), 1);
	CHECK_EQ(f.nexc, 0); /* handshake failures are not reported (sem 13) */
	fx_free(&f);
}

TEST(tls_corrupt_record_is_fatal)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	/* an application-data record header with nonsense after it */
	const int *fd = xp_transport_get_extra_info(f.srv[0]->t, "socket", NULL);
	REQUIRE(fd);
	unsigned char junk[64] = {0x17, 0x03, 0x03, 0x00, 59};
	memset(junk + 5, 0xab, sizeof(junk) - 5);
	CHECK_EQ(write(*fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	CHECK_STR(f.cli->log, "made lost:-10005");
	CHECK_EQ(f.nexc, 0); /* like an OSError: no report outside debug mode */
	fx_free(&f);
}

struct hs_count {
	struct fx *f;
	size_t want;
};
static int cond_conns(void *arg)
{
	struct hs_count *c = arg;
	return xp_server_connection_count(c->f->server) == c->want;
}

TEST(tls_close_and_abort_clients_during_handshake)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	/* plain clients that never say hello: the server waits in the handshake */
	int a = connect_plain(f.port), b = connect_plain(f.port);
	REQUIRE(a >= 0 && b >= 0);
	struct hs_count two = {&f, 2}, none = {&f, 0};
	REQUIRE(rec_run_until(f.loop, cond_conns, &two, 5));
	xp_server_close_clients(f.server);
	CHECK(rec_run_until(f.loop, cond_conns, &none, 5));
	struct plain_wait w = {.fd = a};
	CHECK(rec_run_until(f.loop, cond_plain_eof, &w, 5));
	close(a);
	close(b);
	int c = connect_plain(f.port);
	REQUIRE(rec_run_until(f.loop, cond_conns, &(struct hs_count){&f, 1}, 5));
	xp_server_abort_clients(f.server);
	CHECK(rec_run_until(f.loop, cond_conns, &none, 5));
	close(c);
	for (int i = 0; i < f.nsrv; i++)
		CHECK_EQ(f.srv[i]->nmade + f.srv[i]->nlost, 0);
	fx_free(&f);
}

static int cond_never(void *arg)
{
	return 0;
}

/* The server end goes away in the middle of the handshake. */
static void handshake_cut(bool reset)
{
	struct fx f;
	int port;
	fx_init(&f);
	int lfd = xpt_tcp_listener(&port);
	REQUIRE(lfd >= 0);
	snprintf(f.port, sizeof(f.port), "%d", port);
	xp_connect_opts co = {.tls = f.cctx, .server_hostname = "localhost"};
	xp_future *fut =
	    xp_create_connection(f.loop, rec_factory_one, f.cli, "127.0.0.1", f.port, &co);
	rec_run_until(f.loop, cond_never, NULL, 0.1); /* ClientHello sent */
	int fd = accept(lfd, NULL, NULL);
	REQUIRE(fd >= 0);
	if (reset) {
		struct linger lg = {1, 0};
		char hello[512];
		CHECK(read(fd, hello, sizeof(hello)) > 0);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), -ECONNRESET);
	xp_future_release(fut);
	CHECK_EQ(f.cli->nmade + f.cli->nlost, 0);
	close(lfd);
	fx_free(&f);
}

TEST(tls_handshake_cut_by_fin)
{
	handshake_cut(false);
}

TEST(tls_handshake_cut_by_reset)
{
	handshake_cut(true);
}

TEST(tls_start_tls_bad_arguments)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	errno = 0;
	CHECK(xp_start_tls(f.loop, NULL, &f.cli->base, f.cctx, 0, "localhost", 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(xp_start_tls(f.loop, f.ct, &f.cli->base, NULL, 0, "localhost", 0) == NULL);
	/* a closing transport cannot be upgraded */
	struct rec *r = rec_new(&rec_stream_ops, f.loop);
	xp_transport_close(f.ct);
	xp_future *up = xp_start_tls(f.loop, f.ct, &r->base, f.cctx, 0, "localhost", 0);
	REQUIRE(up);
	CHECK_EQ(xp_future_error(up), XP_ECLOSED);
	xp_future_release(up);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	CHECK_EQ(f.cli->lost_err, 0);
	rec_free(r);
	fx_free(&f);
}

TEST(tls_handshake_timeout)
{
	struct fx f;
	int port;
	fx_init(&f);
	int lfd = xpt_tcp_listener(&port); /* accepts (backlog) but never talks */
	REQUIRE(lfd >= 0);
	snprintf(f.port, sizeof(f.port), "%d", port);
	xp_connect_opts co = {
	    .tls = f.cctx, .server_hostname = "localhost", .tls_handshake_timeout = 0.2};
	double t0 = xp_loop_time(f.loop);
	xp_future *fut =
	    xp_create_connection(f.loop, rec_factory_one, f.cli, "127.0.0.1", f.port, &co);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), -ETIMEDOUT);
	double dt = xp_loop_time(f.loop) - t0;
	CHECK(dt >= 0.19 && dt < 20); /* not the 60 s default, even under valgrind */
	xp_future_release(fut);
	CHECK_EQ(f.cli->nmade, 0);
	close(lfd);
	fx_free(&f);
}

TEST(tls_client_needs_server_hostname)
{
	struct fx f;
	fx_init(&f);
	fx_serve(&f);
	int fd = connect_plain(f.port);
	REQUIRE(fd >= 0);
	xp_connect_opts co = {.tls = f.cctx, .use_sock = 1, .sock = fd};
	xp_future *fut = xp_create_connection(f.loop, rec_factory_one, f.cli, NULL, NULL, &co);
	CHECK_EQ(xp_loop_run_until_complete(f.loop, fut), -EINVAL);
	xp_future_release(fut);
	fx_free(&f);
}

/* ---- flow control (sem 43, 47, 49, 50, 59) ----------------------------- */

TEST(tls_flow_control_slow_reader_sem_43)
{
	struct fx f;
	size_t n = (size_t)4 << 20;
	unsigned char *a = pattern(n, 7);
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	shrink_bufs(s->t);
	shrink_bufs(f.ct);
	xp_transport_pause_reading(s->t);
	CHECK(!xp_transport_is_reading(s->t));
	/* write 64 KiB at a time until paused; the loop runs in between */
	size_t off = 0;
	while (off < n && !f.cli->npause) {
		xp_transport_write(f.ct, a + off, 65536);
		off += 65536;
		rec_run_until(f.loop, cond_eof_or_lost, f.cli, 0.01);
	}
	REQUIRE(f.cli->npause == 1);
	CHECK(xp_transport_get_write_buffer_size(f.ct) > 524288);
	CHECK_EQ(f.cli->nresume, 0);
	size_t before = off;
	xp_transport_resume_reading(s->t);
	CHECK(xp_transport_is_reading(s->t));
	wait_bytes(&f, s, before, 20);
	CHECK_EQ(s->inlen, before);
	if (s->inlen == before)
		CHECK_MEM(s->in, a, before);
	CHECK_STR(f.cli->log, "made pause resume");
	CHECK(xp_transport_get_write_buffer_size(f.ct) <= 131072);
	free(a);
	fx_free(&f);
}

TEST(tls_buffered_protocol_server)
{
	struct fx f;
	size_t n = 200000;
	unsigned char *a = pattern(n, 8);
	fx_init(&f);
	f.srv_ops = &rec_buffered_ops;
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	f.srv[0]->bufsize = 1000;
	xp_transport_write(f.ct, a, n);
	wait_bytes(&f, f.srv[0], n, 10);
	CHECK_EQ(f.srv[0]->inlen, n);
	if (f.srv[0]->inlen == n)
		CHECK_MEM(f.srv[0]->in, a, n);
	CHECK(strstr(f.srv[0]->log, "getbuf") != NULL);
	CHECK(strstr(f.srv[0]->log, "data:") == NULL);
	free(a);
	fx_free(&f);
}

/* ---- start_tls ---------------------------------------------------------- */

struct starter {
	struct rec r;
	struct fx *f;
	struct rec *tls_rec;
	xp_future *fut;
};

/* A plain server protocol that upgrades on "STARTTLS\n". */
static int starter_data(xp_protocol *p, const void *data, size_t len)
{
	struct starter *st = (struct starter *)XP_CONTAINER_OF(p, struct rec, base);
	rec_data(p, data, len);
	if (st->r.inlen >= 9 && !st->fut) {
		xp_transport_write(st->r.t, "GO\n", 3);
		st->fut =
		    xp_start_tls(st->f->loop, st->r.t, &st->tls_rec->base, st->f->sctx, 1, NULL, 0);
	}
	return 0;
}

static const xp_protocol_ops starter_ops = {
    .connection_made = rec_made,
    .connection_lost = rec_lost,
    .data_received = starter_data,
    .eof_received = rec_eof,
};

static struct starter *g_starter;
static xp_protocol *starter_factory(void *arg)
{
	return &g_starter->r.base;
}

TEST(tls_start_tls_upgrade)
{
	struct fx f;
	fx_init(&f);
	struct starter *st = calloc(1, sizeof(*st));
	st->r.base.ops = &starter_ops;
	st->r.loop = f.loop;
	st->f = &f;
	st->tls_rec = rec_new(&rec_stream_ops, f.loop);
	g_starter = st;
	xp_future *sf = xp_create_server(f.loop, starter_factory, NULL, "127.0.0.1", "0", NULL);
	REQUIRE(xp_loop_run_until_complete(f.loop, sf) == 0);
	f.server = xp_future_result(sf);
	xp_future_release(sf);
	xp_sockaddr sa;
	xp_server_sockname(f.server, 0, &sa);
	snprintf(f.port, sizeof(f.port), "%d", ntohs(((struct sockaddr_in *)&sa.u.sa)->sin_port));

	xp_future *cf =
	    xp_create_connection(f.loop, rec_factory_one, f.cli, "127.0.0.1", f.port, NULL);
	REQUIRE(xp_loop_run_until_complete(f.loop, cf) == 0);
	xp_transport *plain = xp_future_result(cf);
	xp_future_release(cf);
	xp_transport_write(plain, "STARTTLS\n", 9);
	wait_bytes(&f, f.cli, 3, 5);
	CHECK_MEM(f.cli->in, "GO\n", 3);
	struct rec *ctls = rec_new(&rec_stream_ops, f.loop);
	xp_future *up = xp_start_tls(f.loop, plain, &ctls->base, f.cctx, 0, "localhost", 0);
	REQUIRE(up);
	REQUIRE(xp_loop_run_until_complete(f.loop, up) == 0);
	xp_transport *ct = xp_future_result(up);
	xp_future_release(up);
	CHECK_EQ(xp_transport_kind(ct), XP_TRANSPORT_TLS);
	REQUIRE(st->fut);
	REQUIRE(xp_loop_run_until_complete(f.loop, st->fut) == 0);
	xp_transport *stt = xp_future_result(st->fut);
	xp_transport_write(ct, "secret", 6);
	wait_bytes(&f, st->tls_rec, 6, 5);
	CHECK_MEM(st->tls_rec->in, "secret", 6);
	xp_transport_write(stt, "reply", 5);
	wait_bytes(&f, ctls, 5, 5);
	CHECK_MEM(ctls->in, "reply", 5);
	xp_transport_close(ct);
	rec_run_until(f.loop, rec_cond_lost, st->tls_rec, 5);
	rec_run_until(f.loop, rec_cond_lost, ctls, 5);
	CHECK_STR(ctls->log, "made data:5 lost:0");
	CHECK_STR(st->tls_rec->log, "made data:6 eof lost:0");
	/* the plain protocols never hear of the connection again */
	CHECK_STR(f.cli->log, "made data:3");
	CHECK_STR(st->r.log, "made data:9");
	xp_future_release(st->fut);
	f.cli->t = NULL; /* the upgraded plain transports are gone */
	st->r.t = NULL;
	fx_free(&f);
	rec_free(ctls);
	rec_free(st->tls_rec);
	free(st->r.in);
	free(st);
}

/* ---- external peers --------------------------------------------------- */

struct child {
	pid_t pid;
	int in, out;
	char buf[65536];
	size_t len;
	const char *needle;
};

static bool spawn(struct child *c, char *const argv[])
{
	int pin[2], pout[2];
	memset(c, 0, sizeof(*c));
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0)
		return false;
	c->pid = fork();
	if (c->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(pout[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	c->in = pin[1];
	c->out = pout[0];
	xpt_set_nonblock(c->out);
	return c->pid > 0;
}

static int cond_child_says(void *arg)
{
	struct child *c = arg;
	ssize_t k;
	while (c->len < sizeof(c->buf) - 1 &&
	       (k = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len)) > 0)
		c->len += (size_t)k;
	c->buf[c->len] = '\0';
	return strstr(c->buf, c->needle) != NULL;
}

static bool child_wait_for(struct fx *f, struct child *c, const char *needle, double secs)
{
	c->needle = needle;
	return rec_run_until(f->loop, cond_child_says, c, secs);
}

static int child_end(struct child *c)
{
	int st = 0;
	close(c->in);
	for (int i = 0; i < 200; i++) {
		if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
			close(c->out);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, &st, 0);
	close(c->out);
	return -1;
}

static int free_port(void)
{
	int port = 0;
	int fd = xpt_tcp_listener(&port);
	close(fd);
	return port;
}

static bool have_openssl(void)
{
	return system("openssl version >/dev/null 2>&1") == 0;
}

static int cond_key_update_seen(void *arg)
{
	return key_updates[0] > 0;
}

/* Our client against `openssl s_server`; ver is "-tls1_3" or "-tls1_2". */
static void interop_s_server(const char *ver)
{
	struct fx f;
	char port[16];
	if (!have_openssl()) {
		fprintf(stderr, "skipped: no openssl binary\n");
		return;
	}
	fx_init(&f);
	SSL_CTX_set_msg_callback(xp_tls_ctx_ssl_ctx(f.cctx), count_key_update);
	snprintf(port, sizeof(port), "%d", free_port());
	char *argv[] = {"openssl", "s_server", "-accept",  port, "-cert",     f.pki.cert,
			"-key",	   f.pki.key,  "-naccept", "1",	 (char *)ver, NULL};
	struct child c;
	REQUIRE(spawn(&c, argv));
	REQUIRE(child_wait_for(&f, &c, "ACCEPT", 5));
	strcpy(f.port, port);
	REQUIRE(fx_connect(&f) == 0);
	CHECK_STR(xp_transport_get_extra_info(f.ct, "tls_version", NULL),
		  strcmp(ver, "-tls1_3") ? "TLSv1.2" : "TLSv1.3");
	xp_transport_write(f.ct, "hello-from-xport\n", 17);
	CHECK(child_wait_for(&f, &c, "hello-from-xport", 5));
	CHECK_EQ(write(c.in, "hello-from-openssl\n", 19), 19);
	wait_bytes(&f, f.cli, 19, 5);
	CHECK_MEM(f.cli->in, "hello-from-openssl\n", 19);
	if (!strcmp(ver, "-tls1_3")) {
		/* s_server's "k" command: a KeyUpdate, then more data */
		/* (its "SSL_do_handshake -> 1" sits in stdio's pipe buffer) */
		CHECK_EQ(write(c.in, "K\n", 2), 2);
		CHECK(rec_run_until(f.loop, cond_key_update_seen, NULL, 5));
		CHECK_EQ(write(c.in, "after-update\n", 13), 13);
		wait_bytes(&f, f.cli, 19 + 13, 5);
		CHECK_EQ(f.cli->inlen, 19 + 13);
		CHECK_MEM(f.cli->in + 19, "after-update\n", 13);
		xp_transport_write(f.ct, "still-talking\n", 14);
		CHECK(child_wait_for(&f, &c, "still-talking", 5));
		CHECK(key_updates[1] >= 1); /* our answer to "update requested" */
	}
	xp_transport_close(f.ct);
	rec_run_until(f.loop, rec_cond_lost, f.cli, 5);
	CHECK_EQ(f.cli->lost_err, 0);
	CHECK_EQ(f.cli->nlost, 1);
	CHECK_EQ(child_end(&c), 0);
	fx_free(&f);
}

TEST(tls_interop_openssl_s_server_tls13)
{
	interop_s_server("-tls1_3");
}

TEST(tls_interop_openssl_s_server_tls12)
{
	interop_s_server("-tls1_2");
}

/* `openssl s_client` against our server. */
static void interop_s_client(const char *ver)
{
	struct fx f;
	if (!have_openssl()) {
		fprintf(stderr, "skipped: no openssl binary\n");
		return;
	}
	fx_init(&f);
	xp_tls_ctx_set_alpn(f.sctx, "xp/1");
	fx_serve(&f);
	char connect[64];
	snprintf(connect, sizeof(connect), "127.0.0.1:%s", f.port);
	char *argv[] = {"openssl",
			"s_client",
			"-connect",
			connect,
			"-CAfile",
			f.pki.ca,
			"-verify_return_error",
			"-servername",
			"localhost",
			"-brief",
			"-alpn",
			"xp/1",
			(char *)ver,
			NULL};
	struct child c;
	REQUIRE(spawn(&c, argv));
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	CHECK_STR(xp_transport_get_extra_info(s->t, "alpn_protocol", NULL), "xp/1");
	CHECK(child_wait_for(&f, &c, "Verification: OK", 5));
	xp_transport_write(s->t, "hi-client\n", 10);
	CHECK(child_wait_for(&f, &c, "hi-client", 5));
	CHECK(strstr(c.buf, strcmp(ver, "-tls1_3") ? "TLSv1.2" : "TLSv1.3") != NULL);
	CHECK_EQ(write(c.in, "hi-server\n", 10), 10);
	wait_bytes(&f, s, 10, 5);
	CHECK_MEM(s->in, "hi-server\n", 10);
	/* stdin EOF: s_client sends close_notify and leaves */
	close(c.in);
	c.in = -1;
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	CHECK_STR(s->log, "made data:10 eof lost:0");
	CHECK_EQ(child_end(&c), 0);
	fx_free(&f);
}

TEST(tls_interop_openssl_s_client_tls13)
{
	interop_s_client("-tls1_3");
}

TEST(tls_interop_openssl_s_client_tls12)
{
	interop_s_client("-tls1_2");
}

static bool have_python_ssl(void)
{
	return system("/usr/bin/python3 -c 'import ssl' >/dev/null 2>&1") == 0;
}

/* Python server: reads until close_notify, then answers with the length
 * and SHA-256 of what it got (TLS 1.3: after our write_eof), or reads a
 * known size first (TLS 1.2). */
static const char py_server[] =
    "import ssl, socket, sys, hashlib\n"
    "cert, key, ver, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(cert, key)\n"
    "if ver == '1.2': ctx.maximum_version = ssl.TLSVersion.TLSv1_2\n"
    "ls = socket.socket(); ls.bind(('127.0.0.1', 0)); ls.listen(1)\n"
    "print('PORT %d' % ls.getsockname()[1], flush=True)\n"
    "c, _ = ls.accept(); s = ctx.wrap_socket(c, server_side=True)\n"
    "h = hashlib.sha256(); n = 0\n"
    "while size == 0 or n < size:\n"
    "    d = s.recv(65536)\n"
    "    if not d: break\n"
    "    h.update(d); n += len(d)\n"
    "s.sendall(('%d %s\\n' % (n, h.hexdigest())).encode())\n"
    "print('SERVED %s %d' % (s.version(), n), flush=True)\n"
    "s.unwrap(); s.close()\n";

static void interop_py_server(const char *ver)
{
	struct fx f;
	if (!have_python_ssl()) {
		fprintf(stderr, "skipped: no python3 ssl\n");
		return;
	}
	fx_init(&f);
	size_t n = (size_t)1 << 20;
	unsigned char *a = pattern(n, 9);
	char size[32];
	snprintf(size, sizeof(size), "%zu", strcmp(ver, "1.3") ? n : 0);
	char *argv[] = {"/usr/bin/python3",
			"-c",
			(char *)py_server,
			f.pki.cert,
			f.pki.key,
			(char *)ver,
			size,
			NULL};
	struct child c;
	REQUIRE(spawn(&c, argv));
	REQUIRE(child_wait_for(&f, &c, "\n", 10));
	REQUIRE(sscanf(c.buf, "PORT %15s", f.port) == 1);
	REQUIRE(fx_connect(&f) == 0);
	xp_transport_write(f.ct, a, n);
	if (!strcmp(ver, "1.3"))
		CHECK_EQ(xp_transport_write_eof(f.ct), 0); /* half-close */
	rec_run_until(f.loop, rec_cond_lost, f.cli, 15);
	unsigned char md[32];
	char want[128];
	SHA256(a, n, md);
	int k = snprintf(want, sizeof(want), "%zu ", n);
	for (int i = 0; i < 32; i++)
		k += snprintf(want + k, sizeof(want) - (size_t)k, "%02x", md[i]);
	REQUIRE(f.cli->inlen > 0);
	f.cli->in[f.cli->inlen - 1] = '\0';
	CHECK_STR((char *)f.cli->in, want);
	CHECK_EQ(f.cli->lost_err, 0);
	CHECK(strstr(f.cli->log, "eof lost:0") != NULL);
	CHECK(child_wait_for(&f, &c, "SERVED", 5));
	CHECK(strstr(c.buf, strcmp(ver, "1.3") ? "TLSv1.2" : "TLSv1.3") != NULL);
	CHECK_EQ(child_end(&c), 0);
	free(a);
	fx_free(&f);
}

TEST(tls_interop_python_server_tls13_half_close)
{
	interop_py_server("1.3");
}

TEST(tls_interop_python_server_tls12)
{
	interop_py_server("1.2");
}

/* Python client: sends a line, prints what comes back until EOF. */
static const char py_client[] = "import ssl, socket, sys\n"
				"ca, port, ver = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
				"ctx = ssl.create_default_context(cafile=ca)\n"
				"if ver == '1.2': ctx.maximum_version = ssl.TLSVersion.TLSv1_2\n"
				"ctx.set_alpn_protocols(['zz', 'xp/1'])\n"
				"s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', "
				"port)), server_hostname='localhost')\n"
				"s.sendall(b'x' * 300000)\n"
				"got = b''\n"
				"while True:\n"
				"    d = s.recv(65536)\n"
				"    if not d: break\n"
				"    got += d\n"
				"print('CLIENT %s %s %s' % (s.version(), "
				"s.selected_alpn_protocol(), got.decode()), flush=True)\n";

static void interop_py_client(const char *ver)
{
	struct fx f;
	if (!have_python_ssl()) {
		fprintf(stderr, "skipped: no python3 ssl\n");
		return;
	}
	fx_init(&f);
	xp_tls_ctx_set_alpn(f.sctx, "xp/1,zz");
	fx_serve(&f);
	char *argv[] = {"/usr/bin/python3", "-c", (char *)py_client, f.pki.ca, f.port,
			(char *)ver,	    NULL};
	struct child c;
	REQUIRE(spawn(&c, argv));
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 10));
	struct rec *s = f.srv[0];
	wait_bytes(&f, s, 300000, 10);
	CHECK_EQ(s->inlen, 300000);
	xp_transport_write(s->t, "thanks", 6);
	xp_transport_close(s->t);
	char want[64];
	snprintf(want, sizeof(want), "CLIENT TLSv%s xp/1 thanks", ver);
	CHECK(child_wait_for(&f, &c, want, 10));
	rec_run_until(f.loop, rec_cond_lost, s, 5);
	CHECK_EQ(s->lost_err, 0);
	CHECK_EQ(child_end(&c), 0);
	fx_free(&f);
}

TEST(tls_interop_python_client_tls13)
{
	interop_py_client("1.3");
}

TEST(tls_interop_python_client_tls12)
{
	interop_py_client("1.2");
}

/* sem 49 for TLS: the app paused while the raw transport below stayed
 * under its own high watermark (so raw never pauses or resumes); the app
 * must still get resume_writing once everything drained. */
TEST(tls_resume_when_raw_drains_unpaused_sem_49)
{
	struct fx f;
	size_t n = (size_t)1 << 20;
	unsigned char *a = pattern(n, 3);
	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	shrink_bufs(s->t);
	shrink_bufs(f.ct);
	REQUIRE(xp_transport_set_write_buffer_limits(f.ct, 4096, 1024) == 0);
	xp_transport_pause_reading(s->t);
	size_t off = 0;
	while (off < n && !f.cli->npause) {
		xp_transport_write(f.ct, a + off, 4096);
		off += 4096;
		rec_run_until(f.loop, cond_eof_or_lost, f.cli, 0.01);
	}
	REQUIRE(f.cli->npause == 1);
	xp_transport_resume_reading(s->t);
	wait_bytes(&f, s, off, 10);
	CHECK_EQ(s->inlen, off);
	rec_run_until(f.loop, cond_eof_or_lost, f.cli, 0.2);
	CHECK_EQ(xp_transport_get_write_buffer_size(f.ct), 0);
	CHECK_STR(f.cli->log, "made pause resume");
	free(a);
	fx_free(&f);
}

/* ---- hostile peers: memory stays bounded ------------------------------ */

/* A TLS 1.3 client in a forked child, blocking, that never reads.  It
 * sends close_notify and then raw bytes ("garbage"), or KeyUpdate
 * requests in a loop ("keyupdate"), for at most `secs`, until a send
 * blocks for 300 ms (we held it back), and reports over `rep` how much it
 * got out: bytes for garbage, updates for keyupdate. */
static pid_t hostile_client(const char *port, const char *mode, double secs, int rep)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {0, 300000};
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 16384;
	long long deadline = xpt_now_ms() + (long long)(secs * 1000), done = 0;
	static char junk[16384];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(2);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		_exit(3);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!strcmp(mode, "garbage")) {
		SSL_shutdown(ssl); /* close_notify */
		memset(junk, 0x17, sizeof(junk));
		while (xpt_now_ms() < deadline) {
			ssize_t n = send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
			if (n <= 0)
				break;
			done += n;
		}
	} else {
		while (xpt_now_ms() < deadline) {
			if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1 ||
			    SSL_do_handshake(ssl) != 1)
				break;
			done++;
		}
	}
	SSL_free(ssl); /* valgrind checks this child's heap too */
	SSL_CTX_free(ctx);
	if (write(rep, &done, sizeof(done)) != sizeof(done))
		_exit(4);
	_exit(0);
}

struct hostile_watch {
	struct fx *f;
	pid_t pid;
	size_t max_buffered; /* the server transport's write buffer, at most */
	long long max_rss_kb;
};

static long long rss_kb(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long long pages = 0, res = 0;

	if (fp) {
		if (fscanf(fp, "%lld %lld", &pages, &res) != 2)
			res = 0;
		fclose(fp);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cond_hostile_done(void *arg)
{
	struct hostile_watch *w = arg;
	struct fx *f = w->f;
	long long rss = rss_kb();

	if (f->nsrv && f->srv[0]->t && !f->srv[0]->nlost) {
		size_t b = xp_transport_get_write_buffer_size(f->srv[0]->t);
		if (b > w->max_buffered)
			w->max_buffered = b;
	}
	if (rss > w->max_rss_kb)
		w->max_rss_kb = rss;
	return waitpid(w->pid, NULL, WNOHANG) != 0; /* exited (or reaped) */
}

static void hostile_run(const char *mode, long long *reported, struct hostile_watch *w)
{
	int rep[2];

	REQUIRE(pipe(rep) == 0);
	w->pid = hostile_client(w->f->port, mode, 4.0, rep[1]);
	REQUIRE(w->pid > 0);
	close(rep[1]);
	CHECK(rec_run_until(w->f->loop, cond_hostile_done, w, 30));
	CHECK_EQ(read(rep[0], reported, sizeof(*reported)), (ssize_t)sizeof(*reported));
	close(rep[0]);
}

/* After close_notify nothing may follow: a TLS 1.3 peer that goes on
 * streaming bytes is held back by TCP, not buffered (it once grew the
 * read BIO by everything it sent). */
TEST(tls_bytes_after_close_notify_are_not_buffered)
{
	struct fx f;
	struct hostile_watch w = {.f = &f};
	long long sent = 0, rss0;

	fx_init(&f);
	f.srv_eof_ret = 1; /* TLS 1.3 half-close: stay open for writing */
	fx_serve(&f);
	rss0 = rss_kb();
	hostile_run("garbage", &sent, &w);
	CHECK(f.nsrv == 1 && strstr(f.srv[0]->log, "made eof") == f.srv[0]->log);
	/* Socket buffers hold a few MiB at most; 4 s of loopback is far more. */
	CHECK(sent < 16LL << 20);
	CHECK(w.max_rss_kb - rss0 < 32 * 1024);
	fx_free(&f);
}

/* KeyUpdate(update_requested) in a loop from a peer that never reads: our
 * answers wait in the raw write buffer, which must stop our reading once
 * it is over its limit instead of growing with every request. */
TEST(tls_key_update_flood_from_non_reader_is_bounded)
{
	struct fx f;
	struct hostile_watch w = {.f = &f};
	long long updates = 0;

	fx_init(&f);
	fx_serve(&f);
	hostile_run("keyupdate", &updates, &w);
	REQUIRE(f.nsrv == 1);
	CHECK(w.max_buffered <= 1 << 20);
	CHECK(updates < 1000000);
	fx_free(&f);
}

/* Paused is not deaf over TLS either: the raw socket under a paused TLS
 * transport still reports the peer's reset at once. */
TEST(tls_paused_server_notices_reset)
{
	struct fx f;
	static unsigned char big[1 << 18];
	struct linger l = {1, 0};
	const int *fd;

	fx_init(&f);
	fx_serve(&f);
	REQUIRE(fx_connect(&f) == 0);
	REQUIRE(rec_run_until(f.loop, cond_srv_made, &f, 5));
	struct rec *s = f.srv[0];
	xp_transport_pause_reading(s->t);
	CHECK_EQ(xp_transport_write(f.ct, big, sizeof(big)), 0);
	rec_run_until(f.loop, cond_never, NULL, 0.3);
	CHECK_EQ(s->inlen, 0);
	fd = xp_transport_get_extra_info(f.ct, "socket", NULL);
	REQUIRE(fd && *fd >= 0);
	setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	xp_transport_abort(f.ct);
	CHECK(rec_run_until(f.loop, rec_cond_lost, s, 5));
	CHECK_EQ(s->lost_err, -ECONNRESET);
	fx_free(&f);
}
