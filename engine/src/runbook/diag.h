/* diag: diagnostics collected while loading and checking a file, printed as
 * `file:line:col: error: message`, sorted into file order. */
#ifndef RBK_DIAG_H
#define RBK_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
	char *file; /* owned copies, so a diag outlives the document */
	int line, col; /* 1-based; 0 when there is no place */
	char *msg;
} rbk_diag_item;

typedef struct {
	rbk_diag_item *items;
	size_t n, cap;
} rbk_diag;

void rbk_diag_error(rbk_diag *d, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Print every item in file order (file, line, column, then insertion). */
void rbk_diag_print(rbk_diag *d, FILE *to);
void rbk_diag_free(rbk_diag *d);

#endif
