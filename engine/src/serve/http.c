/* http: rbk serve on GNU libmicrohttpd (serve.h). The only file that
 * includes microhttpd.h.
 *
 * One thread per connection (the event stream of a live run blocks on its
 * rbk log --follow); the one store handle the server keeps, for checking
 * credentials, is shared under a mutex. */
#include "serve/serve.h"
#include "auth/users.h"
#include "base/exitcode.h"
#include "base/mem.h"
#include "lang/json.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The page: console.html, console.js and console.css, built in (assets.c). */
extern const char rbk_serve_html[], rbk_serve_js[], rbk_serve_css[];
extern const unsigned rbk_serve_html_len, rbk_serve_js_len, rbk_serve_css_len;

enum { MAX_BODY = 64 * 1024, MAX_OUTPUT = 256 * 1024 * 1024 };
/* Failed logins: at most LOGIN_TRIES per client address in LOGIN_WINDOW s. */
enum { LOGIN_TRIES = 5, LOGIN_WINDOW = 60, LOGIN_SLOTS = 256 };

static struct {
	const rbk_serve_opts *o;
	char exe[PATH_MAX];
	rbk_store *store;
	pthread_mutex_t lock;
	bool tls;
	struct {
		char addr[64];
		time_t start;
		int fails;
	} fails[LOGIN_SLOTS];
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Written to when the server stops: live streams wake up and end. */
static int stop_pipe[2] = {-1, -1};

/* ---- children: the rbk that does the work ---- */

typedef struct {
	int code; /* exit code; -1 when it could not run */
	rbk_buf out, err;
} child;

static void child_free(child *c)
{
	rbk_buf_free(&c->out);
	rbk_buf_free(&c->err);
}

/* Start rbk with args (NULL-terminated, without the program); a credential
 * line, if any, goes to the child's fd 3. *out_fd: its stdout. */
static pid_t start_rbk(const char *const *args, const char *cred, int *out_fd, int *err_fd)
{
	const char *argv[40];
	size_t n = 0;
	argv[n++] = "rbk";
	for (; *args && n < 36; args++)
		argv[n++] = *args;
	if (srv.o->home) {
		argv[n++] = "--home";
		argv[n++] = srv.o->home;
	}
	if (cred)
		argv[n++] = "--credential-fd=3";
	argv[n] = NULL;
	int o[2], e[2], c[2] = {-1, -1};
	if (pipe2(o, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(e, O_CLOEXEC) < 0 || (cred && pipe2(c, O_CLOEXEC) < 0)) {
		close(o[0]), close(o[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec: the server has threads. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = {0};
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGPIPE, &dfl, NULL);
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(o[1], 1);
		/* stderr unread (a stream): /dev/null, never a closed pipe, which
		 * would make the child stop writing. */
		if (err_fd)
			dup2(e[1], 2);
		else
			dup2(open("/dev/null", O_WRONLY), 2);
		if (cred)
			dup2(c[0], 3);
		execv(srv.exe, (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	if (cred) {
		close(c[0]);
		if (pid > 0) {
			ssize_t w = write(c[1], cred, strlen(cred));
			(void)w;
		}
		close(c[1]);
	}
	if (pid < 0) {
		close(o[0]);
		close(e[0]);
		return -1;
	}
	*out_fd = o[0];
	if (err_fd)
		*err_fd = e[0];
	else
		close(e[0]);
	return pid;
}

/* Run rbk to its end, collecting what it prints. */
static void run_rbk(const char *const *args, const char *cred, child *r)
{
	memset(r, 0, sizeof *r);
	int of, ef;
	pid_t pid = start_rbk(args, cred, &of, &ef);
	if (pid < 0) {
		r->code = -1;
		rbk_buf_printf(&r->err, "cannot start rbk: %s", strerror(errno));
		return;
	}
	struct pollfd p[2] = {{of, POLLIN, 0}, {ef, POLLIN, 0}};
	int open_fds = 2;
	char chunk[65536];
	while (open_fds > 0) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, chunk, sizeof chunk);
			if (n > 0) {
				rbk_buf *b = i == 0 ? &r->out : &r->err;
				if (b->len + (size_t)n <= MAX_OUTPUT)
					rbk_buf_add(b, chunk, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			}
		}
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- requests ---- */

typedef struct {
	rbk_buf body;
	bool too_big;
	/* who: set by authenticate */
	char *user;
	rbk_role role;
	char *cred; /* the line a child acting for them gets */
	bool by_cookie;
	char *sid;
} request;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)c, (void)why;
	request *r = *con_cls;
	if (!r)
		return;
	rbk_buf_free(&r->body);
	rbk_free(r->user);
	rbk_free(r->cred);
	rbk_free(r->sid);
	rbk_free(r);
	*con_cls = NULL;
}

/* Headers every answer carries: nothing is framed, sniffed or cached, and
 * the page runs only its own script. */
static void harden(struct MHD_Response *res, bool page)
{
	MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(res, "X-Frame-Options", page ? "DENY" : "SAMEORIGIN");
	MHD_add_response_header(res, "Cache-Control", "no-store");
	MHD_add_response_header(res, "Content-Security-Policy",
				page ? "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
				       "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
				       "frame-ancestors 'none'"
				     : "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox");
	if (srv.tls)
		MHD_add_response_header(res, "Strict-Transport-Security", "max-age=31536000");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype, const void *data,
				size_t len, bool page, const char *cookie)
{
	struct MHD_Response *res = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, "Content-Type", ctype);
	harden(res, page);
	if (cookie)
		MHD_add_response_header(res, "Set-Cookie", cookie);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(res, "WWW-Authenticate", "Bearer realm=\"rbk\"");
	enum MHD_Result ret = MHD_queue_response(c, status, res);
	MHD_destroy_response(res);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const rbk_val *v, const char *cookie)
{
	char *t = rbk_json_encode(v);
	enum MHD_Result r = send_buf(c, status, "application/json", t, strlen(t), false, cookie);
	rbk_free(t);
	return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "error", rbk_val_str(msg));
	enum MHD_Result r = send_json(c, status, &m, NULL);
	rbk_val_free(&m);
	return r;
}

/* The HTTP status for an rbk exit code (docs/console.md): what the CLI
 * refused as bad input is 400, or 404 for a run or runbook that does not
 * exist, or 403 for a person the approval does not accept; the store is 503. */
static unsigned status_for(const child *r)
{
	const char *e = r->err.s ? r->err.s : "";
	switch (r->code) {
	case RBK_EXIT_OK:
	case RBK_EXIT_FAILED:
	case RBK_EXIT_ROLLED_BACK:
	case RBK_EXIT_WAITING: return MHD_HTTP_OK;
	case RBK_EXIT_BADINPUT:
		if (strstr(e, "does not exist") || strstr(e, "no runbook named"))
			return MHD_HTTP_NOT_FOUND;
		if (strstr(e, "may not answer this approval") || strstr(e, "needs someone else") ||
		    strstr(e, "console credential"))
			return MHD_HTTP_FORBIDDEN;
		return MHD_HTTP_BAD_REQUEST;
	case RBK_EXIT_STORE: return MHD_HTTP_SERVICE_UNAVAILABLE;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

/* The child's stderr without its "rbk: error: " prefixes. */
static char *child_message(const child *r)
{
	rbk_buf b = {0};
	const char *s = r->err.s ? r->err.s : "";
	for (const char *line = s; *line;) {
		size_t n = strcspn(line, "\n");
		const char *t = line;
		if (!strncmp(t, "rbk: error: ", 12))
			t += 12, n -= 12;
		if (n) {
			if (b.len)
				rbk_buf_puts(&b, "\n");
			rbk_buf_add(&b, t, n);
		}
		line = t + n + (t[n] == '\n');
	}
	return b.s ? b.s : rbk_xstrdup("failed");
}

/* Answer with what rbk printed: its JSON as is when it succeeded (the API
 * mirrors --json), else {"error", "exit"}. */
static enum MHD_Result send_child(struct MHD_Connection *c, const child *r, const char *ctype, unsigned ok_status)
{
	unsigned st = status_for(r);
	/* Waiting without an answer: the run needs a decision first. */
	if (st == MHD_HTTP_OK && !r->out.len && r->code == RBK_EXIT_WAITING)
		st = MHD_HTTP_CONFLICT;
	bool fine = st == MHD_HTTP_OK && r->out.len;
	if (fine)
		return send_buf(c, ok_status, ctype, r->out.s, r->out.len, false, NULL);
	rbk_val m = rbk_val_map();
	char *msg = child_message(r);
	rbk_val_map_set(&m, "error", rbk_val_str_take(msg));
	rbk_val_map_set(&m, "exit", rbk_val_int(r->code));
	enum MHD_Result ret = send_json(c, st == MHD_HTTP_OK ? MHD_HTTP_INTERNAL_SERVER_ERROR : st, &m, NULL);
	rbk_val_free(&m);
	return ret;
}

static const char *client_addr(struct MHD_Connection *c, char *buf, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(buf, n, "?");
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)n);
	}
	return buf;
}

/* Seconds this address must still wait, 0 if it may try (lock held). */
static int login_blocked(const char *addr)
{
	time_t now = time(NULL);
	for (int i = 0; i < LOGIN_SLOTS; i++)
		if (!strcmp(srv.fails[i].addr, addr) && now - srv.fails[i].start < LOGIN_WINDOW &&
		    srv.fails[i].fails >= LOGIN_TRIES)
			return (int)(LOGIN_WINDOW - (now - srv.fails[i].start));
	return 0;
}

static void login_failed(const char *addr)
{
	time_t now = time(NULL);
	int slot = -1, oldest = 0;
	for (int i = 0; i < LOGIN_SLOTS && slot < 0; i++)
		if (!strcmp(srv.fails[i].addr, addr))
			slot = i;
	for (int i = 0; i < LOGIN_SLOTS && slot < 0; i++)
		if (srv.fails[i].start < srv.fails[oldest].start)
			oldest = i;
	if (slot < 0) {
		slot = oldest;
		snprintf(srv.fails[slot].addr, sizeof srv.fails[slot].addr, "%s", addr);
		srv.fails[slot].fails = 0;
		srv.fails[slot].start = now;
	}
	if (now - srv.fails[slot].start >= LOGIN_WINDOW) {
		srv.fails[slot].start = now;
		srv.fails[slot].fails = 0;
	}
	srv.fails[slot].fails++;
}

static enum MHD_Result too_many(struct MHD_Connection *c, int wait)
{
	char msg[128], after[16];
	snprintf(msg, sizeof msg, "too many failed logins from this address: try again in %d s", wait);
	snprintf(after, sizeof after, "%d", wait);
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "error", rbk_val_str(msg));
	char *t = rbk_json_encode(&m);
	rbk_val_free(&m);
	struct MHD_Response *res = MHD_create_response_from_buffer(strlen(t), t, MHD_RESPMEM_MUST_COPY);
	rbk_free(t);
	MHD_add_response_header(res, "Content-Type", "application/json");
	MHD_add_response_header(res, "Retry-After", after);
	harden(res, false);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_TOO_MANY_REQUESTS, res);
	MHD_destroy_response(res);
	return ret;
}

/* Who sent this request: a bearer token, else the session cookie. Returns
 * 0 (r->role may be NONE: nobody), 429 when the address is locked out, or
 * 503 when the store cannot be read. A wrong token counts as a failed login. */
static int authenticate(struct MHD_Connection *c, request *r, int *wait)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *sid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "rbk_session");
	char addr[64];
	client_addr(c, addr, sizeof addr);
	rbk_err e = {0};
	int rc = 1;
	pthread_mutex_lock(&srv.lock);
	if (auth && !strncasecmp(auth, "Bearer ", 7)) {
		if ((*wait = login_blocked(addr))) {
			pthread_mutex_unlock(&srv.lock);
			return 429;
		}
		rc = rbk_users_check_token(srv.store, auth + 7, &r->user, &r->role, &e);
		if (rc == 1)
			login_failed(addr);
		else if (rc == 0)
			r->cred = rbk_xasprintf("bearer %s", auth + 7);
	} else if (sid) {
		rc = rbk_users_check_session(srv.store, sid, &r->user, &r->role, &e);
		if (rc == 0) {
			r->cred = rbk_xasprintf("session %s", sid);
			r->by_cookie = true;
			r->sid = rbk_xstrdup(sid);
		}
	}
	pthread_mutex_unlock(&srv.lock);
	if (rc < 0) {
		fprintf(stderr, "rbk serve: cannot check a credential: %s\n", e.msg);
		return 503;
	}
	if (rc == 1) {
		r->role = RBK_ROLE_NONE;
		rbk_free(r->user);
		r->user = NULL;
	}
	return 0;
}

/* ---- the live timeline: server-sent events from rbk log --follow --json ---- */

typedef struct {
	pid_t pid;
	int fd;
	rbk_buf pending; /* bytes read, up to the last whole line */
	int phase;	 /* 0 following, 1 end sent */
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	stream *s = cls;
	if (s->phase == 1)
		return MHD_CONTENT_READER_END_OF_STREAM;
	for (;;) {
		/* A whole line waiting: one event. */
		char *nl = s->pending.s ? memchr(s->pending.s, '\n', s->pending.len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - s->pending.s);
			if (n + 16 > max)
				n = max - 16; /* a line longer than the buffer goes in parts */
			memcpy(buf, "data: ", 6);
			memcpy(buf + 6, s->pending.s, n);
			memcpy(buf + 6 + n, "\n\n", 2);
			size_t used = n + (s->pending.s[n] == '\n');
			memmove(s->pending.s, s->pending.s + used, s->pending.len - used);
			s->pending.len -= used;
			return (ssize_t)(n + 8);
		}
		struct pollfd p[2] = {{s->fd, POLLIN, 0}, {stop_pipe[0], POLLIN, 0}};
		int ready = poll(p, 2, 15000);
		if (p[1].revents)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (ready == 0) {
			/* A comment keeps proxies from closing an idle stream and
			 * tells us when the browser has gone. */
			memcpy(buf, ": waiting\n\n", 11);
			return 11;
		}
		char chunk[16384];
		ssize_t n = ready > 0 ? read(s->fd, chunk, sizeof chunk) : ready < 0 && errno == EINTR ? (errno = EINTR, -1) : 0;
		if (n > 0) {
			rbk_buf_add(&s->pending, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* The run ended (or rbk log failed): say so, with its exit code. */
		int st = 0;
		waitpid(s->pid, &st, 0);
		s->pid = -1;
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		s->phase = 1;
		return snprintf(buf, max, "event: end\ndata: {\"exit\": %d}\n\n", code);
	}
}

static void stream_free(void *cls)
{
	stream *s = cls;
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	close(s->fd);
	rbk_buf_free(&s->pending);
	rbk_free(s);
}

static enum MHD_Result send_stream(struct MHD_Connection *c, const char *run)
{
	const char *args[] = {"log", run, "--follow", "--json", NULL};
	int fd;
	pid_t pid = start_rbk(args, NULL, &fd, NULL);
	if (pid < 0)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start rbk log --follow");
	stream *s = rbk_xcalloc(1, sizeof *s);
	s->pid = pid;
	s->fd = fd;
	struct MHD_Response *res = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32768, stream_read, s, stream_free);
	MHD_add_response_header(res, "Content-Type", "text/event-stream");
	harden(res, false);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, res);
	MHD_destroy_response(res);
	return ret;
}

/* ---- routes ---- */

/* A run number in a path segment, else 0. */
static long long run_id(const char *s, const char **rest)
{
	char *end;
	long long id = strtoll(s, &end, 10);
	if (end == s || id <= 0 || (*end && *end != '/'))
		return 0;
	*rest = end;
	return id;
}

/* A runbook name fit for the command line: as on the search path, never a
 * file (the console launches what is installed, nothing else). */
static bool runbook_name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= 128 && s[0] != '-' && s[0] != '.' && s[0] != '_' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n &&
	       !strstr(s, ".yaml") && !strstr(s, ".yml");
}

static enum MHD_Result page(struct MHD_Connection *c, const char *url)
{
	if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
		return send_buf(c, MHD_HTTP_OK, "text/html; charset=utf-8", rbk_serve_html, rbk_serve_html_len, true, NULL);
	if (!strcmp(url, "/console.js"))
		return send_buf(c, MHD_HTTP_OK, "text/javascript; charset=utf-8", rbk_serve_js, rbk_serve_js_len, true, NULL);
	if (!strcmp(url, "/console.css"))
		return send_buf(c, MHD_HTTP_OK, "text/css; charset=utf-8", rbk_serve_css, rbk_serve_css_len, true, NULL);
	return send_error(c, MHD_HTTP_NOT_FOUND, "no such page");
}

static enum MHD_Result me(struct MHD_Connection *c, const request *r, const char *cookie)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "user", r->user ? rbk_val_str(r->user) : rbk_val_null());
	rbk_val_map_set(&m, "role", rbk_val_str(r->user ? rbk_users_role_name(r->role) : "viewer"));
	if (r->by_cookie && r->sid) {
		char csrf[65];
		rbk_users_csrf(r->sid, csrf);
		rbk_val_map_set(&m, "csrf", rbk_val_str(csrf));
	}
	rbk_val_map_set(&m, "public", rbk_val_bool(!r->user));
	enum MHD_Result ret = send_json(c, MHD_HTTP_OK, &m, cookie);
	rbk_val_free(&m);
	return ret;
}

static char *cookie_for(const char *sid, int64_t max_age)
{
	return rbk_xasprintf("rbk_session=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", sid, (long long)max_age,
			     srv.tls ? "; Secure" : "");
}

/* POST /login {"token": "rbk_..."}: a session cookie for that user. */
static enum MHD_Result login(struct MHD_Connection *c, request *r, const rbk_val *body)
{
	char addr[64];
	client_addr(c, addr, sizeof addr);
	const rbk_val *tok = body ? rbk_val_map_get(body, "token") : NULL;
	pthread_mutex_lock(&srv.lock);
	int wait = login_blocked(addr);
	if (wait) {
		pthread_mutex_unlock(&srv.lock);
		return too_many(c, wait);
	}
	rbk_err e = {0};
	char *name = NULL, *sid = NULL;
	rbk_role role = RBK_ROLE_NONE;
	int rc = tok && tok->t == RBK_V_STR ? rbk_users_check_token(srv.store, tok->u.s.s, &name, &role, &e) : 1;
	if (rc == 1)
		login_failed(addr);
	if (rc == 0 && rbk_users_session_new(srv.store, name, srv.o->session_ttl_s, &sid, &e) < 0)
		rc = -1;
	pthread_mutex_unlock(&srv.lock);
	if (rc != 0) {
		rbk_free(name);
		return rc < 0 ? send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, e.msg)
			      : send_error(c, MHD_HTTP_UNAUTHORIZED, "this token is nobody's");
	}
	rbk_free(r->user);
	r->user = name;
	r->role = role;
	r->by_cookie = true;
	rbk_free(r->sid);
	r->sid = sid;
	char *cookie = cookie_for(sid, srv.o->session_ttl_s);
	enum MHD_Result ret = me(c, r, cookie);
	rbk_free(cookie);
	return ret;
}

static enum MHD_Result logout(struct MHD_Connection *c, request *r)
{
	rbk_err e = {0};
	int rc = 0;
	if (r->sid) {
		pthread_mutex_lock(&srv.lock);
		rc = rbk_users_session_end(srv.store, r->sid, &e);
		pthread_mutex_unlock(&srv.lock);
	}
	if (rc < 0)
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, e.msg);
	char *cookie = cookie_for("", 0);
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "user", rbk_val_null());
	enum MHD_Result ret = send_json(c, MHD_HTTP_OK, &m, cookie);
	rbk_val_free(&m);
	rbk_free(cookie);
	return ret;
}

/* A param value from JSON as -p takes it. */
static char *param_text(const rbk_val *v)
{
	if (v->t == RBK_V_STR)
		return rbk_xstrdup(v->u.s.s);
	if (v->t == RBK_V_BOOL)
		return rbk_xstrdup(v->u.b ? "true" : "false");
	if (v->t == RBK_V_INT || v->t == RBK_V_NUM)
		return rbk_val_to_text(v);
	return NULL;
}

/* POST /api/runs {"runbook": NAME, "params": {...}}: rbk run NAME --detach. */
static enum MHD_Result launch(struct MHD_Connection *c, const request *r, const rbk_val *body)
{
	const rbk_val *name = body ? rbk_val_map_get(body, "runbook") : NULL, *params = body ? rbk_val_map_get(body, "params") : NULL;
	if (!name || name->t != RBK_V_STR || !runbook_name_ok(name->u.s.s))
		return send_error(c, MHD_HTTP_BAD_REQUEST, "give \"runbook\": the name of a runbook on the server's path");
	if (params && params->t != RBK_V_MAP)
		return send_error(c, MHD_HTTP_BAD_REQUEST, "\"params\" is an object of name: value");
	size_t np = params ? params->u.map.n : 0;
	if (np > 16)
		return send_error(c, MHD_HTTP_BAD_REQUEST, "at most 16 params");
	const char *args[40];
	char *owned[16] = {0};
	size_t n = 0;
	args[n++] = "run";
	args[n++] = name->u.s.s;
	enum MHD_Result ret;
	for (size_t i = 0; i < np; i++) {
		char *v = param_text(&params->u.map.vals[i]);
		if (!v) {
			ret = send_error(c, MHD_HTTP_BAD_REQUEST, "a param's value is a string, a number or a boolean");
			goto out;
		}
		owned[i] = rbk_xasprintf("--param=%s=%s", params->u.map.keys[i], v);
		rbk_free(v);
		args[n++] = owned[i];
	}
	args[n++] = "--detach";
	args[n++] = "--json";
	args[n] = NULL;
	child ch;
	run_rbk(args, r->cred, &ch);
	ret = send_child(c, &ch, "application/json", MHD_HTTP_CREATED);
	child_free(&ch);
out:
	for (size_t i = 0; i < np; i++)
		rbk_free(owned[i]);
	return ret;
}

/* POST /api/runs/N/approve|reject|abort|resume: recorded with the person as
 * the actor, then handed to the agents (--handoff). */
static enum MHD_Result act(struct MHD_Connection *c, const request *r, const char *id, const char *verb,
			   const rbk_val *body)
{
	const rbk_val *comment = body ? rbk_val_map_get(body, "comment") : NULL;
	const rbk_val *rollback = body ? rbk_val_map_get(body, "rollback") : NULL;
	const rbk_val *retry = body ? rbk_val_map_get(body, "retry_step") : NULL;
	const rbk_val *mark = body ? rbk_val_map_get(body, "mark_step") : NULL;
	const char *args[12];
	size_t n = 0;
	char *copt = NULL, *mopt = NULL;
	args[n++] = verb;
	args[n++] = id;
	if (!strcmp(verb, "approve") || !strcmp(verb, "reject")) {
		if (comment && comment->t == RBK_V_STR && comment->u.s.len)
			args[n++] = copt = rbk_xasprintf("--comment=%s", comment->u.s.s);
	} else if (!strcmp(verb, "abort")) {
		if (rollback && rbk_val_truthy(rollback))
			args[n++] = "--rollback";
	} else if (!strcmp(verb, "resume")) {
		if (retry && rbk_val_truthy(retry))
			args[n++] = "--retry-step";
		if (mark && mark->t == RBK_V_STR) {
			if (strcmp(mark->u.s.s, "success") != 0 && strcmp(mark->u.s.s, "failure") != 0)
				return send_error(c, MHD_HTTP_BAD_REQUEST, "\"mark_step\" is success or failure");
			args[n++] = mopt = rbk_xasprintf("--mark-step=%s", mark->u.s.s);
		}
	} else {
		return send_error(c, MHD_HTTP_NOT_FOUND, "no such action (approve, reject, abort, resume)");
	}
	/* An abort ends a waiting run at once (its rollback, if asked, runs
	 * here); a live executor gets it handed. The rest goes to the agents. */
	if (strcmp(verb, "abort") != 0)
		args[n++] = "--handoff";
	args[n++] = "--json";
	args[n] = NULL;
	child ch;
	run_rbk(args, r->cred, &ch);
	enum MHD_Result ret = send_child(c, &ch, "application/json", MHD_HTTP_OK);
	child_free(&ch);
	rbk_free(copt);
	rbk_free(mopt);
	return ret;
}

/* GET /api/history?runbook=&status=&actor=&since=&until=&scheduled=&limit= */
static enum MHD_Result history(struct MHD_Connection *c)
{
	static const char *const keys[] = {"runbook", "status", "actor", "since", "until", "limit"};
	const char *args[16];
	char *owned[6] = {0};
	size_t n = 0;
	args[n++] = "history";
	for (size_t i = 0; i < 6; i++) {
		const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, keys[i]);
		if (v && *v)
			args[n++] = owned[i] = rbk_xasprintf("--%s=%s", keys[i], v);
	}
	const char *sch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "scheduled");
	if (sch && (!strcmp(sch, "1") || !strcmp(sch, "true")))
		args[n++] = "--scheduled";
	args[n++] = "--json";
	args[n] = NULL;
	child ch;
	run_rbk(args, NULL, &ch);
	enum MHD_Result ret = send_child(c, &ch, "application/json", MHD_HTTP_OK);
	child_free(&ch);
	for (size_t i = 0; i < 6; i++)
		rbk_free(owned[i]);
	return ret;
}

static enum MHD_Result simple(struct MHD_Connection *c, const char *const *args, const char *ctype)
{
	child ch;
	run_rbk(args, NULL, &ch);
	enum MHD_Result ret = send_child(c, &ch, ctype, MHD_HTTP_OK);
	child_free(&ch);
	return ret;
}

/* What the route needs: read, act or audit; -1 if there is no such route. */
static int route_needs(const char *method, const char *url)
{
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (get && (!strcmp(url, "/api/audit/verify") || (!strncmp(url, "/api/runs/", 10) && strstr(url, "/bundle"))))
		return RBK_DO_AUDIT;
	if (get && (!strncmp(url, "/api/", 5) || !strcmp(url, "/metrics")))
		return RBK_DO_READ;
	if (post && (!strcmp(url, "/api/runs") || !strncmp(url, "/api/runs/", 10)))
		return RBK_DO_ACT;
	return -1;
}

static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url, const char *method, request *r)
{
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (!get && !post)
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST only");
	if (get && (!strcmp(url, "/") || !strcmp(url, "/index.html") || !strncmp(url, "/console.", 9)))
		return page(c, url);
	/* A POST's body is JSON, which a form on another site cannot send
	 * without asking first (and this server answers no such asking). */
	rbk_val body = rbk_val_null();
	if (post) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (!ct || strncasecmp(ct, "application/json", 16) != 0)
			return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "a POST's body is JSON (Content-Type: application/json)");
		if (r->too_big)
			return send_error(c, 413, "the body is larger than 64 KiB");
		rbk_err e = {0};
		if (r->body.len && rbk_json_parse(&body, r->body.s, r->body.len, &e) < 0)
			return send_error(c, MHD_HTTP_BAD_REQUEST, "the body is not JSON");
		if (r->body.len && body.t != RBK_V_MAP) {
			rbk_val_free(&body);
			return send_error(c, MHD_HTTP_BAD_REQUEST, "the body is a JSON object");
		}
	}
	enum MHD_Result ret;
	int wait = 0;
	int auth = authenticate(c, r, &wait);
	if (auth == 429) {
		ret = too_many(c, wait);
		goto out;
	}
	if (auth == 503) {
		ret = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the store cannot be read: see the server's log");
		goto out;
	}
	if (post && !strcmp(url, "/login")) {
		ret = login(c, r, body.t == RBK_V_MAP ? &body : NULL);
		goto out;
	}
	/* A request made with the cookie that changes something carries the
	 * session's CSRF token. */
	if (post && r->by_cookie) {
		const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
		char want[65];
		rbk_users_csrf(r->sid, want);
		if (!tok || !rbk_users_same(tok, want)) {
			ret = send_error(c, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token (X-CSRF-Token)");
			goto out;
		}
	}
	if (post && !strcmp(url, "/logout")) {
		ret = r->user ? logout(c, r) : send_error(c, MHD_HTTP_UNAUTHORIZED, "not logged in");
		goto out;
	}
	if (get && !strcmp(url, "/api/me")) {
		ret = r->user || srv.o->public_read ? me(c, r, NULL) : send_error(c, MHD_HTTP_UNAUTHORIZED, "log in first");
		goto out;
	}
	int needs = route_needs(method, url);
	if (needs < 0) {
		ret = send_error(c, MHD_HTTP_NOT_FOUND, "no such route");
		goto out;
	}
	rbk_role role = r->user ? r->role : srv.o->public_read && needs == RBK_DO_READ ? RBK_ROLE_VIEWER : RBK_ROLE_NONE;
	if (role == RBK_ROLE_NONE) {
		ret = send_error(c, MHD_HTTP_UNAUTHORIZED, "log in, or send Authorization: Bearer TOKEN");
		goto out;
	}
	if (!rbk_users_allows(role, (rbk_do)needs)) {
		ret = send_error(c, MHD_HTTP_FORBIDDEN,
				 needs == RBK_DO_ACT ? "this needs the operator role" : "this needs the auditor role");
		goto out;
	}
	const char *rest = NULL;
	long long id = !strncmp(url, "/api/runs/", 10) ? run_id(url + 10, &rest) : 0;
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", id);
	if (post && !strcmp(url, "/api/runs"))
		ret = launch(c, r, body.t == RBK_V_MAP ? &body : NULL);
	else if (post && id && rest[0] == '/')
		ret = act(c, r, ids, rest + 1, body.t == RBK_V_MAP ? &body : NULL);
	else if (!strcmp(url, "/metrics"))
		ret = simple(c, (const char *[]){"metrics", NULL}, "text/plain; version=0.0.4; charset=utf-8");
	else if (!strcmp(url, "/api/status"))
		ret = simple(c, (const char *[]){"status", "--json", NULL}, "application/json");
	else if (!strcmp(url, "/api/history"))
		ret = history(c);
	else if (!strcmp(url, "/api/runbooks"))
		ret = simple(c, (const char *[]){"runbooks", "--json", NULL}, "application/json");
	else if (!strcmp(url, "/api/schedules"))
		ret = simple(c, (const char *[]){"schedule", "list", "--json", NULL}, "application/json");
	else if (!strcmp(url, "/api/audit/verify"))
		ret = simple(c, (const char *[]){"verify", "--json", NULL}, "application/json");
	else if (!strncmp(url, "/api/runbooks/", 14) && strlen(url) > 24 && !strcmp(url + strlen(url) - 10, "/graph.svg")) {
		char name[160];
		snprintf(name, sizeof name, "%.*s", (int)(strlen(url) - 24), url + 14);
		ret = runbook_name_ok(name) ? simple(c, (const char *[]){"graph", name, "--format=svg", NULL}, "image/svg+xml")
					    : send_error(c, MHD_HTTP_NOT_FOUND, "no such runbook");
	} else if (id && !*rest)
		ret = simple(c, (const char *[]){"show", ids, "--json", NULL}, "application/json");
	else if (id && !strcmp(rest, "/log"))
		ret = simple(c, (const char *[]){"log", ids, "--json", NULL}, "application/x-ndjson");
	else if (id && !strcmp(rest, "/source"))
		ret = simple(c, (const char *[]){"show", ids, "--source", NULL}, "text/plain; charset=utf-8");
	else if (id && !strcmp(rest, "/report"))
		ret = simple(c, (const char *[]){"report", ids, NULL}, "text/html; charset=utf-8");
	else if (id && !strcmp(rest, "/events"))
		ret = send_stream(c, ids);
	else if (id && !strcmp(rest, "/bundle")) {
		child ch;
		run_rbk((const char *[]){"export", ids, NULL}, NULL, &ch);
		if (ch.code == 0 && ch.out.len) {
			struct MHD_Response *res = MHD_create_response_from_buffer(ch.out.len, ch.out.s, MHD_RESPMEM_MUST_COPY);
			char disp[96];
			snprintf(disp, sizeof disp, "attachment; filename=\"rbk-run-%s.json\"", ids);
			MHD_add_response_header(res, "Content-Type", "application/json");
			MHD_add_response_header(res, "Content-Disposition", disp);
			harden(res, false);
			ret = MHD_queue_response(c, MHD_HTTP_OK, res);
			MHD_destroy_response(res);
		} else
			ret = send_child(c, &ch, "application/json", MHD_HTTP_OK);
		child_free(&ch);
	} else
		ret = send_error(c, MHD_HTTP_NOT_FOUND, "no such route");
out:
	rbk_val_free(&body);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)cls, (void)version;
	request *r = *con_cls;
	if (!r) {
		*con_cls = rbk_xcalloc(1, sizeof *r);
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body.len + *upload_size > MAX_BODY)
			r->too_big = true;
		else
			rbk_buf_add(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	return dispatch(c, url, method, r);
}

static void log_error(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("rbk serve: ", stderr);
	vfprintf(stderr, fmt, ap);
}

static char *slurp(const char *path)
{
	rbk_buf b = {0};
	if (rbk_buf_read_file(&b, path, 0) < 0)
		return NULL;
	return rbk_buf_take(&b);
}

/* The companion agent: executes what the console queued or answered on
 * this host's queue, and dies with the server. */
static pid_t start_agent(void)
{
	const char *argv[] = {"rbk", "agent", srv.o->home ? "--home" : NULL, srv.o->home, NULL};
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(srv.exe, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int rbk_serve_main(const rbk_serve_opts *o)
{
	srv.o = o;
	ssize_t n = readlink("/proc/self/exe", srv.exe, sizeof srv.exe - 1);
	if (n <= 0) {
		fprintf(stderr, "rbk: error: cannot find the rbk program (/proc/self/exe)\n");
		return RBK_EXIT_FAILED;
	}
	srv.exe[n] = '\0';
	/* Where to listen: ADDR:PORT, IPv4 or [IPv6]. */
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	char host[128];
	const char *colon = strrchr(o->listen, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || !end || *end || port < 0 || port > 65535 || (size_t)(colon - o->listen) >= sizeof host) {
		fprintf(stderr, "rbk: error: --listen takes ADDR:PORT (127.0.0.1:8470), not '%s'\n", o->listen);
		return RBK_EXIT_BADINPUT;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - o->listen), o->listen);
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		host[hl - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			port = -1;
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			port = -1;
	}
	if (port < 0) {
		fprintf(stderr, "rbk: error: --listen: '%s' is not an IP address\n", host);
		return RBK_EXIT_BADINPUT;
	}
	char *cert = NULL, *key = NULL;
	if (o->tls_cert || o->tls_key) {
		if (!o->tls_cert || !o->tls_key) {
			fprintf(stderr, "rbk: error: TLS needs both --tls-cert and --tls-key\n");
			return RBK_EXIT_BADINPUT;
		}
		if (!(cert = slurp(o->tls_cert)) || !(key = slurp(o->tls_key))) {
			fprintf(stderr, "rbk: error: cannot read %s: %s\n", cert ? o->tls_key : o->tls_cert, strerror(errno));
			rbk_free(cert);
			return RBK_EXIT_BADINPUT;
		}
		flags |= MHD_USE_TLS;
		srv.tls = true;
	}
	rbk_err e = {0};
	if (rbk_store_open_url(&srv.store, o->store_url, o->state_dir, &e) < 0) {
		fprintf(stderr, "rbk: error: %s\n", e.msg);
		rbk_free(cert);
		rbk_free(key);
		return RBK_EXIT_STORE;
	}
	/* The stop signals are taken by sigwait below, never by a server
	 * thread (which inherit this mask); children get a clean one. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t stops;
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stops, NULL);
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		fprintf(stderr, "rbk: error: pipe: %s\n", strerror(errno));
		return RBK_EXIT_FAILED;
	}
	struct MHD_OptionItem tls_opts[] = {{MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
					    {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
					    {MHD_OPTION_END, 0, NULL}};
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_error, NULL, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_ARRAY,
		srv.tls ? tls_opts : (struct MHD_OptionItem[]){{MHD_OPTION_END, 0, NULL}}, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "rbk: error: cannot listen on %s: %s\n", o->listen, strerror(errno));
		rbk_store_close(srv.store);
		rbk_free(cert);
		rbk_free(key);
		return RBK_EXIT_FAILED;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = di ? di->port : (unsigned)port;
	pid_t agent = o->agent ? start_agent() : 0;
	/* The one line a supervisor or a test waits for. */
	printf("rbk serve: listening on %s://%s%s%s:%u%s%s\n", srv.tls ? "https" : "http", host[0] == '[' ? "[" : "",
	       host[0] == '[' ? host + 1 : host, host[0] == '[' ? "]" : "", bound,
	       o->public_read ? " (reads need no token: --public-read)" : "",
	       agent > 0 ? "; an agent executes this host's queue" : "");
	fflush(stdout);
	/* Wait for a stop signal; an agent that died meanwhile is started
	 * again (after a pause, so one that cannot start does not spin). */
	int sig = -1;
	while (sig < 0) {
		struct timespec two = {2, 0};
		sig = sigtimedwait(&stops, NULL, &two);
		int st;
		if (sig < 0 && agent > 0 && waitpid(agent, &st, WNOHANG) == agent) {
			printf("rbk serve: the agent ended (%s %d); starting it again\n",
			       WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			fflush(stdout);
			agent = start_agent();
		}
	}
	printf("rbk serve: stopping (signal %d)\n", sig);
	fflush(stdout);
	ssize_t w = write(stop_pipe[1], "x", 1);
	(void)w;
	MHD_stop_daemon(d);
	if (agent > 0) {
		kill(agent, SIGTERM);
		waitpid(agent, NULL, 0);
	}
	rbk_store_close(srv.store);
	rbk_free(cert);
	rbk_free(key);
	return RBK_EXIT_OK;
}
