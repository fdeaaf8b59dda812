// SPDX-License-Identifier: MIT
/*
 * fuzz_format.c - what xport prints about connections: the -x hexdump,
 * the --stats lines, and peer addresses formatted from arbitrary sockaddr
 * bytes and lengths (as accept(2) or recvfrom(2) could hand them over).
 *
 * The first input byte picks the function; the rest is its input.  The
 * hexdump and the JSON stats line are parsed back and must give the input
 * again; a formatted address must fit its buffer and never be read past
 * the length given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "fuzz.h"
#include "../../cli/run.h"

/* Runs fn with stderr going to memory; the text is returned (free it). */
static char *capture(void (*fn)(void *), void *arg, size_t *len)
{
	char *text = NULL;
	FILE *mem = open_memstream(&text, len), *saved = stderr;

	FZ_CHECK(mem);
	stderr = mem;
	fn(arg);
	stderr = saved;
	fclose(mem);
	return text;
}

/* ---- hexdump ------------------------------------------------------------ */

struct hex_args {
	char dir;
	const uint8_t *data;
	size_t len;
};

static void run_hexdump(void *arg)
{
	struct hex_args *a = arg;

	cli_hexdump(a->dir, a->data, a->len);
}

/* `D N bytes`, then per 16 bytes `OFFSET  hh hh ...  |text|`. */
static void check_hexdump(const struct hex_args *a, const char *text)
{
	char head[64];
	const char *line = strchr(text, '\n');
	size_t off;

	snprintf(head, sizeof(head), "%c %zu bytes\n", a->dir, a->len);
	FZ_CHECK(!strncmp(text, head, strlen(head)));
	for (off = 0; off < a->len; off += 16) {
		size_t n = a->len - off < 16 ? a->len - off : 16;
		const char *p = line + 1;
		char *end;

		FZ_CHECK(line);
		FZ_CHECK(strtoul(p, &end, 16) == off && end == p + 8);
		p = end + 1;
		for (size_t i = 0; i < n; i++) {
			if (i == 8)
				p++;
			FZ_CHECK(p[0] == ' ');
			FZ_CHECK(strtoul(p + 1, &end, 16) == a->data[off + i] && end == p + 3);
			p = end;
		}
		p = strchr(p, '|');
		FZ_CHECK(p);
		for (size_t i = 0; i < n; i++) {
			uint8_t ch = a->data[off + i];
			FZ_CHECK(p[1 + i] == ((ch >= 0x20 && ch < 0x7f) ? (char)ch : '.'));
		}
		FZ_CHECK(p[1 + n] == '|' && p[2 + n] == '\n');
		line = p + 2 + n;
	}
	FZ_CHECK(line[1] == '\0');
}

static void fuzz_hexdump(struct fz_in *in)
{
	struct hex_args a = {.dir = fz_u8(in) & 1 ? '>' : '<'};
	size_t len;
	char *text;

	a.len = fz_bytes(in, in->n, &a.data);
	text = capture(run_hexdump, &a, &len);
	FZ_CHECK(text && strlen(text) == len);
	check_hexdump(&a, text);
	free(text);
}

/* ---- stats -------------------------------------------------------------- */

struct stats_args {
	struct cli_config cli;
	xp_conn_stats st;
	const char *end;
	double seconds;
};

static void run_stats(void *arg)
{
	struct stats_args *a = arg;

	cli_stats_line(&a->cli, &a->st, a->end, a->seconds);
}

static unsigned hexval(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* The "peer" value of a JSON line, unescaped, must be the peer given. */
/* A peer's name is printed as xp_escape_str makes it: control bytes and
 * invalid UTF-8 as \xNN text, so the line is printable UTF-8. */
static const char *escaped_peer(const struct stats_args *a, char *buf, size_t size)
{
	const char *name = a->st.peer[0] ? a->st.peer : "-";

	xp_escape_str(buf, size, name, strlen(name));
	return buf;
}

static void check_json(const struct stats_args *a, const char *text, size_t len)
{
	char esc[sizeof(a->st.peer) * 4 + 1];
	const char *want = escaped_peer(a, esc, sizeof(esc));
	const char *p = text + strlen("{\"peer\":\"");
	size_t k = 0;

	FZ_CHECK(!strncmp(text, "{\"peer\":\"", 9));
	FZ_CHECK(len > 0 && text[len - 1] == '\n' && strchr(text, '\n') == text + len - 1);
	for (; *p != '"'; k++) {
		unsigned char ch = (unsigned char)*p;

		FZ_CHECK(ch >= 0x20);
		if (ch != '\\') {
			FZ_CHECK(want[k] == (char)ch);
			p++;
			continue;
		}
		if (p[1] == 'u') {
			FZ_CHECK(p[2] == '0' && p[3] == '0');
			FZ_CHECK((unsigned char)want[k] == (hexval(p[4]) << 4 | hexval(p[5])));
			p += 6;
		} else {
			FZ_CHECK((p[1] == '"' || p[1] == '\\') && want[k] == p[1]);
			p += 2;
		}
	}
	FZ_CHECK(want[k] == '\0');
	FZ_CHECK(!strncmp(p, "\",\"sent\":", 9));
}

static void fuzz_stats(struct fz_in *in)
{
	static const char *const ends[] = {"eof", "reset", "timeout", "error", "closed", "open"};
	struct stats_args a = {0};
	unsigned flags = fz_u8(in);
	const uint8_t *peer;
	size_t n, len;
	char *text;

	a.cli.stats = flags & 1 ? CLI_STATS_JSON : CLI_STATS_TEXT;
	a.end = ends[(flags >> 1) % 6];
	a.st.sent = (uint64_t)fz_u16(in) << 48 | (uint64_t)fz_u16(in) << 16 | fz_u16(in);
	a.st.received = (uint64_t)fz_u16(in) << 32 | fz_u16(in);
	a.seconds = ((double)fz_u16(in) - 1000) / 7.0;
	n = fz_bytes(in, sizeof(a.st.peer) - 1, &peer);
	memcpy(a.st.peer, peer, n);
	a.st.peer[n] = '\0';
	text = capture(run_stats, &a, &len);
	FZ_CHECK(text && len > 0);
	if (a.cli.stats == CLI_STATS_JSON)
		check_json(&a, text, len);
	else
		FZ_CHECK(!strncmp(text, "xport: stats ", 13) && text[len - 1] == '\n');
	for (size_t i = 0; i + 1 < len; i++) /* one printable line */
		FZ_CHECK((unsigned char)text[i] >= 0x20 && text[i] != 0x7f);
	free(text);
}

/* ---- addresses ---------------------------------------------------------- */

static void fuzz_sockaddr(struct fz_in *in)
{
	static struct cli_config cli = {
	    .n_rules = 2,
	    .rules = {{.family = AF_INET, .addr = {10}, .prefix = 8, .allow = 1},
		      {.family = AF_INET6, .prefix = 0, .allow = 0}}};
	size_t want = fz_u8(in), size = fz_u8(in), len;
	const uint8_t *bytes;
	char big[1024];
	char *buf;
	struct sockaddr *sa;
	int rc, rc_big;

	len = fz_bytes(in, want, &bytes);
	/* Exactly len bytes, so that reading past the length is caught. */
	sa = malloc(len ? len : 1);
	buf = malloc(size ? size : 1);
	FZ_CHECK(sa && buf);
	memcpy(sa, bytes, len);

	rc = xp_sockaddr_format(sa, (socklen_t)len, buf, size);
	rc_big = xp_sockaddr_format(sa, (socklen_t)len, big, sizeof(big));
	FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EAFNOSUPPORT || rc == -ENOSPC);
	FZ_CHECK(rc_big == 0 || rc_big == -EINVAL || rc_big == -EAFNOSUPPORT);
	if (rc == 0) {
		FZ_CHECK(rc_big == 0 && strlen(buf) < size && !strcmp(buf, big));
	} else if (rc == -ENOSPC) {
		FZ_CHECK(rc_big == 0 && strlen(big) >= size);
	} else {
		FZ_CHECK(rc == rc_big);
	}
	if (size) {
		cli_sockaddr_str(sa, (socklen_t)len, buf, size);
		FZ_CHECK(memchr(buf, 0, size));
	}
	cli_peer_allowed(&cli, sa, (socklen_t)len);
	free(sa);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};

	switch (fz_u8(&in) % 3) {
	case 0:
		fuzz_hexdump(&in);
		break;
	case 1:
		fuzz_stats(&in);
		break;
	default:
		fuzz_sockaddr(&in);
		break;
	}
	return 0;
}
