/*-------------------------------------------------------------------------
 *
 * address.c
 *		Standardisers and a comparator for addresses and postcodes of any
 *		country, for linkage on any column of a source.
 *
 * Owns what an address looks like once standardised (docs/sql-reference.md,
 * "Names and addresses"):
 *
 *		standardise_address     folded (fold.c), street words to one
 *		                        spelling, "12 a" -> "12a", UK postcode removed
 *		address_house_number    the address's tokens that start with a digit
 *		standardise_postcode_any  a UK postcode canonical, any other kept as
 *		                        text (upper case, letters, digits, space, -)
 *		compare_token_overlap   Jaccard overlap of the words
 *
 * Addresses identify people, so nothing here prints a value.
 *
 * src/linkage/address.c
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


/* ---- addresses ---- */

/*
 * Street words to one spelling (the abbreviation Royal Mail's address
 * files use); "saint" becomes "st" too, so St and Street never need
 * telling apart.
 */
static const struct
{
	const char *from;
	const char *to;
}			street_words[] = {
	{"road", "rd"},
	{"street", "st"}, {"str", "st"}, {"saint", "st"},
	{"avenue", "ave"}, {"av", "ave"}, {"avn", "ave"},
	{"lane", "ln"},
	{"drive", "dr"}, {"drv", "dr"},
	{"close", "cl"},
	{"court", "ct"}, {"crt", "ct"},
	{"crescent", "cres"}, {"cresc", "cres"},
	{"place", "pl"},
	{"gardens", "gdns"},
	{"terrace", "terr"}, {"ter", "terr"}, {"tce", "terr"},
	{"square", "sq"},
	{"grove", "gr"},
	{"park", "pk"},
	{"mount", "mt"},
	{"apartment", "flat"}, {"apartments", "flat"}, {"apt", "flat"}, {"flt", "flat"},
	{NULL, NULL}
};

static bool
all_digits(const char *w, int len)
{
	for (int i = 0; i < len; i++)
		if (w[i] < '0' || w[i] > '9')
			return false;
	return len > 0;
}

/* an outward code and an inward code as two words: a UK postcode? */
static bool
postcode_words(const char *a, int alen, const char *b, int blen)
{
	char		buf[8];
	char		canon[POSTCODE_MAX_LEN];
	int			outward;

	if (alen < 2 || alen > 4 || blen != 3)
		return false;
	memcpy(buf, a, alen);
	memcpy(buf + alen, b, blen);
	return postcode_canonical(buf, alen + blen, canon, &outward);
}

static bool
postcode_word(const char *a, int alen)
{
	char		canon[POSTCODE_MAX_LEN];
	int			outward;

	return alen >= 5 && alen <= 7 && postcode_canonical(a, alen, canon, &outward);
}

/* the longest address the standardiser takes, in bytes (its output may grow by half) */
#define ADDRESS_MAX_BYTES	((int) (MaxAllocSize / 2))

/*
 * The standardised form of an address (len bytes of UTF-8) into a palloc'd
 * string; *outlen receives its length, 0 when nothing is left.
 */
static char *
address_standardise(const char *s, int len, int *outlen)
{
	char	   *folded;
	char	   *out;
	int			flen;
	int			pos = 0;
	int			n = 0;
	const char *w;
	int			wl;
	bool		have;

	if (len > ADDRESS_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("address too long to standardise"),
				 errdetail("An address can hold at most %d bytes.", ADDRESS_MAX_BYTES)));
	folded = palloc(len + 1);
	flen = fold_text(s, len, folded);
	/* a mapped word grows by at most one byte and is two bytes or more */
	out = palloc(flen + flen / 2 + 2);

	have = next_word(folded, flen, &pos, &w, &wl);
	while (have)
	{
		const char *w2;
		int			wl2;
		bool		have2 = next_word(folded, flen, &pos, &w2, &wl2);
		const char *emit = w;
		int			elen = wl;
		bool		join_letter = false;

		/* a UK postcode, in one word or two, is compared on its own */
		if (have2 && postcode_words(w, wl, w2, wl2))
		{
			have = next_word(folded, flen, &pos, &w, &wl);
			continue;
		}
		if (postcode_word(w, wl))
		{
			have = have2;
			w = w2;
			wl = wl2;
			continue;
		}
		/* "12 a" is "12a" */
		if (have2 && wl2 == 1 && w2[0] >= 'a' && w2[0] <= 'z' && all_digits(w, wl))
			join_letter = true;
		else if (wl <= 10)
		{
			for (int i = 0; street_words[i].from; i++)
				if (word_is(w, wl, street_words[i].from))
				{
					emit = street_words[i].to;
					elen = strlen(emit);
					break;
				}
		}
		if (n > 0)
			out[n++] = ' ';
		memcpy(out + n, emit, elen);
		n += elen;
		if (join_letter)
		{
			out[n++] = w2[0];
			have = next_word(folded, flen, &pos, &w, &wl);
		}
		else
		{
			have = have2;
			w = w2;
			wl = wl2;
		}
	}
	out[n] = '\0';
	pfree(folded);
	*outlen = n;
	return out;
}

/*
 * The house and flat numbers of a standardised address (len bytes) into
 * out (at least len + 1 bytes): its words that start with a digit, in
 * order, one space apart.  Returns the length, 0 when there is none.
 */
static int
address_numbers(const char *addr, int len, char *out)
{
	int			pos = 0;
	int			n = 0;
	const char *w;
	int			wl;

	while (next_word(addr, len, &pos, &w, &wl))
	{
		if (w[0] < '0' || w[0] > '9')
			continue;
		if (n > 0)
			out[n++] = ' ';
		memcpy(out + n, w, wl);
		n += wl;
	}
	out[n] = '\0';
	return n;
}

/* ---- postcodes of any country ---- */

/*
 * A postcode of any country (len bytes of UTF-8) into out (at least len +
 * 1 bytes): the canonical form of a UK postcode, else upper case with the
 * letters (accents folded), digits, hyphens and single spaces kept.
 * Returns the length, 0 when no letter or digit is left.
 */
static int
postcode_any(const char *s, int len, char *out)
{
	const unsigned char *u = (const unsigned char *) s;
	int			outward;
	int			pos = 0;
	int			n = 0;
	bool		alnum = false;
	bool		pending_space = false;

	if (len <= 64 && postcode_canonical(s, len, out, &outward))
		return strlen(out);

	while (pos < len)
	{
		int32		cp;
		int			step = utf8_next(u + pos, len - pos, &cp);
		char		piece[4];
		int			plen;

		if (cp == '-')
		{
			if (pending_space && n > 0)
				out[n++] = ' ';
			pending_space = false;
			out[n++] = '-';
		}
		else if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' ||
				 cp == 0xA0 || cp == 0x3000 || (cp >= 0x2000 && cp <= 0x200A))
			pending_space = true;
		else if (fold_char(cp, s + pos, step, piece, &plen) == FOLD_KEEP)
		{
			bool		ascii = true;

			for (int i = 0; i < plen; i++)
				if ((unsigned char) piece[i] >= 0x80)
					ascii = false;
			if (ascii)
			{
				if (pending_space && n > 0)
					out[n++] = ' ';
				pending_space = false;
				for (int i = 0; i < plen; i++)
					out[n++] = (piece[i] >= 'a' && piece[i] <= 'z') ? piece[i] - ('a' - 'A') : piece[i];
				alnum = true;
			}
		}
		pos += step;
	}
	out[n] = '\0';
	return alnum ? n : 0;
}

PG_FUNCTION_INFO_V1(standardise_address);
Datum
standardise_address(PG_FUNCTION_ARGS)
{
	int			len;
	const char *s = arg_utf8(PG_GETARG_TEXT_PP(0), &len);
	int			n;
	char	   *out = address_standardise(s, len, &n);

	if (n == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(utf8_text(out, n));
}

PG_FUNCTION_INFO_V1(address_house_number);
Datum
address_house_number(PG_FUNCTION_ARGS)
{
	int			len;
	const char *s = arg_utf8(PG_GETARG_TEXT_PP(0), &len);
	int			alen;
	char	   *addr = address_standardise(s, len, &alen);
	char	   *out = palloc(alen + 1);
	int			n = address_numbers(addr, alen, out);

	if (n == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, n));	/* ASCII */
}

PG_FUNCTION_INFO_V1(standardise_postcode_any);
Datum
standardise_postcode_any(PG_FUNCTION_ARGS)
{
	int			len;
	const char *s = arg_utf8(PG_GETARG_TEXT_PP(0), &len);
	char	   *out = palloc(Max(len, POSTCODE_MAX_LEN) + 1);
	int			n = postcode_any(s, len, out);

	if (n == 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, n));	/* ASCII */
}

/* ---- comparators ---- */

/* a word of a text: where it starts and how long it is */
typedef struct Word
{
	const char *p;
	int			len;
} Word;

static int
word_cmp(const void *a, const void *b)
{
	const Word *x = (const Word *) a;
	const Word *y = (const Word *) b;
	int			c = memcmp(x->p, y->p, Min(x->len, y->len));

	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* the distinct words of s (split on white space), sorted; returns how many */
static int
word_set(const char *s, int len, Word **words)
{
	int			count = 0;
	int			n = 0;
	Word	   *w;

	for (int i = 0; i < len; i++)
		if (!is_blank(s[i]) && (i == 0 || is_blank(s[i - 1])))
			count++;
	*words = NULL;
	if (count == 0)
		return 0;
	if ((Size) count > MaxAllocSize / sizeof(Word))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many words to compare"),
				 errdetail("A text compared word by word can hold at most %d words.",
						   (int) (MaxAllocSize / sizeof(Word)))));
	w = palloc(count * sizeof(Word));
	for (int i = 0; i < len;)
	{
		int			start;

		while (i < len && is_blank(s[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && !is_blank(s[i]))
			i++;
		w[n].p = s + start;
		w[n].len = i - start;
		n++;
	}
	qsort(w, n, sizeof(Word), word_cmp);
	count = 0;
	for (int i = 0; i < n; i++)
		if (count == 0 || word_cmp(&w[count - 1], &w[i]) != 0)
			w[count++] = w[i];
	*words = w;
	return count;
}

/*
 * Level by the Jaccard overlap of the word sets (words split on white
 * space): thresholds strictest first, e.g. '{0.8,0.5}': exact 4, overlap
 * >= 0.8 3, >= 0.5 2, otherwise 1; NULL or no word 0.
 */
PG_FUNCTION_INFO_V1(compare_token_overlap);
Datum
compare_token_overlap(PG_FUNCTION_ARGS)
{
	text	   *a,
			   *b;
	Datum	   *th;
	int			n;
	Word	   *wa,
			   *wb;
	int			na,
				nb;
	int			i = 0,
				j = 0,
				common = 0;
	double		overlap;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT32(0);
	link_thresholds_float8(fcinfo, 2, &th, &n);
	a = PG_GETARG_TEXT_PP(0);
	b = PG_GETARG_TEXT_PP(1);
	na = word_set(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), &wa);
	nb = word_set(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), &wb);
	if (na == 0 || nb == 0)
		PG_RETURN_INT32(0);
	if (VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0)
		PG_RETURN_INT32(n + 2);
	while (i < na && j < nb)
	{
		int			c = word_cmp(&wa[i], &wb[j]);

		if (c == 0)
		{
			common++;
			i++;
			j++;
		}
		else if (c < 0)
			i++;
		else
			j++;
	}
	overlap = (double) common / (double) (na + nb - common);
	for (int k = 0; k < n; k++)
		if (overlap >= DatumGetFloat8(th[k]))
			PG_RETURN_INT32(n + 1 - k);
	PG_RETURN_INT32(1);
}
