/* err: an error message with the place it refers to, owned by the caller.
 *
 * Functions that can fail take an rbk_err * (may be NULL) and return a
 * negative value; on failure they fill msg and pos. pos is a 0-based byte
 * offset into the text being processed (an expression or a template), or -1
 * when no place applies. No allocation, so reporting an error cannot fail. */
#ifndef RBK_ERR_H
#define RBK_ERR_H

enum {
	RBK_ERR_GENERIC = 0,
	RBK_ERR_NONAME = 1, /* a name that does not exist */
	RBK_ERR_STORE = 6,  /* the store cannot be written, or is broken (RBK_EXIT_STORE) */
	RBK_ERR_FENCED = 7  /* this executor lost the run's lease: it writes nothing more */
};

typedef struct {
	int pos;
	int code; /* RBK_ERR_* */
	char msg[512];
} rbk_err;

void rbk_err_set(rbk_err *e, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A value quoted in a message: at most RBK_ERR_QUOTE_MAX bytes of it (cut
 * before a UTF-8 character, not inside it), then "...", so the reason after
 * it survives msg's fixed size. Use it in the call:
 * rbk_err_set(e, -1, "'%s' is not an int", rbk_err_quote(text).s). */
enum { RBK_ERR_QUOTE_MAX = 80 };
typedef struct {
	char s[RBK_ERR_QUOTE_MAX + 4];
} rbk_err_quoted;
rbk_err_quoted rbk_err_quote(const char *value);

#endif
