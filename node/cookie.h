/* The RPC auth cookie file, as Bitcoin Core's: "__cookie__:<64 hex>",
 * readable by the owner only, removed at exit. */
#ifndef CCNODE_COOKIE_H
#define CCNODE_COOKIE_H

#include <stddef.h>

#include "node.h"

/* Create the cookie file (0600) with "__cookie__:<64 hex>" and keep the
 * secret in n->cookie. 0, or -1 with err. */
int node_cookie_create(struct node *n, const char *path, char *err, size_t errlen);

/* Remove the cookie file written by node_cookie_create(). */
void node_cookie_remove(const char *path);

#endif
