/* rbk-http: the http.request action, over libcurl.
 *
 * One request (and its retries on 429/503 or a refused connection), with
 * the response's status, headers and body as outputs. Secrets (password,
 * token, the password of a URL, and the Basic credentials they make) never
 * leave the plugin: they are replaced by *** in every output, log line and
 * error. This is the only file that includes curl/curl.h. */
#include <rbk/plugin.h>

#include "util.h"

#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

RBK_PLUGIN_DECLARE();

static const rbk_host *host;

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RETRY_WAIT_MS 30000
#define DEFAULT_MAX_REDIRECTS 10
#define FIRST_RETRY_WAIT_MS 1000 /* without Retry-After: 1s, doubling */
#define ERROR_BODY_BYTES 200
#define MAX_RETRIES 100

enum { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

/* The checked params of one call. Strings are borrowed from args. */
typedef struct {
	char method[8];
	const char *url;
	const rbk_value *headers, *query, *json;
	const char *body;
	size_t body_len;
	int auth;
	const char *username, *password, *token;
	status_set expect;
	int64_t connect_timeout, timeout; /* ms; 0: no limit of our own */
	int64_t max_retry_wait;           /* ms */
	int64_t retries, max_redirects, max_body;
	int verify_tls, follow, secret_body;
	const char *ca_file;
	secrets sec;
	char *basic_b64; /* base64 of username:password, masked too */
	char *url_password; /* the password written in the URL, if any */
	char *url_b64;
	char *shown_url; /* the URL with the query, without credentials, masked */
	char *full_url;  /* the URL curl is given */
	char *payload;   /* the encoded json param */
	size_t payload_len;
} req;

static void req_free(req *r)
{
	free(r->basic_b64);
	free(r->url_password);
	free(r->url_b64);
	free(r->shown_url);
	free(r->full_url);
	free(r->payload);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* An argument, or NULL when absent or null. */
static const rbk_value *arg(const rbk_value *args, const char *name)
{
	const rbk_value *v = host->arg(args, name);
	return v && v->type != RBK_TYPE_NULL ? v : NULL;
}

/* A malloc'd, masked copy of a text (never NULL: "" when out of memory). */
static char *masked(const req *r, const char *s, size_t len, size_t *outlen)
{
	char *m = mask_apply(&r->sec, s, len, outlen);
	if (!m) {
		m = calloc(1, 1);
		if (outlen)
			*outlen = 0;
	}
	return m;
}

/* ---- params ---- */

static int header_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return 1;
}

static int has_header(const req *r, const char *name)
{
	for (size_t i = 0; r->headers && i < r->headers->as.map.count; i++)
		if (!strcasecmp(r->headers->as.map.keys[i], name))
			return 1;
	return 0;
}

/* Check everything that can be checked before a request. 0, or -1 after
 * set_error. */
static int parse_args(rbk_call *call, const rbk_value *args, req *r)
{
	memset(r, 0, sizeof *r);
	char err[256];
	const char *m = rbk_arg_string(args, "method");
	if (!m)
		m = "GET";
	static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
	for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
		if (!strcasecmp(m, methods[i]))
			snprintf(r->method, sizeof r->method, "%s", methods[i]);
	if (!r->method[0]) {
		host->set_error(call, "http.request: method '%.40s' is not one of GET, HEAD, POST, PUT, PATCH, DELETE", m);
		return -1;
	}
	r->url = rbk_arg_string(args, "url");
	r->headers = arg(args, "headers");
	r->query = arg(args, "query");
	r->json = arg(args, "json");
	const rbk_value *body = arg(args, "body");
	if (body) {
		r->body = body->as.str.ptr;
		r->body_len = body->as.str.len;
	}
	if (body && r->json) {
		host->set_error(call, "http.request: give 'body' or 'json', not both");
		return -1;
	}
	if ((body || r->json) && !strcmp(r->method, "HEAD")) {
		host->set_error(call, "http.request: a HEAD request has no body");
		return -1;
	}
	r->username = rbk_arg_string(args, "username");
	r->password = rbk_arg_string(args, "password");
	r->token = rbk_arg_string(args, "token");
	/* An empty credential is none: a runbook passes an optional secret
	 * param as "{{ params.token }}", empty when the host needs no auth. */
	if (r->username && !*r->username)
		r->username = NULL;
	if (r->password && !*r->password)
		r->password = NULL;
	if (r->token && !*r->token)
		r->token = NULL;
	const char *auth = rbk_arg_string(args, "auth");
	if (!auth)
		r->auth = r->token ? AUTH_BEARER : r->username || r->password ? AUTH_BASIC : AUTH_NONE;
	else if (!strcmp(auth, "basic"))
		r->auth = AUTH_BASIC;
	else if (!strcmp(auth, "bearer"))
		r->auth = AUTH_BEARER;
	else if (!strcmp(auth, "none"))
		r->auth = AUTH_NONE;
	else {
		host->set_error(call, "http.request: auth '%.40s' is not one of basic, bearer, none", auth);
		return -1;
	}
	if (r->auth == AUTH_BASIC && !r->username) {
		host->set_error(call, "http.request: auth basic needs 'username' (and 'password')");
		return -1;
	}
	if (r->auth == AUTH_BEARER && !r->token) {
		host->set_error(call, "http.request: auth bearer needs 'token'");
		return -1;
	}
	if ((r->auth != AUTH_BASIC && (r->username || r->password)) || (r->auth != AUTH_BEARER && r->token)) {
		host->set_error(call, "http.request: 'username' and 'password' go with auth basic, 'token' with auth bearer");
		return -1;
	}
	secrets_add(&r->sec, r->password);
	secrets_add(&r->sec, r->token);
	if (r->auth == AUTH_BASIC && r->password && *r->password) {
		hbuf up = {0};
		hb_printf(&up, "%s:%s", r->username, r->password);
		r->basic_b64 = base64(hb_str(&up), up.len);
		hb_free(&up);
		secrets_add(&r->sec, r->basic_b64);
	}
	if (status_parse(arg(args, "expect_status"), &r->expect, err, sizeof err) < 0) {
		host->set_error(call, "http.request: %s", err);
		return -1;
	}
	r->connect_timeout = rbk_arg_int(args, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS);
	r->timeout = rbk_arg_int(args, "timeout", DEFAULT_TIMEOUT_MS);
	r->max_retry_wait = rbk_arg_int(args, "max_retry_wait", DEFAULT_MAX_RETRY_WAIT_MS);
	r->retries = rbk_arg_int(args, "retries", 0);
	r->max_redirects = rbk_arg_int(args, "max_redirects", DEFAULT_MAX_REDIRECTS);
	r->max_body = rbk_arg_int(args, "max_body", DEFAULT_MAX_BODY);
	r->verify_tls = rbk_arg_bool(args, "verify_tls", 1);
	r->follow = rbk_arg_bool(args, "follow_redirects", 0);
	r->secret_body = rbk_arg_bool(args, "secret_body", 0);
	r->ca_file = rbk_arg_string(args, "ca_file");
	if (r->retries < 0 || r->retries > MAX_RETRIES) {
		host->set_error(call, "http.request: retries must be from 0 to %d, not %lld", MAX_RETRIES,
				(long long)r->retries);
		return -1;
	}
	if (r->max_redirects < 0 || r->max_body < 0) {
		host->set_error(call, "http.request: %s must not be negative",
				r->max_body < 0 ? "max_body" : "max_redirects");
		return -1;
	}
	for (size_t i = 0; r->headers && i < r->headers->as.map.count; i++) {
		const char *k = r->headers->as.map.keys[i];
		char num[64];
		const char *v = scalar_text(&r->headers->as.map.values[i], num, sizeof num);
		if (!header_name_ok(k)) {
			host->set_error(call, "http.request: bad header name '%.60s'", k);
			return -1;
		}
		if (!v && r->headers->as.map.values[i].type != RBK_TYPE_NULL) {
			host->set_error(call, "http.request: header '%s' must be a string, a number or a bool", k);
			return -1;
		}
		if (v && strpbrk(v, "\r\n")) {
			host->set_error(call, "http.request: header '%s' contains a line break", k);
			return -1;
		}
	}
	for (size_t i = 0; r->query && i < r->query->as.map.count; i++) {
		char num[64];
		const rbk_value *v = &r->query->as.map.values[i];
		if (v->type != RBK_TYPE_NULL && !scalar_text(v, num, sizeof num)) {
			host->set_error(call, "http.request: query param '%s' must be a string, a number, a bool or null",
					r->query->as.map.keys[i]);
			return -1;
		}
	}
	if (r->json) {
		hbuf j = {0};
		if (hjson_write(&j, r->json, err, sizeof err) < 0 || j.oom) {
			host->set_error(call, "http.request: cannot encode 'json': %s", j.oom ? "out of memory" : err);
			hb_free(&j);
			return -1;
		}
		r->payload = j.s;
		r->payload_len = j.len;
	}
	return 0;
}

/* Append s percent-encoded (all but the unreserved characters of RFC 3986). */
static void url_escape(hbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			hb_add(b, (const char *)&c, 1);
		else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			hb_add(b, e, 3);
		}
	}
}

/* Build full_url (with the query appended) and shown_url (without
 * credentials, masked). 0, or -1 after set_error. */
static int build_url(rbk_call *call, req *r)
{
	CURLU *u = curl_url();
	char *s = NULL;
	int rc = -1;
	if (!u) {
		host->set_error(call, "http.request: out of memory");
		return -1;
	}
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, r->url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &s, 0);
	if (uc != CURLUE_OK || (strcmp(s, "http") && strcmp(s, "https"))) {
		/* Credentials may be in what was written: mask the URL's text. */
		char *pw = NULL;
		CURLU *v = curl_url();
		if (v && curl_url_set(v, CURLUPART_URL, r->url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK)
			curl_url_get(v, CURLUPART_PASSWORD, &pw, 0);
		secrets_add(&r->sec, pw);
		char *shown = masked(r, r->url, strlen(r->url), NULL);
		if (uc != CURLUE_OK)
			host->set_error(call, "http.request: bad url '%.200s' (write http://host/path or https://host/path)",
					shown);
		else
			host->set_error(call, "http.request: url '%.200s' is not http:// or https://", shown);
		free(shown);
		curl_free(pw);
		curl_url_cleanup(v);
		goto out;
	}
	curl_free(s);
	s = NULL;
	if (curl_url_get(u, CURLUPART_PASSWORD, &s, 0) == CURLUE_OK && s && *s) {
		r->url_password = strdup(s);
		secrets_add(&r->sec, r->url_password);
	}
	curl_free(s);
	s = NULL;
	/* The query is added to the URL's text, before any fragment: setting
	 * CURLUPART_QUERY would rewrite percent-escapes in lower case. */
	if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
		host->set_error(call, "http.request: cannot build the url");
		goto out;
	}
	hbuf full = {0};
	size_t base = strcspn(s, "#");
	int sep = memchr(s, '?', base) ? '&' : '?';
	hb_add(&full, s, base);
	for (size_t i = 0; r->query && i < r->query->as.map.count; i++) {
		char num[64];
		const rbk_value *v = &r->query->as.map.values[i];
		const char *t = v->type == RBK_TYPE_NULL ? NULL : scalar_text(v, num, sizeof num);
		hb_printf(&full, "%c", sep);
		sep = '&';
		url_escape(&full, r->query->as.map.keys[i]);
		if (t) {
			hb_add(&full, "=", 1);
			url_escape(&full, t);
		}
	}
	hb_puts(&full, s + base);
	curl_free(s);
	s = NULL;
	if (full.oom || curl_url_set(u, CURLUPART_URL, full.s, 0) != CURLUE_OK) {
		host->set_error(call, "http.request: cannot add the query params to the url");
		hb_free(&full);
		goto out;
	}
	r->full_url = full.s;
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
		host->set_error(call, "http.request: cannot build the url");
		goto out;
	}
	r->shown_url = masked(r, s, strlen(s), NULL);
	rc = 0;
out:
	curl_free(s);
	curl_url_cleanup(u);
	return rc;
}

/* A URL curl reports (the effective one), without credentials, masked. */
static char *show_url(const req *r, const char *url)
{
	CURLU *u = curl_url();
	char *s = NULL, *out;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		curl_url_set(u, CURLUPART_USER, NULL, 0);
		curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
		curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
		curl_url_get(u, CURLUPART_URL, &s, 0);
	}
	out = s ? masked(r, s, strlen(s), NULL) : masked(r, url, strlen(url), NULL);
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

/* ---- the response ---- */

typedef struct {
	hbuf body;
	size_t limit;
	int truncated;
	char **names, **values; /* the headers of the last response */
	size_t nh, caph;
	int oom;
} resp;

static void resp_clear_headers(resp *p)
{
	for (size_t i = 0; i < p->nh; i++) {
		free(p->names[i]);
		free(p->values[i]);
	}
	p->nh = 0;
}

static void resp_reset(resp *p)
{
	hb_free(&p->body);
	p->truncated = 0;
	resp_clear_headers(p);
}

static void resp_free(resp *p)
{
	resp_reset(p);
	free(p->names);
	free(p->values);
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	resp *p = ud;
	size_t len = size * n;
	size_t room = p->limit > p->body.len ? p->limit - p->body.len : 0;
	if (len > room) {
		/* Keep what fits, then stop the transfer: the rest is never read. */
		hb_add(&p->body, data, room);
		p->truncated = 1;
		return 0;
	}
	hb_add(&p->body, data, len);
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	resp *p = ud;
	size_t len = size * n, end = len;
	while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n'))
		end--;
	if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* A new response (a redirect, 100 Continue): its headers only. */
		resp_clear_headers(p);
		return len;
	}
	if (len > 0 && (data[0] == ' ' || data[0] == '\t') && p->nh > 0 && end > 0) {
		/* An obsolete folded line continues the last value. */
		hbuf v = {0};
		size_t s = 0;
		while (s < end && (data[s] == ' ' || data[s] == '\t'))
			s++;
		hb_printf(&v, "%s %.*s", p->values[p->nh - 1], (int)(end - s), data + s);
		if (!v.oom) {
			free(p->values[p->nh - 1]);
			p->values[p->nh - 1] = v.s;
		} else
			hb_free(&v);
		return len;
	}
	const char *colon = memchr(data, ':', end);
	if (!colon || colon == data)
		return len;
	if (p->nh == p->caph) {
		size_t cap = p->caph ? p->caph * 2 : 16;
		char **nn = realloc(p->names, cap * sizeof *nn);
		if (nn)
			p->names = nn;
		char **nv = nn ? realloc(p->values, cap * sizeof *nv) : NULL;
		if (nv)
			p->values = nv;
		if (!nn || !nv) {
			p->oom = 1;
			return len;
		}
		p->caph = cap;
	}
	size_t nl = (size_t)(colon - data);
	const char *v = colon + 1;
	while (v < data + end && (*v == ' ' || *v == '\t'))
		v++;
	size_t vl = (size_t)(data + end - v);
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	char *name = strndup(data, nl), *value = strndup(v, vl);
	if (!name || !value) {
		free(name);
		free(value);
		p->oom = 1;
		return len;
	}
	for (char *c = name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	p->names[p->nh] = name;
	p->values[p->nh] = value;
	p->nh++;
	return len;
}

static const char *resp_header(const resp *p, const char *name)
{
	for (size_t i = 0; i < p->nh; i++)
		if (!strcmp(p->names[i], name))
			return p->values[i];
	return NULL;
}

/* The headers output: one key per name, repeated headers joined by ", ". */
static void set_headers_output(rbk_call *call, const req *r, const resp *p)
{
	const char **keys = calloc(p->nh + 1, sizeof *keys);
	rbk_value *vals = calloc(p->nh + 1, sizeof *vals);
	hbuf *texts = calloc(p->nh + 1, sizeof *texts);
	size_t n = 0;
	if (!keys || !vals || !texts)
		goto out;
	for (size_t i = 0; i < p->nh; i++) {
		size_t k = 0;
		while (k < n && strcmp(keys[k], p->names[i]))
			k++;
		if (k == n)
			keys[n++] = p->names[i];
		else
			hb_puts(&texts[k], ", ");
		hb_puts(&texts[k], p->values[i]);
	}
	for (size_t k = 0; k < n; k++) {
		size_t len;
		char *m = masked(r, hb_str(&texts[k]), texts[k].len, &len);
		hb_free(&texts[k]);
		texts[k].s = m;
		texts[k].len = len;
		vals[k].type = RBK_TYPE_STRING;
		vals[k].as.str.ptr = m;
		vals[k].as.str.len = len;
	}
out:;
	rbk_value map = {.type = RBK_TYPE_MAP};
	map.as.map.keys = keys;
	map.as.map.values = vals;
	map.as.map.count = keys && vals && texts ? n : 0;
	host->set_output(call, "headers", &map);
	for (size_t k = 0; texts && k < n; k++)
		hb_free(&texts[k]);
	free(texts);
	free(keys);
	free(vals);
}

/* Seconds asked by Retry-After (delta-seconds or an HTTP date), or -1. */
static int64_t retry_after_ms(const resp *p)
{
	const char *v = resp_header(p, "retry-after");
	if (!v || !*v)
		return -1;
	const char *c = v;
	while (isdigit((unsigned char)*c))
		c++;
	if (!*c) {
		long long s = strtoll(v, NULL, 10);
		return s > 86400 * 365 ? (int64_t)86400 * 365 * 1000 : (int64_t)s * 1000;
	}
	time_t at = curl_getdate(v, NULL);
	if (at == (time_t)-1)
		return -1;
	time_t now = time(NULL);
	return at > now ? (int64_t)(at - now) * 1000 : 0;
}

/* The first bytes of a (masked) body for an error: one line, at most
 * ERROR_BODY_BYTES bytes, cut on a character boundary. */
static void body_excerpt(const char *s, size_t len, hbuf *out)
{
	size_t n = len < ERROR_BODY_BYTES ? len : ERROR_BODY_BYTES;
	while (n < len && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char ch = c < 0x20 || c == 0x7f ? ' ' : (char)c;
		hb_add(out, &ch, 1);
	}
	if (n < len)
		hb_puts(out, "...");
}

/* ---- the request ---- */

static int is_tls_error(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS: return 1;
	default: return 0;
	}
}

/* Append one line to a header list; -1 when out of memory. */
static int add_line(struct curl_slist **l, const char *line)
{
	struct curl_slist *t = curl_slist_append(*l, line);
	if (!t)
		return -1;
	*l = t;
	return 0;
}

/* The header list curl sends, into *out. 0, or -1 after set_error. */
static int build_headers(rbk_call *call, const req *r, struct curl_slist **out)
{
	struct curl_slist *l = NULL;
	hbuf line = {0};
	int bad = 0;
	for (size_t i = 0; r->headers && i < r->headers->as.map.count && !bad; i++) {
		char num[64];
		const char *k = r->headers->as.map.keys[i];
		const char *v = scalar_text(&r->headers->as.map.values[i], num, sizeof num);
		line.len = 0;
		if (v && *v)
			hb_printf(&line, "%s: %s", k, v);
		else
			hb_printf(&line, "%s;", k); /* curl's way to send an empty header */
		bad = line.oom || add_line(&l, hb_str(&line)) < 0;
	}
	/* JSON says so; a plain body is not claimed to be a form (curl's default). */
	if (!bad && !has_header(r, "content-type"))
		bad = add_line(&l, r->payload ? "Content-Type: application/json" : "Content-Type:") < 0;
	/* No "Expect: 100-continue" round trip before large bodies. */
	if (!bad && !has_header(r, "expect"))
		bad = add_line(&l, "Expect:") < 0;
	hb_free(&line);
	if (bad) {
		curl_slist_free_all(l);
		host->set_error(call, "http.request: out of memory");
		return -1;
	}
	*out = l;
	return 0;
}

static void setup(CURL *h, const req *r, struct curl_slist *hdrs, resp *p, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_URL, r->full_url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rbk-http/1.0.0");
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)r->max_redirects);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, r->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, r->verify_tls ? 2L : 0L);
	if (r->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
	if (r->auth == AUTH_BASIC) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, r->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, r->password ? r->password : "");
	} else if (r->auth == AUTH_BEARER) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, r->token);
	}
	const char *data = r->payload ? r->payload : r->body;
	size_t len = r->payload ? r->payload_len : r->body_len;
	if (!strcmp(r->method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (!strcmp(r->method, "POST") || data || !strcmp(r->method, "PUT") || !strcmp(r->method, "PATCH")) {
		/* A body, possibly empty (sent with Content-Length: 0). */
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, data ? data : "");
		if (strcmp(r->method, "POST"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (!strcmp(r->method, "DELETE"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	else
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
}

/* The outputs of a response: status, headers, body, body_truncated, url. */
static void set_response_outputs(rbk_call *call, const req *r, CURL *h, const resp *p, long status)
{
	host->set_output_int(call, "status", status);
	set_headers_output(call, r, p);
	size_t len;
	char *body = masked(r, hb_str(&p->body), p->body.len, &len);
	/* A response that carries a credential (a login's token): rbk masks it
	 * everywhere, and what the runbook computes from it. */
	if (r->secret_body && len && RBK_HOST_HAS(host, mark_secret))
		host->mark_secret(call, body, len);
	host->set_output_string(call, "body", body, len);
	free(body);
	host->set_output_bool(call, "body_truncated", p->truncated);
	char *eff = NULL;
	curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
	char *shown = eff ? show_url(r, eff) : NULL;
	host->set_output_string(call, "url", shown ? shown : r->shown_url, strlen(shown ? shown : r->shown_url));
	free(shown);
}

static int request_run(rbk_call *call, const rbk_value *args)
{
	req r;
	if (parse_args(call, args, &r) < 0) {
		req_free(&r);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->set_error(call, "http.request: libcurl could not be initialised");
		req_free(&r);
		return 1;
	}
	int rc = 1;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	resp p = {.limit = (size_t)r.max_body};
	char errbuf[CURL_ERROR_SIZE];
	if (!h) {
		host->set_error(call, "http.request: libcurl could not be initialised");
		goto out;
	}
	if (build_url(call, &r) < 0 || build_headers(call, &r, &hdrs) < 0)
		goto out;
	setup(h, &r, hdrs, &p, errbuf);
	const char *m = r.method, *u = r.shown_url;
	int64_t start = now_ms(), wait = FIRST_RETRY_WAIT_MS;
	for (int attempt = 1;; attempt++) {
		int64_t limit = r.timeout > 0 ? r.timeout : -1, left = host->time_left_ms(call);
		int by_step = 0;
		if (left >= 0 && (limit < 0 || left < limit)) {
			limit = left;
			by_step = 1;
		}
		if (limit == 0) {
			host->set_output_int(call, "duration_ms", now_ms() - start);
			host->set_error(call, "http %s %s: no time left before the step's timeout", m, u);
			goto out;
		}
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, limit > 0 ? (long)limit : 0L);
		int64_t ct = r.connect_timeout;
		if (limit > 0 && (ct <= 0 || ct > limit))
			ct = limit;
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ct > 0 ? (long)ct : 0L);
		resp_reset(&p);
		errbuf[0] = '\0';
		int64_t t0 = now_ms();
		CURLcode c = curl_easy_perform(h);
		if (c == CURLE_WRITE_ERROR && p.truncated)
			c = CURLE_OK; /* stopped on purpose at max_body */
		if (p.oom || p.body.oom) {
			host->set_error(call, "http %s %s: out of memory while reading the response", m, u);
			goto out;
		}
		int64_t now = now_ms(), t = now - t0;
		long status = 0;
		if (c == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		int retry_status = c == CURLE_OK && !status_match(&r.expect, status) && (status == 429 || status == 503);
		int retry_conn = c == CURLE_COULDNT_CONNECT;
		if (attempt <= r.retries && (retry_status || retry_conn)) {
			int64_t ra = retry_status ? retry_after_ms(&p) : -1, delay = ra >= 0 ? ra : wait;
			if (delay > r.max_retry_wait)
				delay = r.max_retry_wait;
			left = host->time_left_ms(call);
			if (left < 0 || delay < left) {
				char what[64];
				if (retry_status)
					snprintf(what, sizeof what, "status %ld", status);
				else
					snprintf(what, sizeof what, "cannot connect");
				host->log(call, RBK_LOG_WARN, "%s %s: %s after %lldms; retry %d of %lld in %lldms%s", m, u,
					  what, (long long)t, attempt, (long long)r.retries, (long long)delay,
					  ra >= 0 ? " (Retry-After)" : "");
				sleep_ms(delay);
				if (ra < 0)
					wait = wait <= r.max_retry_wait / 2 ? wait * 2 : r.max_retry_wait;
				continue;
			}
			host->log(call, RBK_LOG_WARN, "%s %s: no retry: waiting %lldms would pass the step's timeout", m, u,
				  (long long)delay);
		}
		char tries[48] = "";
		if (attempt > 1)
			snprintf(tries, sizeof tries, " (after %d attempts)", attempt);
		char *detail = masked(&r, errbuf[0] ? errbuf : curl_easy_strerror(c),
				      strlen(errbuf[0] ? errbuf : curl_easy_strerror(c)), NULL);
		host->set_output_int(call, "duration_ms", now - start);
		if (c == CURLE_OPERATION_TIMEDOUT && ct > 0 && (limit <= 0 || (ct < limit && t < limit))) {
			/* connect_timeout fired, before the attempt's own limit */
			host->set_output_string(call, "url", u, strlen(u));
			host->set_error(call, "http %s %s: timed out connecting after %lldms%s: %s", m, u, (long long)ct,
					tries, detail);
		} else if (c == CURLE_OPERATION_TIMEDOUT) {
			host->set_output_string(call, "url", u, strlen(u));
			host->set_error(call, "http %s %s: timed out after %lldms%s%s: %s", m, u, (long long)limit,
					by_step ? " (the step's timeout)" : "", tries, detail);
		} else if (c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_COULDNT_RESOLVE_PROXY) {
			host->set_output_string(call, "url", u, strlen(u));
			host->set_error(call, "http %s %s: cannot connect%s: %s", m, u, tries, detail);
		} else if (is_tls_error(c)) {
			host->set_output_string(call, "url", u, strlen(u));
			host->set_error(call, "http %s %s: tls error%s: %s", m, u, tries, detail);
		} else if (c != CURLE_OK) {
			host->set_output_string(call, "url", u, strlen(u));
			host->set_error(call, "http %s %s: request failed%s: %s", m, u, tries, detail);
		} else {
			set_response_outputs(call, &r, h, &p, status);
			host->log(call, RBK_LOG_INFO, "%s %s: status %ld, %zu bytes%s in %lldms", m, u, status, p.body.len,
				  p.truncated ? " (truncated)" : "", (long long)t);
			if (status_match(&r.expect, status))
				rc = 0;
			else {
				hbuf want = {0}, ex = {0};
				size_t blen;
				char *b = masked(&r, hb_str(&p.body), p.body.len, &blen);
				status_text(&r.expect, &want);
				body_excerpt(b, blen, &ex);
				host->set_error(call, "http %s %s: status %ld, expected %s%s; body: %s", m, u, status,
						hb_str(&want), tries, blen ? hb_str(&ex) : "(empty)");
				free(b);
				hb_free(&want);
				hb_free(&ex);
			}
		}
		free(detail);
		break;
	}
out:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	resp_free(&p);
	req_free(&r);
	curl_global_cleanup();
	return rc;
}

/* --dry-run: what would be sent, with every secret masked. */
/* Under --dry-run a GET or HEAD is sent for real: it only reads, and the
 * run's guards then see the answer (check mode, docs/cli.md); any other
 * method is only described. */
static int request_plan(rbk_call *call, const rbk_value *args)
{
	const rbk_value *m = host->arg(args, "method");
	const char *method = m && m->type == RBK_TYPE_STRING ? m->as.str.ptr : "GET";
	if (!strcasecmp(method, "GET") || !strcasecmp(method, "HEAD"))
		return request_run(call, args);
	req r;
	int rc = 1;
	if (parse_args(call, args, &r) < 0) {
		req_free(&r);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->set_error(call, "http.request: libcurl could not be initialised");
		req_free(&r);
		return 1;
	}
	if (build_url(call, &r) < 0)
		goto out;
	host->log(call, RBK_LOG_INFO, "would send %s %s", r.method, r.shown_url);
	for (size_t i = 0; r.headers && i < r.headers->as.map.count; i++) {
		char num[64];
		const char *k = r.headers->as.map.keys[i];
		const char *v = scalar_text(&r.headers->as.map.values[i], num, sizeof num);
		int hide = !strcasecmp(k, "authorization") || !strcasecmp(k, "proxy-authorization") ||
			   !strcasecmp(k, "cookie");
		char *mv = masked(&r, v ? v : "", v ? strlen(v) : 0, NULL);
		host->log(call, RBK_LOG_INFO, "  header %s: %s", k, hide ? "***" : mv);
		free(mv);
	}
	if (r.auth == AUTH_BASIC) {
		char *mu = masked(&r, r.username, strlen(r.username), NULL);
		host->log(call, RBK_LOG_INFO, "  header Authorization: Basic *** (user %s)", mu);
		free(mu);
	} else if (r.auth == AUTH_BEARER)
		host->log(call, RBK_LOG_INFO, "  header Authorization: Bearer ***");
	if (r.payload)
		host->log(call, RBK_LOG_INFO, "  json body of %zu bytes", r.payload_len);
	else if (r.body)
		host->log(call, RBK_LOG_INFO, "  body of %zu bytes", r.body_len);
	rc = 0;
out:
	req_free(&r);
	curl_global_cleanup();
	return rc;
}

static int request_entry(rbk_call *call, const rbk_value *args)
{
	return host->dry_run(call) ? request_plan(call, args) : request_run(call, args);
}

static const rbk_param_decl request_params[] = {
	{"method", RBK_TYPE_STRING, 0, "GET", "GET, HEAD, POST, PUT, PATCH or DELETE"},
	{"url", RBK_TYPE_STRING, 1, NULL, "http:// or https:// URL"},
	{"headers", RBK_TYPE_MAP, 0, NULL, "request headers: name -> value"},
	{"query", RBK_TYPE_MAP, 0, NULL, "query params, URL-encoded and appended to the url"},
	{"body", RBK_TYPE_STRING, 0, NULL, "request body, sent as is"},
	{"json", RBK_TYPE_ANY, 0, NULL, "request body encoded as JSON (Content-Type: application/json)"},
	{"auth", RBK_TYPE_STRING, 0, "from the params given", "basic, bearer or none"},
	{"username", RBK_TYPE_STRING, 0, NULL, "user for auth basic"},
	{"password", RBK_TYPE_STRING, 0, NULL, "password for auth basic (secret)"},
	{"token", RBK_TYPE_STRING, 0, NULL, "token for auth bearer (secret)"},
	{"expect_status", RBK_TYPE_ANY, 0, "200-299", "statuses that count as success: a list of ints or \"200-299\""},
	{"connect_timeout", RBK_TYPE_DURATION, 0, "10s", "limit to establish the connection"},
	{"timeout", RBK_TYPE_DURATION, 0, "30s", "limit of each attempt, whole transfer; 0s: none"},
	{"retries", RBK_TYPE_INT, 0, "0", "extra attempts after a 429, a 503 or a refused connection"},
	{"max_retry_wait", RBK_TYPE_DURATION, 0, "30s", "longest wait between attempts (caps Retry-After)"},
	{"verify_tls", RBK_TYPE_BOOL, 0, "true", "check the server's certificate and name"},
	{"ca_file", RBK_TYPE_STRING, 0, "system CAs", "PEM file of the CAs to trust"},
	{"follow_redirects", RBK_TYPE_BOOL, 0, "false", "follow 3xx responses"},
	{"max_redirects", RBK_TYPE_INT, 0, "10", "most redirects followed"},
	{"max_body", RBK_TYPE_INT, 0, "1048576", "bytes of the response body kept; the transfer stops there"},
	{"secret_body", RBK_TYPE_BOOL, 0, "false", "the response body is a secret (a token): masked wherever rbk records or shows it"},
	{NULL, 0, 0, NULL, NULL}};

static const rbk_output_decl request_outputs[] = {
	{"status", RBK_TYPE_INT, "HTTP status of the last response"},
	{"headers", RBK_TYPE_MAP, "response headers, names in lower case"},
	{"body", RBK_TYPE_STRING, "response body (at most max_body bytes)"},
	{"body_truncated", RBK_TYPE_BOOL, "true when the body was longer than max_body"},
	{"url", RBK_TYPE_STRING, "the effective URL (after redirects), without credentials"},
	{"duration_ms", RBK_TYPE_INT, "wall time of all attempts"},
	{NULL, 0, NULL}};

/* Not idempotent as an action: a POST or PATCH may not be repeated. A
 * runbook marks a GET, HEAD, PUT or DELETE state `idempotent: true`. */
/* GET, HEAD, PUT, DELETE (and OPTIONS) are safe to send again; POST and
 * PATCH are not: after a crash, rbk resends only the former by itself. */
static int request_is_idempotent(const rbk_value *args)
{
	const rbk_value *m = host->arg(args, "method");
	const char *method = m && m->type == RBK_TYPE_STRING ? m->as.str.ptr : "GET";
	static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
	for (size_t i = 0; i < sizeof safe / sizeof *safe; i++)
		if (!strcasecmp(method, safe[i]))
			return 1;
	return 0;
}

static const rbk_action actions[] = {
	{"request", "send an HTTP request and check its status", request_params, request_outputs, 0, request_entry,
	 request_plan, request_is_idempotent},
};

static const rbk_plugin plugin = {"http", "1.0.0", actions, sizeof actions / sizeof *actions};

int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out)
{
	if (h->abi_major != RBK_PLUGIN_ABI_MAJOR || h->struct_size < sizeof(rbk_host))
		return -1;
	host = h;
	*out = &plugin;
	return 0;
}
