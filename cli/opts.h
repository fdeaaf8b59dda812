/* SPDX-License-Identifier: MIT */
/*
 * opts.h - the parsed xport command line.
 *
 * xp_cli_parse() (args.h) fills one struct xp_cli from argv.  Every string
 * pointer in it points into argv (nothing is allocated, nothing to free),
 * so argv must outlive the struct.  Everything here is already validated:
 * the command code never needs to re-check syntax, only to act on it.
 */
#ifndef XPORT_CLI_OPTS_H
#define XPORT_CLI_OPTS_H

#include <netinet/in.h>
#include <stddef.h>

#define XPORT_VERSION "0.1.0"

enum xp_cli_command {
	XP_CMD_NONE = 0, /* top level: `xport --help`, `xport -V` */
	XP_CMD_TCP_SERVER,
	XP_CMD_TCP_CLIENT,
	XP_CMD_UDP_ECHO,
	XP_CMD_SUBPROCESS,
	XP_CMD_PIPE,
	XP_CMD_COUNT
};

/*
 * An ADDR as xport(1), ADDRESSES, defines it.  For XP_ADDR_HOSTPORT an empty host means "all
 * interfaces, IPv4 and IPv6" for a server and "localhost" for a client;
 * the command makes that choice.  port is the decimal string (0..65535,
 * already validated; 0 only where a server may pick a port).  An IPv6
 * literal is stored without its brackets (a zone, "%eth0", is kept).
 * For XP_ADDR_UNIX_ABSTRACT, path holds the name without the leading '@'.
 */
struct xp_cli_addr {
	enum { XP_ADDR_HOSTPORT, XP_ADDR_UNIX, XP_ADDR_UNIX_ABSTRACT } kind;
	char host[256];
	char port[16];
	char path[108];
	int is_v6_literal;
};

/* A `pipe` endpoint.  command is set for XP_EP_EXEC, fd for XP_EP_FD. */
struct xp_cli_endpoint {
	enum xp_cli_ep_kind {
		XP_EP_STDIO,
		XP_EP_TCP,
		XP_EP_TCP_LISTEN,
		XP_EP_TLS,
		XP_EP_TLS_LISTEN,
		XP_EP_UNIX,
		XP_EP_UNIX_LISTEN,
		XP_EP_UDP,
		XP_EP_EXEC,
		XP_EP_FD,
		XP_EP_UDP_LISTEN,
		XP_EP_UNIXGRAM,
		XP_EP_UNIXGRAM_LISTEN
	} kind;
	struct xp_cli_addr addr;
	char *command;
	int fd;
};

/* One --allow/--deny rule; the rules keep the order of the command line.
 * A rule the parser cannot settle has family 0 and a name: a host name
 * (--allow HOST) or, with file set, a rule file (--allow-file FILE);
 * xp_cli_prepare() turns those into addresses (xp_cli.acl). */
struct xp_cli_cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order, host bits zeroed */
	unsigned int prefix;	/* 0..32 or 0..128 */
	int allow;		/* 1 --allow, 0 --deny */
	const char *name;
	int file;
};

#define XP_CLI_MAX_RULES 64

enum xp_cli_stats { XP_STATS_OFF = 0, XP_STATS_TEXT = 1, XP_STATS_JSON = 2 };

enum xp_cli_proto {
	XP_PROTO_STDIO = 0,
	XP_PROTO_ECHO,
	XP_PROTO_DISCARD,
	XP_PROTO_CHARGEN,
	XP_PROTO_EXEC,
	XP_PROTO_FORWARD,
	XP_PROTO_SOCKS5,
	XP_PROTO_HTTP_PROXY,
	XP_PROTO_BROKER
};

/* --proxy URL.  kind: 0 none, else the library's enum xp_proxy_kind
 * value; user and password are percent-decoded. */
enum { XP_CLI_PROXY_HTTP = 1, XP_CLI_PROXY_SOCKS5 = 2, XP_CLI_PROXY_SOCKS4A = 3 };
struct xp_cli_proxy {
	int kind;
	struct xp_cli_addr addr;
	char user[256], password[256];
	int has_user, has_password;
};

enum xp_cli_sub_mode {
	XP_SUB_LOCAL = 0, /* stream the child's stdio to xport's own */
	XP_SUB_CONNECT,	  /* --connect ADDR */
	XP_SUB_LISTEN	  /* --listen ADDR */
};

enum xp_cli_stderr { XP_STDERR_MERGE = 0, XP_STDERR_SEPARATE, XP_STDERR_INHERIT };

/* --send-only / --recv-only */
enum { XP_CLI_SEND_ONLY = 1, XP_CLI_RECV_ONLY = 2 };

/* keep_open before resolution: -k not given, so the protocol decides. */
#define XP_KEEP_OPEN_DEFAULT (-1)

/*
 * Durations are seconds as double.  A negative value means "none" (no
 * limit / not given).  For --idle-timeout, --connect-timeout and
 * --handshake-timeout, 0 on the command line also means "none" and is
 * stored as -1.
 */
struct xp_cli {
	enum xp_cli_command command;

	/* global */
	double grace;  /* default 5 */
	int verbosity; /* number of -v */
	int quiet;

	/* stream; watermarks already resolved (H/4, 4L, defaults) */
	size_t high_water;	/* default 64K */
	size_t low_water;	/* default 16K */
	size_t read_size;	/* default 64K, never 0 */
	int half_close;		/* default 1 */
	int one_way;		/* 0, XP_CLI_SEND_ONLY or XP_CLI_RECV_ONLY */
	double eof_timeout;	/* <0: wait for ever */
	double idle_timeout;	/* <0: none */
	double connect_timeout; /* default 30; <0: none */
	int hexdump;
	enum xp_cli_stats stats;
	int progress;
	int family; /* -4 AF_INET, -6 AF_INET6, else AF_UNSPEC (0) */
	/* --source: host may be empty (:PORT), port empty (HOST alone). */
	int has_source;
	struct xp_cli_addr source;
	/* Filled at start by xp_cli_prepare() (prep.c): the source address
	 * of each family (family 0: none), and the family a name listed
	 * first (0 for :PORT, which binds either). */
	struct sockaddr_in source4;
	struct sockaddr_in6 source6;
	int source_first;

	/* TLS */
	int tls; /* --tls (never set for pipe) */
	const char *cert;
	const char *key; /* NULL: the key is in the cert file */
	const char *ca;
	int insecure;
	int has_pin;
	unsigned char pin[32]; /* raw SHA-256 of the DER certificate */
	const char *servername;
	const char *alpn;	    /* validated comma-separated list */
	int verify_client_optional; /* --verify-client optional */

	/* server */
	int keep_open; /* XP_KEEP_OPEN_DEFAULT, 0 or 1 */
	int once;
	unsigned int max_conns; /* 0: unlimited */
	int backlog;		/* default 128 */
	int reuse_port;
	unsigned int workers; /* default 1 */
	unsigned int n_rules;
	struct xp_cli_cidr rules[XP_CLI_MAX_RULES];
	/* The rules in force, made by xp_cli_prepare(): rules[] with names
	 * resolved and files read, in order (heap, kept until exit).  NULL
	 * before: rules[] is matched as it is. */
	struct xp_cli_cidr *acl;
	unsigned int n_acl;
	const char *port_file;
	double handshake_timeout; /* TLS servers; default 10; <0: none */

	/* tcp-client */
	double wait_for; /* <0: not given */
	int check;
	int crlf;
	int no_readline;

	/* subprocess */
	enum xp_cli_sub_mode sub_mode;
	struct xp_cli_addr sub_addr; /* for --connect / --listen */
	enum xp_cli_stderr stderr_mode;
	int signal;	   /* default SIGTERM */
	double kill_after; /* <0: never SIGKILL */
	int pty;	   /* --pty: exec, exec: and subprocess children */
	int cmd_argc;
	char **cmd_argv; /* NULL-terminated, points into argv */

	/* tcp-server */
	enum xp_cli_proto proto;
	const char *exec_cmd;	    /* -e / --exec */
	struct xp_cli_addr forward; /* valid when proto == FORWARD */

	/* proxies: --proxy (outgoing), --proxy-auth and --forward-allow
	 * (the socks5 and http-proxy protocols) */
	struct xp_cli_proxy proxy;
	char proxy_auth_user[256], proxy_auth_password[256];
	int has_proxy_auth;
	unsigned int n_fwd_allow;
	struct xp_cli_cidr fwd_allow[XP_CLI_MAX_RULES];

	/* positional ADDR of tcp-server, tcp-client, udp-echo */
	struct xp_cli_addr addr;

	/* pipe */
	struct xp_cli_endpoint ep[2];
};

/*
 * keep_open once the protocol's default is applied: -k serves many
 * connections, --once exactly one; otherwise every protocol but stdio
 * keeps serving (udp-echo always does).  For pipe the default is off.
 */
static inline int xp_cli_keep_open(const struct xp_cli *c)
{
	if (c->once)
		return 0;
	if (c->keep_open != XP_KEEP_OPEN_DEFAULT)
		return c->keep_open;
	switch (c->command) {
	case XP_CMD_TCP_SERVER:
		return c->proto != XP_PROTO_STDIO;
	case XP_CMD_UDP_ECHO:
		return 1;
	default:
		return 0;
	}
}

#endif /* XPORT_CLI_OPTS_H */
