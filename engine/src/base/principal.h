/* principal: who is acting, as the operating system proves it.
 *
 * The actor recorded with every event is the principal: the user the
 * process runs as (its effective uid, named by the password database),
 * on this host: "user@host". It is never taken from an option or an
 * environment variable, which anyone can set (docs/security.md). */
#ifndef RBK_PRINCIPAL_H
#define RBK_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>

/* "user@host" for the effective uid; a uid with no name is written as
 * its number. Caller frees. */
char *rbk_principal(void);

/* The one rule for names in `approvers:`, `distinct: true` and
 * `rbk history --actor`: NAME matches PRINCIPAL ("user@host") when their
 * users are equal and, if NAME gives a host ("alice@db1"), their hosts
 * are equal too. A NAME without a host ("alice") matches that user on any
 * host. */
bool rbk_principal_matches(const char *name, const char *principal);

/* The user part of principal ("alice" of "alice@db1"), at most n-1 bytes,
 * into buf; returns buf. */
char *rbk_principal_user(const char *principal, char *buf, size_t n);

#endif
