// SPDX-License-Identifier: MIT
/* xp_escape_str and the escaped Unix names of xp_sockaddr_format: what
 * a peer chooses must come out as printable UTF-8. */
#include "test.h"
#include "xport.h"

#include <stddef.h>
#include <string.h>
#include <sys/un.h>

static const char *esc(const char *s, size_t len)
{
	static char buf[256];

	CHECK_EQ(xp_escape_str(buf, sizeof(buf), s, len), 0);
	return buf;
}

TEST(escape_controls_and_invalid_utf8_become_hex)
{
	CHECK_STR(esc("plain text", 10), "plain text");
	CHECK_STR(esc("a\nb\tc\x1b[31m\x7f", 11), "a\\x0ab\\x09c\\x1b[31m\\x7f");
	CHECK_STR(esc("nul\0here", 8), "nul\\x00here");
	/* Valid UTF-8 stays; C1 controls (U+0085, U+009B) do not. */
	CHECK_STR(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK_STR(esc("\xc2\x85\xc2\x9b", 4), "\\xc2\\x85\\xc2\\x9b");
	/* Stray continuation, bad lead, overlong, surrogate, over U+10FFFF,
	 * sequence cut short by the end. */
	CHECK_STR(esc("\x80\xff", 2), "\\x80\\xff");
	CHECK_STR(esc("\xc0\xaf", 2), "\\xc0\\xaf");
	CHECK_STR(esc("\xed\xa0\x80", 3), "\\xed\\xa0\\x80");
	CHECK_STR(esc("\xf4\x90\x80\x80", 4), "\\xf4\\x90\\x80\\x80");
	CHECK_STR(esc("\xc3(", 2), "\\xc3(");
	CHECK_STR(esc("x\xe2\x82", 3), "x\\xe2\\x82");
}

TEST(escape_is_idempotent)
{
	const char raw[] = "a\nb\xff\xc3\xa9\\x41";
	char once[128], twice[128];

	CHECK_EQ(xp_escape_str(once, sizeof(once), raw, sizeof(raw) - 1), 0);
	CHECK_EQ(xp_escape_str(twice, sizeof(twice), once, strlen(once)), 0);
	CHECK_STR(twice, once);
}

TEST(escape_truncates_between_whole_characters)
{
	char buf[6];

	/* "ab" fits, "\x0a" (4 bytes) would not: stop before it. */
	CHECK_EQ(xp_escape_str(buf, sizeof(buf), "ab\ncd", 5), -ENOSPC);
	CHECK_STR(buf, "ab");
	/* A 2-byte character never half copied. */
	CHECK_EQ(xp_escape_str(buf, sizeof(buf), "abcd\xc3\xa9", 6), -ENOSPC);
	CHECK_STR(buf, "abcd");
	CHECK_EQ(xp_escape_str(buf, sizeof(buf), "abcde", 5), 0);
	CHECK_STR(buf, "abcde");
}

TEST(escape_sockaddr_format_escapes_unix_names)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	static const char name[] = "\0ev\nil\x1b\xff";
	char buf[128];
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof(name) - 1);

	memcpy(un.sun_path, name, sizeof(name) - 1);
	CHECK_EQ(xp_sockaddr_format((void *)&un, len, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "unix:@ev\\x0ail\\x1b\\xff");
	memcpy(un.sun_path, "/tmp/a\rb", 9);
	CHECK_EQ(xp_sockaddr_format((void *)&un, sizeof(un), buf, sizeof(buf)), 0);
	CHECK_STR(buf, "unix:/tmp/a\\x0db");
}
