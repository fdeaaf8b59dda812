/* SPDX-License-Identifier: MIT */
/*
 * opts.h - the parsed xport command line.
 *
 * cli_parse() (args.h) fills one struct cli_config from argv.  Every string
 * pointer in it points into argv (nothing is allocated, nothing to free),
 * so argv must outlive the struct.  Everything here is already validated:
 * the command code never needs to re-check syntax, only to act on it.
 */
#ifndef XPORT_CLI_OPTS_H
#define XPORT_CLI_OPTS_H

#include <netinet/in.h>
#include <stddef.h>

#define XPORT_VERSION "0.1.0"

enum cli_command {
	CLI_CMD_NONE = 0, /* top level: `xport --help`, `xport -V` */
	CLI_CMD_TCP_SERVER,
	CLI_CMD_TCP_CLIENT,
	CLI_CMD_UDP_ECHO,
	CLI_CMD_SUBPROCESS,
	CLI_CMD_PIPE,
	CLI_CMD_COUNT
};

/*
 * An ADDR as xport(1), ADDRESSES, defines it.  For CLI_ADDR_HOSTPORT an empty host means "all
 * interfaces, IPv4 and IPv6" for a server and "localhost" for a client;
 * the command makes that choice.  port is the decimal string (0..65535,
 * already validated; 0 only where a server may pick a port).  An IPv6
 * literal is stored without its brackets (a zone, "%eth0", is kept).
 * For CLI_ADDR_UNIX_ABSTRACT, path holds the name without the leading '@'.
 */
struct cli_addr {
	enum { CLI_ADDR_HOSTPORT, CLI_ADDR_UNIX, CLI_ADDR_UNIX_ABSTRACT } kind;
	char host[256];
	char port[16];
	char path[108];
	int is_v6_literal;
};

/* A `pipe` endpoint.  command is set for CLI_EP_EXEC, fd for CLI_EP_FD. */
struct cli_endpoint {
	enum cli_ep_kind {
		CLI_EP_STDIO,
		CLI_EP_TCP,
		CLI_EP_TCP_LISTEN,
		CLI_EP_TLS,
		CLI_EP_TLS_LISTEN,
		CLI_EP_UNIX,
		CLI_EP_UNIX_LISTEN,
		CLI_EP_UDP,
		CLI_EP_EXEC,
		CLI_EP_FD,
		CLI_EP_UDP_LISTEN,
		CLI_EP_UNIXGRAM,
		CLI_EP_UNIXGRAM_LISTEN
	} kind;
	struct cli_addr addr;
	char *command;
	int fd;
};

/* One --allow/--deny rule; the rules keep the order of the command line.
 * A rule the parser cannot settle has family 0 and a name: a host name
 * (--allow HOST) or, with file set, a rule file (--allow-file FILE);
 * cli_prepare() turns those into addresses (cli_config.acl). */
struct cli_cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order, host bits zeroed */
	unsigned int prefix;	/* 0..32 or 0..128 */
	int allow;		/* 1 --allow, 0 --deny */
	const char *name;
	int file;
};

#define CLI_MAX_RULES 64

enum cli_stats { CLI_STATS_OFF = 0, CLI_STATS_TEXT = 1, CLI_STATS_JSON = 2 };

enum cli_proto {
	CLI_PROTO_STDIO = 0,
	CLI_PROTO_ECHO,
	CLI_PROTO_DISCARD,
	CLI_PROTO_CHARGEN,
	CLI_PROTO_EXEC,
	CLI_PROTO_FORWARD,
	CLI_PROTO_SOCKS5,
	CLI_PROTO_HTTP_PROXY,
	CLI_PROTO_BROKER
};

/* --proxy URL.  kind: 0 none, else the library's enum xp_proxy_kind
 * value; user and password are percent-decoded. */
enum { CLI_PROXY_HTTP = 1, CLI_PROXY_SOCKS5 = 2, CLI_PROXY_SOCKS4A = 3 };
struct cli_proxy {
	int kind;
	struct cli_addr addr;
	char user[256], password[256];
	int has_user, has_password;
};

enum cli_sub_mode {
	CLI_SUB_LOCAL = 0, /* stream the child's stdio to xport's own */
	CLI_SUB_CONNECT,   /* --connect ADDR */
	CLI_SUB_LISTEN	   /* --listen ADDR */
};

enum cli_stderr { CLI_STDERR_MERGE = 0, CLI_STDERR_SEPARATE, CLI_STDERR_INHERIT };

/* --send-only / --recv-only */
enum { CLI_SEND_ONLY = 1, CLI_RECV_ONLY = 2 };

/* keep_open before resolution: -k not given, so the protocol decides. */
#define CLI_KEEP_OPEN_DEFAULT (-1)

/*
 * Durations are seconds as double.  A negative value means "none" (no
 * limit / not given).  For --idle-timeout, --connect-timeout and
 * --handshake-timeout, 0 on the command line also means "none" and is
 * stored as -1.
 */
struct cli_config {
	enum cli_command command;

	/* global */
	double grace;  /* default 5 */
	int verbosity; /* number of -v */
	int quiet;

	/* stream; watermarks already resolved (H/4, 4L, defaults) */
	size_t high_water;	/* default 64K */
	size_t low_water;	/* default 16K */
	size_t read_size;	/* default 64K, never 0 */
	int half_close;		/* default 1 */
	int one_way;		/* 0, CLI_SEND_ONLY or CLI_RECV_ONLY */
	double eof_timeout;	/* <0: wait for ever */
	double idle_timeout;	/* <0: none */
	double connect_timeout; /* default 30; <0: none */
	int hexdump;
	enum cli_stats stats;
	int progress;
	int family; /* -4 AF_INET, -6 AF_INET6, else AF_UNSPEC (0) */
	/* --source: host may be empty (:PORT), port empty (HOST alone). */
	int has_source;
	struct cli_addr source;
	/* Filled at start by cli_prepare() (prep.c): the source address
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
	int keep_open; /* CLI_KEEP_OPEN_DEFAULT, 0 or 1 */
	int once;
	unsigned int max_conns; /* 0: unlimited */
	int backlog;		/* default 128 */
	int reuse_port;
	unsigned int workers; /* default 1 */
	unsigned int n_rules;
	struct cli_cidr rules[CLI_MAX_RULES];
	/* The rules in force, made by cli_prepare(): rules[] with names
	 * resolved and files read, in order (heap, kept until exit).  NULL
	 * before: rules[] is matched as it is. */
	struct cli_cidr *acl;
	unsigned int n_acl;
	const char *port_file;
	double handshake_timeout; /* TLS servers; default 10; <0: none */

	/* tcp-client */
	double wait_for; /* <0: not given */
	int check;
	int crlf;
	int no_readline;

	/* subprocess */
	enum cli_sub_mode sub_mode;
	struct cli_addr sub_addr; /* for --connect / --listen */
	enum cli_stderr stderr_mode;
	int signal;	   /* default SIGTERM */
	double kill_after; /* <0: never SIGKILL */
	int pty;	   /* --pty: exec, exec: and subprocess children */
	int cmd_argc;
	char **cmd_argv; /* NULL-terminated, points into argv */

	/* tcp-server */
	enum cli_proto proto;
	const char *exec_cmd;	 /* -e / --exec */
	struct cli_addr forward; /* valid when proto == FORWARD */

	/* proxies: --proxy (outgoing), --proxy-auth and --forward-allow
	 * (the socks5 and http-proxy protocols) */
	struct cli_proxy proxy;
	char proxy_auth_user[256], proxy_auth_password[256];
	int has_proxy_auth;
	unsigned int n_fwd_allow;
	struct cli_cidr fwd_allow[CLI_MAX_RULES];

	/* positional ADDR of tcp-server, tcp-client, udp-echo */
	struct cli_addr addr;

	/* pipe */
	struct cli_endpoint ep[2];
};

/*
 * keep_open once the protocol's default is applied: -k serves many
 * connections, --once exactly one; otherwise every protocol but stdio
 * keeps serving (udp-echo always does).  For pipe the default is off.
 */
static inline int cli_keep_open(const struct cli_config *c)
{
	if (c->once)
		return 0;
	if (c->keep_open != CLI_KEEP_OPEN_DEFAULT)
		return c->keep_open;
	switch (c->command) {
	case CLI_CMD_TCP_SERVER:
		return c->proto != CLI_PROTO_STDIO;
	case CLI_CMD_UDP_ECHO:
		return 1;
	default:
		return 0;
	}
}

#endif /* XPORT_CLI_OPTS_H */
