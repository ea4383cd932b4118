/* load: libyaml events -> rbk_node tree with places, bounded. */
#include "runbook/load.h"
#include "base/mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

typedef struct {
	char *name;
	rbk_node *node; /* borrowed from the tree */
	size_t weight;  /* nodes in the subtree */
	int height;     /* levels in the subtree */
} anchor;

typedef struct {
	yaml_parser_t p;
	const char *file;
	const char *bytes; /* the input, for places libyaml does not give */
	size_t size;
	rbk_diag *d;
	anchor *anchors;
	size_t nanchors, cap;
	size_t total;
	int failed;
} loader;

static void fail(loader *ld, int line, int col, const char *msg, const char *arg)
{
	if (ld->failed)
		return;
	ld->failed = 1;
	rbk_diag_error(ld->d, ld->file, line, col, msg, arg);
}

/* Line and column of a byte offset in the input (reader errors carry only
 * an offset). */
static yaml_mark_t mark_at(const loader *ld, size_t off)
{
	yaml_mark_t m = {0, 0, 0};
	for (size_t i = 0; i < off && i < ld->size; i++) {
		if (ld->bytes[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if (((unsigned char)ld->bytes[i] & 0xC0) != 0x80)
			m.column++; /* count characters, not UTF-8 continuation bytes */
	}
	return m;
}

static void fail_parser(loader *ld)
{
	yaml_mark_t reader_mark = mark_at(ld, ld->p.problem_offset);
	const yaml_mark_t *m = ld->p.error == YAML_READER_ERROR ? &reader_mark : &ld->p.problem_mark;
	rbk_buf b = {0};
	if (ld->p.error == YAML_READER_ERROR)
		rbk_buf_printf(&b, "unreadable input: %s (byte 0x%02x)", ld->p.problem ? ld->p.problem : "bad byte",
			       (unsigned)ld->p.problem_value & 0xff);
	else
		rbk_buf_printf(&b, "YAML syntax: %s", ld->p.problem ? ld->p.problem : "malformed document");
	if (ld->p.context)
		rbk_buf_printf(&b, " %s (line %zu)", ld->p.context, ld->p.context_mark.line + 1);
	if (ld->p.error == YAML_MEMORY_ERROR)
		rbk_buf_puts(&b, "out of memory");
	fail(ld, (int)m->line + 1, (int)m->column + 1, "%s", b.s);
	rbk_buf_free(&b);
}

static int next_event(loader *ld, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&ld->p, ev)) {
		fail_parser(ld);
		return -1;
	}
	return 0;
}

static size_t weight(const rbk_node *n)
{
	size_t w = 1;
	for (size_t i = 0; i < n->count; i++)
		w += weight(n->vals[i]) + (n->keys ? 1 : 0);
	return w;
}

static int height(const rbk_node *n)
{
	int h = 0;
	for (size_t i = 0; i < n->count; i++) {
		int c = height(n->vals[i]);
		if (c > h)
			h = c;
	}
	return h + 1;
}

static rbk_node *new_node(loader *ld, rbk_ntype t, const yaml_mark_t *m)
{
	rbk_node *n = rbk_xcalloc(1, sizeof *n);
	n->t = t;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	ld->total++;
	return n;
}

static int count_ok(loader *ld, const yaml_mark_t *m)
{
	if (ld->total <= RBK_LOAD_MAX_NODES)
		return 1;
	char lim[32];
	snprintf(lim, sizeof lim, "%d", RBK_LOAD_MAX_NODES);
	fail(ld, (int)m->line + 1, (int)m->column + 1,
	     "document too large: more than %s nodes after expanding aliases", lim);
	return 0;
}

static void remember_anchor(loader *ld, const yaml_char_t *name, rbk_node *n)
{
	if (!name)
		return;
	if (ld->nanchors == ld->cap) {
		ld->cap = ld->cap ? ld->cap * 2 : 8;
		ld->anchors = rbk_xrealloc(ld->anchors, ld->cap * sizeof *ld->anchors);
	}
	ld->anchors[ld->nanchors++] = (anchor){rbk_xstrdup((const char *)name), n, weight(n), height(n)};
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static void resolve_plain(rbk_node *n)
{
	const char *s = n->text;
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) {
		n->t = RBK_N_NULL;
		return;
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		n->t = RBK_N_BOOL;
		n->b = true;
		return;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		n->t = RBK_N_BOOL;
		n->b = false;
		return;
	}
	const char *p = s;
	if ((s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) && s[2]) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(s + 2, &end, s[1] == 'x' ? 16 : 8);
		if (!*end && errno == 0 && v <= INT64_MAX && s[2] != '-' && s[2] != '+' && s[2] != ' ') {
			n->t = RBK_N_INT;
			n->i = (int64_t)v;
			return;
		}
	}
	if (*p == '+' || *p == '-')
		p++;
	if (*p >= '0' && *p <= '9') {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (!*end && errno == 0) {
			n->t = RBK_N_INT;
			n->i = v;
			return;
		}
		if (!*end && errno == ERANGE) {
			n->t = RBK_N_NUM; /* too big for int64: keep it as a number */
			n->n = strtod(s, NULL);
			return;
		}
	}
	if ((p[0] == '.' || (p[0] >= '0' && p[0] <= '9')) && strspn(p, "0123456789.eE+-") == strlen(p)) {
		char *end;
		double v = strtod(s, &end);
		if (!*end && end != s) {
			n->t = RBK_N_NUM;
			n->n = v;
			return;
		}
	}
	if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
		n->t = RBK_N_NUM;
		n->n = s[0] == '-' ? -INFINITY : INFINITY;
		return;
	}
	if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
		n->t = RBK_N_NUM;
		n->n = NAN;
	}
}

static rbk_node *parse_node(loader *ld, yaml_event_t *ev, int depth);

/* Indentation of a block scalar's first non-empty content line, so places
 * inside it can be given as columns of the file. */
static int block_indent(const loader *ld, size_t at)
{
	size_t i = at;
	while (i < ld->size && ld->bytes[i] != '\n')
		i++;
	while (i < ld->size) {
		size_t start = ++i;
		while (i < ld->size && ld->bytes[i] == ' ')
			i++;
		if (i < ld->size && ld->bytes[i] != '\n' && ld->bytes[i] != '\r')
			return (int)(i - start);
	}
	return 0;
}

static rbk_node *parse_scalar(loader *ld, yaml_event_t *ev)
{
	rbk_node *n = new_node(ld, RBK_N_STR, &ev->start_mark);
	n->len = ev->data.scalar.length;
	n->text = rbk_xstrndup((const char *)ev->data.scalar.value, n->len);
	const char *tag = (const char *)ev->data.scalar.tag;
	yaml_scalar_style_t st = ev->data.scalar.style;
	n->style = st == YAML_PLAIN_SCALAR_STYLE				? RBK_STYLE_PLAIN
		   : (st == YAML_LITERAL_SCALAR_STYLE || st == YAML_FOLDED_SCALAR_STYLE) ? RBK_STYLE_BLOCK
											 : RBK_STYLE_QUOTED;
	if (n->style == RBK_STYLE_BLOCK)
		n->indent = block_indent(ld, ev->start_mark.index);
	if (tag && strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, "!") != 0) {
		fail(ld, n->line, n->col, "unsupported YAML tag '%s'", tag);
	} else if (!tag && n->style == RBK_STYLE_PLAIN) {
		resolve_plain(n);
	}
	if (memchr(n->text, '\0', n->len))
		fail(ld, n->line, n->col, "%s", "NUL character inside a scalar");
	remember_anchor(ld, ev->data.scalar.anchor, n);
	return n;
}

static void push_child(rbk_node *parent, rbk_node *key, rbk_node *val, size_t *cap)
{
	if (parent->count == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		parent->vals = rbk_xrealloc(parent->vals, *cap * sizeof *parent->vals);
		if (parent->t == RBK_N_MAP)
			parent->keys = rbk_xrealloc(parent->keys, *cap * sizeof *parent->keys);
	}
	if (parent->t == RBK_N_MAP)
		parent->keys[parent->count] = key;
	parent->vals[parent->count++] = val;
}

static rbk_node *parse_collection(loader *ld, yaml_event_t *ev, int depth)
{
	int is_map = ev->type == YAML_MAPPING_START_EVENT;
	yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	const yaml_char_t *anchor_name = is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	const char *tag = (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
	rbk_node *n = new_node(ld, is_map ? RBK_N_MAP : RBK_N_SEQ, &ev->start_mark);
	if (tag && strcmp(tag, is_map ? YAML_MAP_TAG : YAML_SEQ_TAG) != 0)
		fail(ld, n->line, n->col, "unsupported YAML tag '%s'", tag);
	if (depth > RBK_LOAD_MAX_DEPTH) {
		fail(ld, n->line, n->col, "%s", "document nested too deeply");
		return n;
	}
	char *anchor_copy = anchor_name ? rbk_xstrdup((const char *)anchor_name) : NULL;
	size_t cap = 0;
	for (;;) {
		yaml_event_t kev;
		if (ld->failed || next_event(ld, &kev) < 0)
			break;
		if (kev.type == end) {
			yaml_event_delete(&kev);
			break;
		}
		rbk_node *key = parse_node(ld, &kev, depth + 1);
		yaml_event_delete(&kev);
		if (!key)
			break;
		if (!is_map) {
			push_child(n, NULL, key, &cap);
			continue;
		}
		if (key->t == RBK_N_SEQ || key->t == RBK_N_MAP) {
			fail(ld, key->line, key->col, "%s", "a map key must be a plain value, not a list or map");
		} else {
			for (size_t i = 0; i < n->count; i++)
				if (!strcmp(n->keys[i]->text, key->text)) {
					char where[64];
					snprintf(where, sizeof where, "%d:%d", n->keys[i]->line, n->keys[i]->col);
					rbk_diag_error(ld->d, ld->file, key->line, key->col,
						       "duplicate key '%s' (first defined at %s)", key->text, where);
					ld->failed = 1;
				}
		}
		yaml_event_t vev;
		if (ld->failed || next_event(ld, &vev) < 0) {
			rbk_node_free(key);
			break;
		}
		rbk_node *val = parse_node(ld, &vev, depth + 1);
		yaml_event_delete(&vev);
		if (!val) {
			rbk_node_free(key);
			break;
		}
		push_child(n, key, val, &cap);
	}
	if (anchor_copy) {
		remember_anchor(ld, (const yaml_char_t *)anchor_copy, n);
		rbk_free(anchor_copy);
	}
	return n;
}

static rbk_node *parse_alias(loader *ld, yaml_event_t *ev, int depth)
{
	const char *name = (const char *)ev->data.alias.anchor;
	for (size_t i = ld->nanchors; i-- > 0;) {
		if (strcmp(ld->anchors[i].name, name) != 0)
			continue;
		ld->total += ld->anchors[i].weight;
		if (!count_ok(ld, &ev->start_mark))
			return NULL;
		/* A copy nests the anchored tree here: it counts towards the depth. */
		if (depth + ld->anchors[i].height - 1 > RBK_LOAD_MAX_DEPTH) {
			fail(ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, "%s",
			     "document nested too deeply (through an alias)");
			return NULL;
		}
		rbk_node *c = rbk_node_copy(ld->anchors[i].node);
		c->line = (int)ev->start_mark.line + 1; /* report errors where the alias is used */
		c->col = (int)ev->start_mark.column + 1;
		return c;
	}
	fail(ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, "unknown alias '*%s'", name);
	return NULL;
}

/* Build the node that starts with ev; NULL when loading must stop. */
static rbk_node *parse_node(loader *ld, yaml_event_t *ev, int depth)
{
	rbk_node *n = NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT: n = parse_scalar(ld, ev); break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: n = parse_collection(ld, ev, depth); break;
	case YAML_ALIAS_EVENT: return parse_alias(ld, ev, depth);
	default: fail(ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, "%s", "unexpected YAML event"); return NULL;
	}
	if (!count_ok(ld, &ev->start_mark)) {
		rbk_node_free(n);
		return NULL;
	}
	return n;
}

static rbk_node *parse_stream(loader *ld)
{
	yaml_event_t ev;
	rbk_node *root = NULL;
	int docs = 0;
	while (!ld->failed && next_event(ld, &ev) == 0) {
		yaml_event_type_t t = ev.type;
		if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			fail(ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1, "%s",
			     "a runbook file holds one YAML document; found a second one");
		else if (!root && (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
				   t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT))
			root = parse_node(ld, &ev, 0);
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
	}
	if (ld->failed) {
		rbk_node_free(root);
		return NULL;
	}
	if (!root)
		fail(ld, 1, 1, "%s", "the file is empty");
	return root;
}

int rbk_load_bytes(rbk_doc **out, const char *name, const char *bytes, size_t size, rbk_diag *d)
{
	*out = NULL;
	if (size > RBK_LOAD_MAX_BYTES) {
		rbk_diag_error(d, name, 0, 0, "file is %zu bytes, more than the %d byte limit", size,
			       RBK_LOAD_MAX_BYTES);
		return -1;
	}
	loader ld = {.file = name, .bytes = bytes, .size = size, .d = d};
	if (!yaml_parser_initialize(&ld.p)) {
		rbk_diag_error(d, name, 0, 0, "cannot initialise the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&ld.p, (const unsigned char *)bytes, size);
	rbk_node *root = parse_stream(&ld);
	yaml_parser_delete(&ld.p);
	for (size_t i = 0; i < ld.nanchors; i++)
		rbk_free(ld.anchors[i].name);
	rbk_free(ld.anchors);
	if (!root)
		return -1;
	rbk_doc *doc = rbk_xcalloc(1, sizeof *doc);
	doc->file = rbk_xstrdup(name);
	doc->bytes = rbk_xstrndup(bytes, size);
	doc->size = size;
	doc->root = root;
	*out = doc;
	return 0;
}

int rbk_load_file(rbk_doc **out, const char *path, rbk_diag *d)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		rbk_diag_error(d, path, 0, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
		fclose(f);
		rbk_diag_error(d, path, 0, 0, "not a regular file");
		return -1;
	}
	/* Read at most one byte past the limit: enough to refuse, never more. */
	rbk_buf b = {0};
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
		rbk_buf_add(&b, chunk, got);
		if (b.len > RBK_LOAD_MAX_BYTES)
			break;
	}
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		rbk_buf_free(&b);
		rbk_diag_error(d, path, 0, 0, "read error");
		return -1;
	}
	if (b.len > RBK_LOAD_MAX_BYTES) {
		rbk_buf_free(&b);
		rbk_diag_error(d, path, 0, 0, "file is larger than the %d byte limit", RBK_LOAD_MAX_BYTES);
		return -1;
	}
	int rc = rbk_load_bytes(out, path, b.s ? b.s : "", b.len, d);
	rbk_buf_free(&b);
	return rc;
}

void rbk_doc_free(rbk_doc *doc)
{
	if (!doc)
		return;
	rbk_node_free(doc->root);
	rbk_free(doc->file);
	rbk_free(doc->bytes);
	rbk_free(doc);
}
