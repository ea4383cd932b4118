/* suggest: Levenshtein distance over short words. */
#include "runbook/suggest.h"

#include <string.h>

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t row[41];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t sub = prev + (a[i - 1] != b[j - 1]);
			size_t del = row[j] + 1, ins = row[j - 1] + 1;
			row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
			prev = cur;
		}
	}
	return row[lb];
}

const char *rbk_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	/* At most 2 edits, and fewer than half the word: "y" is not a typo of "x". */
	size_t len = strlen(word), bd = len / 2 + 1 < 3 ? len / 2 + 1 : 3;
	for (size_t i = 0; i < n; i++) {
		if (!candidates[i])
			continue;
		size_t d = distance(word, candidates[i]);
		if (d < bd) {
			bd = d;
			best = candidates[i];
		}
	}
	return best;
}
