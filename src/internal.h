/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the pieces of libxport share and nobody else sees.
 *
 * Layers, top to bottom: transports (stream.c, dgram.c, pipe.c,
 * subprocess.c, tls.c) -> transport.c (the state machine and flow control
 * every kind shares) -> loop.c (callbacks, timers, io watchers) -> one
 * backend (backend_epoll.c or backend_poll.c).  Nothing calls upward except
 * through protocol callbacks and xp_io callbacks.
 */
#ifndef XP_INTERNAL_H
#define XP_INTERNAL_H

#include "xport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation, with failure injection for tests ------------------ */

/* Tests only: when > 0, the library's xp__alloc_fail_after-th malloc,
 * calloc or realloc from now fails (ENOMEM), once; 0 = never.  The rare
 * ENOMEM paths are tested by sweeping it, not by hand. */
extern int xp__alloc_fail_after;
void *xp__malloc(size_t n);
void *xp__calloc(size_t n, size_t size);
void *xp__realloc(void *p, size_t n);
#define malloc(n) xp__malloc(n)
#define calloc(n, size) xp__calloc(n, size)
#define realloc(p, n) xp__realloc(p, n)

#include "list.h"

/* ---- io watchers ---------------------------------------------------- */

#define XP_IO_READ 1u
#define XP_IO_WRITE 2u
/* Only ever reported, never asked for: the callback sees them with READ
 * and/or WRITE so that a plain read()/write() surfaces the error. */
#define XP_IO_ERR 4u
#define XP_IO_HUP 8u
/* Interest in errors and hang-up alone: the descriptor stays registered
 * while neither read nor written, so that a paused transport ("not
 * reading") still hears a reset, a vanished reader or a dead terminal.
 * The callback then sees XP_IO_ERR and/or XP_IO_HUP without READ/WRITE.
 * A hang-up without an error is reported again and again (level-
 * triggered) until the owner reads the descriptor or drops the interest. */
#define XP_IO_WATCH 16u
#define XP_IO_RW (XP_IO_READ | XP_IO_WRITE)

struct xp_io;
typedef void (*xp_io_cb)(xp_loop *loop, struct xp_io *w, unsigned revents);

/* One per descriptor.  Embedded in its owner (a transport, a server...). */
struct xp_io {
	int fd;
	unsigned events;     /* what the owner wants */
	unsigned registered; /* what the backend has */
	bool always_ready;   /* the backend refused the fd (regular file) */
	int backend_index;   /* backend bookkeeping (poll: slot in its array) */
	xp_io_cb cb;
	struct xp_list ready_node; /* on loop->always_ready while wanted */
};

void xp__io_init(struct xp_io *w, int fd, xp_io_cb cb);
/* Add / remove interest.  Cheap when nothing changes. */
int xp__io_start(xp_loop *loop, struct xp_io *w, unsigned events);
int xp__io_stop(xp_loop *loop, struct xp_io *w, unsigned events);
/* Forget the watcher entirely; call before close(fd) or freeing w.  Events
 * already collected for it in this iteration are dropped. */
void xp__io_close(xp_loop *loop, struct xp_io *w);

/* ---- backend interface (one compiled in) ---------------------------- */

/* Each backend's own state; the loop holds it and hands it back. */
struct xp_backend;

int xp__backend_init(struct xp_backend **b);
void xp__backend_destroy(struct xp_backend *b);
/* Make the backend watch w->fd for `events` (0 = not at all; XP_IO_WATCH
 * alone = registered for errors and hang-up only).  -EPERM
 * means the fd cannot be polled (regular file): the loop then treats it as
 * always ready. */
int xp__backend_update(struct xp_backend *b, struct xp_io *w, unsigned events);
/* Drop w and any of its events collected but not yet dispatched. */
void xp__backend_forget(struct xp_backend *b, struct xp_io *w);
/* Wait up to timeout_ms (-1 = forever) and call w->cb(loop, ...) for ready
 * watchers (loop is only passed through to them). */
int xp__backend_wait(struct xp_backend *b, xp_loop *loop, int timeout_ms);
const char *xp__backend_name(void);

/* ---- loop internals shared with transports -------------------------- */

/* Report to the exception handler. */
void xp__loop_report(xp_loop *loop, const char *message, int err, xp_transport *t, xp_protocol *p);
/* A scratch buffer for reads (shared by all transports of the loop; its
 * contents are only valid until the next read).  *len >= 256 KiB. */
void *xp__loop_read_buffer(xp_loop *loop, size_t *len);
/* A second such buffer, for TLS plaintext: TLS decrypts from the read
 * buffer in place, so it cannot decrypt into it. */
void *xp__loop_plain_buffer(xp_loop *loop, size_t *len);
/* call_soon whose arg is freed with dtor if the callback never runs
 * (cancelled, or the loop closed first). */
xp_handle *xp__call_soon_owned(xp_loop *loop, xp_callback cb, void *arg, void (*dtor)(void *));
/* Debug bookkeeping of live transports (reported unclosed at close). */
struct xp_tracked {
	struct xp_list node;
	const char *what; /* printed in the report: "stream", "pipe"... */
};
void xp__loop_track(xp_loop *loop, struct xp_tracked *tr);
/* Debug mode: is the caller on the loop's thread?  Reports if not. */
bool xp__loop_thread_ok(xp_loop *loop, const char *what);
/* How an asynchronous call starts: a new pending future, or NULL with
 * errno EINVAL when there is no loop to complete one on or args_ok is
 * false (an argument the call cannot report through a future), or NULL
 * and errno when out of memory. */
xp_future *xp__future_begin(xp_loop *loop, bool args_ok);
/* A new future already failed with err: how an asynchronous call reports
 * an error it found at once.  NULL and errno as xp__future_begin: without
 * a loop the call is EINVAL whatever else is wrong with it. */
xp_future *xp__future_failed(xp_loop *loop, int err);
/* Complete a future on the loop thread from a worker thread. */
int xp__executor_submit(xp_loop *loop, void (*work)(void *arg), void (*done)(void *arg), void *arg);

/* sock.c: socket and descriptor helpers */
/* A socket, non-blocking and close-on-exec; the fd or -errno. */
int xp__socket(int family, int type, int proto);
/* A sockaddr_un for path ("@name" = abstract).  0, -EINVAL, -ENAMETOOLONG. */
int xp__unix_addr(const char *path, xp_sockaddr *out);
int xp__set_nonblock(int fd, bool on);
int xp__set_cloexec(int fd);
int xp__sockaddr_from_fd(int fd, bool peer, xp_sockaddr *out);

#include "wbuf.h"
#include "proto_iface.h"

/* ---- transports (transport.c) --------------------------------------- */

/* Per-kind operations.  NULL entries make the public call return -ENOTSUP
 * (or do nothing, for void calls). */
struct xp_transport_vt {
	enum xp_transport_kind kind;
	const char *name;
	/* Called after the protocol's connection_made returned: start
	 * reading, etc. */
	void (*made)(xp_transport *t);
	/* Graceful close (already marked closing by transport.c). */
	void (*close)(xp_transport *t);
	/* Drop buffers, stop everything, schedule connection_lost(err). */
	void (*force_close)(xp_transport *t, int err);
	/* iov is the caller's; copy what is not sent now. len > 0. */
	int (*write)(xp_transport *t, const struct iovec *iov, int iovcnt, size_t len);
	int (*write_eof)(xp_transport *t);
	int (*can_write_eof)(xp_transport *t);
	/* Apply t->reading: start or stop reading the descriptor. */
	void (*update_reading)(xp_transport *t);
	size_t (*get_write_buffer_size)(const xp_transport *t);
	const void *(*get_extra_info)(xp_transport *t, const char *key, const void *dflt);
	int (*sendto)(xp_transport *t, const void *data, size_t len, const struct sockaddr *addr,
		      socklen_t addrlen);
	pid_t (*get_pid)(const xp_transport *t);
	xp_transport *(*get_pipe_transport)(xp_transport *t, int fd);
	int (*get_returncode)(const xp_transport *t, int *code);
	int (*send_signal)(xp_transport *t, int sig);
	/* Release the descriptor and what the kind holds, after
	 * connection_lost.  Must not free t itself: its memory stays while
	 * the application holds a reference (xp_transport_retain), so keep
	 * what methods still read after connection_lost (e.g. a subprocess's
	 * returncode) in the struct. */
	void (*destroy)(xp_transport *t);
};

struct xp_transport {
	const struct xp_transport_vt *vt;
	xp_loop *loop;
	xp_protocol *protocol;
	/* Whoever keeps count of this transport (a server, for its connection
	 * list and wait_closed) links it here and sets gone: called once,
	 * right after connection_lost.  transport.c knows nothing more. */
	void *owner;
	struct xp_list owner_node;
	void (*gone)(xp_transport *t);
	struct xp_tracked tracked; /* on loop's live list (debug report) */
	size_t high, low;	   /* write watermarks */
	size_t read_size;	   /* bytes per read for plain Protocols */
	bool closing;		   /* close/abort/fatal happened */
	bool reading;		   /* wanted by the protocol (is_reading) */
	bool eof;		   /* eof_received delivered: never read again */
	bool made;		   /* connection_made delivered */
	bool lost_scheduled;	   /* connection_lost queued: exactly once */
	bool lost;		   /* connection_lost delivered */
	bool proto_paused;	   /* pause_writing delivered, resume owed */
	xp_future *waiter;	   /* completed with t after connection_made */
	int lost_err;
	int refs; /* the loop's until connection_lost, + retains */
};

/* Allocate size bytes (>= sizeof(xp_transport)) zeroed and initialised;
 * size lets a kind put its struct around the base (base first). */
xp_transport *xp__transport_new(size_t size, const struct xp_transport_vt *vt, xp_loop *loop,
				xp_protocol *protocol);
/* Queue connection_made (a later iteration), then vt->made, then complete
 * waiter (may be NULL) with t. */
int xp__transport_start(xp_transport *t, xp_future *waiter);
/* The same for a transport made without a protocol: once the start is
 * queued (nothing can fail after it), make the protocol with factory, so
 * that a protocol a factory made always gets connection_made and
 * connection_lost, even when memory runs out.  A NULL from the factory
 * aborts t and fails waiter with XP_ECALLBACK.  A failed start aborts t
 * (its descriptor closed) and returns the error, the factory not called. */
int xp__transport_start_with(xp_transport *t, xp_future *waiter, xp_protocol_factory factory,
			     void *arg);
/* Queue connection_lost(err) exactly once; the transport is destroyed and
 * freed after it.  Safe to call repeatedly. */
void xp__transport_lost(xp_transport *t, int err);
/* A failure: report msg (if not NULL) to the exception handler, then
 * vt->force_close(t, err). */
void xp__transport_fatal(xp_transport *t, int err, const char *msg);

/* Protocol calls with the state machine enforced.  They return 0, or the
 * negative code after which the transport was failed (stop using the
 * data). */
int xp__proto_data(xp_transport *t, const void *data, size_t len);
/* Returns >0 keep open, 0 close, <0 failed. Marks t->eof, t->reading=0. */
int xp__proto_eof(xp_transport *t);
/* BufferedProtocol: read from fd straight into the protocol's memory.
 * Returns bytes read (>0), 0 on EOF, or -errno (-EAGAIN included). */
ssize_t xp__proto_read_into(xp_transport *t, int fd);
static inline bool xp__proto_is_buffered(const xp_transport *t)
{
	return t->protocol && t->protocol->ops && t->protocol->ops->get_buffer;
}

/* Flow control: call after the buffer grew / shrank. */
void xp__fc_check_pause(xp_transport *t);
void xp__fc_check_resume(xp_transport *t);

/* tls.c: wrap an existing stream transport. */
/* app is the protocol for start_tls; connect.c and server.c pass NULL and
 * a factory instead, called only once the handshake succeeded.  A fresh raw
 * transport (no protocol, not started) becomes the TLS layer's: it is
 * aborted on early errors.  A running one (start_tls) is left as it is on
 * failure.  *tls_out (if not NULL) gets the TLS transport once it exists,
 * for a caller that keeps count of its connections (a server). */
xp_future *xp__tls_wrap(xp_loop *loop, xp_transport *raw, xp_protocol *app,
			xp_protocol_factory factory, void *factory_arg, xp_tls_ctx *tls,
			int server_side, const char *server_hostname, double handshake_timeout,
			xp_transport **tls_out);

/* ---- stream.c (and wbuf.c) ---- */

/* Append all of src to dst without copying; src is left empty. */
void xp__wbuf_move(struct xp_wbuf *dst, struct xp_wbuf *src);
/* A stream transport (TCP or Unix socket) around a connected socket.  Takes
 * fd on success (closed by the transport); on failure returns NULL with
 * errno set and leaves fd to the caller.  Sets O_NONBLOCK, and TCP_NODELAY
 * for TCP.  Not started: the caller does xp__transport_start(t, waiter). */
xp_transport *xp__stream_new(xp_loop *loop, int fd, xp_protocol *p);
/* The same for a socket from accept4(SOCK_NONBLOCK) with its peer address:
 * no fcntl, no getpeername. */
xp_transport *xp__stream_new_accepted(xp_loop *loop, int fd, xp_protocol *p,
				      const xp_sockaddr *peer);

/* Loop.sendfile on a stream transport: 0 with *out set, -ENOTSUP for
 * another kind, or an error (XP_ESTATE after write_eof, -EBUSY while
 * another sendfile runs, -ENOMEM). */
int xp__stream_sendfile(xp_transport *t, int file_fd, off_t offset, size_t count, xp_future **out);

/* ---- sendfile.c ---- */

/* Bytes per read when a file is copied instead of sendfile(2)'d. */
#define XP_SENDFILE_COPY_CHUNK 65536u
/* Does this sendfile(2) failure (errno) mean "copy the file instead"? */
bool xp__sendfile_falls_back(int err, size_t sent);
/* Read up to want bytes of the file being sent: pread at *offset, read()
 * once it proved unseekable (*unseekable set), EINTR retried; *offset
 * advances.  Bytes read, 0 at its end, or -errno. */
ssize_t xp__sendfile_read(int fd, void *buf, size_t want, off_t *offset, bool *unseekable);

/* ---- connect.c ---- */

/* Complete user as inner completes; cancelling user cancels inner.  Takes
 * the caller's reference to inner. */
void xp__chain_futures(xp_future *user, xp_future *inner);

/* ---- proxy.c ---- */

/* xp_create_connection with opts->proxy set. */
xp_future *xp__proxy_connect(xp_loop *loop, xp_protocol_factory factory, void *arg,
			     const char *host, const char *port, const xp_connect_opts *opts);
/* Text of an XP_EPROXY* code (xp_is_proxy_error). */
const char *xp__proxy_strerror(int err);

/* ---- pipe.c ---- */

/* A read or write pipe transport around fd (pipe, FIFO, socket, tty,
 * regular file, /dev/null).  Takes fd (made non-blocking; closed by the
 * transport).  NULL with errno set on failure, fd left to the caller.  Not
 * started: the caller does xp__transport_start(t, waiter). */
xp_transport *xp__pipe_new(xp_loop *loop, int fd, bool writer, xp_protocol *p);
/* fd is a pseudo-terminal master: a reader takes EIO (no slave left) as
 * EOF; a writer's write_eof and close send the terminal's VEOF. */
void xp__pipe_set_pty(xp_transport *t);

/* ---- subprocess.c ---- */

/* Tests only: watch children with the 50 ms waitpid timer instead of a
 * pidfd, as on kernels without pidfd_open. */
extern bool xp__subprocess_no_pidfd;

#endif
