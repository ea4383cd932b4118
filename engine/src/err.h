/* err: an error message with the place it refers to, owned by the caller.
 *
 * Functions that can fail take an rbk_err * (may be NULL) and return a
 * negative value; on failure they fill msg and pos. pos is a 0-based byte
 * offset into the text being processed (an expression or a template), or -1
 * when no place applies. No allocation, so reporting an error cannot fail. */
#ifndef RBK_ERR_H
#define RBK_ERR_H

enum { RBK_ERR_GENERIC = 0, RBK_ERR_NONAME = 1 /* a name that does not exist */ };

typedef struct {
	int pos;
	int code; /* RBK_ERR_* */
	char msg[512];
} rbk_err;

void rbk_err_set(rbk_err *e, int pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
