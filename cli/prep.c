// SPDX-License-Identifier: MIT
/*
 * prep.c - what the command line names but the parser cannot know: the
 * addresses of host names in --source, --allow and --deny, and the rules
 * in --allow-file / --deny-file.  Done once at start, before the command
 * opens its first socket (and before any worker thread), so that accept
 * and connect later never wait for a lookup.  The lookups block, but
 * nothing is running yet that they could hold up.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "prep.h"
#include "run.h"

static void keep_source(struct cli_config *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET && !c->source4.sin_family)
		memcpy(&c->source4, sa, sizeof(c->source4));
	else if (sa->sa_family == AF_INET6 && !c->source6.sin6_family)
		memcpy(&c->source6, sa, sizeof(c->source6));
	else
		return;
	if (!c->source_first)
		c->source_first = sa->sa_family;
}

/* --source: one address of each family it names.  :PORT binds the
 * wildcard of whichever family the target has. */
static int prepare_source(struct cli_config *c)
{
	const struct cli_addr *s = &c->source;
	struct addrinfo hints = {.ai_family = c->family, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	const char *port = s->port[0] ? s->port : "0";
	int r;

	if (!c->has_source)
		return 0;
	if (!s->host[0])
		hints.ai_flags = AI_PASSIVE;
	if (s->is_v6_literal || !s->host[0])
		hints.ai_flags |= AI_NUMERICHOST;
	r = getaddrinfo(s->host[0] ? s->host : NULL, port, &hints, &ai);
	if (r) {
		cli_err("--source %s: %s", s->host,
			r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return CLI_EXIT_UNAVAILABLE;
	}
	for (const struct addrinfo *p = ai; p; p = p->ai_next)
		keep_source(c, p->ai_addr);
	freeaddrinfo(ai);
	if (!s->host[0])
		c->source_first = 0;
	return 0;
}

static const char *gai_text(int r)
{
	return r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r);
}

struct acl {
	struct cli_cidr *v;
	unsigned int n, cap;
};

static int acl_add(struct acl *a, const struct cli_cidr *r)
{
	if (a->n == a->cap) {
		unsigned int cap = a->cap ? 2 * a->cap : 16;
		struct cli_cidr *v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			cli_err("rules: %s", strerror(ENOMEM));
			return CLI_EXIT_FAIL;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = *r;
	return 0;
}

/* A host name rule stands for every address the name has now. */
static int add_host(struct acl *a, const char *name, int allow, const char *where)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int r = getaddrinfo(name, NULL, &hints, &ai), st = 0;

	if (r) {
		cli_err("%s %s: %s", where, name, gai_text(r));
		return CLI_EXIT_UNAVAILABLE;
	}
	for (const struct addrinfo *p = ai; p && !st; p = p->ai_next) {
		struct cli_cidr rule = {.family = p->ai_family, .allow = allow};

		if (p->ai_family == AF_INET) {
			memcpy(rule.addr, &((struct sockaddr_in *)(void *)p->ai_addr)->sin_addr, 4);
			rule.prefix = 32;
		} else if (p->ai_family == AF_INET6) {
			memcpy(rule.addr, &((struct sockaddr_in6 *)(void *)p->ai_addr)->sin6_addr,
			       16);
			rule.prefix = 128;
		} else {
			continue;
		}
		st = acl_add(a, &rule);
	}
	freeaddrinfo(ai);
	return st;
}

/* The rule on one line of a file: NULL for none (blank, comment). */
static char *line_rule(char *line)
{
	char *end;

	line[strcspn(line, "#")] = '\0';
	while (isspace((unsigned char)*line))
		line++;
	end = line + strlen(line);
	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return *line ? line : NULL;
}

static int add_text(struct acl *a, char *text, int allow, const char *file, unsigned int lineno)
{
	struct cli_cidr r;
	char where[4200];
	int k = strcspn(text, " \t") == strlen(text) ? cli_parse_rule(text, &r) : -1;

	snprintf(where, sizeof(where), "%s:%u:", file, lineno);
	if (k < 0) {
		cli_err("%s invalid rule '%s' (expected CIDR or host name)", where, text);
		return CLI_EXIT_USAGE;
	}
	r.allow = allow;
	return k ? add_host(a, text, allow, where) : acl_add(a, &r);
}

static int add_file(struct acl *a, const char *path, int allow)
{
	const char *opt = allow ? "--allow-file" : "--deny-file";
	FILE *f = fopen(path, "re");
	char *line = NULL, *rule;
	size_t cap = 0;
	unsigned int lineno = 0;
	int st = 0;

	if (!f) {
		cli_err("%s %s: %s", opt, path, strerror(errno));
		return CLI_EXIT_NOINPUT;
	}
	errno = 0;
	while (!st && getline(&line, &cap, f) >= 0) {
		lineno++;
		if ((rule = line_rule(line)) != NULL)
			st = add_text(a, rule, allow, path, lineno);
		errno = 0;
	}
	if (!st && ferror(f)) { /* e.g. a directory: EISDIR */
		cli_err("%s %s: %s", opt, path, strerror(errno ? errno : EIO));
		st = CLI_EXIT_NOINPUT;
	}
	free(line);
	fclose(f);
	return st;
}

/* --allow/--deny as given, names resolved and files read, in order. */
static int prepare_rules(struct cli_config *c)
{
	struct acl a = {0};
	int st = 0;

	for (unsigned int i = 0; i < c->n_rules && !st; i++) {
		const struct cli_cidr *r = &c->rules[i];

		if (r->family)
			st = acl_add(&a, r);
		else if (r->file)
			st = add_file(&a, r->name, r->allow);
		else
			st = add_host(&a, r->name, r->allow, r->allow ? "--allow" : "--deny");
	}
	if (st) {
		free(a.v);
		return st;
	}
	c->acl = a.v;
	c->n_acl = a.n;
	return 0;
}

int cli_prepare(struct cli_config *c)
{
	int st = prepare_rules(c);

	return st ? st : prepare_source(c);
}
