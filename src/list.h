/* SPDX-License-Identifier: MIT */
/*
 * list.h - an intrusive doubly linked list, for the library and for the
 * built-in protocols (see proto_iface.h).
 */
#ifndef XP_LIST_H
#define XP_LIST_H

#include <stdbool.h>

#include "xport.h"

struct xp_list {
	struct xp_list *prev, *next;
};

static inline void xp_list_init(struct xp_list *l)
{
	l->prev = l->next = l;
}

static inline bool xp_list_empty(const struct xp_list *l)
{
	return l->next == l;
}

static inline void xp_list_insert_tail(struct xp_list *head, struct xp_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void xp_list_remove(struct xp_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#define xp_list_entry(ptr, type, member) XP_CONTAINER_OF(ptr, type, member)

#endif
