// SPDX-License-Identifier: MIT
/*
 * args.c - xport command-line parsing.
 *
 * The parser works in three steps: global options before the command, the
 * command name, then the command's options and positional arguments in any
 * order (for subprocess, the first positional starts the command to run).
 * Each option value is checked as soon as it is read; positionals and the
 * rules that tie options together are checked once everything is read, so
 * that `xport tcp-client bogus --help` still prints the help.
 *
 * Every malformed input gives CLI_USAGE and a one-line message.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "args.h"

/* ------------------------------------------------------------ the table */

enum opt_id {
	O_HELP,
	O_VERSION,
	O_VERBOSE,
	O_QUIET,
	O_GRACE,
	O_DUMP,
	O_PARSE_ONLY,
	O_HIGH_WATER,
	O_LOW_WATER,
	O_READ_SIZE,
	O_HALF_CLOSE,
	O_NO_HALF_CLOSE,
	O_SEND_ONLY,
	O_RECV_ONLY,
	O_EOF_TIMEOUT,
	O_IDLE_TIMEOUT,
	O_CONNECT_TIMEOUT,
	O_HEXDUMP,
	O_STATS,
	O_PROGRESS,
	O_TLS,
	O_CERT,
	O_KEY,
	O_CA,
	O_INSECURE,
	O_PIN,
	O_SERVERNAME,
	O_ALPN,
	O_KEEP_OPEN,
	O_ONCE,
	O_MAX_CONNS,
	O_BACKLOG,
	O_REUSE_PORT,
	O_WORKERS,
	O_ALLOW,
	O_DENY,
	O_PORT_FILE,
	O_HANDSHAKE_TIMEOUT,
	O_PROTO,
	O_EXEC,
	O_FORWARD,
	O_WAIT_FOR,
	O_CHECK,
	O_CRLF,
	O_NO_READLINE,
	O_CONNECT,
	O_LISTEN,
	O_STDERR,
	O_SIGNAL,
	O_KILL_AFTER,
	O_IPV4,
	O_IPV6,
	O_SOURCE,
	O_ALLOW_FILE,
	O_DENY_FILE,
	O_VERIFY_CLIENT,
	O_PROXY,
	O_PROXY_AUTH,
	O_FORWARD_ALLOW,
	O_PTY,
	O_COUNT
};

#define SRV CLI_IN(CLI_CMD_TCP_SERVER)
#define CLI CLI_IN(CLI_CMD_TCP_CLIENT)
#define UDP CLI_IN(CLI_CMD_UDP_ECHO)
#define SUB CLI_IN(CLI_CMD_SUBPROCESS)
#define PIP CLI_IN(CLI_CMD_PIPE)
#define TOP CLI_IN(CLI_CMD_NONE)
#define ALL (TOP | SRV | CLI | UDP | SUB | PIP)
#define STREAM (SRV | CLI | SUB | PIP)

#define FLAG(id, name, sh, cmds, grp, help)                                                        \
	{                                                                                          \
		id, name, sh, CLI_ARG_NONE, NULL, NULL, cmds, grp, 0, help                         \
	}
#define VAL(id, name, sh, vname, choices, cmds, grp, help)                                         \
	{                                                                                          \
		id, name, sh, CLI_ARG_REQUIRED, vname, choices, cmds, grp, 0, help                 \
	}

const struct cli_option cli_options[] = {
    /* options of one command */
    VAL(O_PROTO, "proto", 0, "NAME",
	"stdio echo discard chargen exec forward socks5 http-proxy broker", SRV, CLI_GRP_COMMAND,
	"built-in protocol for every connection (default stdio)"),
    VAL(O_EXEC, "exec", 'e', "CMD", NULL, SRV, CLI_GRP_COMMAND,
	"run /bin/sh -c CMD for every connection (--proto exec)"),
    VAL(O_FORWARD, "forward", 0, "ADDR", NULL, SRV, CLI_GRP_COMMAND,
	"relay every connection to ADDR (--proto forward)"),
    VAL(O_PROXY_AUTH, "proxy-auth", 0, "USER:PASS", NULL, SRV, CLI_GRP_COMMAND,
	"socks5/http-proxy: clients must authenticate as USER:PASS"),
    VAL(O_FORWARD_ALLOW, "forward-allow", 0, "CIDR", NULL, SRV, CLI_GRP_COMMAND,
	"socks5/http-proxy: allow only targets in CIDR (repeatable)"),
    VAL(O_WAIT_FOR, "wait-for", 0, "SECONDS", NULL, CLI | PIP, CLI_GRP_COMMAND,
	"retry connecting until the server is up (exit 75 if not)"),
    FLAG(O_CHECK, "check", 0, CLI, CLI_GRP_COMMAND,
	 "connect, then exit 0 at once (69 if unreachable)"),
    FLAG(O_CRLF, "crlf", 0, CLI | SRV | SUB | PIP, CLI_GRP_COMMAND,
	 "send local LF line endings as CRLF (stdio sides)"),
    FLAG(O_NO_READLINE, "no-readline", 0, CLI, CLI_GRP_COMMAND, "never use line editing"),
    VAL(O_CONNECT, "connect", 0, "ADDR", NULL, SUB, CLI_GRP_COMMAND,
	"stream the child's stdio to a connection to ADDR"),
    VAL(O_LISTEN, "listen", 0, "ADDR", NULL, SUB, CLI_GRP_COMMAND,
	"stream the child's stdio to one client accepted on ADDR"),
    VAL(O_STDERR, "stderr", 0, "MODE", "merge separate inherit", SUB, CLI_GRP_COMMAND,
	"child's stderr: merge (default), separate or inherit"),
    VAL(O_SIGNAL, "signal", 0, "SIG", "TERM HUP INT KILL USR1 USR2", SUB, CLI_GRP_COMMAND,
	"sent to the child when the connection is lost (default TERM)"),
    VAL(O_KILL_AFTER, "kill-after", 0, "SECONDS", NULL, SUB, CLI_GRP_COMMAND,
	"SIGKILL the child this long after --signal (default never)"),
    FLAG(O_PTY, "pty", 0, SRV | SUB | PIP, CLI_GRP_COMMAND,
	 "run the child on a pseudo-terminal (exec, exec:, subprocess)"),

    /* server options */
    FLAG(O_KEEP_OPEN, "keep-open", 'k', SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	 "serve many connections, not just one"),
    FLAG(O_ONCE, "once", 0, SRV | PIP, CLI_GRP_SERVER, "exit after the first connection ends"),
    VAL(O_MAX_CONNS, "max-conns", 0, "N", NULL, SRV | PIP, CLI_GRP_SERVER,
	"close a connection over N at once (default unlimited)"),
    VAL(O_BACKLOG, "backlog", 0, "N", NULL, SRV | SUB | PIP, CLI_GRP_SERVER,
	"listen backlog (default 128)"),
    FLAG(O_REUSE_PORT, "reuse-port", 0, SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	 "set SO_REUSEPORT (share the port)"),
    VAL(O_WORKERS, "workers", 0, "N", NULL, SRV, CLI_GRP_SERVER,
	"N event loops on N threads (default 1)"),
    VAL(O_ALLOW, "allow", 0, "CIDR", NULL, SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	"accept peers in CIDR or at HOST (repeatable)"),
    VAL(O_DENY, "deny", 0, "CIDR", NULL, SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	"refuse peers in CIDR or at HOST (repeatable)"),
    VAL(O_ALLOW_FILE, "allow-file", 0, "FILE", NULL, SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	"accept peers matching a rule in FILE"),
    VAL(O_DENY_FILE, "deny-file", 0, "FILE", NULL, SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	"refuse peers matching a rule in FILE"),
    VAL(O_PORT_FILE, "port-file", 0, "FILE", NULL, SRV | UDP | SUB | PIP, CLI_GRP_SERVER,
	"write the bound port to FILE when ready"),
    VAL(O_HANDSHAKE_TIMEOUT, "handshake-timeout", 0, "SECONDS", NULL, SRV | SUB | PIP,
	CLI_GRP_SERVER, "close a TLS client not set up in this long (default 10)"),

    /* TLS */
    FLAG(O_TLS, "tls", 0, SRV | CLI | SUB, CLI_GRP_TLS, "use TLS (1.2 at least)"),
    VAL(O_CERT, "cert", 0, "FILE", NULL, STREAM, CLI_GRP_TLS,
	"PEM certificate chain (a server makes one if absent)"),
    VAL(O_KEY, "key", 0, "FILE", NULL, STREAM, CLI_GRP_TLS,
	"PEM private key (default is the --cert file)"),
    VAL(O_CA, "ca", 0, "FILE", NULL, STREAM, CLI_GRP_TLS,
	"trust these CAs instead of the system store"),
    FLAG(O_INSECURE, "insecure", 0, STREAM, CLI_GRP_TLS, "do not verify the peer"),
    VAL(O_PIN, "pin", 0, "sha256:HEX", NULL, STREAM, CLI_GRP_TLS,
	"accept exactly the peer certificate with this fingerprint"),
    VAL(O_SERVERNAME, "servername", 0, "NAME", NULL, CLI | SUB | PIP, CLI_GRP_TLS,
	"SNI and verified name (default: host of ADDR)"),
    VAL(O_ALPN, "alpn", 0, "LIST", NULL, STREAM, CLI_GRP_TLS,
	"comma-separated ALPN protocols to offer or accept"),
    VAL(O_VERIFY_CLIENT, "verify-client", 0, "MODE", "require optional", SRV | SUB | PIP,
	CLI_GRP_TLS, "client certificate: require (default) or optional"),

    /* stream options */
    VAL(O_HIGH_WATER, "high-water", 0, "SIZE", NULL, STREAM | UDP, CLI_GRP_STREAM,
	"pause reading over this write buffer (default 64K)"),
    VAL(O_LOW_WATER, "low-water", 0, "SIZE", NULL, STREAM | UDP, CLI_GRP_STREAM,
	"resume at or below this (default 16K)"),
    VAL(O_READ_SIZE, "read-size", 0, "SIZE", NULL, STREAM | UDP, CLI_GRP_STREAM,
	"receive buffer size (default 64K)"),
    FLAG(O_HALF_CLOSE, "half-close", 0, STREAM, CLI_GRP_STREAM,
	 "pass EOF on, keep the other direction (default)"),
    FLAG(O_NO_HALF_CLOSE, "no-half-close", 0, STREAM, CLI_GRP_STREAM,
	 "at EOF, flush and close both directions"),
    FLAG(O_SEND_ONLY, "send-only", 0, STREAM, CLI_GRP_STREAM,
	 "one way: local input to the peer (its data dropped)"),
    FLAG(O_RECV_ONLY, "recv-only", 0, STREAM, CLI_GRP_STREAM,
	 "one way: the peer to local output (input never read)"),
    VAL(O_EOF_TIMEOUT, "eof-timeout", 0, "SECONDS", NULL, STREAM, CLI_GRP_STREAM,
	"after one direction ended, wait at most this long"),
    VAL(O_IDLE_TIMEOUT, "idle-timeout", 0, "SECONDS", NULL, STREAM, CLI_GRP_STREAM,
	"close a connection idle this long (default none)"),
    VAL(O_CONNECT_TIMEOUT, "connect-timeout", 0, "SECONDS", NULL, STREAM, CLI_GRP_STREAM,
	"give up connecting after this long (default 30)"),
    FLAG(O_HEXDUMP, "hexdump", 'x', STREAM | UDP, CLI_GRP_STREAM, "dump traffic to stderr"),
    {O_STATS, "stats", 0, CLI_ARG_OPTIONAL, "json", "text json", STREAM | UDP, CLI_GRP_STREAM, 0,
     "per-connection stats on stderr at exit (=json for JSON)"},
    FLAG(O_PROGRESS, "progress", 0, STREAM, CLI_GRP_STREAM,
	 "live progress line while stderr is a terminal"),
    FLAG(O_IPV4, "ipv4", '4', STREAM | UDP, CLI_GRP_STREAM, "IPv4 only (names, listeners, :PORT)"),
    FLAG(O_IPV6, "ipv6", '6', STREAM | UDP, CLI_GRP_STREAM, "IPv6 only (names, listeners, :PORT)"),
    VAL(O_SOURCE, "source", 's', "ADDR", NULL, SRV | CLI | SUB | PIP, CLI_GRP_STREAM,
	"bind outgoing sockets to HOST, HOST:PORT or :PORT"),
    VAL(O_PROXY, "proxy", 0, "URL", NULL, STREAM, CLI_GRP_STREAM,
	"connect through http://, socks5:// or socks4a://[U:P@]HOST:PORT"),

    /* global options */
    FLAG(O_HELP, "help", 'h', ALL, CLI_GRP_GLOBAL, "print this help and exit"),
    FLAG(O_VERSION, "version", 'V', ALL, CLI_GRP_GLOBAL, "print version information and exit"),
    FLAG(O_VERBOSE, "verbose", 'v', ALL, CLI_GRP_GLOBAL, "log more (repeat for more)"),
    FLAG(O_QUIET, "quiet", 'q', ALL, CLI_GRP_GLOBAL, "errors only (no readiness line, no notices)"),
    VAL(O_GRACE, "grace", 0, "SECONDS", NULL, ALL, CLI_GRP_GLOBAL,
	"on SIGINT/SIGTERM, let connections finish (default 5)"),
    {O_DUMP, "dump-options", 0, CLI_ARG_NONE, NULL, NULL, TOP, CLI_GRP_GLOBAL, 1,
     "print the option table (for completions)"},
    {O_PARSE_ONLY, "parse-only", 0, CLI_ARG_NONE, NULL, NULL, ALL, CLI_GRP_GLOBAL, 1,
     "print the parsed configuration (for tests)"},
};

const size_t cli_n_options = sizeof(cli_options) / sizeof(cli_options[0]);

#define ADDR_FORMS                                                                                 \
	"ADDR is HOST:PORT, [IPV6]:PORT, :PORT or PORT (servers: all\n"                            \
	"interfaces; clients: localhost), unix:PATH or unix:@NAME.\n"

const struct cli_cmdinfo cli_commands[CLI_CMD_COUNT] = {
    [CLI_CMD_NONE] = {"", "", "", NULL},
    [CLI_CMD_TCP_SERVER] = {"tcp-server", "ADDR", "accept connections, run a built-in protocol",
			    ADDR_FORMS
			    "Port 0 picks a free port. Protocols: stdio "
			    "(default), echo,\ndiscard, chargen, exec (-e CMD), forward "
			    "(--forward ADDR),\nsocks5 and http-proxy (proxy servers), broker.\n"},
    [CLI_CMD_TCP_CLIENT] = {"tcp-client", "ADDR", "connect to ADDR, relay it to stdin/stdout",
			    ADDR_FORMS},
    [CLI_CMD_UDP_ECHO] = {"udp-echo", "ADDR", "send every datagram back to its sender", ADDR_FORMS},
    [CLI_CMD_SUBPROCESS] = {"subprocess", "-- CMD [ARG...]",
			    "run CMD, relay its stdio here or over TCP",
			    "Options end at the first argument that is not an option.\n" ADDR_FORMS
			    "Exit status: the child's (128+N for signal N).\n"},
    [CLI_CMD_PIPE] = {"pipe", "ENDPOINT ENDPOINT", "relay bytes both ways between two endpoints",
		      "ENDPOINT is one of: - or stdio, tcp:HOST:PORT, "
		      "tcp-listen:ADDR,\ntls:HOST:PORT, tls-listen:ADDR, unix:PATH, "
		      "unix-listen:PATH,\nudp:HOST:PORT, udp-listen:ADDR, unixgram:PATH, "
		      "unixgram-listen:PATH,\nexec:COMMAND, fd:N "
		      "(only the first may be -).\n"},
};

/* ------------------------------------------------------------ the parser */

struct parser {
	int argc;
	char **argv;
	int i; /* next argv index */
	struct cli_config *out;
	char *err;
	size_t errlen;
	enum cli_command cmd;
	unsigned char seen[O_COUNT];
	int npos;	/* positionals seen */
	char *pos[2];	/* first two positionals */
	char *extra;	/* first positional too many */
	int parse_only; /* --parse-only was given */
};

/* Role of an address: a server may use port 0, a client may not. */
enum role { ROLE_SERVER, ROLE_CLIENT };

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (p->cmd != CLI_CMD_NONE)
		n = (size_t)snprintf(p->err, p->errlen, "%s: ", cli_commands[p->cmd].name);
	if (n >= p->errlen)
		return CLI_USAGE;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

static void set_defaults(struct cli_config *c)
{
	memset(c, 0, sizeof(*c));
	c->grace = 5;
	c->high_water = 64 * 1024;
	c->low_water = 16 * 1024;
	c->read_size = 64 * 1024;
	c->half_close = 1;
	c->eof_timeout = -1;
	c->idle_timeout = -1;
	c->connect_timeout = 30;
	c->keep_open = CLI_KEEP_OPEN_DEFAULT;
	c->backlog = 128;
	c->workers = 1;
	c->wait_for = -1;
	c->signal = SIGTERM;
	c->kill_after = -1;
	c->handshake_timeout = 10;
}

/* ------------------------------------------------------- value parsers */

/* SIZE: digits with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *s, size_t *out)
{
	unsigned long long v = 0;
	unsigned int shift = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	switch (toupper((unsigned char)*s)) {
	case 'K':
		shift = 10;
		s++;
		break;
	case 'M':
		shift = 20;
		s++;
		break;
	case 'G':
		shift = 30;
		s++;
		break;
	}
	if (*s || v > (unsigned long long)SIZE_MAX >> shift)
		return -1;
	*out = (size_t)(v << shift);
	return 0;
}

/* SECONDS: a non-negative decimal (no sign, no exponent, no inf/nan). */
static int parse_seconds(const char *s, double *out)
{
	const char *q = s;
	int digits = 0;
	char *end;
	double v;

	for (; isdigit((unsigned char)*q); q++)
		digits++;
	if (*q == '.')
		for (q++; isdigit((unsigned char)*q); q++)
			digits++;
	if (*q || !digits)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	/* The cap keeps nanosecond conversions inside int64_t. */
	if (*end || errno || !isfinite(v) || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

/* A decimal integer in [min, max], digits only. */
static int parse_uint(const char *s, long min, long max, long *out)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		int d = *s - '0';

		if (!isdigit((unsigned char)*s) || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min)
		return -1;
	*out = v;
	return 0;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* sha256:HEX (the prefix may be left out), 64 hex digits, colons allowed. */
static int parse_pin(const char *s, unsigned char pin[32])
{
	int n = 0;

	if (!strncasecmp(s, "sha256:", 7))
		s += 7;
	for (; *s; s++) {
		int h = hexval((unsigned char)*s);

		if (*s == ':')
			continue;
		if (h < 0 || n >= 64)
			return -1;
		if (n % 2 == 0)
			pin[n / 2] = (unsigned char)(h << 4);
		else
			pin[n / 2] |= (unsigned char)h;
		n++;
	}
	return n == 64 ? 0 : -1;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
    {"HUP", SIGHUP},	   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},	   {"ABRT", SIGABRT}, {"BUS", SIGBUS},	   {"FPE", SIGFPE},
    {"KILL", SIGKILL},	   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},	   {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},	   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},	   {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},	   {"SYS", SIGSYS},
};

/* TERM, SIGTERM (any case) or a number 1..SIGRTMAX. */
static int parse_signal(const char *s, int *out)
{
	long n;
	size_t i;

	if (isdigit((unsigned char)*s)) {
		if (parse_uint(s, 1, SIGRTMAX, &n))
			return -1;
		*out = (int)n;
		return 0;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		if (!strcasecmp(s, signals[i].name)) {
			*out = signals[i].sig;
			return 0;
		}
	}
	return -1;
}

/* Copy at most size-1 bytes; -1 if it does not fit. */
static int copy(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int is_v6(const char *host)
{
	unsigned char buf[16];
	char tmp[INET6_ADDRSTRLEN + 1];
	const char *pct = strchr(host, '%');
	size_t len = pct ? (size_t)(pct - host) : strlen(host);

	/* A zone (fe80::1%eth0) is the kernel's business; it must not be empty. */
	if (pct && !pct[1])
		return 0;
	if (copy(tmp, sizeof(tmp), host, len))
		return 0;
	return inet_pton(AF_INET6, tmp, buf) == 1;
}

/*
 * A host name or IPv4 literal.  Something made only of digits and dots is
 * meant as an IPv4 literal and must be one, rather than going to DNS.
 */
static const char *check_host(const char *h)
{
	unsigned char buf[4];
	const char *q;

	if (strlen(h) > 253)
		return "host name too long";
	if (strspn(h, "0123456789.") == strlen(h))
		return inet_pton(AF_INET, h, buf) == 1 ? NULL : "invalid IPv4 address";
	for (q = h; *q; q++)
		if (!isalnum((unsigned char)*q) && !strchr("-._", *q))
			return "invalid character in host name";
	if (*h == '-' || *h == '.')
		return "invalid host name";
	return NULL;
}

/* PORT: 0..65535, digits only; 0 only for a server. */
static const char *check_port(const char *s, enum role role)
{
	long n;

	if (!*s)
		return "missing port";
	if (strlen(s) > 5 || parse_uint(s, 0, 65535, &n))
		return "invalid port (expected 0..65535)";
	if (n == 0 && role == ROLE_CLIENT)
		return "port 0 is only valid for listening";
	return NULL;
}

/* unix:PATH or unix:@NAME, without the "unix:" prefix. */
static const char *parse_unix(const char *s, struct cli_addr *a)
{
	a->kind = CLI_ADDR_UNIX;
	if (*s == '@') {
		a->kind = CLI_ADDR_UNIX_ABSTRACT;
		s++;
		if (!*s)
			return "empty abstract socket name";
	} else if (!*s) {
		return "empty socket path";
	}
	/* sun_path is 108 bytes: a NUL ends a path, begins a name. */
	if (copy(a->path, sizeof(a->path), s, strlen(s)))
		return "socket path too long (at most 107 bytes)";
	return NULL;
}

/* HOST:PORT, [V6]:PORT, :PORT or PORT. */
static const char *parse_hostport(const char *s, enum role role, struct cli_addr *a)
{
	const char *colon, *msg;

	a->kind = CLI_ADDR_HOSTPORT;
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb == s + 1)
			return "invalid [IPv6] address";
		if (rb[1] != ':')
			return "missing port after ]";
		if (copy(a->host, sizeof(a->host), s + 1, (size_t)(rb - s - 1)) || !is_v6(a->host))
			return "invalid IPv6 address";
		a->is_v6_literal = 1;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			if (!*s || strspn(s, "0123456789") != strlen(s))
				return "missing port (expected HOST:PORT)";
			colon = s - 1; /* bare PORT: empty host */
		} else if (memchr(s, ':', (size_t)(colon - s))) {
			return "an IPv6 address must be written [ADDR]:PORT";
		}
		if (colon >= s && copy(a->host, sizeof(a->host), s, (size_t)(colon - s)))
			return "host name too long";
		if (*a->host && (msg = check_host(a->host)))
			return msg;
	}
	if ((msg = check_port(colon + 1, role)))
		return msg;
	if (copy(a->port, sizeof(a->port), colon + 1, strlen(colon + 1)))
		return "invalid port";
	return NULL;
}

/* An ADDR as xport(1), ADDRESSES, defines it; unix forms only when
 * allow_unix. */
static int parse_addr(struct parser *p, const char *what, const char *s, enum role role,
		      int allow_unix, struct cli_addr *a)
{
	const char *msg;

	memset(a, 0, sizeof(*a));
	if (!strncmp(s, "unix:", 5)) {
		if (!allow_unix)
			return fail(p, "%s '%s': expected HOST:PORT", what, s);
		msg = parse_unix(s + 5, a);
	} else {
		msg = parse_hostport(s, role, a);
	}
	if (msg)
		return fail(p, "%s '%s': %s", what, s, msg);
	return 0;
}

/* --source: HOST, [V6], V6, HOST:PORT, [V6]:PORT or :PORT (port 0 or
 * none: the kernel picks the port). */
static int parse_source(struct parser *p, const char *s, struct cli_addr *a)
{
	const char *msg = NULL;
	size_t n = strlen(s);

	memset(a, 0, sizeof(*a));
	a->kind = CLI_ADDR_HOSTPORT;
	p->out->has_source = 1;
	if (n > 2 && s[0] == '[' && s[n - 1] == ']') {
		if (copy(a->host, sizeof(a->host), s + 1, n - 2) || !is_v6(a->host))
			msg = "invalid IPv6 address";
		a->is_v6_literal = 1;
	} else if (is_v6(s)) {
		copy(a->host, sizeof(a->host), s, n);
		a->is_v6_literal = 1;
	} else if (*s == '[' || strchr(s, ':')) {
		msg = parse_hostport(s, ROLE_SERVER, a);
	} else if (!*s) {
		msg = "empty address";
	} else if (copy(a->host, sizeof(a->host), s, n)) {
		msg = "host name too long";
	} else {
		msg = check_host(a->host);
	}
	if (msg)
		return fail(p, "--source '%s': %s", s, msg);
	return 0;
}

/* CIDR: an IPv4 or IPv6 address with an optional /PREFIX. */
static int parse_cidr(const char *s, struct cli_cidr *r)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned int max, i;
	long prefix;

	if (copy(buf, sizeof(buf), s, len))
		return -1;
	memset(r, 0, sizeof(*r));
	if (inet_pton(AF_INET, buf, r->addr) == 1) {
		r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		r->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	prefix = max;
	if (slash && (strlen(slash + 1) > 3 || parse_uint(slash + 1, 0, max, &prefix)))
		return -1;
	r->prefix = (unsigned int)prefix;
	/* Zero the host bits so that matching is a plain comparison. */
	for (i = r->prefix; i < max; i++)
		r->addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	return 0;
}

/* ALPN: comma-separated names of 1..255 bytes each. */
static int check_alpn(const char *s)
{
	size_t len;

	for (;;) {
		len = strcspn(s, ",");
		if (len == 0 || len > 255)
			return -1;
		if (!s[len])
			return 0;
		s += len + 1;
	}
}

/* ------------------------------------------------------------ endpoints */

const struct cli_eptype cli_endpoints[] = {
    {"-", CLI_EP_STDIO, "", "standard input and output"},
    {"stdio", CLI_EP_STDIO, "", "standard input and output"},
    {"tcp:", CLI_EP_TCP, "HOST:PORT", "connect"},
    {"tcp-listen:", CLI_EP_TCP_LISTEN, "ADDR", "accept one connection"},
    {"tls:", CLI_EP_TLS, "HOST:PORT", "connect over TLS"},
    {"tls-listen:", CLI_EP_TLS_LISTEN, "ADDR", "accept one connection over TLS"},
    {"unix:", CLI_EP_UNIX, "PATH", "connect to a Unix stream socket"},
    {"unix-listen:", CLI_EP_UNIX_LISTEN, "PATH", "accept one connection on a Unix stream socket"},
    {"udp:", CLI_EP_UDP, "HOST:PORT", "connected datagram socket"},
    {"udp-listen:", CLI_EP_UDP_LISTEN, "ADDR", "bind; the first sender is the peer"},
    {"unixgram:", CLI_EP_UNIXGRAM, "PATH", "Unix datagram socket"},
    {"unixgram-listen:", CLI_EP_UNIXGRAM_LISTEN, "PATH", "bind a Unix datagram socket"},
    {"exec:", CLI_EP_EXEC, "COMMAND", "/bin/sh -c COMMAND"},
    {"fd:", CLI_EP_FD, "N", "an inherited file descriptor"},
};

const size_t cli_n_endpoints = sizeof(cli_endpoints) / sizeof(cli_endpoints[0]);

static int ep_body(struct parser *p, char *s, char *body, struct cli_endpoint *e)
{
	const char *msg = NULL;
	long fd;

	switch (e->kind) {
	case CLI_EP_TCP:
	case CLI_EP_TLS:
	case CLI_EP_UDP:
		msg = parse_hostport(body, ROLE_CLIENT, &e->addr);
		break;
	case CLI_EP_TCP_LISTEN:
	case CLI_EP_TLS_LISTEN:
		if (!strncmp(body, "unix:", 5))
			msg = "use unix-listen:PATH for a Unix socket";
		else
			msg = parse_hostport(body, ROLE_SERVER, &e->addr);
		break;
	case CLI_EP_UDP_LISTEN:
		if (!strncmp(body, "unix:", 5))
			msg = "use unixgram-listen:PATH for a Unix socket";
		else
			msg = parse_hostport(body, ROLE_SERVER, &e->addr);
		break;
	case CLI_EP_UNIX:
	case CLI_EP_UNIX_LISTEN:
	case CLI_EP_UNIXGRAM:
	case CLI_EP_UNIXGRAM_LISTEN:
		msg = parse_unix(body, &e->addr);
		break;
	case CLI_EP_EXEC:
		if (!body[strspn(body, " \t")])
			msg = "empty command";
		e->command = body;
		break;
	case CLI_EP_FD:
		if (strlen(body) > 10 || parse_uint(body, 0, INT_MAX, &fd))
			msg = "invalid file descriptor";
		else
			e->fd = (int)fd;
		break;
	case CLI_EP_STDIO:
		break;
	}
	if (msg)
		return fail(p, "endpoint '%s': %s", s, msg);
	return 0;
}

/* "-" is accepted in either place, as socat does. */
static int parse_endpoint(struct parser *p, char *s, struct cli_endpoint *e)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	e->fd = -1;
	for (i = 0; i < cli_n_endpoints; i++) {
		const struct cli_eptype *t = &cli_endpoints[i];
		size_t n = strlen(t->prefix);

		if (t->kind == CLI_EP_STDIO ? !strcasecmp(s, t->prefix)
					    : !strncasecmp(s, t->prefix, n)) {
			e->kind = t->kind;
			return ep_body(p, s, s + n, e);
		}
	}
	return fail(p, "unknown endpoint '%s' (see 'xport pipe --help')", s);
}

/* ------------------------------------------------------------ --proxy */

static const struct {
	const char *scheme;
	int kind;
} proxy_schemes[] = {
    {"http://", CLI_PROXY_HTTP},
    {"socks5://", CLI_PROXY_SOCKS5},
    {"socks5h://", CLI_PROXY_SOCKS5}, /* curl's name for the same */
    {"socks4a://", CLI_PROXY_SOCKS4A},
};

/* Percent-decode len bytes of s into dst (at most 255 bytes, no NUL). */
static const char *pct_decode(const char *s, size_t len, char *dst, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)s[i];

		if (ch == '%') {
			int h = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
			int l = h >= 0 ? hexval((unsigned char)s[i + 2]) : -1;

			if (l < 0)
				return "invalid %-escape in the user or password";
			ch = h * 16 + l;
			i += 2;
		}
		if (!ch)
			return "NUL in the user or password";
		if (n + 1 >= size)
			return "user or password too long (at most 255 bytes)";
		dst[n++] = (char)ch;
	}
	dst[n] = '\0';
	return NULL;
}

/* USER[:PASS] of the URL, before its last '@'. */
static const char *proxy_userinfo(const char *s, size_t len, struct cli_proxy *px)
{
	const char *colon = memchr(s, ':', len), *msg;

	msg = pct_decode(s, colon ? (size_t)(colon - s) : len, px->user, sizeof(px->user));
	if (msg)
		return msg;
	if (!px->user[0])
		return "empty user name";
	px->has_user = 1;
	if (!colon)
		return NULL;
	px->has_password = 1;
	return pct_decode(colon + 1, len - (size_t)(colon - s) - 1, px->password,
			  sizeof(px->password));
}

/* SCHEME://[USER[:PASS]@]HOST:PORT[/] */
static const char *parse_proxy_url(const char *v, struct cli_proxy *px)
{
	const char *rest = NULL, *msg;
	char hostport[300];
	size_t len, i;

	memset(px, 0, sizeof(*px));
	for (i = 0; i < sizeof(proxy_schemes) / sizeof(proxy_schemes[0]); i++) {
		size_t n = strlen(proxy_schemes[i].scheme);

		if (!strncasecmp(v, proxy_schemes[i].scheme, n)) {
			px->kind = proxy_schemes[i].kind;
			rest = v + n;
		}
	}
	if (!rest)
		return "expected http://, socks5:// or socks4a://";
	len = strlen(rest);
	if (len && rest[len - 1] == '/')
		len--;
	for (i = len; i > 0; i--) {
		if (rest[i - 1] != '@')
			continue;
		if ((msg = proxy_userinfo(rest, i - 1, px)))
			return msg;
		rest += i;
		len -= i;
		break;
	}
	if (!len || memchr(rest, '/', len) || memchr(rest, '?', len))
		return "expected HOST:PORT after the scheme";
	if (copy(hostport, sizeof(hostport), rest, len))
		return "host name too long";
	if ((msg = parse_hostport(hostport, ROLE_CLIENT, &px->addr)))
		return msg;
	if (!px->addr.host[0])
		return "missing proxy host";
	if (px->kind == CLI_PROXY_SOCKS4A && px->has_password)
		return "socks4a:// takes a user id, not a password";
	return NULL;
}

/* --proxy-auth USER:PASS */
static int parse_proxy_auth(struct parser *p, const char *v)
{
	struct cli_config *c = p->out;
	const char *colon = strchr(v, ':');

	if (!colon || colon == v)
		return fail(p, "--proxy-auth: expected USER:PASS");
	if (copy(c->proxy_auth_user, sizeof(c->proxy_auth_user), v, (size_t)(colon - v)) ||
	    copy(c->proxy_auth_password, sizeof(c->proxy_auth_password), colon + 1,
		 strlen(colon + 1)))
		return fail(p, "--proxy-auth: user or password too long (at most 255 bytes)");
	c->has_proxy_auth = 1;
	return 0;
}

/* ------------------------------------------------------- option values */

static const struct cli_option *find_long(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < cli_n_options; i++) {
		const char *n = cli_options[i].name;

		if (strlen(n) == len && !strncmp(n, name, len))
			return &cli_options[i];
	}
	return NULL;
}

static const struct cli_option *find_short(char c)
{
	size_t i;

	for (i = 0; i < cli_n_options; i++)
		if (cli_options[i].short_name == c)
			return &cli_options[i];
	return NULL;
}

static int set_size(struct parser *p, const struct cli_option *o, const char *v, size_t *dst)
{
	if (parse_size(v, dst))
		return fail(p,
			    "--%s: invalid size '%s' (expected bytes, "
			    "or a number with K, M or G)",
			    o->name, v);
	return 0;
}

static int set_seconds(struct parser *p, const struct cli_option *o, const char *v, double *dst)
{
	if (parse_seconds(v, dst))
		return fail(p, "--%s: invalid number of seconds '%s'", o->name, v);
	return 0;
}

static int set_count(struct parser *p, const struct cli_option *o, const char *v, long max,
		     long *dst)
{
	if (strlen(v) > 10 || parse_uint(v, 1, max, dst))
		return fail(p,
			    "--%s: expected a number from 1 to %ld, "
			    "not '%s'",
			    o->name, max, v);
	return 0;
}

int cli_parse_rule(const char *s, struct cli_cidr *r)
{
	if (!parse_cidr(s, r))
		return 0;
	memset(r, 0, sizeof(*r));
	/* Digits, dots, colons or a slash: a CIDR gone wrong, not a name. */
	if (strpbrk(s, ":/") || !*s || check_host(s))
		return -1;
	r->name = s;
	return 1;
}

static int add_rule(struct parser *p, const struct cli_option *o, const char *v)
{
	struct cli_config *c = p->out;
	struct cli_cidr *r = &c->rules[c->n_rules];

	if (c->n_rules >= CLI_MAX_RULES)
		return fail(p, "--%s: too many rules (at most %d)", o->name, CLI_MAX_RULES);
	if (o->id == O_ALLOW_FILE || o->id == O_DENY_FILE) {
		if (!*v)
			return fail(p, "--%s: empty value", o->name);
		memset(r, 0, sizeof(*r));
		r->name = v;
		r->file = 1;
	} else if (cli_parse_rule(v, r) < 0) {
		return fail(p, "--%s: invalid CIDR or host name '%s'", o->name, v);
	}
	r->allow = o->id == O_ALLOW || o->id == O_ALLOW_FILE;
	c->n_rules++;
	return 0;
}

static int choose(struct parser *p, const struct cli_option *o, const char *v, int *dst)
{
	const char *c = o->choices;
	size_t len = strlen(v);
	int idx = 0;

	while (*c) {
		size_t n = strcspn(c, " ");

		if (n == len && !strncmp(c, v, n)) {
			*dst = idx;
			return 0;
		}
		c += n + (c[n] == ' ');
		idx++;
	}
	return fail(p, "--%s: invalid value '%s' (expected one of: %s)", o->name, v, o->choices);
}

static int set_string(struct parser *p, const struct cli_option *o, const char *v, const char **dst)
{
	if (!*v)
		return fail(p, "--%s: empty value", o->name);
	*dst = v;
	return 0;
}

static int apply_stream(struct parser *p, const struct cli_option *o, const char *v)
{
	struct cli_config *c = p->out;
	int k;

	switch (o->id) {
	case O_HIGH_WATER:
		return set_size(p, o, v, &c->high_water);
	case O_LOW_WATER:
		return set_size(p, o, v, &c->low_water);
	case O_READ_SIZE:
		if (set_size(p, o, v, &c->read_size))
			return CLI_USAGE;
		if (c->read_size == 0 || c->read_size > (size_t)1 << 30)
			return fail(p, "--read-size: must be 1 to 1G");
		return 0;
	case O_HALF_CLOSE:
		c->half_close = 1;
		return 0;
	case O_NO_HALF_CLOSE:
		c->half_close = 0;
		return 0;
	case O_SEND_ONLY:
		c->one_way = CLI_SEND_ONLY;
		return 0;
	case O_RECV_ONLY:
		c->one_way = CLI_RECV_ONLY;
		return 0;
	case O_EOF_TIMEOUT:
		return set_seconds(p, o, v, &c->eof_timeout);
	case O_IDLE_TIMEOUT:
		return set_seconds(p, o, v, &c->idle_timeout);
	case O_CONNECT_TIMEOUT:
		return set_seconds(p, o, v, &c->connect_timeout);
	case O_HEXDUMP:
		c->hexdump = 1;
		return 0;
	case O_STATS:
		if (!v) {
			c->stats = CLI_STATS_TEXT;
			return 0;
		}
		if (choose(p, o, v, &k))
			return CLI_USAGE;
		c->stats = k ? CLI_STATS_JSON : CLI_STATS_TEXT;
		return 0;
	case O_PROGRESS:
		c->progress = 1;
		return 0;
	case O_IPV4:
		c->family = AF_INET;
		return 0;
	case O_IPV6:
		c->family = AF_INET6;
		return 0;
	case O_SOURCE:
		return parse_source(p, v, &c->source);
	case O_PROXY: {
		const char *msg = parse_proxy_url(v, &c->proxy);

		return msg ? fail(p, "--proxy '%s': %s", v, msg) : 0;
	}
	}
	return -1;
}

static int apply_tls(struct parser *p, const struct cli_option *o, const char *v)
{
	struct cli_config *c = p->out;
	int k;

	switch (o->id) {
	case O_TLS:
		c->tls = 1;
		return 0;
	case O_CERT:
		return set_string(p, o, v, &c->cert);
	case O_KEY:
		return set_string(p, o, v, &c->key);
	case O_CA:
		return set_string(p, o, v, &c->ca);
	case O_INSECURE:
		c->insecure = 1;
		return 0;
	case O_PIN:
		if (parse_pin(v, c->pin))
			return fail(p,
				    "--pin: expected sha256: and 64 hex "
				    "digits, not '%s'",
				    v);
		c->has_pin = 1;
		return 0;
	case O_SERVERNAME:
		return set_string(p, o, v, &c->servername);
	case O_ALPN:
		if (check_alpn(v))
			return fail(p, "--alpn: invalid protocol list '%s'", v);
		c->alpn = v;
		return 0;
	case O_VERIFY_CLIENT:
		if (choose(p, o, v, &k))
			return CLI_USAGE;
		c->verify_client_optional = k == 1;
		return 0;
	}
	return -1;
}

static int apply_server(struct parser *p, const struct cli_option *o, const char *v)
{
	struct cli_config *c = p->out;
	long n;

	switch (o->id) {
	case O_KEEP_OPEN:
		c->keep_open = 1;
		return 0;
	case O_ONCE:
		c->once = 1;
		return 0;
	case O_MAX_CONNS:
		if (set_count(p, o, v, INT_MAX, &n))
			return CLI_USAGE;
		c->max_conns = (unsigned int)n;
		return 0;
	case O_BACKLOG:
		if (set_count(p, o, v, 65535, &n))
			return CLI_USAGE;
		c->backlog = (int)n;
		return 0;
	case O_REUSE_PORT:
		c->reuse_port = 1;
		return 0;
	case O_WORKERS:
		if (set_count(p, o, v, 1024, &n))
			return CLI_USAGE;
		c->workers = (unsigned int)n;
		return 0;
	case O_ALLOW:
	case O_DENY:
	case O_ALLOW_FILE:
	case O_DENY_FILE:
		return add_rule(p, o, v);
	case O_HANDSHAKE_TIMEOUT:
		return set_seconds(p, o, v, &c->handshake_timeout);
	case O_PORT_FILE:
		return set_string(p, o, v, &c->port_file);
	}
	return -1;
}

static int apply_command(struct parser *p, const struct cli_option *o, const char *v)
{
	struct cli_config *c = p->out;
	int k;

	switch (o->id) {
	case O_PROTO:
		if (choose(p, o, v, &k))
			return CLI_USAGE;
		c->proto = (enum cli_proto)k;
		return 0;
	case O_EXEC:
		if (!v[strspn(v, " \t")])
			return fail(p, "--exec: empty command");
		c->exec_cmd = v;
		return 0;
	case O_FORWARD:
		return parse_addr(p, "--forward", v, ROLE_CLIENT, 1, &c->forward);
	case O_WAIT_FOR:
		return set_seconds(p, o, v, &c->wait_for);
	case O_CHECK:
		c->check = 1;
		return 0;
	case O_CRLF:
		c->crlf = 1;
		return 0;
	case O_NO_READLINE:
		c->no_readline = 1;
		return 0;
	case O_CONNECT:
		c->sub_mode = CLI_SUB_CONNECT;
		return parse_addr(p, "--connect", v, ROLE_CLIENT, 1, &c->sub_addr);
	case O_LISTEN:
		c->sub_mode = CLI_SUB_LISTEN;
		return parse_addr(p, "--listen", v, ROLE_SERVER, 1, &c->sub_addr);
	case O_STDERR:
		if (choose(p, o, v, &k))
			return CLI_USAGE;
		c->stderr_mode = (enum cli_stderr)k;
		return 0;
	case O_SIGNAL:
		if (parse_signal(v, &c->signal))
			return fail(p, "--signal: invalid signal '%s'", v);
		return 0;
	case O_KILL_AFTER:
		return set_seconds(p, o, v, &c->kill_after);
	case O_PROXY_AUTH:
		return parse_proxy_auth(p, v);
	case O_FORWARD_ALLOW:
		if (c->n_fwd_allow >= CLI_MAX_RULES)
			return fail(p, "--forward-allow: too many rules (at most %d)",
				    CLI_MAX_RULES);
		if (parse_cidr(v, &c->fwd_allow[c->n_fwd_allow]))
			return fail(p, "--forward-allow: invalid CIDR '%s'", v);
		c->fwd_allow[c->n_fwd_allow++].allow = 1;
		return 0;
	case O_PTY:
		c->pty = 1;
		return 0;
	}
	return -1;
}

static int apply_global(struct parser *p, const struct cli_option *o, const char *v)
{
	struct cli_config *c = p->out;

	switch (o->id) {
	case O_HELP:
		return CLI_HELP;
	case O_VERSION:
		return CLI_VERSION;
	case O_DUMP:
		return CLI_DUMP;
	case O_PARSE_ONLY:
		p->parse_only = 1;
		return 0;
	case O_VERBOSE:
		c->verbosity++;
		return 0;
	case O_QUIET:
		c->quiet = 1;
		return 0;
	case O_GRACE:
		return set_seconds(p, o, v, &c->grace);
	}
	return -1;
}

/* Names of the commands in mask, comma-separated (errors and help). */
void cli_command_list(unsigned int mask, char *buf, size_t len)
{
	int cmd;

	buf[0] = '\0';
	for (cmd = CLI_CMD_TCP_SERVER; cmd < CLI_CMD_COUNT; cmd++) {
		if (!(mask & CLI_IN(cmd)))
			continue;
		if (buf[0])
			strncat(buf, ", ", len - strlen(buf) - 1);
		strncat(buf, cli_commands[cmd].name, len - strlen(buf) - 1);
	}
}

/* Check that o applies here, then store its value. */
static int apply(struct parser *p, const struct cli_option *o, const char *v)
{
	static int (*const appliers[])(struct parser *, const struct cli_option *, const char *) = {
	    [CLI_GRP_COMMAND] = apply_command, [CLI_GRP_SERVER] = apply_server,
	    [CLI_GRP_TLS] = apply_tls,	       [CLI_GRP_STREAM] = apply_stream,
	    [CLI_GRP_GLOBAL] = apply_global,
	};
	char cmds[128];

	if (!(o->commands & CLI_IN(p->cmd))) {
		if (p->cmd == CLI_CMD_NONE)
			return fail(p,
				    "option --%s must follow the command "
				    "(try 'xport --help')",
				    o->name);
		cli_command_list(o->commands, cmds, sizeof(cmds));
		return fail(p, "option --%s is not valid here (only for %s)", o->name, cmds);
	}
	p->seen[o->id] = 1;
	return appliers[o->group](p, o, v);
}

/* --name, --name=value or --name value. */
static int long_option(struct parser *p, char *arg)
{
	char *name = arg + 2;
	char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct cli_option *o = find_long(name, len);
	char *v = eq ? eq + 1 : NULL;

	if (!o)
		return fail(p,
			    "unknown option '--%.*s' (try 'xport%s%s "
			    "--help')",
			    (int)len, name, p->cmd ? " " : "", cli_commands[p->cmd].name);
	if (o->arg == CLI_ARG_NONE && v)
		return fail(p, "option --%s takes no value", o->name);
	if (o->arg == CLI_ARG_REQUIRED && !v) {
		if (p->i >= p->argc)
			return fail(p, "option --%s requires a value (%s)", o->name, o->value_name);
		v = p->argv[p->i++];
	}
	return apply(p, o, v);
}

/* -abc bundles; a short option with a value takes the rest or the next. */
static int short_options(struct parser *p, char *arg)
{
	char *s;
	int rc;

	for (s = arg + 1; *s; s++) {
		const struct cli_option *o = find_short(*s);
		char *v = NULL;

		if (!o)
			return fail(p,
				    "unknown option '-%c' (try "
				    "'xport%s%s --help')",
				    *s, p->cmd ? " " : "", cli_commands[p->cmd].name);
		if (o->arg == CLI_ARG_REQUIRED) {
			if (s[1])
				v = s + 1;
			else if (p->i < p->argc)
				v = p->argv[p->i++];
			else
				return fail(p,
					    "option -%c requires a value "
					    "(%s)",
					    *s, o->value_name);
		}
		rc = apply(p, o, v);
		if (rc || v)
			return rc;
	}
	return 0;
}

static int is_option(const char *a)
{
	return a[0] == '-' && a[1] != '\0';
}

static int option(struct parser *p, char *arg)
{
	if (arg[1] == '-')
		return long_option(p, arg);
	return short_options(p, arg);
}

static void positional(struct parser *p, char *arg)
{
	if (p->npos < 2)
		p->pos[p->npos] = arg;
	else if (!p->extra)
		p->extra = arg;
	p->npos++;
}

/* The rest of argv is the child's command line. */
static void take_command(struct parser *p)
{
	p->out->cmd_argv = p->argv + p->i;
	p->out->cmd_argc = p->argc - p->i;
	p->i = p->argc;
}

/* Options and positionals of the command, in any order. */
static int command_args(struct parser *p)
{
	int rc;

	while (p->i < p->argc) {
		char *arg = p->argv[p->i++];

		if (!strcmp(arg, "--")) {
			if (p->cmd == CLI_CMD_SUBPROCESS) {
				take_command(p);
				return 0;
			}
			while (p->i < p->argc)
				positional(p, p->argv[p->i++]);
			return 0;
		}
		if (!is_option(arg)) {
			if (p->cmd == CLI_CMD_SUBPROCESS) {
				p->i--;
				take_command(p);
				return 0;
			}
			positional(p, arg);
			continue;
		}
		rc = option(p, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------ rules across options */

static int check_watermarks(struct parser *p)
{
	struct cli_config *c = p->out;
	int hi = p->seen[O_HIGH_WATER], lo = p->seen[O_LOW_WATER];

	if (hi && !lo) {
		c->low_water = c->high_water / 4;
	} else if (lo && !hi) {
		if (c->low_water > SIZE_MAX / 4)
			return fail(p, "--low-water: too large");
		c->high_water = c->low_water * 4;
	} else if (c->low_water > c->high_water) {
		return fail(p,
			    "--low-water (%zu) is greater than "
			    "--high-water (%zu)",
			    c->low_water, c->high_water);
	}
	return 0;
}

static const char *opt_name(int id)
{
	size_t i;

	for (i = 0; i < cli_n_options; i++)
		if (cli_options[i].id == id)
			return cli_options[i].name;
	return "?";
}

static int conflict(struct parser *p, int a, int b)
{
	if (p->seen[a] && p->seen[b])
		return fail(p, "--%s and --%s cannot be used together", opt_name(a), opt_name(b));
	return 0;
}

/* Every option of ids[] that was given needs ok; else name what. */
static int need(struct parser *p, const int *ids, size_t n, int ok, const char *what)
{
	size_t i;

	for (i = 0; i < n && !ok; i++)
		if (p->seen[ids[i]])
			return fail(p, "--%s requires %s", opt_name(ids[i]), what);
	return 0;
}

#define NEED(p, ids, ok, what) need(p, ids, sizeof(ids) / sizeof(ids[0]), ok, what)

static const int server_ids[] = {
    O_KEEP_OPEN, O_ONCE, O_MAX_CONNS, O_BACKLOG,    O_REUSE_PORT, O_WORKERS,
    O_ALLOW,	 O_DENY, O_PORT_FILE, O_ALLOW_FILE, O_DENY_FILE,
};
static const int wait_ids[] = {O_WAIT_FOR};
static const int ip_only_ids[] = {O_ALLOW, O_DENY, O_PORT_FILE, O_ALLOW_FILE, O_DENY_FILE};
static const int tls_ids[] = {
    O_CERT, O_KEY, O_CA, O_INSECURE, O_PIN, O_SERVERNAME, O_ALPN,
};

static int is_tls_ep(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_TLS || e->kind == CLI_EP_TLS_LISTEN;
}

/* --handshake-timeout and --verify-client are about TLS servers only. */
static int check_handshake_timeout(struct parser *p)
{
	static const int ids[] = {O_HANDSHAKE_TIMEOUT, O_VERIFY_CLIENT};
	static const int vc[] = {O_VERIFY_CLIENT};
	const struct cli_config *c = p->out;
	int rc;

	switch (p->cmd) {
	case CLI_CMD_PIPE:
		rc = NEED(p, ids,
			  c->ep[0].kind == CLI_EP_TLS_LISTEN || c->ep[1].kind == CLI_EP_TLS_LISTEN,
			  "a tls-listen: endpoint");
		break;
	case CLI_CMD_SUBPROCESS:
		rc = NEED(p, ids, c->tls && c->sub_mode == CLI_SUB_LISTEN, "--listen and --tls");
		break;
	default:
		rc = NEED(p, ids, c->tls, "--tls");
		break;
	}
	if (rc)
		return rc;
	return NEED(p, vc, p->seen[O_CA] || p->seen[O_PIN], "--ca or --pin");
}

static int check_tls(struct parser *p)
{
	const struct cli_config *c = p->out;
	int rc;

	if (p->cmd == CLI_CMD_PIPE)
		rc = NEED(p, tls_ids, is_tls_ep(&c->ep[0]) || is_tls_ep(&c->ep[1]),
			  "a tls: or tls-listen: endpoint");
	else
		rc = NEED(p, tls_ids, c->tls, "--tls");
	if (!rc && p->seen[O_KEY] && !p->seen[O_CERT])
		rc = fail(p, "--key requires --cert");
	if (!rc)
		rc = conflict(p, O_INSECURE, O_PIN);
	if (!rc)
		rc = conflict(p, O_INSECURE, O_CA);
	if (!rc)
		rc = check_handshake_timeout(p);
	return rc;
}

/* The single ADDR of tcp-server, tcp-client and udp-echo. */
static int one_addr(struct parser *p, enum role role)
{
	if (p->npos == 0)
		return fail(p, "missing ADDR (try 'xport %s --help')", cli_commands[p->cmd].name);
	if (p->npos > 1)
		return fail(p, "unexpected argument '%s'", p->pos[1]);
	return parse_addr(p, "ADDR", p->pos[0], role, 1, &p->out->addr);
}

/* -e and --forward select their protocol; --proto must agree. */
static int resolve_proto(struct parser *p)
{
	struct cli_config *c = p->out;
	const char *name = "exec";

	if (conflict(p, O_EXEC, O_FORWARD))
		return CLI_USAGE;
	if (p->seen[O_EXEC] || p->seen[O_FORWARD]) {
		enum cli_proto want = p->seen[O_EXEC] ? CLI_PROTO_EXEC : CLI_PROTO_FORWARD;

		if (want == CLI_PROTO_FORWARD)
			name = "forward";
		if (p->seen[O_PROTO] && c->proto != want)
			return fail(p, "--proto conflicts with --%s", name);
		c->proto = want;
	}
	if (c->proto == CLI_PROTO_EXEC && !c->exec_cmd)
		return fail(p, "--proto exec requires -e CMD");
	if (c->proto == CLI_PROTO_FORWARD && !p->seen[O_FORWARD])
		return fail(p, "--proto forward requires --forward ADDR");
	return 0;
}

static const int proxy_ids[] = {O_PROXY};
static const int proxy_server_ids[] = {O_PROXY_AUTH, O_FORWARD_ALLOW};

static int finish_tcp_server(struct parser *p)
{
	struct cli_config *c = p->out;
	int tunnels = c->proto == CLI_PROTO_SOCKS5 || c->proto == CLI_PROTO_HTTP_PROXY;

	if (one_addr(p, ROLE_SERVER) || resolve_proto(p) || conflict(p, O_ONCE, O_KEEP_OPEN) ||
	    NEED(p, ip_only_ids, c->addr.kind == CLI_ADDR_HOSTPORT, "a TCP address") ||
	    NEED(p, proxy_ids,
		 c->proto == CLI_PROTO_FORWARD && c->forward.kind == CLI_ADDR_HOSTPORT,
		 "--forward HOST:PORT") ||
	    NEED(p, proxy_server_ids, tunnels, "--proto socks5 or http-proxy"))
		return CLI_USAGE;
	/* echo, discard and chargen are no relay: nothing to make one way. */
	if (c->one_way && c->proto != CLI_PROTO_STDIO && c->proto != CLI_PROTO_EXEC &&
	    c->proto != CLI_PROTO_FORWARD)
		return fail(p, "--%s requires --proto stdio, exec or forward",
			    opt_name(p->seen[O_SEND_ONLY] ? O_SEND_ONLY : O_RECV_ONLY));
	if (p->seen[O_PTY] && c->proto != CLI_PROTO_EXEC)
		return fail(p, "--pty requires --exec CMD");
	if (p->seen[O_CRLF] && c->proto != CLI_PROTO_STDIO)
		return fail(p, "--crlf requires --proto stdio");
	/* N loops cannot share one stdin/stdout. */
	if (c->workers > 1 && c->proto == CLI_PROTO_STDIO)
		return fail(p, "--workers requires a protocol other than "
			       "stdio");
	/* Nor one room of clients. */
	if (c->workers > 1 && c->proto == CLI_PROTO_BROKER)
		return fail(p, "--workers cannot be used with --proto broker");
	return check_tls(p);
}

static int finish_udp_echo(struct parser *p)
{
	if (one_addr(p, ROLE_SERVER) ||
	    NEED(p, ip_only_ids, p->out->addr.kind == CLI_ADDR_HOSTPORT, "a UDP address"))
		return CLI_USAGE;
	return 0;
}

static int finish_tcp_client(struct parser *p)
{
	if (one_addr(p, ROLE_CLIENT) ||
	    NEED(p, proxy_ids, p->out->addr.kind == CLI_ADDR_HOSTPORT, "a HOST:PORT address"))
		return CLI_USAGE;
	return check_tls(p);
}

static int finish_subprocess(struct parser *p)
{
	struct cli_config *c = p->out;
	static const int tls_only[] = {O_TLS};

	if (c->cmd_argc == 0 || !*c->cmd_argv[0])
		return fail(p, "missing command (xport subprocess -- CMD "
			       "[ARG...])");
	/* On a terminal, stderr is that terminal. */
	if (conflict(p, O_CONNECT, O_LISTEN) || conflict(p, O_PTY, O_STDERR) ||
	    conflict(p, O_CRLF, O_CONNECT) || conflict(p, O_CRLF, O_LISTEN) ||
	    NEED(p, tls_only, c->sub_mode != CLI_SUB_LOCAL, "--connect or --listen") ||
	    NEED(p, server_ids, c->sub_mode == CLI_SUB_LISTEN, "--listen") ||
	    NEED(p, ip_only_ids, c->sub_addr.kind == CLI_ADDR_HOSTPORT, "a TCP address") ||
	    NEED(p, proxy_ids,
		 c->sub_mode == CLI_SUB_CONNECT && c->sub_addr.kind == CLI_ADDR_HOSTPORT,
		 "--connect HOST:PORT"))
		return CLI_USAGE;
	return check_tls(p);
}

static int is_listen_ep(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_TCP_LISTEN || e->kind == CLI_EP_TLS_LISTEN ||
	       e->kind == CLI_EP_UNIX_LISTEN || e->kind == CLI_EP_UDP_LISTEN ||
	       e->kind == CLI_EP_UNIXGRAM_LISTEN;
}

static int is_ip_listen_ep(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_TCP_LISTEN || e->kind == CLI_EP_TLS_LISTEN ||
	       e->kind == CLI_EP_UDP_LISTEN;
}

static int is_connect_ep(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_TCP || e->kind == CLI_EP_TLS;
}

/* The endpoints --wait-for retries. */
static int is_dial_ep(const struct cli_endpoint *e)
{
	return e->kind == CLI_EP_TCP || e->kind == CLI_EP_TLS || e->kind == CLI_EP_UNIX;
}

static int finish_pipe(struct parser *p)
{
	struct cli_config *c = p->out;
	int listeners;

	if (p->npos < 2)
		return fail(p, "expected two endpoints (try 'xport pipe "
			       "--help')");
	if (p->npos > 2)
		return fail(p, "unexpected argument '%s'", p->extra);
	if (parse_endpoint(p, p->pos[0], &c->ep[0]) || parse_endpoint(p, p->pos[1], &c->ep[1]))
		return CLI_USAGE;
	if (c->ep[0].kind == CLI_EP_STDIO && c->ep[1].kind == CLI_EP_STDIO)
		return fail(p, "at most one endpoint may be stdio");
	if (p->seen[O_PTY] && c->ep[0].kind != CLI_EP_EXEC && c->ep[1].kind != CLI_EP_EXEC)
		return fail(p, "--pty requires an exec: endpoint");
	if (p->seen[O_CRLF] && c->ep[0].kind != CLI_EP_STDIO && c->ep[1].kind != CLI_EP_STDIO)
		return fail(p, "--crlf requires a stdio endpoint");
	listeners = is_listen_ep(&c->ep[0]) + is_listen_ep(&c->ep[1]);
	if (NEED(p, server_ids, listeners > 0, "a listening endpoint") ||
	    NEED(p, ip_only_ids, is_ip_listen_ep(&c->ep[0]) || is_ip_listen_ep(&c->ep[1]),
		 "a tcp-listen:, tls-listen: or udp-listen: endpoint") ||
	    NEED(p, wait_ids, is_dial_ep(&c->ep[0]) || is_dial_ep(&c->ep[1]),
		 "a tcp:, tls: or unix: endpoint") ||
	    conflict(p, O_ONCE, O_KEEP_OPEN) ||
	    NEED(p, proxy_ids, is_connect_ep(&c->ep[0]) || is_connect_ep(&c->ep[1]),
		 "a tcp: or tls: endpoint"))
		return CLI_USAGE;
	/* With -k one side accepts and the other is opened anew per peer. */
	if (p->seen[O_KEEP_OPEN] && listeners > 1)
		return fail(p, "--keep-open needs exactly one listening "
			       "endpoint");
	return check_tls(p);
}

/* The other family's literal can never be reached or bound under -4/-6. */
static int check_literal_family(struct parser *p, const char *what, const struct cli_addr *a)
{
	unsigned char buf[4];
	int fam = p->out->family;

	if (!fam || a->kind != CLI_ADDR_HOSTPORT || !a->host[0])
		return 0;
	if (fam == AF_INET && a->is_v6_literal)
		return fail(p, "-4: %s [%s]:%s is an IPv6 address", what, a->host, a->port);
	if (fam == AF_INET6 && inet_pton(AF_INET, a->host, buf) == 1)
		return fail(p, "-6: %s %s:%s is an IPv4 address", what, a->host, a->port);
	return 0;
}

/* AF_INET or AF_INET6 for an address literal, else 0 (a name, :PORT). */
static int literal_family(const struct cli_addr *a)
{
	unsigned char buf[4];

	if (a->kind != CLI_ADDR_HOSTPORT || !a->host[0])
		return 0;
	if (a->is_v6_literal)
		return AF_INET6;
	return inet_pton(AF_INET, a->host, buf) == 1 ? AF_INET : 0;
}

static const char *family_name(int fam)
{
	return fam == AF_INET ? "IPv4" : "IPv6";
}

/* A TCP connection to a is made to the --proxy, when there is one. */
static const struct cli_addr *tcp_target(const struct cli_config *c, const struct cli_addr *a)
{
	return c->proxy.kind ? &c->proxy.addr : a;
}

/* The outgoing addresses --source applies to, and whether one exists. */
static int source_targets(const struct cli_config *c, const struct cli_addr **t, int *n)
{
	*n = 0;
	switch (c->command) {
	case CLI_CMD_TCP_CLIENT:
		t[(*n)++] = tcp_target(c, &c->addr);
		break;
	case CLI_CMD_SUBPROCESS:
		if (c->sub_mode == CLI_SUB_CONNECT)
			t[(*n)++] = tcp_target(c, &c->sub_addr);
		break;
	case CLI_CMD_TCP_SERVER:
		if (c->proto == CLI_PROTO_FORWARD)
			t[(*n)++] = tcp_target(c, &c->forward);
		break;
	case CLI_CMD_PIPE:
		for (int i = 0; i < 2; i++)
			if (c->ep[i].kind == CLI_EP_TCP || c->ep[i].kind == CLI_EP_TLS)
				t[(*n)++] = tcp_target(c, &c->ep[i].addr);
			else if (c->ep[i].kind == CLI_EP_UDP)
				t[(*n)++] = &c->ep[i].addr;
		break;
	default:
		break;
	}
	for (int i = 0; i < *n; i++)
		if (t[i]->kind == CLI_ADDR_HOSTPORT)
			return 1;
	return 0;
}

/* --source needs an IP connection to bind, of its own family. */
static int check_source(struct parser *p)
{
	const struct cli_config *c = p->out;
	const struct cli_addr *t[2];
	int n, sf = literal_family(&c->source);

	if (!c->has_source)
		return 0;
	if (!source_targets(c, t, &n))
		return fail(p, "--source requires a TCP or UDP address to connect to%s",
			    p->cmd == CLI_CMD_TCP_SERVER   ? " (--forward)"
			    : p->cmd == CLI_CMD_SUBPROCESS ? " (--connect)"
			    : p->cmd == CLI_CMD_PIPE	   ? " (tcp:, tls: or udp:)"
							   : "");
	if (sf && c->family && sf != c->family)
		return fail(p, "%s: --source %s is an %s address",
			    c->family == AF_INET ? "-4" : "-6", c->source.host, family_name(sf));
	for (int i = 0; i < n && sf; i++) {
		int tf = literal_family(t[i]);

		if (tf && tf != sf)
			return fail(p, "--source %s is an %s address, %s is %s", c->source.host,
				    family_name(sf), t[i]->host, family_name(tf));
	}
	return 0;
}

static int check_family(struct parser *p)
{
	const struct cli_config *c = p->out;

	if (p->seen[O_IPV4] && p->seen[O_IPV6])
		return fail(p, "-4 and -6 cannot be used together");
	/* With --proxy, TCP goes to the proxy: the target is its business. */
	if (c->proxy.kind && check_literal_family(p, "--proxy", &c->proxy.addr))
		return CLI_USAGE;
	switch (p->cmd) {
	case CLI_CMD_PIPE:
		for (int i = 0; i < 2; i++)
			if ((!c->proxy.kind || !is_connect_ep(&c->ep[i])) &&
			    check_literal_family(p, "endpoint", &c->ep[i].addr))
				return CLI_USAGE;
		return 0;
	case CLI_CMD_SUBPROCESS:
		return c->proxy.kind ? 0 : check_literal_family(p, "ADDR", &c->sub_addr);
	case CLI_CMD_TCP_SERVER:
		if (c->proto == CLI_PROTO_FORWARD && !c->proxy.kind &&
		    check_literal_family(p, "--forward", &c->forward))
			return CLI_USAGE;
		/* fall through */
	default:
		return p->cmd == CLI_CMD_TCP_CLIENT && c->proxy.kind
			   ? 0
			   : check_literal_family(p, "ADDR", &c->addr);
	}
}

static int finish(struct parser *p)
{
	static int (*const finishers[])(struct parser *) = {
	    [CLI_CMD_TCP_SERVER] = finish_tcp_server,
	    [CLI_CMD_TCP_CLIENT] = finish_tcp_client,
	    [CLI_CMD_UDP_ECHO] = finish_udp_echo,
	    [CLI_CMD_SUBPROCESS] = finish_subprocess,
	    [CLI_CMD_PIPE] = finish_pipe,
	};
	struct cli_config *c = p->out;

	if (p->cmd != CLI_CMD_SUBPROCESS && p->npos > 2)
		return fail(p, "unexpected argument '%s'", p->extra);
	if (conflict(p, O_QUIET, O_VERBOSE) || conflict(p, O_SEND_ONLY, O_RECV_ONLY) ||
	    check_watermarks(p) || finishers[p->cmd](p) || check_family(p) || check_source(p))
		return CLI_USAGE;
	/* 0 means "no limit" for these two; callers only test < 0. */
	if (c->idle_timeout == 0)
		c->idle_timeout = -1;
	if (c->connect_timeout == 0)
		c->connect_timeout = -1;
	if (c->handshake_timeout == 0)
		c->handshake_timeout = -1;
	return CLI_OK;
}

/* Options before the command: only global ones are valid there. */
static int global_args(struct parser *p)
{
	int rc;

	while (p->i < p->argc && is_option(p->argv[p->i])) {
		char *arg = p->argv[p->i++];

		if (!strcmp(arg, "--"))
			return 0;
		rc = option(p, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static enum cli_command lookup_command(const char *name)
{
	int cmd;

	for (cmd = CLI_CMD_TCP_SERVER; cmd < CLI_CMD_COUNT; cmd++)
		if (!strcmp(name, cli_commands[cmd].name))
			return (enum cli_command)cmd;
	return CLI_CMD_NONE;
}

/* `xport help [COMMAND]` */
static int help_command(struct parser *p)
{
	if (p->i == p->argc)
		return CLI_HELP;
	if (p->argc - p->i > 1)
		return fail(p, "help: expected one command, not %d arguments", p->argc - p->i);
	p->out->command = lookup_command(p->argv[p->i]);
	if (p->out->command == CLI_CMD_NONE)
		return fail(p, "unknown command '%s' (try 'xport --help')", p->argv[p->i]);
	return CLI_HELP;
}

int cli_parse(int argc, char **argv, struct cli_config *out, char *err, size_t errlen)
{
	struct parser p = {
	    .argc = argc,
	    .argv = argv,
	    .i = 1,
	    .out = out,
	    .err = err,
	    .errlen = errlen,
	    .cmd = CLI_CMD_NONE,
	};
	const char *name;
	int rc;

	set_defaults(out);
	if (errlen)
		err[0] = '\0';
	rc = global_args(&p);
	if (rc)
		return rc;
	if (p.i >= argc)
		return fail(&p, "missing command (try 'xport --help')");
	name = argv[p.i++];
	if (!strcmp(name, "help"))
		return help_command(&p);
	p.cmd = lookup_command(name);
	if (p.cmd == CLI_CMD_NONE)
		return fail(&p, "unknown command '%s' (try 'xport --help')", name);
	out->command = p.cmd;
	rc = command_args(&p);
	if (!rc)
		rc = finish(&p);
	if (!rc && p.parse_only)
		rc = CLI_PARSED;
	return rc;
}
