// SPDX-License-Identifier: MIT
/*
 * hexdump.c - -x: each chunk as `> N bytes` (sent to the peer) or
 * `< N bytes` (received from it), then `hexdump -C` style lines.
 */
#include <stdio.h>
#include <string.h>

#include "run.h"

/* One line: offset, two groups of eight bytes, then the printable view. */
static size_t hex_line(char *out, size_t off, const unsigned char *p, size_t n)
{
	size_t o = (size_t)sprintf(out, "%08zx ", off);
	size_t i;

	for (i = 0; i < 16; i++) {
		if (i == 8)
			out[o++] = ' ';
		if (i < n)
			o += (size_t)sprintf(out + o, " %02x", p[i]);
		else
			o += (size_t)sprintf(out + o, "   ");
	}
	o += (size_t)sprintf(out + o, "  |");
	for (i = 0; i < n; i++)
		out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '.';
	out[o++] = '|';
	out[o++] = '\n';
	out[o] = '\0';
	return o;
}

void cli_hexdump(char dir, const void *data, size_t len)
{
	const unsigned char *p = data;
	char line[96];
	size_t off;

	/* Lock once so the lines of one chunk stay together. */
	flockfile(stderr);
	fprintf(stderr, "%c %zu bytes\n", dir, len);
	for (off = 0; off < len; off += 16) {
		size_t n = len - off < 16 ? len - off : 16;

		hex_line(line, off, p + off, n);
		fputs(line, stderr);
	}
	funlockfile(stderr);
}
