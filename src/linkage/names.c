/*-------------------------------------------------------------------------
 *
 * names.c
 *		Standardiser, phonetic code and comparator for names, for linkage
 *		on any column of a source.
 *
 * Owns what a name looks like once standardised and its comparison levels
 * (docs/sql-reference.md, "Names and addresses"):
 *
 *		standardise_name        lower case, Latin letters folded to ASCII
 *		                        (fold.c), apostrophes removed, other
 *		                        punctuation to spaces, titles and suffixes
 *		                        dropped, one space between words
 *		name_phonetic           Double Metaphone (PostgreSQL's fuzzystrmatch
 *		                        library, loaded at first use) of each word
 *		compare_name            0 missing, 1 different, 2 same phonetic code,
 *		                        Jaro-Winkler levels, top exact
 *
 * Names identify people, so nothing here prints a value.
 *
 * src/linkage/names.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "identifiers/identifiers.h"
#include "compare.h"

#include "fold.h"


/* ---- names ---- */

/* titles and suffixes standardise_name drops wherever they stand */
static const char *const name_titles[] = {
	"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "dame",
	"lady", "lord", "jr", "sr", "ii", "iii", "iv", NULL
};

/*
 * The standardised form of a name (len bytes of UTF-8) into out (at least
 * len + 1 bytes); returns its length, 0 when nothing is left.
 */
static int
name_standardise(const char *s, int len, char *out)
{
	int			flen = fold_text(s, len, out);
	int			pos = 0;
	int			n = 0;
	const char *word;
	int			wlen;

	/* in place: each kept word moves left or stays */
	while (next_word(out, flen, &pos, &word, &wlen))
	{
		if (wlen <= 4 && word_in(word, wlen, name_titles))
			continue;
		if (n > 0)
			out[n++] = ' ';
		memmove(out + n, word, wlen);
		n += wlen;
	}
	out[n] = '\0';
	return n;
}

PG_FUNCTION_INFO_V1(standardise_name);
Datum
standardise_name(PG_FUNCTION_ARGS)
{
	int			len;
	const char *s = arg_utf8(PG_GETARG_TEXT_PP(0), &len);
	char	   *out = palloc(len + 1);
	int			n = name_standardise(s, len, out);

	if (n == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(utf8_text(out, n));
}

/* ---- Double Metaphone, from PostgreSQL's fuzzystrmatch ---- */

static PGFunction dmetaphone_fn = NULL;

/*
 * fuzzystrmatch's dmetaphone(text), loaded once per backend.  The library
 * ships with PostgreSQL (postgresql-contrib); CREATE EXTENSION
 * fuzzystrmatch is not needed, only the file.
 */
static PGFunction
dmetaphone_function(void)
{
	char		path[MAXPGPATH];
	struct stat st;
	PGFunction	fn;

	if (dmetaphone_fn != NULL)
		return dmetaphone_fn;
	snprintf(path, sizeof(path), "%s/fuzzystrmatch%s", pkglib_path, DLSUFFIX);
	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("the phonetic code needs PostgreSQL's fuzzystrmatch library, which is not installed"),
				 errdetail("The file \"%s\" is missing.", path),
				 errhint("Install the PostgreSQL contrib modules (the Debian package postgresql-contrib or postgresql-%d) on the server.",
						 PG_VERSION_NUM / 10000)));
	fn = load_external_function("$libdir/fuzzystrmatch", "dmetaphone", false, NULL);
	if (fn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the fuzzystrmatch library installed has no function dmetaphone"),
				 errhint("Install the PostgreSQL contrib modules of this server's version.")));
	dmetaphone_fn = fn;
	return fn;
}

/*
 * The phonetic code of a name (len bytes of UTF-8, standardised here
 * first): the Double Metaphone primary code of each word, one space apart;
 * NULL when no word has a code (digits, scripts other than Latin).
 */
static text *
name_phonetic_text(const char *s, int len)
{
	PGFunction	fn = dmetaphone_function();
	char	   *name = palloc(len + 1);
	int			nlen = name_standardise(s, len, name);
	StringInfoData buf;
	MemoryContext tmp = NULL;
	MemoryContext old = CurrentMemoryContext;
	int			pos = 0;
	const char *w;
	int			wl;
	text	   *result = NULL;

	initStringInfo(&buf);
	/* a long text has many words: each word's garbage goes at once */
	if (nlen > 256)
		tmp = AllocSetContextCreate(CurrentMemoryContext, "name_phonetic",
									ALLOCSET_SMALL_SIZES);
	while (next_word(name, nlen, &pos, &w, &wl))
	{
		text	   *code;

		text	   *ascii;
		int			alen = 0;

		if (tmp)
			MemoryContextSwitchTo(tmp);

		/*
		 * Double Metaphone reads bytes as Latin-1 (0xD1 is N with tilde), so
		 * it sees only the word's ASCII letters: other scripts have no code.
		 */
		ascii = (text *) palloc(VARHDRSZ + wl);
		for (int i = 0; i < wl; i++)
			if ((unsigned char) w[i] < 0x80)
				VARDATA(ascii)[alen++] = w[i];
		SET_VARSIZE(ascii, VARHDRSZ + alen);
		code = NULL;
		if (alen > 0)
			code = DatumGetTextPP(DirectFunctionCall1(fn, PointerGetDatum(ascii)));
		MemoryContextSwitchTo(old);
		if (code != NULL && VARSIZE_ANY_EXHDR(code) > 0)
		{
			if (buf.len > 0)
				appendStringInfoChar(&buf, ' ');
			appendBinaryStringInfo(&buf, VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code));
		}
		if (tmp)
			MemoryContextReset(tmp);
		CHECK_FOR_INTERRUPTS();
	}
	if (tmp)
		MemoryContextDelete(tmp);
	if (buf.len > 0)
		result = cstring_to_text_with_len(buf.data, buf.len);	/* ASCII */
	pfree(buf.data);
	pfree(name);
	return result;
}

PG_FUNCTION_INFO_V1(name_phonetic);
Datum
name_phonetic(PG_FUNCTION_ARGS)
{
	int			len;
	const char *s = arg_utf8(PG_GETARG_TEXT_PP(0), &len);
	text	   *code = name_phonetic_text(s, len);

	if (code == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(code);
}

/* ---- comparators ---- */

/*
 * Level of two standardised names: thresholds (Jaro-Winkler) strictest
 * first, e.g. '{0.92,0.8}': 5 exact, 4 similarity >= 0.92 or one edit
 * (Damerau-Levenshtein), 3 similarity >= 0.8, 2 same phonetic code
 * (name_phonetic), 1 different, 0 missing (NULL or empty).  With n
 * thresholds: exact n + 3, the phonetic level 2.  The cheap measures come
 * first; the phonetic code only for names they call different, computed
 * here unless the caller has the codes (coded: pa and pb, either NULL).
 */
static int
name_level(FunctionCallInfo fcinfo, int tharg, bool coded, text *pa, text *pb)
{
	text	   *a,
			   *b;
	Datum	   *th;
	int			n;
	pg_wchar   *wa,
			   *wb;
	int			la,
				lb;
	double		jw;
	int			sa,
				sb;
	const char *ua,
			   *ub;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return 0;
	link_thresholds_float8(fcinfo, tharg, &th, &n);
	if (n < 1 || n > 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("compare_name takes 1 to 12 thresholds"),
				 errhint("The levels are missing, different, phonetic, one per threshold and exact: at most 16.")));
	a = PG_GETARG_TEXT_PP(0);
	b = PG_GETARG_TEXT_PP(1);
	if (VARSIZE_ANY_EXHDR(a) == 0 || VARSIZE_ANY_EXHDR(b) == 0)
		return 0;
	if (VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0)
		return n + 3;

	wa = link_text_chars(a, &la);
	wb = link_text_chars(b, &lb);
	jw = link_jaro_winkler(wa, la, wb, lb);
	if (jw >= DatumGetFloat8(th[0]) ||
		(la - lb <= 1 && lb - la <= 1 && link_damerau_levenshtein(wa, la, wb, lb) <= 1))
		return n + 2;
	for (int k = 1; k < n; k++)
		if (jw >= DatumGetFloat8(th[k]))
			return n + 2 - k;

	if (!coded)
	{
		ua = arg_utf8(a, &sa);
		ub = arg_utf8(b, &sb);
		pa = name_phonetic_text(ua, sa);
		pb = name_phonetic_text(ub, sb);
	}
	if (pa != NULL && pb != NULL && VARSIZE_ANY_EXHDR(pa) > 0 &&
		VARSIZE_ANY_EXHDR(pa) == VARSIZE_ANY_EXHDR(pb) &&
		memcmp(VARDATA_ANY(pa), VARDATA_ANY(pb), VARSIZE_ANY_EXHDR(pa)) == 0)
		return 2;
	return 1;
}

PG_FUNCTION_INFO_V1(compare_name);
Datum
compare_name(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(name_level(fcinfo, 2, false, NULL, NULL));
}

/*
 * The same levels from names and their phonetic codes as linkage stores
 * them (<field>_ph): no code is computed per pair.
 */
PG_FUNCTION_INFO_V1(compare_name_coded);
Datum
compare_name_coded(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(name_level(fcinfo, 4, true,
							   PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2),
							   PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3)));
}
