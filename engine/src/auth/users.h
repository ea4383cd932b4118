/* users: the people of the console (rbk serve), their roles, tokens and
 * sessions (docs/console.md).
 *
 * A user is a name and a role; the token that proves it is printed once, by
 * `rbk user add`, and only its SHA-256 is kept (a token is 32 random bytes:
 * a fast hash is enough where no one can guess). A session is what the
 * console's login gives a browser: an id in a cookie, kept the same way.
 * Both live in the store (its meta facts "auth.users" and "auth.sessions"),
 * so every host sharing a store knows the same people, and a process that
 * rbk serve starts to act for a person can check the credential itself.
 *
 * A person acting through the console is recorded as NAME@console: the
 * `approvers:` and `distinct:` rules read it as user NAME (principal.h). */
#ifndef RBK_USERS_H
#define RBK_USERS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "lang/value.h"

struct rbk_store;

typedef enum { RBK_ROLE_NONE, RBK_ROLE_VIEWER, RBK_ROLE_OPERATOR, RBK_ROLE_AUDITOR } rbk_role;

/* What a request does, for the role rules: read (pages, runs, logs,
 * metrics), act (launch, approve, reject, abort, resume), audit (verify,
 * bundles, reports). viewer reads; operator reads and acts; auditor reads
 * and audits. */
typedef enum { RBK_DO_READ, RBK_DO_ACT, RBK_DO_AUDIT } rbk_do;

rbk_role rbk_users_role_parse(const char *name); /* RBK_ROLE_NONE if unknown */
const char *rbk_users_role_name(rbk_role r);
bool rbk_users_allows(rbk_role r, rbk_do what);
/* A user name: 1..64 of letters, digits, . _ - (it becomes part of an actor). */
bool rbk_users_name_ok(const char *name);

/* Add name with role; *token (caller frees) is the new token, shown once.
 * rotate: the user must exist and gets a new token (the old one stops
 * working); else the user must not exist. by: who added it (an actor). */
int rbk_users_add(struct rbk_store *s, const char *name, rbk_role role, bool rotate, const char *by, char **token,
		  rbk_err *err);
/* 0 removed (with the user's sessions), 1 no such user, -1 error. */
int rbk_users_remove(struct rbk_store *s, const char *name, rbk_err *err);
/* The users as a map name -> {role, created_at, created_by} (no hashes). */
int rbk_users_list(struct rbk_store *s, rbk_val *out, rbk_err *err);

/* Who a bearer token belongs to: 0 with *name (caller frees) and *role,
 * 1 when it is nobody's, -1 error. */
int rbk_users_check_token(struct rbk_store *s, const char *token, char **name, rbk_role *role, rbk_err *err);

/* A new session for name, valid ttl_s seconds: *sid (caller frees) goes in
 * the cookie. Expired sessions are dropped on the way. */
int rbk_users_session_new(struct rbk_store *s, const char *name, int64_t ttl_s, char **sid, rbk_err *err);
/* As check_token, for a session id (an expired session is nobody's). */
int rbk_users_check_session(struct rbk_store *s, const char *sid, char **name, rbk_role *role, rbk_err *err);
int rbk_users_session_end(struct rbk_store *s, const char *sid, rbk_err *err);
/* The CSRF token of a session: derived from its id, so nothing more is kept
 * (65 bytes: hex and NUL). */
void rbk_users_csrf(const char *sid, char out[65]);

/* A credential as rbk serve hands it to the rbk it starts: "bearer TOKEN"
 * or "session SID". 0 with *actor (NAME@console, caller frees) and *role;
 * 1 when it proves no one; -1 error. */
int rbk_users_credential(struct rbk_store *s, const char *line, char **actor, rbk_role *role, rbk_err *err);

/* Constant-time comparison of two NUL-terminated texts (tokens, CSRF). */
bool rbk_users_same(const char *a, const char *b);

#endif
