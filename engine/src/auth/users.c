/* users: console users, tokens and sessions, kept in the store (users.h). */
#include "auth/users.h"
#include "base/hash.h"
#include "base/mem.h"
#include "lang/json.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define KEY_USERS "auth.users"
#define KEY_SESSIONS "auth.sessions"

static const char *const role_names[] = {"none", "viewer", "operator", "auditor"};

rbk_role rbk_users_role_parse(const char *name)
{
	for (int r = RBK_ROLE_VIEWER; r <= RBK_ROLE_AUDITOR; r++)
		if (name && !strcmp(name, role_names[r]))
			return (rbk_role)r;
	return RBK_ROLE_NONE;
}

const char *rbk_users_role_name(rbk_role r) { return role_names[r <= RBK_ROLE_AUDITOR ? r : 0]; }

bool rbk_users_allows(rbk_role r, rbk_do what)
{
	switch (what) {
	case RBK_DO_READ: return r != RBK_ROLE_NONE;
	case RBK_DO_ACT: return r == RBK_ROLE_OPERATOR;
	case RBK_DO_AUDIT: return r == RBK_ROLE_AUDITOR;
	}
	return false;
}

bool rbk_users_name_ok(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n <= 64 && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n &&
	       name[0] != '-' && name[0] != '.';
}

bool rbk_users_same(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char diff = na != nb;
	for (size_t i = 0; i < na; i++)
		diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
	return diff == 0;
}

/* 32 random bytes as hex, after prefix. */
static char *random_secret(const char *prefix, rbk_err *err)
{
	unsigned char raw[32];
	size_t got = 0;
	while (got < sizeof raw) {
		ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
		if (n <= 0) {
			rbk_err_set(err, -1, "cannot draw random bytes for a token");
			return NULL;
		}
		got += (size_t)n;
	}
	char *out = rbk_xmalloc(strlen(prefix) + 65);
	size_t p = (size_t)sprintf(out, "%s", prefix);
	for (size_t i = 0; i < sizeof raw; i++)
		p += (size_t)sprintf(out + p, "%02x", raw[i]);
	return out;
}

static void digest(const char *secret, char out[65]) { rbk_hash_sha256_hex(secret, strlen(secret), out); }

void rbk_users_csrf(const char *sid, char out[65])
{
	char *s = rbk_xasprintf("csrf\n%s", sid);
	digest(s, out);
	rbk_free(s);
}

/* The map kept under key (an empty map when absent). */
static int load(rbk_store *s, const char *key, rbk_val *out, rbk_err *err)
{
	char *text = NULL;
	*out = rbk_val_map();
	if (rbk_store_meta_get(s, key, &text, err) < 0)
		return -1;
	if (!text)
		return 0;
	rbk_val v;
	rbk_err pe = {0};
	int rc = rbk_json_parse(&v, text, strlen(text), &pe);
	rbk_free(text);
	if (rc < 0 || v.t != RBK_V_MAP) {
		if (rc == 0)
			rbk_val_free(&v);
		rbk_err_set(err, -1, "the store's %s is not a JSON object: %s", key, rc < 0 ? pe.msg : "wrong type");
		err->code = RBK_ERR_STORE;
		return -1;
	}
	rbk_val_free(out);
	*out = v;
	return 0;
}

static int save(rbk_store *s, const char *key, const rbk_val *v, rbk_err *err)
{
	char *text = rbk_json_encode(v);
	int rc = rbk_store_meta_set(s, key, text, err);
	rbk_free(text);
	return rc;
}

static const char *field(const rbk_val *m, const char *k)
{
	const rbk_val *v = m ? rbk_val_map_get(m, k) : NULL;
	return v && v->t == RBK_V_STR ? v->u.s.s : "";
}

/* The map without key (maps have no delete). */
static rbk_val without(const rbk_val *m, const char *key)
{
	rbk_val out = rbk_val_map();
	for (size_t i = 0; i < m->u.map.n; i++)
		if (strcmp(m->u.map.keys[i], key) != 0)
			rbk_val_map_set(&out, m->u.map.keys[i], rbk_val_copy(&m->u.map.vals[i]));
	return out;
}

static void now_iso(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int rbk_users_add(rbk_store *s, const char *name, rbk_role role, bool rotate, const char *by, char **token,
		  rbk_err *err)
{
	*token = NULL;
	if (!rbk_users_name_ok(name)) {
		rbk_err_set(err, -1, "bad user name '%s' (1 to 64 letters, digits, . _ -, not starting with . or -)",
			    rbk_err_quote(name).s);
		return -1;
	}
	if (rbk_store_begin(s, err) < 0)
		return -1;
	rbk_val users;
	if (load(s, KEY_USERS, &users, err) < 0) {
		rbk_store_rollback(s);
		return -1;
	}
	const rbk_val *old = rbk_val_map_get(&users, name);
	int rc = -1;
	if (old && !rotate) {
		rbk_err_set(err, -1, "user '%s' exists (--rotate gives it a new token)", name);
	} else if (!old && rotate) {
		rbk_err_set(err, -1, "no user '%s' to give a new token", name);
		err->code = RBK_ERR_NONAME;
	} else if ((*token = random_secret("rbk_", err))) {
		char hash[65], at[32];
		digest(*token, hash);
		now_iso(at);
		rbk_val u = rbk_val_map();
		rbk_val_map_set(&u, "role", rbk_val_str(rotate ? field(old, "role") : rbk_users_role_name(role)));
		if (rotate && role != RBK_ROLE_NONE)
			rbk_val_map_set(&u, "role", rbk_val_str(rbk_users_role_name(role)));
		rbk_val_map_set(&u, "token_sha256", rbk_val_str(hash));
		rbk_val_map_set(&u, "created_at", rbk_val_str(rotate ? field(old, "created_at") : at));
		rbk_val_map_set(&u, "created_by", rbk_val_str(rotate ? field(old, "created_by") : by));
		if (rotate)
			rbk_val_map_set(&u, "rotated_at", rbk_val_str(at));
		rbk_val_map_set(&users, name, u);
		rc = save(s, KEY_USERS, &users, err) == 0 && rbk_store_commit(s, err) == 0 ? 0 : -1;
	}
	rbk_val_free(&users);
	if (rc < 0) {
		rbk_store_rollback(s);
		rbk_free(*token);
		*token = NULL;
	}
	return rc;
}

/* Drop the sessions of user (NULL: none) and the expired ones from *sessions. */
static void prune(rbk_val *sessions, const char *user)
{
	rbk_val keep = rbk_val_map();
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < sessions->u.map.n; i++) {
		const rbk_val *x = &sessions->u.map.vals[i], *exp = rbk_val_map_get(x, "expires");
		if (exp && exp->t == RBK_V_INT && exp->u.i > now && (!user || strcmp(field(x, "user"), user) != 0))
			rbk_val_map_set(&keep, sessions->u.map.keys[i], rbk_val_copy(x));
	}
	rbk_val_free(sessions);
	*sessions = keep;
}

int rbk_users_remove(rbk_store *s, const char *name, rbk_err *err)
{
	if (rbk_store_begin(s, err) < 0)
		return -1;
	rbk_val users, sessions = {0};
	int rc = -1;
	if (load(s, KEY_USERS, &users, err) == 0 && load(s, KEY_SESSIONS, &sessions, err) == 0) {
		if (!rbk_val_map_get(&users, name)) {
			rc = 1;
		} else {
			rbk_val rest = without(&users, name);
			prune(&sessions, name);
			rc = save(s, KEY_USERS, &rest, err) == 0 && save(s, KEY_SESSIONS, &sessions, err) == 0 &&
					     rbk_store_commit(s, err) == 0
				     ? 0
				     : -1;
			rbk_val_free(&rest);
		}
	}
	rbk_val_free(&users);
	rbk_val_free(&sessions);
	if (rc != 0)
		rbk_store_rollback(s);
	return rc;
}

int rbk_users_list(rbk_store *s, rbk_val *out, rbk_err *err)
{
	rbk_val users;
	*out = rbk_val_map();
	if (load(s, KEY_USERS, &users, err) < 0)
		return -1;
	for (size_t i = 0; i < users.u.map.n; i++) {
		const rbk_val *u = &users.u.map.vals[i];
		rbk_val x = rbk_val_map();
		rbk_val_map_set(&x, "role", rbk_val_str(field(u, "role")));
		rbk_val_map_set(&x, "created_at", rbk_val_str(field(u, "created_at")));
		rbk_val_map_set(&x, "created_by", rbk_val_str(field(u, "created_by")));
		if (*field(u, "rotated_at"))
			rbk_val_map_set(&x, "rotated_at", rbk_val_str(field(u, "rotated_at")));
		rbk_val_map_set(out, users.u.map.keys[i], x);
	}
	rbk_val_free(&users);
	return 0;
}

/* The user whose token hashes to hash, with its role. */
static int find_by_hash(const rbk_val *users, const char *hash, char **name, rbk_role *role)
{
	int found = 1;
	for (size_t i = 0; i < users->u.map.n; i++)
		if (rbk_users_same(field(&users->u.map.vals[i], "token_sha256"), hash) && found) {
			*name = rbk_xstrdup(users->u.map.keys[i]);
			*role = rbk_users_role_parse(field(&users->u.map.vals[i], "role"));
			found = 0;
		}
	return found;
}

int rbk_users_check_token(rbk_store *s, const char *token, char **name, rbk_role *role, rbk_err *err)
{
	*name = NULL;
	*role = RBK_ROLE_NONE;
	if (!token || strncmp(token, "rbk_", 4) != 0)
		return 1;
	char hash[65];
	digest(token, hash);
	rbk_val users;
	if (load(s, KEY_USERS, &users, err) < 0)
		return -1;
	int rc = find_by_hash(&users, hash, name, role);
	rbk_val_free(&users);
	return rc;
}

int rbk_users_session_new(rbk_store *s, const char *name, int64_t ttl_s, char **sid, rbk_err *err)
{
	if (!(*sid = random_secret("", err)))
		return -1;
	if (rbk_store_begin(s, err) < 0)
		goto fail;
	rbk_val sessions;
	if (load(s, KEY_SESSIONS, &sessions, err) < 0) {
		rbk_store_rollback(s);
		goto fail;
	}
	prune(&sessions, NULL);
	char hash[65];
	digest(*sid, hash);
	rbk_val x = rbk_val_map();
	rbk_val_map_set(&x, "user", rbk_val_str(name));
	rbk_val_map_set(&x, "expires", rbk_val_int((int64_t)time(NULL) + ttl_s));
	rbk_val_map_set(&sessions, hash, x);
	int rc = save(s, KEY_SESSIONS, &sessions, err) == 0 && rbk_store_commit(s, err) == 0 ? 0 : -1;
	rbk_val_free(&sessions);
	if (rc == 0)
		return 0;
	rbk_store_rollback(s);
fail:
	rbk_free(*sid);
	*sid = NULL;
	return -1;
}

int rbk_users_check_session(rbk_store *s, const char *sid, char **name, rbk_role *role, rbk_err *err)
{
	*name = NULL;
	*role = RBK_ROLE_NONE;
	if (!sid || strlen(sid) != 64)
		return 1;
	char hash[65];
	digest(sid, hash);
	rbk_val sessions, users = {0};
	if (load(s, KEY_SESSIONS, &sessions, err) < 0)
		return -1;
	int rc = 1;
	const rbk_val *x = rbk_val_map_get(&sessions, hash), *exp = x ? rbk_val_map_get(x, "expires") : NULL;
	if (exp && exp->t == RBK_V_INT && exp->u.i > (int64_t)time(NULL)) {
		/* The role is the user's now: a removed user's sessions end with it. */
		if (load(s, KEY_USERS, &users, err) < 0) {
			rc = -1;
		} else {
			const rbk_val *u = rbk_val_map_get(&users, field(x, "user"));
			if (u) {
				*name = rbk_xstrdup(field(x, "user"));
				*role = rbk_users_role_parse(field(u, "role"));
				rc = 0;
			}
		}
	}
	rbk_val_free(&sessions);
	rbk_val_free(&users);
	return rc;
}

int rbk_users_session_end(rbk_store *s, const char *sid, rbk_err *err)
{
	char hash[65];
	digest(sid, hash);
	if (rbk_store_begin(s, err) < 0)
		return -1;
	rbk_val sessions;
	if (load(s, KEY_SESSIONS, &sessions, err) < 0) {
		rbk_store_rollback(s);
		return -1;
	}
	rbk_val rest = without(&sessions, hash);
	prune(&rest, NULL);
	int rc = save(s, KEY_SESSIONS, &rest, err) == 0 && rbk_store_commit(s, err) == 0 ? 0 : -1;
	if (rc < 0)
		rbk_store_rollback(s);
	rbk_val_free(&sessions);
	rbk_val_free(&rest);
	return rc;
}

int rbk_users_credential(rbk_store *s, const char *line, char **actor, rbk_role *role, rbk_err *err)
{
	*actor = NULL;
	char *name = NULL;
	int rc = 1;
	if (!strncmp(line, "bearer ", 7))
		rc = rbk_users_check_token(s, line + 7, &name, role, err);
	else if (!strncmp(line, "session ", 8))
		rc = rbk_users_check_session(s, line + 8, &name, role, err);
	if (rc == 0) {
		*actor = rbk_xasprintf("%s@console", name);
		rbk_free(name);
	}
	return rc;
}
