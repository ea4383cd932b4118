/* value: the typed values of the guard and template language.
 *
 * A value owns what it points to; rbk_val_free releases it and rbk_val_copy
 * makes an independent copy. Maps keep their insertion order. */
#ifndef RBK_VALUE_H
#define RBK_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"

typedef struct rbk_re rbk_re;

typedef enum {
	RBK_V_NULL,
	RBK_V_BOOL,
	RBK_V_INT,
	RBK_V_NUM,
	RBK_V_STR,
	RBK_V_LIST,
	RBK_V_MAP,
	RBK_V_REGEX,
	RBK_V_DUR /* a duration: milliseconds in u.i */
} rbk_vtype;

typedef struct rbk_val rbk_val;
struct rbk_val {
	rbk_vtype t;
	/* Computed from a secret: kept whole for the steps that use it, masked
	 * wherever it is recorded or shown. Copies keep it; every operator,
	 * function and template that reads a secret value yields a secret. */
	bool secret;
	union {
		bool b;
		int64_t i;
		double n;
		struct {
			char *s; /* NUL-terminated; len excludes the NUL */
			size_t len;
		} s;
		struct {
			rbk_val *items;
			size_t n;
		} list;
		struct {
			char **keys;
			rbk_val *vals;
			size_t n;
		} map;
		rbk_re *re; /* owned (reference-counted by the regex module) */
	} u;
};

rbk_val rbk_val_null(void);
rbk_val rbk_val_bool(bool b);
rbk_val rbk_val_int(int64_t i);
rbk_val rbk_val_num(double n);
rbk_val rbk_val_dur(int64_t ms);
rbk_val rbk_val_str(const char *s);           /* copies s */
rbk_val rbk_val_strn(const char *s, size_t n); /* copies n bytes */
rbk_val rbk_val_str_take(char *s);            /* takes ownership of s (rbk_x* allocated) */
rbk_val rbk_val_list(void);
rbk_val rbk_val_map(void);
rbk_val rbk_val_regex(rbk_re *re); /* takes a reference */

void rbk_val_list_push(rbk_val *list, rbk_val item);              /* takes item */
void rbk_val_map_set(rbk_val *map, const char *key, rbk_val val); /* takes val, replaces */
/* Borrowed pointer to the value under key, or NULL. */
const rbk_val *rbk_val_map_get(const rbk_val *map, const char *key);

void rbk_val_free(rbk_val *v);
rbk_val rbk_val_copy(const rbk_val *v);
bool rbk_val_equal(const rbk_val *a, const rbk_val *b);
/* Truthiness for guards: false, null, 0, 0.0, "" and empty collections are false. */
bool rbk_val_truthy(const rbk_val *v);
/* True when v or any value inside it is secret. */
bool rbk_val_has_secret(const rbk_val *v);
/* Mark v (the whole value) secret. */
void rbk_val_mark_secret(rbk_val *v);

/* The type's name as the language spells it: null bool int number string list map regex. */
const char *rbk_val_type_name(rbk_vtype t);
/* Text form used when a value is joined into a template and by str():
 * integers in decimal, numbers with up to 15 significant digits, strings as
 * they are, null as empty, lists and maps as JSON. Caller frees. */
char *rbk_val_to_text(const rbk_val *v);

#endif
