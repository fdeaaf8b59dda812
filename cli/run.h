/* SPDX-License-Identifier: MIT */
/*
 * run.h - what the five commands share: logging, addresses, readiness,
 * stats, hexdump, progress, and the run context (loop, signals, the list
 * of open connections, the exit status).
 */
#ifndef XPORT_CLI_RUN_H
#define XPORT_CLI_RUN_H

#include <stdarg.h>
#include <stdint.h>

#include "opts.h"
#include "xport.h"

/* Exit statuses of xport(1), EXIT STATUS. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 64
#define CLI_EXIT_NOINPUT 66
#define CLI_EXIT_UNAVAILABLE 69
#define CLI_EXIT_OSERR 71
#define CLI_EXIT_TEMPFAIL 75
#define CLI_EXIT_NOEXEC 126
#define CLI_EXIT_NOTFOUND 127

/* ---- log.c ---- */
void cli_log_init(const struct cli_config *c);
/* level 0: notices (silenced by -q); 1: -v; 2: -vv. */
int cli_log_on(int level);
void cli_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Failures: always printed, one `xport: ...` line. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Text of an error code (negative errno or XP_E*). */
const char *cli_strerror(int err);

/* ---- addr.c ---- */
/* "HOST:PORT", "[V6]:PORT", "unix:PATH", "unix:@NAME"; an empty host is
 * shown as "*" for servers and "localhost" for clients. */
void cli_addr_str(const struct cli_addr *a, int server, char *buf, size_t size);
xp_future *cli_listen(xp_loop *loop, xp_protocol_factory f, void *arg, const struct cli_addr *a,
		      const xp_server_opts *o);
/* The host a client connects to: ADDR's, or localhost (of family). */
const char *cli_client_host(const struct cli_addr *a, int family);
/* Zeroes o, then sets what the command line says about every outgoing
 * connection to a: --connect-timeout, -4/-6, --source and --proxy (px
 * holds it; -4/-6 and --source then apply to the connection to the
 * proxy). */
void cli_connect_opts(const struct cli_config *c, const struct cli_addr *a, xp_connect_opts *o,
		      xp_proxy *px);
/* a as cli_addr_str shows it, and " from SOURCE" with --source. */
void cli_conn_name(const struct cli_config *c, const struct cli_addr *a, char *buf, size_t size);
xp_future *cli_connect(xp_loop *loop, xp_protocol_factory f, void *arg, const struct cli_addr *a,
		       const xp_connect_opts *o);
int cli_connect_status(int err); /* 69, 75 or 1 */
int cli_listen_status(int err);	 /* 71 or 1 */
/* --allow/--deny: 1 if the peer may connect. */
int cli_peer_allowed(const struct cli_config *c, const struct sockaddr *sa, socklen_t len);
/* Formats a peer, showing v4-mapped IPv6 addresses as IPv4. */
void cli_sockaddr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);
/* Reset instead of FIN when the transport is aborted. */
void cli_set_linger0(xp_transport *t);
/* --proxy for xp_connect_opts.proxy (px filled, pointing into c), or NULL. */
const xp_proxy *cli_proxy(const struct cli_config *c, xp_proxy *px);
/* What failed, for the `xport:` line of a connect error: "connect NAME",
 * "proxy HOST:PORT" (the proxy refused: err is its answer) or "connect
 * NAME via proxy HOST:PORT". */
const char *cli_connect_what(const struct cli_config *c, const char *name, int err, char *buf,
			     size_t size);
/* --forward-allow (cli: the struct cli_config): 1 if a target may be reached. */
int cli_target_allowed(void *cli, const struct sockaddr *sa, socklen_t len);

/* ---- tlsopt.c ---- */
/* Builds a TLS context from --cert/--key/--ca/--insecure/--pin/--alpn.
 * On failure prints the `xport:` line and sets *status (66 or 1). */
xp_tls_ctx *cli_tls_ctx(const struct cli_config *c, int server_side, int *status);

/* ---- ready.c ---- */
/* One `listening on ADDRESS` line per socket and the --port-file. */
int cli_ready(const struct cli_config *c, const xp_sockaddr *addrs, int n);
int cli_ready_server(const struct cli_config *c, xp_server *s);

/* ---- stats.c ---- */
void cli_stats_line(const struct cli_config *c, const xp_conn_stats *st, const char *end,
		    double seconds);

/* ---- hexdump.c ---- */
void cli_hexdump(char dir, const void *data, size_t len);

/* ---- progress.c ---- */
void cli_progress_add(uint64_t sent, uint64_t received);
void cli_progress_start(xp_loop *loop, const struct cli_config *c);
void cli_progress_stop(void);

/* ---- run.c ---- */
struct cli_run;

/* One connection (or one relay) the command is responsible for. */
struct cli_conn {
	struct cli_conn *prev, *next;
	struct cli_run *run;
	unsigned long id;	 /* unique in the run (r->started) */
	xp_transport *t;	 /* retained: the socket to reset on abort */
	xp_relay *relay;	 /* when relay based */
	const xp_conn_stats *st; /* between on_start and the end */
	xp_conn_stats last;	 /* copy at the end */
	int ended;
	int is_relay;
	void *cmd; /* the command's own per-connection data */
	/* What to call the peer when the library cannot name it (an unnamed
	 * Unix socket, e.g. the udp: endpoint's internal socket pair or an
	 * inherited fd:N socket pair): "udp:HOST:PORT", "fd:N". */
	char label[128];
};

struct cli_run {
	xp_loop *loop;
	const struct cli_config *cli;
	struct cli_conn head; /* list of open connections */
	unsigned int nconns;
	unsigned long started; /* connections ever started */
	xp_server *servers[4];
	int nservers;
	int no_more;  /* nothing new will start: stop when idle */
	int stopping; /* a first SIGINT/SIGTERM was handled */
	/* The command does not listen (tcp-client, subprocess without
	 * --listen, pipe without a listening endpoint): the first signal
	 * stops it at once, as nc does, instead of the servers' --grace. */
	int at_once;
	int status; /* exit status so far */
	int status_set;
	int worker; /* a --workers thread (no signal handlers) */
	xp_handle *grace;
	/* Optional: the first signal (close listeners of the command). */
	void (*on_stop)(struct cli_run *r);
	/* Optional: every connection ended (e.g. pipe with -k keeps going). */
	void (*on_conn_end)(struct cli_run *r, struct cli_conn *c);
	/* Optional: SIGUSR1 extra lines (udp-echo peers). */
	void (*on_usr1)(struct cli_run *r);
	/* Optional: the second signal (workers: tell every thread). */
	void (*on_abort)(struct cli_run *r, int status);
	/* One connection at a time decides the exit status (clients,
	 * pipe without -k, a server without -k). */
	int single;
	void *cmd;
};

int cli_run_init(struct cli_run *r, const struct cli_config *c);
/* Installs SIGINT/SIGTERM/SIGUSR1 handlers (not for workers). */
int cli_run_signals(struct cli_run *r);
/* Runs the loop until the command is done; returns the exit status. */
int cli_run_loop(struct cli_run *r);
void cli_run_finish(struct cli_run *r);
void cli_run_add_server(struct cli_run *r, xp_server *s);
void cli_run_close_servers(struct cli_run *r);
/* Records a failure status (the first one wins) */
void cli_run_fail(struct cli_run *r, int status);
/* Stops the loop once no connection is left and nothing new will come. */
void cli_run_check_done(struct cli_run *r);
/* Signal actions, also called from the workers' main thread. */
void cli_run_stop(struct cli_run *r);
void cli_run_abort(struct cli_run *r, int status);
void cli_run_usr1(struct cli_run *r);

struct cli_conn *cli_run_conn_new(struct cli_run *r, xp_transport *t);
/* The open connection with this id, or of this relay; NULL once ended.
 * Lets a helper that may outlive a relay reach it only while it is. */
struct cli_conn *cli_run_conn_find(struct cli_run *r, unsigned long id);
struct cli_conn *cli_run_conn_of_relay(struct cli_run *r, const xp_relay *rl);
/* Proto options (watermarks, read size, idle timeout, hooks) for conn. */
void cli_run_proto_opts(struct cli_conn *c, xp_proto_opts *po, int relay);
void cli_run_relay_opts(struct cli_conn *c, xp_relay_opts *ro);
/* Puts c->label (or another name) for a peer the library shows as a bare
 * "unix:" or not at all (only with a label). */
void cli_run_fix_peer(const struct cli_conn *c, xp_conn_stats *st);
/* The connection ended (simple protocols: on_end; relays: on_done). */
void cli_run_conn_end(struct cli_conn *c, const xp_conn_stats *st);
/* Status for a connection that ended this way (0, 1 or 75). */
int cli_run_end_status(const xp_conn_stats *st);
/* Status for a child that could not be started: 127 (not found), 126
 * (not executable) or 1, as a shell has it. */
int cli_spawn_status(int err);
/* What a command's child says about the exit status: spawn_status when it
 * could not be started; -1 when a signal stopped xport (which then decides
 * on its own), or without a child or its code; else 128+N for a child
 * killed by signal N, or its exit code. */
int cli_child_status(const struct cli_run *r, int spawn_status, xp_transport *child);
/* Keeps a reference to t in *slot, dropping the one held before: of the
 * children a command starts, the newest one decides the exit status. */
void cli_transport_hold(xp_transport **slot, xp_transport *t);

/* ---- stdio.c ---- */
/* Attaches stdin/stdout (dup'd) as pipe transports to end `end` of r.
 * last: no later session writes stdout (not a -k stdio server), so fd 1
 * itself is pointed at /dev/null once this writer is done: a reader of our
 * stdout sees EOF at the peer's EOF, not at our exit. */
int cli_stdio_attach(xp_loop *loop, xp_relay *r, int end, int crlf, int last);
/* Puts fds 0 and 1 back to how they were (O_NONBLOCK). */
void cli_stdio_save(void);
void cli_stdio_restore(void);
/* Pipe transports on an inherited descriptor. */
int cli_fd_attach(xp_loop *loop, xp_relay *r, int end, int rfd, int wfd, int crlf);

/* ---- session.c ---- */
/* --send-only / --recv-only: send-only relays only towards end `to` (the
 * peer; for pipe, the second endpoint), recv-only only from it. */
void cli_one_way(const struct cli_config *c, xp_relay_opts *ro, int to);
/* stdio is end stdio_end: the other end's EOF ends the session when stdin
 * is a terminal, or always when stdin is shared with later sessions (-k). */
void cli_stdio_session(xp_relay_opts *ro, int stdio_end, int shared);

/* ---- gate.c ---- */
/* A protocol for accepted connections: asks start() for the real protocol
 * in connection_made and hands the transport over to it.  --allow/--deny
 * and --max-conns are checked at accept by the filter that
 * cli_gate_server_opts() installs: every listener must use both. */
typedef xp_protocol *(*cli_gate_start)(struct cli_run *r, xp_transport *t, void *arg);
struct cli_gate_cfg {
	struct cli_run *run;
	cli_gate_start start;
	void *arg;
	unsigned int max_conns; /* 0: no limit */
};
xp_protocol *cli_gate_factory(void *cfg); /* cfg: struct cli_gate_cfg * */
/* Server options that go with the gate (set so->tls first): the accept
 * filter and the TLS handshake timeout. */
void cli_gate_server_opts(struct cli_gate_cfg *cfg, xp_server_opts *so);

/* ---- dial.c ---- */
/* One outgoing connection (tcp-client; pipe's tcp:, tls:, unix:),
 * retried until --wait-for is spent.  The caller fills run, addr, name,
 * factory/arg, done, and opts.tls / opts.server_hostname; the rest of
 * opts comes from the command line (cli_connect_opts). */
struct cli_dial;
/* Called once: err 0 and f (its result the transport), or the final
 * error (f NULL when no attempt could be started, or when the run
 * stopped during the wait: -ECANCELED).  f is released after it returns. */
typedef void (*cli_dial_done)(struct cli_dial *d, xp_future *f, int err);
struct cli_dial {
	struct cli_run *run;
	const struct cli_addr *addr;
	const char *name; /* for messages */
	xp_connect_opts opts;
	xp_proxy proxy; /* opts.proxy points here */
	xp_protocol_factory factory;
	void *arg;
	cli_dial_done done;
	int no_retry_reset; /* a reset answers the question (--check) */
	/* state */
	double timeout, deadline; /* per attempt; loop time, 0: no retry */
	xp_handle *retry;
	int made;    /* the factory ran: the connection was made */
	int expired; /* the final error came when --wait-for was spent */
};
void cli_dial_start(struct cli_dial *d);
/* Status of a final failure (75 once --wait-for is spent, else 69 or
 * 1); with print, its one `xport:` line too. */
int cli_dial_fail(const struct cli_dial *d, int err, int print);

/* ---- udpadapt.c ---- */
/* A connected UDP socket as relay end `end`: each chunk is one datagram. */
int cli_udp_attach(struct cli_run *run, xp_relay *r, int end, const struct cli_addr *a,
		   double linger);
/* The same over a Unix datagram socket (bound to an abstract address the
 * kernel picks, so replies can come back). */
int cli_unixgram_attach(struct cli_run *run, xp_relay *r, int end, const struct cli_addr *a,
			double linger);
/* One sender of a listening datagram socket as relay end `end`. */
struct cli_dgpeer;
struct cli_dgsender;
struct cli_dgpeer *cli_dgpeer_session(struct cli_run *run, xp_relay *r, int end,
				      struct cli_dgsender *snd, const char *name, double linger);
/* A datagram from that sender: 0, or -EAGAIN when the relay is behind. */
int cli_dgpeer_input(struct cli_dgpeer *u, const void *data, size_t len);
/* The listener's send queue is full: take no more chunks from the relay. */
void cli_dgpeer_hold_replies(struct cli_dgpeer *u, int on);
/* A datagram to that sender could not be sent: the relay ends. */
void cli_dgpeer_failed(struct cli_dgpeer *u, int err);
/* The run is stopping (first SIGINT/SIGTERM): udp: ends already past EOF,
 * waiting for replies, close now. */
void cli_udp_stop(struct cli_run *run);

/* ---- dglisten.c ---- */
/* udp-listen:, unixgram-listen:: one bound socket; each sender (the first
 * only, when single) is given to a relay of its own from start(). */
struct cli_dgl_cfg {
	struct cli_run *run;
	const struct cli_endpoint *ep;
	int end;    /* the relay end a sender becomes */
	int single; /* the first sender only; the others are dropped */
	double linger;
	xp_relay *(*start)(void *arg);
	void *arg;
};
struct cli_dgl;
/* Binds (an exit status on failure, its `xport:` line printed); *addr is
 * the bound address for the readiness line. */
int cli_dgl_open(const struct cli_dgl_cfg *cfg, struct cli_dgl **out, xp_sockaddr *addr);
/* The first signal: no new sender; the socket closes after the last. */
void cli_dgl_stop(struct cli_dgl *l);
/* After the loop: close the socket, remove its file. */
void cli_dgl_free(struct cli_dgl *l);
/* For udpadapt.c: a sender's replies, its end, the listener's reading
 * held while a sender's pair side is being made (delta +1/-1), and a
 * sender whose relay is behind. */
int cli_dgl_sendto(struct cli_dgsender *s, const void *data, size_t len);
void cli_dgl_gone(struct cli_dgsender *s);
void cli_dgl_hold(struct cli_dgsender *s, int delta);
void cli_dgl_congested(struct cli_dgsender *s, int on);
/* All interfaces, for UDP: one dual-stack IPv6 socket (IPv6 alone for
 * family AF_INET6); 1 where IPv6 is missing (bind 0.0.0.0 instead), else
 * 0 and *fd, or -errno. */
int cli_udp_any_socket(const char *port, int family, int reuse_port, int *fd);
/* unix:PATH / unix:@NAME as a socket address; -ENAMETOOLONG if it cannot be. */
int cli_unix_sockaddr(const struct cli_addr *a, xp_sockaddr *out);

#endif /* XPORT_CLI_RUN_H */
