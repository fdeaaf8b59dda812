/* SPDX-License-Identifier: MIT */
/*
 * xport.h - the one public header of libxport.
 *
 * An event loop with transports and protocols, following the semantics of
 * Python asyncio's low-level API (see xport(3)).  Everything public is
 * prefixed xp_ / XP_.
 *
 * Conventions
 *   - Errors are values: 0 on success or a negative errno-style code
 *     (-EINVAL, -ECONNRESET, ...) or one of the XP_E* codes below.
 *     xp_strerror() turns either into text.  The library never exits.
 *   - Functions returning a pointer return NULL on failure and set errno.
 *   - Asynchronous operations return an xp_future the caller owns one
 *     reference to (release it with xp_future_release()).
 *
 * Ownership (read this once; it holds everywhere)
 *   - Protocols belong to the application.  A transport borrows its protocol
 *     from connection_made() until connection_lost() returns; after that it
 *     never touches it again, so connection_lost() is the place to free it.
 *     Protocol factories (servers, create_connection) allocate one protocol
 *     per connection; that protocol typically frees itself in connection_lost.
 *   - Transports belong to the loop.  A transport pointer is valid from
 *     connection_made() until connection_lost() returns; the loop frees the
 *     transport right after, unless the application took a reference with
 *     xp_transport_retain() (then at the matching xp_transport_release()).
 *     After connection_lost every method is a harmless no-op (writes are
 *     dropped, send_signal gives -ESRCH, get_returncode still answers).
 *     Methods may be called from inside any protocol callback, including
 *     close() and abort().
 *   - Handles returned by xp_call_* are borrowed: valid until their callback
 *     has returned or they were cancelled.  xp_handle_retain() keeps one
 *     longer; balance it with xp_handle_release().
 *   - Servers belong to the caller: xp_server_free() after xp_server_close().
 *   - TLS contexts are reference counted; transports retain theirs.
 */
#ifndef XPORT_H
#define XPORT_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netdb.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XP_VERSION_MAJOR 0
#define XP_VERSION_MINOR 1
#define XP_VERSION_PATCH 0
#define XP_VERSION_STRING "0.1.0"
const char *xp_version(void);

/* ---- errors -------------------------------------------------------- */

/* xport-specific codes, outside errno's range.  Everything else is -errno. */
#define XP_ECALLBACK (-10001)  /* a protocol/loop callback reported failure */
#define XP_ECLOSED (-10002)    /* the loop (or transport) is closed: RuntimeError */
#define XP_ESTATE (-10003)     /* invalid state, e.g. write after write_eof */
#define XP_ERESOLVE (-10004)   /* name resolution failed */
#define XP_ETLS (-10005)       /* TLS protocol failure */
#define XP_ETLSVERIFY (-10006) /* TLS peer verification failed */
#define XP_ETRUNCATED (-10007) /* TLS peer closed without close_notify */
#define XP_EPIN (-10008)       /* TLS certificate did not match the pin */
/* Proxies (xp_connect_opts.proxy): the proxy was reached and said no.
 * The proxy's answer is in the code; xp_strerror() spells it out. */
#define XP_EPROXY (-10009)			   /* its answer was malformed, or it hung up */
#define XP_EPROXYAUTH (-10010)			   /* SOCKS5: user/password refused (RFC 1929) */
#define XP_EPROXYMETHOD (-10011)		   /* SOCKS5: no acceptable authentication */
#define XP_EPROXY_HTTP(status) (-11000 - (status)) /* CONNECT got 100..999 */
#define XP_EPROXY_SOCKS5(rep) (-12000 - (rep))	   /* SOCKS5 reply 1..255 */
#define XP_EPROXY_SOCKS4(cd) (-12300 - (cd))	   /* SOCKS4 reply 0..255 */
/* 1 for the codes above, else 0. */
int xp_is_proxy_error(int err);
const char *xp_strerror(int err);

/* Format an address as "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@name".
 * Reads no byte past len: -EINVAL if len is too short for the family's
 * address; a sun_path is taken up to its NUL or len.  A Unix socket name is
 * chosen by the peer: it comes out escaped as by xp_escape_str, so the text
 * is safe to print.  -ENOSPC if buf is too small (truncated),
 * -EAFNOSUPPORT for other families. */
int xp_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* Copy len bytes of s to buf as printable UTF-8: every byte of a control
 * character (C0, DEL, C1) or of invalid UTF-8 becomes the text "\xNN".
 * Idempotent (its output comes back unchanged).  Always NUL-terminates
 * when size > 0; -ENOSPC when it had to stop early, which it does only
 * between two whole characters or escapes. */
int xp_escape_str(char *buf, size_t size, const void *s, size_t len);

/* An address with its length, as get_extra_info("peername") returns it. */
typedef struct xp_sockaddr {
	socklen_t len;
	union {
		struct sockaddr sa;
		struct sockaddr_storage ss;
	} u;
} xp_sockaddr;

/* ---- types --------------------------------------------------------- */

typedef struct xp_loop xp_loop;
typedef struct xp_handle xp_handle;
typedef struct xp_future xp_future;
typedef struct xp_transport xp_transport;
typedef struct xp_protocol xp_protocol;
typedef struct xp_server xp_server;
typedef struct xp_tls_ctx xp_tls_ctx;

/* A plain callback.  Return 0, or a negative code to report a failure: the
 * loop hands it to the exception handler ("Exception in callback") and goes
 * on with the next callback. */
typedef int (*xp_callback)(void *arg);

/* ---- the loop ------------------------------------------------------ */

xp_loop *xp_loop_new(void);
int xp_loop_run_forever(xp_loop *loop);
/* Run until fut is done; returns the future's error (0 if it has a result). */
int xp_loop_run_until_complete(xp_loop *loop, xp_future *fut);
void xp_loop_stop(xp_loop *loop);
/* -EBUSY while running.  Idempotent.  Pending callbacks are discarded. */
int xp_loop_close(xp_loop *loop);
/* Close (if needed) and free.  Transports still open are leaked to the
 * debug report; close them first. */
void xp_loop_free(xp_loop *loop);
int xp_loop_is_running(const xp_loop *loop);
int xp_loop_is_closed(const xp_loop *loop);
double xp_loop_time(const xp_loop *loop); /* monotonic seconds */

/* The loop running in this thread, or NULL (asyncio.get_running_loop). */
xp_loop *xp_get_running_loop(void);
/* The running loop, else this thread's default loop, created on first use. */
xp_loop *xp_get_event_loop(void);
void xp_set_event_loop(xp_loop *loop);

/* Debug mode: slow callbacks logged (over slow_callback_duration, default
 * 0.1 s), transports left unclosed reported at close, and calls from a
 * thread other than the loop's caught (-EPERM and a report).  Also enabled
 * by the environment variable XPORT_DEBUG=1. */
void xp_loop_set_debug(xp_loop *loop, int enabled);
int xp_loop_get_debug(const xp_loop *loop);
void xp_loop_set_slow_callback_duration(xp_loop *loop, double seconds);

/* ---- callbacks and timers ------------------------------------------ */

xp_handle *xp_call_soon(xp_loop *loop, xp_callback cb, void *arg);
xp_handle *xp_call_later(xp_loop *loop, double delay, xp_callback cb, void *arg);
xp_handle *xp_call_at(xp_loop *loop, double when, xp_callback cb, void *arg);
/* From any thread; wakes the loop.  The only loop call that is thread-safe. */
int xp_call_soon_threadsafe(xp_loop *loop, xp_callback cb, void *arg);
void xp_handle_cancel(xp_handle *h);
int xp_handle_cancelled(const xp_handle *h);
double xp_handle_when(const xp_handle *h); /* timers only; 0 otherwise */
xp_handle *xp_handle_retain(xp_handle *h);
void xp_handle_release(xp_handle *h);

/* ---- watching file descriptors ------------------------------------- */

/* One reader and one writer per fd; adding again replaces the callback.
 * Descriptors epoll refuses (regular files, /dev/null) are treated as
 * always ready.  remove_* return 1 if a callback was removed, else 0. */
int xp_add_reader(xp_loop *loop, int fd, xp_callback cb, void *arg);
int xp_remove_reader(xp_loop *loop, int fd);
int xp_add_writer(xp_loop *loop, int fd, xp_callback cb, void *arg);
int xp_remove_writer(xp_loop *loop, int fd);

/* ---- futures ------------------------------------------------------- */

typedef void (*xp_future_cb)(xp_future *fut, void *arg);

xp_future *xp_future_new(xp_loop *loop); /* loop.create_future() */
xp_future *xp_future_retain(xp_future *fut);
void xp_future_release(xp_future *fut);
xp_loop *xp_future_get_loop(const xp_future *fut);
/* XP_ESTATE if already done (InvalidStateError). */
int xp_future_set_result(xp_future *fut, void *ptr);
/* The future owns ptr and frees it with dtor, unless xp_future_take_result
 * hands it over first. */
int xp_future_set_result_owned(xp_future *fut, void *ptr, void (*dtor)(void *));
int xp_future_set_result_num(xp_future *fut, long long num);
int xp_future_set_error(xp_future *fut, int err);
int xp_future_cancel(xp_future *fut); /* 1 if it was cancelled now */
int xp_future_done(const xp_future *fut);
int xp_future_cancelled(const xp_future *fut);
/* 0 with a result, the error, -ECANCELED, or XP_ESTATE if not done. */
int xp_future_error(const xp_future *fut);
void *xp_future_result(const xp_future *fut);
long long xp_future_result_num(const xp_future *fut);
void *xp_future_take_result(xp_future *fut);
/* Scheduled with call_soon once the future is done (at once if it is). */
int xp_future_add_done_callback(xp_future *fut, xp_future_cb cb, void *arg);
int xp_future_remove_done_callback(xp_future *fut, xp_future_cb cb, void *arg);

/* ---- exception handler --------------------------------------------- */

typedef struct xp_context {
	const char *message;
	int error;
	xp_handle *handle;
	xp_future *future;
	xp_transport *transport;
	xp_protocol *protocol;
	xp_server *server;
} xp_context;

/* Return 0; a nonzero return is itself reported
 * ("Unhandled error in exception handler"). */
typedef int (*xp_exception_handler)(xp_loop *loop, const xp_context *ctx, void *arg);
void xp_loop_set_exception_handler(xp_loop *loop, xp_exception_handler h, void *arg);
xp_exception_handler xp_loop_get_exception_handler(const xp_loop *loop, void **arg);
void xp_loop_call_exception_handler(xp_loop *loop, const xp_context *ctx);
/* Writes "xport: MESSAGE: ERROR" to stderr. */
void xp_loop_default_exception_handler(xp_loop *loop, const xp_context *ctx);

/* ---- signals ------------------------------------------------------- */

/* Runs cb on the loop thread (signalfd; no user code in signal context).
 * -EINVAL for an invalid or uncatchable signal. remove returns 1 or 0. */
int xp_add_signal_handler(xp_loop *loop, int sig, xp_callback cb, void *arg);
int xp_remove_signal_handler(xp_loop *loop, int sig);

/* ---- executor and name resolution ---------------------------------- */

/* fn runs on a worker thread; its return value becomes the future's result
 * (or *err, if fn sets it negative, its error). */
typedef void *(*xp_work_fn)(void *arg, int *err);
xp_future *xp_run_in_executor(xp_loop *loop, xp_work_fn fn, void *arg);
/* Result: an owned struct addrinfo list (peek with xp_future_result, or
 * take it and freeaddrinfo() it).  Errors: XP_ERESOLVE or -errno. */
xp_future *xp_getaddrinfo(xp_loop *loop, const char *host, const char *port,
			  const struct addrinfo *hints);
typedef struct xp_nameinfo {
	char host[NI_MAXHOST];
	char serv[NI_MAXSERV];
} xp_nameinfo;
/* Result: an owned xp_nameinfo. */
xp_future *xp_getnameinfo(xp_loop *loop, const struct sockaddr *sa, socklen_t len, int flags);

/* ---- one-shot socket operations (sock must be non-blocking) -------- */
/* Each future's result_num is the byte count (or the accepted fd). Buffers
 * handed to the recv variants must stay valid until the future is done;
 * the send variants copy the data. */
xp_future *xp_sock_recv(xp_loop *loop, int sock, void *buf, size_t len);
xp_future *xp_sock_recv_into(xp_loop *loop, int sock, void *buf, size_t len);
xp_future *xp_sock_recvfrom(xp_loop *loop, int sock, void *buf, size_t len, xp_sockaddr *from);
xp_future *xp_sock_recvfrom_into(xp_loop *loop, int sock, void *buf, size_t len, xp_sockaddr *from);
xp_future *xp_sock_sendall(xp_loop *loop, int sock, const void *data, size_t len);
xp_future *xp_sock_sendto(xp_loop *loop, int sock, const void *data, size_t len,
			  const struct sockaddr *to, socklen_t tolen);
xp_future *xp_sock_connect(xp_loop *loop, int sock, const struct sockaddr *addr, socklen_t len);
/* result_num: the new (non-blocking, close-on-exec) fd; peer into *peer. */
xp_future *xp_sock_accept(xp_loop *loop, int sock, xp_sockaddr *peer);
/* count 0 = to end of file.  sendfile(2), or read+send when it cannot. */
xp_future *xp_sock_sendfile(xp_loop *loop, int sock, int file_fd, off_t offset, size_t count);

/* ---- protocols ----------------------------------------------------- */

/* Embed an xp_protocol in your own struct and point ops at a static table;
 * recover your struct with XP_CONTAINER_OF.  Any callback may be NULL (the
 * empty default).  A protocol with get_buffer set is a BufferedProtocol.
 *
 * Callbacks returning int report failure with a negative code: the transport
 * then reports "Fatal error: protocol.X() call failed." to the exception
 * handler and calls connection_lost with that code. */
typedef struct xp_protocol_ops {
	/* BaseProtocol */
	void (*connection_made)(xp_protocol *p, xp_transport *t);
	void (*connection_lost)(xp_protocol *p, int err); /* 0 = clean EOF/close */
	void (*pause_writing)(xp_protocol *p);
	void (*resume_writing)(xp_protocol *p);
	/* Protocol (streams) */
	int (*data_received)(xp_protocol *p, const void *data, size_t len);
	/* > 0 keeps the transport half open; 0 closes it; < 0 is a failure. */
	int (*eof_received)(xp_protocol *p);
	/* BufferedProtocol: sizehint is -1 ("any size").  Return 0 with a
	 * non-empty buffer in *buf and *len, which stays valid until
	 * buffer_updated. */
	int (*get_buffer)(xp_protocol *p, ssize_t sizehint, void **buf, size_t *len);
	int (*buffer_updated)(xp_protocol *p, size_t nbytes);
	/* DatagramProtocol */
	int (*datagram_received)(xp_protocol *p, const void *data, size_t len,
				 const struct sockaddr *addr, socklen_t addrlen);
	void (*error_received)(xp_protocol *p, int err);
	/* SubprocessProtocol */
	int (*pipe_data_received)(xp_protocol *p, int fd, const void *data, size_t len);
	void (*pipe_connection_lost)(xp_protocol *p, int fd, int err);
	void (*process_exited)(xp_protocol *p);
} xp_protocol_ops;

struct xp_protocol {
	const xp_protocol_ops *ops;
};

#define XP_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Allocates a protocol for a new connection (NULL refuses it). */
typedef xp_protocol *(*xp_protocol_factory)(void *arg);

/* ---- transports (all kinds share one handle type) ------------------ */

enum xp_transport_kind {
	XP_TRANSPORT_STREAM = 1, /* TCP or Unix stream socket */
	XP_TRANSPORT_DATAGRAM,
	XP_TRANSPORT_READ_PIPE,
	XP_TRANSPORT_WRITE_PIPE,
	XP_TRANSPORT_SUBPROCESS,
	XP_TRANSPORT_TLS,
};
int xp_transport_kind(const xp_transport *t);
xp_transport *xp_transport_retain(xp_transport *t);
void xp_transport_release(xp_transport *t);
xp_loop *xp_transport_get_loop(const xp_transport *t);

/* Methods that do not apply to a kind (asyncio's NotImplementedError or
 * AttributeError) do nothing, and all answer alike: an int result is
 * -ENOTSUP (predicates too: test them with > 0), a pointer NULL with errno
 * ENOTSUP, a size 0; void methods are no-ops.  No such answer is a value
 * that would do harm if passed on (a pid for kill(), a size). */

/* BaseTransport */
void xp_transport_close(xp_transport *t);
int xp_transport_is_closing(const xp_transport *t);
void xp_transport_set_protocol(xp_transport *t, xp_protocol *p);
xp_protocol *xp_transport_get_protocol(const xp_transport *t);
/* Keys and the type the result points to (valid until connection_lost):
 *   "peername", "sockname"  const xp_sockaddr *
 *   "socket", "pipe"        const int * (the descriptor)
 *   "subprocess"            const pid_t *
 *   "sslcontext"            SSL_CTX *          "ssl_object"   SSL *
 *   "peercert"              X509 *             "cipher"       const char *
 *   "compression"           const char *       "tls_version"  const char *
 *   "alpn_protocol"         const char *
 *   "peercert_sha256"       const unsigned char[32]
 * Unknown keys, and keys without a value, return dflt. */
const void *xp_transport_get_extra_info(xp_transport *t, const char *key, const void *dflt);

/* ReadTransport: stream, datagram, read pipe, TLS.  pause and resume are
 * idempotent; no-ops on a closing transport. */
int xp_transport_is_reading(const xp_transport *t);
void xp_transport_pause_reading(xp_transport *t);
void xp_transport_resume_reading(xp_transport *t);

/* WriteTransport: stream, write pipe, TLS (datagrams have sendto and a
 * write buffer, so the buffer size and limits apply to them too). */
/* Copies the bytes (the caller may reuse its memory at once); tries to send
 * before buffering.  Writes to a closing transport are dropped silently.
 * XP_ESTATE after write_eof. */
int xp_transport_write(xp_transport *t, const void *data, size_t len);
int xp_transport_writelines(xp_transport *t, const struct iovec *iov, int iovcnt);
int xp_transport_write_eof(xp_transport *t);
int xp_transport_can_write_eof(xp_transport *t);
void xp_transport_abort(xp_transport *t);
size_t xp_transport_get_write_buffer_size(const xp_transport *t);
void xp_transport_get_write_buffer_limits(const xp_transport *t, size_t *low, size_t *high);
/* high/low < 0 mean "not given" (asyncio's None). -EINVAL if the result
 * would have low > high; the old limits then stay. Pauses or resumes the
 * protocol at once if the current size calls for it. */
int xp_transport_set_write_buffer_limits(xp_transport *t, long long high, long long low);
/* Size of each read the transport makes (Protocol, not Buffered): stream,
 * read pipe, TLS. */
int xp_transport_set_read_size(xp_transport *t, size_t size);

/* DatagramTransport: addr NULL sends to the connected peer (-EDESTADDRREQ
 * if not connected; the endpoint stays open); an addr other than the
 * connected peer is -EINVAL. */
int xp_transport_sendto(xp_transport *t, const void *data, size_t len, const struct sockaddr *addr,
			socklen_t addrlen);

/* SubprocessTransport */
/* 0 and *pid set; -ENOTSUP (*pid untouched) on other kinds. */
int xp_transport_get_pid(const xp_transport *t, pid_t *pid);
/* fd 0: write transport to the child's stdin; 1, 2: read transports. NULL
 * if that stream is not a pipe (errno ENOTSUP on other kinds). Valid until
 * the subprocess transport's connection_lost. */
xp_transport *xp_transport_get_pipe_transport(xp_transport *t, int fd);
/* 0 and *code set once the child has exited (-N: killed by signal N);
 * -EAGAIN while it runs (asyncio's None). */
int xp_transport_get_returncode(const xp_transport *t, int *code);
/* -ESRCH (ProcessLookupError) once connection_lost was delivered. */
int xp_transport_send_signal(xp_transport *t, int sig);
int xp_transport_terminate(xp_transport *t);
int xp_transport_kill(xp_transport *t);

/* loop.sendfile(): send count bytes (0 = to EOF) of file_fd from offset
 * over a stream transport.  Uses sendfile(2) when the transport's write
 * buffer is empty and the transport is a plain socket, else reads and
 * writes.  result_num: bytes sent. */
xp_future *xp_loop_sendfile(xp_loop *loop, xp_transport *t, int file_fd, off_t offset,
			    size_t count);

/* ---- TLS ----------------------------------------------------------- */

/* A context for clients (server_side 0) or servers.  Clients verify the
 * peer's chain and host name against the system store by default; TLS 1.2
 * at least. */
xp_tls_ctx *xp_tls_ctx_new(int server_side);
xp_tls_ctx *xp_tls_ctx_retain(xp_tls_ctx *ctx);
void xp_tls_ctx_release(xp_tls_ctx *ctx);
int xp_tls_ctx_load_cert_chain(xp_tls_ctx *ctx, const char *cert_file, const char *key_file);
int xp_tls_ctx_load_verify_locations(xp_tls_ctx *ctx, const char *ca_file);
int xp_tls_ctx_set_verify(xp_tls_ctx *ctx, int verify);
/* Servers: client certificates.  REQUIRE (what verify on, by
 * xp_tls_ctx_set_verify, and a pin mean on a server): a client without a
 * valid certificate fails the handshake.  OPTIONAL: a client may send
 * none, but one it sends is verified (or must match the pin).  NONE: no
 * certificate is asked for (verify off).  -EINVAL on a client context or
 * for another mode. */
enum {
	XP_VERIFY_CLIENT_NONE = 0,
	XP_VERIFY_CLIENT_OPTIONAL = 1,
	XP_VERIFY_CLIENT_REQUIRE = 2,
};
int xp_tls_ctx_set_verify_client(xp_tls_ctx *ctx, int mode);
/* Accept exactly the peer certificate with this SHA-256 (replaces CA and
 * host-name checks). */
int xp_tls_ctx_set_pin(xp_tls_ctx *ctx, const unsigned char sha256[32]);
int xp_tls_ctx_set_alpn(xp_tls_ctx *ctx, const char *comma_list);
/* Generate an ephemeral self-signed certificate; its fingerprint in fp. */
int xp_tls_ctx_use_self_signed(xp_tls_ctx *ctx, const char *common_name, unsigned char fp[32]);
void *xp_tls_ctx_ssl_ctx(xp_tls_ctx *ctx); /* SSL_CTX * */

/* ---- creating transports ------------------------------------------- */
/* All return a future whose result is the xp_transport *.  The future holds
 * a reference to it, so the pointer stays valid (its methods harmless no-ops
 * once connection_lost has run) for as long as the caller holds the future;
 * xp_future_take_result() hands that reference over (balance it with
 * xp_transport_release()).  Zero-initialised option structs mean the
 * defaults. */

/* A proxy every connection of xp_create_connection goes through.  The
 * proxy connects to host:port itself: names are resolved by the proxy
 * (SOCKS5 as socks5h; SOCKS4a), and TLS (xp_connect_opts.tls) runs end to
 * end through the tunnel, verifying the target's name.  The connect
 * timeout covers the proxy's handshake too.  A refusal fails the future
 * with one of the XP_EPROXY* codes. */
enum xp_proxy_kind {
	XP_PROXY_NONE = 0,
	XP_PROXY_HTTP,	  /* HTTP CONNECT (RFC 9110), Basic auth (RFC 7617) */
	XP_PROXY_SOCKS5,  /* RFC 1928; user/password per RFC 1929 */
	XP_PROXY_SOCKS4A, /* SOCKS4 with the 4a name extension; user = USERID */
};
typedef struct xp_proxy {
	enum xp_proxy_kind kind;
	const char *host, *port;
	const char *user, *password; /* NULL: no authentication */
} xp_proxy;

typedef struct xp_connect_opts {
	int family; /* AF_UNSPEC */
	const struct sockaddr *local_addr;
	socklen_t local_addrlen;
	int use_sock; /* wrap sock (connected) instead of connecting */
	int sock;
	double timeout;		      /* whole connect, seconds; 0 = none */
	double happy_eyeballs_delay;  /* 0 = 0.25 s; < 0 = one address at a time */
	xp_tls_ctx *tls;	      /* NULL = plain */
	const char *server_hostname;  /* SNI and name verified; default host */
	double tls_handshake_timeout; /* 0 = 60 s */
	const xp_proxy *proxy;	      /* NULL = direct; copied by the call */
} xp_connect_opts;

xp_future *xp_create_connection(xp_loop *loop, xp_protocol_factory factory, void *arg,
				const char *host, const char *port, const xp_connect_opts *opts);
/* path "@name" is a Linux abstract socket. */
xp_future *xp_create_unix_connection(xp_loop *loop, xp_protocol_factory factory, void *arg,
				     const char *path, const xp_connect_opts *opts);
/* Wrap an accepted (or any connected) stream socket; takes the fd. */
xp_future *xp_connect_accepted_socket(xp_loop *loop, xp_protocol_factory factory, void *arg,
				      int sock, const xp_connect_opts *opts);
/* Upgrade a stream transport to TLS.  The result is a new transport bound
 * to protocol; the old transport must no longer be used. */
xp_future *xp_start_tls(xp_loop *loop, xp_transport *t, xp_protocol *protocol, xp_tls_ctx *tls,
			int server_side, const char *server_hostname, double handshake_timeout);

typedef struct xp_server_opts {
	int family;	      /* AF_UNSPEC: every address of host */
	int backlog;	      /* 0 = 100 */
	int no_reuse_address; /* SO_REUSEADDR is on unless this is set */
	int reuse_port;
	int defer_serving; /* asyncio start_serving=False */
	xp_tls_ctx *tls;
	double tls_handshake_timeout;
	int use_sock; /* serve an existing listening socket */
	int sock;
	/* Called with every accepted socket before anything else happens to
	 * it: no transport, no TLS handshake, not a byte read.  Return 0 to
	 * serve it; anything else refuses it and the server closes fd (set
	 * SO_LINGER 0 on it first for a reset instead of a FIN). */
	int (*accept_filter)(void *arg, xp_server *s, int fd, const xp_sockaddr *peer);
	void *accept_filter_arg;
} xp_server_opts;

/* host NULL or "" listens on every interface (IPv4 and IPv6, one port even
 * with port "0"). */
xp_future *xp_create_server(xp_loop *loop, xp_protocol_factory factory, void *arg, const char *host,
			    const char *port, const xp_server_opts *opts);
/* Removes a stale socket file first (never a non-socket file). */
xp_future *xp_create_unix_server(xp_loop *loop, xp_protocol_factory factory, void *arg,
				 const char *path, const xp_server_opts *opts);
int xp_server_close(xp_server *s);
void xp_server_free(xp_server *s);
xp_loop *xp_server_get_loop(const xp_server *s);
int xp_server_is_serving(const xp_server *s);
int xp_server_start_serving(xp_server *s);
xp_future *xp_server_serve_forever(xp_server *s);
/* Done once the server is closed and every connection has dropped. */
xp_future *xp_server_wait_closed(xp_server *s);
void xp_server_close_clients(xp_server *s);
void xp_server_abort_clients(xp_server *s);
/* Connections accepted and not yet lost, TLS handshakes in progress
 * included. */
size_t xp_server_connection_count(const xp_server *s);
/* Of those, the ones whose protocol has not got connection_made yet:
 * TLS handshakes in progress (and connections accepted this iteration). */
size_t xp_server_pending_count(const xp_server *s);
/* Number of listening sockets; *fds points to them. */
int xp_server_sockets(const xp_server *s, const int **fds);
int xp_server_sockname(const xp_server *s, int i, xp_sockaddr *out);

typedef struct xp_datagram_opts {
	const char *local_host, *local_port;   /* bind */
	const char *remote_host, *remote_port; /* connect */
	int family;
	int reuse_port;
	int allow_broadcast;
	int use_sock;
	int sock;
} xp_datagram_opts;
xp_future *xp_create_datagram_endpoint(xp_loop *loop, xp_protocol_factory factory, void *arg,
				       const xp_datagram_opts *opts);

/* Pipes: the transport takes fd (made non-blocking).  Regular files and
 * /dev/null work too. */
xp_future *xp_connect_read_pipe(xp_loop *loop, xp_protocol_factory factory, void *arg, int fd);
xp_future *xp_connect_write_pipe(xp_loop *loop, xp_protocol_factory factory, void *arg, int fd);

enum xp_stdio_mode {
	XP_STDIO_PIPE = 0, /* default */
	XP_STDIO_DEVNULL,
	XP_STDIO_INHERIT,
	XP_STDIO_FD,	 /* the given fd (not taken) */
	XP_STDIO_STDOUT, /* stderr only: into stdout */
};
typedef struct xp_stdio {
	enum xp_stdio_mode mode;
	int fd;
} xp_stdio;
typedef struct xp_subprocess_opts {
	xp_stdio in, out, err;
	const char *cwd;
	char *const *envp; /* NULL inherits */
	int new_session;
	/* Run the child on a new pseudo-terminal (for shells, ssh, passwd):
	 * it becomes a session leader with the terminal as its controlling
	 * terminal, and stdin, stdout and stderr are all the terminal (in,
	 * out and err are ignored).  The master side is two pipe transports:
	 * fd 0 writes the child's input (its write_eof and close send the
	 * terminal's EOF character, VEOF, as a user's ^D would), fd 1 reads
	 * what the child writes to any of its three (its EOF: no descriptor
	 * of the terminal left open, i.e. the child and what it started have
	 * exited); fd 2 has none.  Closing both hangs the terminal up: the
	 * child gets SIGHUP.  The window size is pty_rows x pty_cols (0 means
	 * 24 x 80). */
	int pty;
	unsigned short pty_rows, pty_cols;
} xp_subprocess_opts;
/* The future fails with -ENOENT / -EACCES if the program cannot run. */
xp_future *xp_subprocess_exec(xp_loop *loop, xp_protocol_factory factory, void *arg,
			      const char *file, char *const argv[], const xp_subprocess_opts *opts);
xp_future *xp_subprocess_shell(xp_loop *loop, xp_protocol_factory factory, void *arg,
			       const char *cmd, const xp_subprocess_opts *opts);

/* ---- built-in protocols (src/proto/) ------------------------------- */
/*
 * The protocols behind the xport tool, usable from any program.  Every
 * protocol returned here is allocated by its constructor and frees itself
 * after its connection_lost: attach it to exactly one transport.
 */

/* Per-connection accounting, for --stats and SIGUSR1.  "sent" counts bytes
 * written to the peer, "received" bytes read from it. */
typedef struct xp_conn_stats {
	char peer[128]; /* xp_sockaddr_format of the peer, or a label */
	uint64_t sent, received;
	double started;	 /* xp_loop_time at connection_made */
	double seconds;	 /* duration, set at the end */
	const char *end; /* "eof", "reset", "timeout", "error", "closed";
			    "open" while running */
	int error;	 /* the error that ended it, if any */
} xp_conn_stats;

/* Hooks a caller (the CLI) attaches to built-in protocols. All optional. */
typedef struct xp_proto_hooks {
	/* Each chunk moved: dir '<' received from the peer, '>' sent to it. */
	void (*on_data)(void *arg, const xp_conn_stats *st, char dir, const void *data, size_t len);
	/* The connection started; st stays valid until on_end returns. */
	void (*on_start)(void *arg, const xp_conn_stats *st);
	/* The connection ended (once); st is final. */
	void (*on_end)(void *arg, const xp_conn_stats *st);
	void *arg;
} xp_proto_hooks;

/* Options common to the built-ins.  Zero means the default. */
typedef struct xp_proto_opts {
	size_t high, low; /* write watermarks; both 0 = 64K/16K; set
			     has_limits to use 0/0 */
	int has_limits;
	size_t read_size;    /* 0 = 64K */
	double idle_timeout; /* seconds without traffic either way; 0 = none */
	xp_proto_hooks hooks;
} xp_proto_opts;

/* RFC 862 echo (half-close honoured: echo everything, then write_eof),
 * RFC 863 discard (close after the peer's EOF), RFC 864 chargen (72-char
 * rotating lines, CRLF, flow-controlled; input discarded). */
xp_protocol *xp_echo_new(const xp_proto_opts *opts);
xp_protocol *xp_discard_new(const xp_proto_opts *opts);
xp_protocol *xp_chargen_new(const xp_proto_opts *opts);

/*
 * broker (ncat's broker mode): every byte a client sends goes to every
 * other client of the broker, never back to the sender.  One broker per
 * loop; xp_broker_protocol() makes the protocol of each client (opts: its
 * watermarks, read size, idle timeout, hooks).  Flow control pauses the
 * senders: while a client's write buffer is over its high watermark,
 * reading stops from all the others, until it drained to its low
 * watermark, so no queue grows without bound.  With an idle timeout, a
 * client from which nothing was read and to which nothing drained for
 * that long is dropped (clients held paused for another are not idle).
 * A client's EOF ends that client after what is queued for it.  The
 * broker is freed once released and its last client is gone.
 */
typedef struct xp_broker xp_broker;
xp_broker *xp_broker_new(xp_loop *loop);
xp_protocol *xp_broker_protocol(xp_broker *b, const xp_proto_opts *opts);
size_t xp_broker_client_count(const xp_broker *b);
void xp_broker_release(xp_broker *b);

/*
 * The relay: two byte streams joined, both ways.  Each of its two ends is
 * one of
 *   - a stream transport (TCP, Unix, TLS): xp_relay_stream_protocol(),
 *   - a pair of pipe transports (stdin/stdout): xp_relay_pipe_protocol()
 *     for the reader and for the writer,
 *   - a subprocess: xp_relay_subprocess_protocol() (stdin <- the other end,
 *     stdout (and a merged stderr) -> the other end).
 * Bytes read from one end are written to the other.  When a writer's
 * buffer passes its high watermark, reading from the opposite end pauses
 * until it drains to the low watermark, so memory stays flat.  EOF from
 * one end is passed on with write_eof (half_close), or ends the relay
 * (both flushed and closed).  An end that is not connected yet holds the
 * other end's reading paused.
 */
typedef struct xp_relay xp_relay;

typedef struct xp_relay_opts {
	xp_proto_opts proto; /* watermarks, read size, idle timeout, hooks
				(stats and on_data are per end 0: "the peer"
				is end 0 unless stats_end says otherwise) */
	int stats_end;	     /* which end is "the peer" for stats (0/1) */
	int no_half_close;   /* EOF on one end: flush and close both */
	double eof_timeout;  /* after one direction ended; 0 = wait */
	/* Called once when both ends are gone; the relay frees itself
	 * after it returns.  st->end gives how it ended. */
	void (*on_done)(xp_relay *r, const xp_conn_stats *st, void *arg);
	void *arg;
	/* Subprocess ends: signal sent to the child when the other end is
	 * lost without EOF (reset, error, timeout), and SIGKILL after
	 * kill_after seconds (0 = never). 0 = SIGTERM. */
	int child_signal;
	double kill_after;
	/* One way only (XP_RELAY_0_TO_1 / XP_RELAY_1_TO_0; 0 = both ways):
	 * only bytes read from that end are relayed, and the relay ends
	 * gracefully once that direction has ended (its EOF passed on and
	 * flushed).  What the other end sends is read and dropped, so a peer
	 * or a child never stalls writing to us and its reset is still
	 * noticed; a pipe end (stdin) is never read instead, leaving its
	 * bytes to whoever reads it next.  EOF from the other end is not
	 * passed on.  A subprocess end is treated as a command run with
	 * `> /dev/null` (its output drained to its EOF before the relay
	 * ends) or `< /dev/null` (its stdin closed at once). */
	int one_way;
	/* Bit i set (1 << i): EOF read from end i ends the relay gracefully,
	 * as no_half_close does for every EOF: what was read is still written
	 * out both ways, then both ends close.  For an end whose partner never
	 * sends EOF by itself (a terminal), or that must be freed at once (a
	 * server's shared stdin). */
	unsigned eof_ends;
	/* Between two plain stream transports, with no on_data hook, bytes
	 * move kernel-side with splice(2) (never through user space); 1 keeps
	 * them on the read/write path (to measure it, or to debug). */
	int no_splice;
} xp_relay_opts;

enum { XP_RELAY_BOTH_WAYS = 0, XP_RELAY_0_TO_1 = 1, XP_RELAY_1_TO_0 = 2 };

xp_relay *xp_relay_new(xp_loop *loop, const xp_relay_opts *opts);
xp_protocol *xp_relay_stream_protocol(xp_relay *r, int end);
/* writer 0: the reading pipe of the end; writer 1: its writing pipe. */
xp_protocol *xp_relay_pipe_protocol(xp_relay *r, int end, int writer);
xp_protocol *xp_relay_subprocess_protocol(xp_relay *r, int end);
/* Mark an end as failed before it ever connected (e.g. connect refused):
 * the relay winds down, closing the other end. */
void xp_relay_fail_end(xp_relay *r, int end, int err);
/* Graceful: flush both ends and close (SIGTERM handling); abort: reset. */
void xp_relay_close(xp_relay *r);
void xp_relay_abort(xp_relay *r);
const xp_conn_stats *xp_relay_stats(const xp_relay *r);
/* A subprocess end's stderr pipe (stderr mode XP_STDIO_PIPE) is written to
 * fd (e.g. 2) instead of being relayed to the other end.  Call before the
 * subprocess starts. */
void xp_relay_set_stderr_fd(xp_relay *r, int end, int fd);

/* exec: every connection gets its own `/bin/sh -c command`, relayed to the
 * connection; the child sees XPORT_PEER_ADDR, XPORT_PEER_PORT,
 * XPORT_LOCAL_ADDR, XPORT_LOCAL_PORT.  A peer EOF closes the child's stdin
 * and its remaining output is still delivered. */
typedef struct xp_exec_opts {
	const char *command;
	xp_relay_opts relay;
	enum {
		XP_EXEC_STDERR_MERGE = 0, /* into the same stream as stdout */
		XP_EXEC_STDERR_SEPARATE,  /* relayed to our own stderr */
		XP_EXEC_STDERR_INHERIT,	  /* the child writes our stderr fd */
	} stderr_mode;
	/* Run the child on a pseudo-terminal (xp_subprocess_opts.pty);
	 * stderr_mode does not apply: stderr is that terminal. */
	int pty;
} xp_exec_opts;
xp_protocol *xp_exec_new(xp_loop *loop, const xp_exec_opts *opts);

/* forward: every connection is relayed to a new connection to host:port. */
typedef struct xp_forward_opts {
	const char *host, *port; /* or unix_path */
	const char *unix_path;
	xp_connect_opts connect;
	xp_relay_opts relay;
} xp_forward_opts;
xp_protocol *xp_forward_new(xp_loop *loop, const xp_forward_opts *opts);

/*
 * socks5 and http-proxy: every connection is a client asking for a tunnel,
 * with a SOCKS5 CONNECT (RFC 1928: IPv4, IPv6 and domain targets; other
 * commands get reply 7) or an HTTP CONNECT (RFC 9110; other methods get
 * 405).  The target's name is resolved without blocking the loop; once it
 * is connected the client gets its success answer and the two streams are
 * relayed (xp_relay: half-close, flow control).  A refused request gets
 * its answer (SOCKS reply code, HTTP status) and the connection is closed.
 */
typedef struct xp_proxy_server_opts {
	/* Both set: clients must authenticate, with RFC 1929 user/password
	 * (SOCKS5) or Basic (HTTP, else 407); NULL: no authentication. */
	const char *user, *password;
	/* Asked for every address a target resolves to: nonzero allows it.
	 * A target with no allowed address is refused (SOCKS5 reply 2, HTTP
	 * 403).  NULL allows every target. */
	int (*allow_target)(void *arg, const struct sockaddr *sa, socklen_t len);
	void *allow_arg;
	/* For the connections to targets: family, local_addr, timeout (no
	 * tls, no proxy). */
	xp_connect_opts connect;
	/* The data phase.  relay.on_done also reports a connection that
	 * ended before its tunnel was up, with r NULL and st->end "eof" (the
	 * client left), "timeout" (idle_timeout), "error" (refused: st->error
	 * is the XP_EPROXY* code of the answer sent) or "reset". */
	xp_relay_opts relay;
} xp_proxy_server_opts;
xp_protocol *xp_socks5_new(xp_loop *loop, const xp_proxy_server_opts *opts);
xp_protocol *xp_http_proxy_new(xp_loop *loop, const xp_proxy_server_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
