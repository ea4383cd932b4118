/* regex: PCRE2 (8-bit, UTF) patterns, compiled once, matched under limits. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "lang/regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"

/* Backtracking budget per match: enough for any sane guard, small enough that
 * a catastrophic pattern fails in well under a second. */
enum { RE_MATCH_LIMIT = 1000000, RE_DEPTH_LIMIT = 10000 };

struct rbk_re {
	int refs;
	pcre2_code *code;
	pcre2_match_context *mctx;
	char *src;
	char flags[8];
};

static void pcre_message(int code, char *buf, size_t n)
{
	if (pcre2_get_error_message(code, (PCRE2_UCHAR *)buf, n) < 0)
		snprintf(buf, n, "error %d", code);
}

int rbk_re_compile(rbk_re **out, const char *pattern, size_t len, const char *flags, int whole,
		   rbk_err *err)
{
	uint32_t opts = PCRE2_UTF;
	size_t nflags = 0;
	*out = NULL;
	for (const char *f = flags ? flags : ""; *f; f++) {
		uint32_t bit;
		switch (*f) {
		case 'i': bit = PCRE2_CASELESS; break;
		case 'm': bit = PCRE2_MULTILINE; break;
		case 's': bit = PCRE2_DOTALL; break;
		case 'x': bit = PCRE2_EXTENDED; break;
		default:
			rbk_err_set(err, -1, "unknown regex flag '%c'", *f);
			return -1;
		}
		if (opts & bit) {
			rbk_err_set(err, -1, "duplicate regex flag '%c'", *f);
			return -1;
		}
		opts |= bit;
		nflags++;
	}
	if (whole)
		opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;

	int code;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &off, NULL);
	if (!re) {
		char msg[256];
		pcre_message(code, msg, sizeof msg);
		rbk_err_set(err, (int)off, "invalid regex: %s", msg);
		return -1;
	}
	pcre2_match_context *mctx = pcre2_match_context_create(NULL);
	if (!mctx) {
		pcre2_code_free(re);
		rbk_err_set(err, -1, "out of memory compiling regex");
		return -1;
	}
	pcre2_set_match_limit(mctx, RE_MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, RE_DEPTH_LIMIT);

	rbk_re *r = rbk_xcalloc(1, sizeof *r);
	r->refs = 1;
	r->code = re;
	r->mctx = mctx;
	r->src = rbk_xstrndup(pattern, len);
	memcpy(r->flags, flags ? flags : "", nflags + 1);
	*out = r;
	return 0;
}

rbk_re *rbk_re_ref(rbk_re *re)
{
	if (re)
		re->refs++;
	return re;
}

void rbk_re_free(rbk_re *re)
{
	if (!re || --re->refs > 0)
		return;
	pcre2_code_free(re->code);
	pcre2_match_context_free(re->mctx);
	rbk_free(re->src);
	rbk_free(re);
}

const char *rbk_re_source(const rbk_re *re) { return re->src; }
const char *rbk_re_flags(const rbk_re *re) { return re->flags; }

int rbk_re_match(const rbk_re *re, const char *subject, size_t len, int group, char **out,
		 size_t *outlen, rbk_err *err)
{
	if (out)
		*out = NULL;
	if (outlen)
		*outlen = 0;
	if (group >= 0) {
		uint32_t ngroups = 0;
		pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &ngroups);
		if ((uint32_t)group > ngroups) {
			rbk_err_set(err, -1, "regex has no group %d (it has %u)", group,
				    (unsigned)ngroups);
			return -1;
		}
	}
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
	if (!md) {
		rbk_err_set(err, -1, "out of memory matching regex");
		return -1;
	}
	int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, md, re->mctx);
	if (rc == PCRE2_ERROR_NOMATCH) {
		pcre2_match_data_free(md);
		return 0;
	}
	if (rc < 0) {
		if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
		    rc == PCRE2_ERROR_HEAPLIMIT) {
			rbk_err_set(err, -1, "regex match limit exceeded");
		} else {
			char msg[256];
			pcre_message(rc, msg, sizeof msg);
			rbk_err_set(err, -1, "regex match failed: %s", msg);
		}
		pcre2_match_data_free(md);
		return -1;
	}
	if (group >= 0 && out) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		/* Groups at or past rc did not participate; neither did unset ones. */
		if (group < rc && ov[2 * group] != PCRE2_UNSET) {
			size_t s = ov[2 * group], e = ov[2 * group + 1];
			size_t n = e > s ? e - s : 0;
			*out = rbk_xstrndup(subject + s, n);
			if (outlen)
				*outlen = n;
		}
	}
	pcre2_match_data_free(md);
	return 1;
}
