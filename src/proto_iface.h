/* SPDX-License-Identifier: MIT */
/*
 * proto_iface.h - the narrow interface between the built-in protocols
 * (src/proto/) and the library's internals: everything else they use is
 * the public API of xport.h.  A byte queue for their own buffering
 * (wbuf.h), kernel-side forwarding between two stream transports, the
 * non-blocking resolver and ordered connects (proxy servers), retained
 * one-shot timers, HTTP reason phrases and head lengths, and an intrusive
 * list (list.h).  Protocols include this, never internal.h.
 */
#ifndef XP_PROTO_IFACE_H
#define XP_PROTO_IFACE_H

#include "list.h"
#include "wbuf.h"
#include "xport.h"

#include <netdb.h>

/* Forward what src reads into dst's socket with splice(2): the bytes never
 * reach user space and src's protocol gets cb(arg, n) per chunk instead of
 * data_received (EOF and errors still arrive as usual).  Bytes waiting in
 * the pipe count in dst's write buffer, so dst's pause_writing and
 * resume_writing work as for write().  Do not write() to dst meanwhile.
 * -ENOTSUP unless both are plain stream transports. */
int xp__stream_splice(xp_transport *src, xp_transport *dst, void (*cb)(void *arg, size_t n),
		      void *arg);

/* Resolve host:port.  Numeric hosts are answered here and now: 0 with *ai
 * set (freeaddrinfo it).  Names go to the executor: 0 with *fut set (its
 * result an owned addrinfo list).  Otherwise a negative error (XP_ERESOLVE
 * when the name cannot be resolved). */
int xp__resolve(xp_loop *loop, const char *host, const char *port, const struct addrinfo *hints,
		struct addrinfo **ai, xp_future **fut);

/* Order getaddrinfo results for Happy Eyeballs (RFC 8305 section 4):
 * families alternate, starting with the family listed first.  Writes up to
 * max addresses to out; returns how many. */
size_t xp__connect_interleave(const struct addrinfo *ai, xp_sockaddr *out, size_t max);

/* xp_create_connection over an already ordered address list (no resolving,
 * no reordering); host is only used as the TLS server name. */
xp_future *xp__connect_addrs(xp_loop *loop, xp_protocol_factory factory, void *arg,
			     const xp_sockaddr *addrs, size_t n, const char *host,
			     const xp_connect_opts *opts);

/* A retained one-shot timer (loop.c), for the protocols and the transports
 * alike.  xp__timer_cancel cancels and releases it and clears *h; it does
 * nothing when *h is NULL, so it also serves a timer that already fired
 * and was cleared by its callback. */
xp_handle *xp__timer_start(xp_loop *loop, double delay, xp_callback cb, void *arg);
void xp__timer_cancel(xp_handle **h);

/* *dst = a copy of src, left alone when src is NULL (an option not
 * given).  0 or -ENOMEM. */
int xp__dup_str(char **dst, const char *src);

/* Standard reason phrase of an HTTP status, or NULL. */
const char *xp__http_reason(int status);
/* How many more bytes of an HTTP head (b, n bytes so far) may be read
 * without going past its CRLF CRLF: a proxy reads exactly the head and
 * leaves what follows in the socket for the relay. */
size_t xp__http_head_more(const unsigned char *b, size_t n);

#endif
