/*-------------------------------------------------------------------------
 *
 * fold.h
 *		Text folded to lower-case ASCII words (src/linkage/fold.c), shared
 *		by the name and address standardisers.
 *
 * src/linkage/fold.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_LINKAGE_FOLD_H
#define CAREDATA_LINKAGE_FOLD_H

#include "postgres.h"

typedef enum FoldKind
{
	FOLD_KEEP,					/* part of a word: the bytes in out */
	FOLD_SPACE,					/* separates words */
	FOLD_DROP					/* vanishes (apostrophes, marks, invisibles) */
} FoldKind;

/* the next character of s as a code point (-1 invalid); the bytes it takes */
extern int	utf8_next(const unsigned char *s, int len, int32 *cp);
/* one character folded into out (*outlen bytes) and what it is */
extern FoldKind fold_char(int32 cp, const char *src, int srclen, char *out, int *outlen);

extern int	fold_text(const char *s, int len, char *out);
extern bool next_word(const char *s, int len, int *pos, const char **word, int *wlen);
extern bool word_is(const char *word, int wlen, const char *w);
extern bool word_in(const char *word, int wlen, const char *const *list);
extern const char *arg_utf8(text *t, int *len);
extern text *utf8_text(const char *s, int len);

#endif							/* CAREDATA_LINKAGE_FOLD_H */
