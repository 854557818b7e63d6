/*-------------------------------------------------------------------------
 *
 * sex.c
 *		Standardise recorded sex / stated gender to NHS Data Dictionary codes.
 *
 * Owns the mapping from the codings sources use (NHS Data Dictionary
 * PERSON STATED GENDER CODE and the older PERSON GENDER CODE: 0/1/2/9/X,
 * single letters M/F/U/I and common spellings) to one coding:
 *
 *		'1'  male
 *		'2'  female
 *		'9'  indeterminate (unable to be classified as male or female)
 *		'X'  not known (not recorded, not stated, unknown)
 *
 * Matching ignores case and surrounding white space.
 *
 * src/identifiers/sex.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "identifiers.h"
#include "base/pg_compat.h"

typedef struct SexSpelling
{
	const char *spelling;		/* lower case */
	const char *code;
} SexSpelling;

static const SexSpelling sex_spellings[] = {
	{"1", "1"}, {"m", "1"}, {"male", "1"}, {"man", "1"}, {"boy", "1"},
	{"2", "2"}, {"f", "2"}, {"female", "2"}, {"woman", "2"}, {"girl", "2"},
	{"9", "9"}, {"i", "9"}, {"indeterminate", "9"}, {"not specified", "9"},
	{"0", "X"}, {"x", "X"}, {"u", "X"}, {"unknown", "X"}, {"not known", "X"},
	{"nk", "X"}, {"not stated", "X"}, {"not recorded", "X"}, {"", "X"},
	{NULL, NULL}
};

/* the code for a spelling, or NULL when it is not recognised (sex.h) */
const char *
sex_lookup(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	char		buf[16];

	while (len > 0 && isspace((unsigned char) *s))
		s++, len--;
	while (len > 0 && isspace((unsigned char) s[len - 1]))
		len--;
	if (len >= (int) sizeof(buf))
		return NULL;
	for (int i = 0; i < len; i++)
		buf[i] = pg_ascii_tolower((unsigned char) s[i]);
	buf[len] = '\0';

	/* the first character tells most spellings apart before strcmp() */
	for (const SexSpelling *sp = sex_spellings; sp->spelling; sp++)
		if (sp->spelling[0] == buf[0] && strcmp(buf, sp->spelling) == 0)
			return sp->code;
	return NULL;
}

PG_FUNCTION_INFO_V1(standardise_sex);
Datum
standardise_sex(PG_FUNCTION_ARGS)
{
	const char *code = sex_lookup(PG_GETARG_TEXT_PP(0));

	if (code == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("unrecognised sex or gender code"),
				 errdetail("Recognised: 0, 1, 2, 9, X, M, F, U, I and the words male, female, man, woman, boy, girl, indeterminate, unknown, not known, not stated, not specified, not recorded."),
				 errhint("Use try_standardise_sex() to turn unrecognised values into NULL.")));
	PG_RETURN_TEXT_P(cstring_to_text(code));
}

PG_FUNCTION_INFO_V1(try_standardise_sex);
Datum
try_standardise_sex(PG_FUNCTION_ARGS)
{
	const char *code = sex_lookup(PG_GETARG_TEXT_PP(0));

	if (code == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(code));
}
