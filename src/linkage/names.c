/*-------------------------------------------------------------------------
 *
 * names.c
 *		Standardisers and comparators for names and addresses, for linkage
 *		on any column of a source.
 *
 * Owns what a name and an address look like once standardised, and their
 * comparison levels (docs/sql-reference.md, "Names and addresses"):
 *
 *		standardise_name        lower case, Latin letters folded to ASCII
 *		                        (e acute e, sharp s ss, o slash o, ae, ...), apostrophes
 *		                        removed, other punctuation to spaces, titles
 *		                        and suffixes dropped, one space between words
 *		standardise_address     the same folding, street words to one
 *		                        spelling, "12 a" -> "12a", UK postcode removed
 *		address_house_number    the address's tokens that start with a digit
 *		standardise_postcode_any  a UK postcode canonical, any other kept as
 *		                        text (upper case, letters, digits, space, -)
 *		name_phonetic           Double Metaphone (PostgreSQL's fuzzystrmatch
 *		                        library, loaded at first use) of each word
 *		compare_name            0 missing, 1 different, 2 same phonetic code,
 *		                        Jaro-Winkler levels, top exact
 *		compare_token_overlap   Jaccard overlap of the words
 *
 * Everything works on characters: the text is read as UTF-8 (converted
 * from the server encoding when that is another one), and what is not a
 * Latin letter, a digit, punctuation or a mark is kept as it is (Greek and
 * Cyrillic capitals lower-cased).  Folding never makes a name longer, so
 * every buffer is sized from the input.
 *
 * Names and addresses identify people, so nothing here prints a value.
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


/*
 * Latin letters folded to lower-case ASCII, generated from Unicode's
 * compatibility decompositions with the letters that have none written out
 * (ae, o, th, ss, d, l, oe, ...); NULL keeps the character as it is.  No
 * entry is longer in ASCII than its character in UTF-8.
 */
/* U+00C0..U+024F */
static const char *const fold_latin[400] = {
	"a", "a", "a", "a", "a", "a", "ae", "c",	/* 00C0 */
	"e", "e", "e", "e", "i", "i", "i", "i",	/* 00C8 */
	"d", "n", "o", "o", "o", "o", "o", NULL,	/* 00D0 */
	"o", "u", "u", "u", "u", "y", "th", "ss",	/* 00D8 */
	"a", "a", "a", "a", "a", "a", "ae", "c",	/* 00E0 */
	"e", "e", "e", "e", "i", "i", "i", "i",	/* 00E8 */
	"d", "n", "o", "o", "o", "o", "o", NULL,	/* 00F0 */
	"o", "u", "u", "u", "u", "y", "th", "y",	/* 00F8 */
	"a", "a", "a", "a", "a", "a", "c", "c",	/* 0100 */
	"c", "c", "c", "c", "c", "c", "d", "d",	/* 0108 */
	"d", "d", "e", "e", "e", "e", "e", "e",	/* 0110 */
	"e", "e", "e", "e", "g", "g", "g", "g",	/* 0118 */
	"g", "g", "g", "g", "h", "h", "h", "h",	/* 0120 */
	"i", "i", "i", "i", "i", "i", "i", "i",	/* 0128 */
	"i", "i", "ij", "ij", "j", "j", "k", "k",	/* 0130 */
	"k", "l", "l", "l", "l", "l", "l", "l",	/* 0138 */
	"l", "l", "l", "n", "n", "n", "n", "n",	/* 0140 */
	"n", "n", "n", "n", "o", "o", "o", "o",	/* 0148 */
	"o", "o", "oe", "oe", "r", "r", "r", "r",	/* 0150 */
	"r", "r", "s", "s", "s", "s", "s", "s",	/* 0158 */
	"s", "s", "t", "t", "t", "t", "t", "t",	/* 0160 */
	"u", "u", "u", "u", "u", "u", "u", "u",	/* 0168 */
	"u", "u", "u", "u", "w", "w", "y", "y",	/* 0170 */
	"y", "z", "z", "z", "z", "z", "z", "s",	/* 0178 */
	"b", "b", "b", "b", NULL, NULL, "o", "c",	/* 0180 */
	"c", "d", "d", "d", "d", NULL, "e", "e",	/* 0188 */
	"e", "f", "f", "g", NULL, NULL, "i", "i",	/* 0190 */
	"k", "k", "l", NULL, NULL, "n", "n", "o",	/* 0198 */
	"o", "o", NULL, NULL, "p", "p", NULL, NULL,	/* 01A0 */
	NULL, NULL, NULL, "t", "t", "t", "t", "u",	/* 01A8 */
	"u", NULL, "v", "y", "y", "z", "z", NULL,	/* 01B0 */
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,	/* 01B8 */
	NULL, NULL, NULL, NULL, "dz", "dz", "dz", "lj",	/* 01C0 */
	"lj", "lj", "nj", "nj", "nj", "a", "a", "i",	/* 01C8 */
	"i", "o", "o", "u", "u", "u", "u", "u",	/* 01D0 */
	"u", "u", "u", "u", "u", "e", "a", "a",	/* 01D8 */
	"a", "a", "ae", "ae", "g", "g", "g", "g",	/* 01E0 */
	"k", "k", "o", "o", "o", "o", NULL, NULL,	/* 01E8 */
	"j", "dz", "dz", "dz", "g", "g", NULL, NULL,	/* 01F0 */
	"n", "n", "a", "a", "ae", "ae", "o", "o",	/* 01F8 */
	"a", "a", "a", "a", "e", "e", "e", "e",	/* 0200 */
	"i", "i", "i", "i", "o", "o", "o", "o",	/* 0208 */
	"r", "r", "r", "r", "u", "u", "u", "u",	/* 0210 */
	"s", "s", "t", "t", NULL, NULL, "h", "h",	/* 0218 */
	NULL, "d", NULL, NULL, "z", "z", "a", "a",	/* 0220 */
	"e", "e", "o", "o", "o", "o", "o", "o",	/* 0228 */
	"o", "o", "y", "y", "l", "n", "t", "j",	/* 0230 */
	NULL, NULL, "a", "c", "c", "l", "t", "s",	/* 0238 */
	"z", NULL, NULL, "b", "u", NULL, "e", "e",	/* 0240 */
	"j", "j", "q", "q", "r", "r", "y", "y",	/* 0248 */
};
/* U+1E00..U+1EFF */
static const char *const fold_latin_additional[256] = {
	"a", "a", "b", "b", "b", "b", "b", "b",	/* 1E00 */
	"c", "c", "d", "d", "d", "d", "d", "d",	/* 1E08 */
	"d", "d", "d", "d", "e", "e", "e", "e",	/* 1E10 */
	"e", "e", "e", "e", "e", "e", "f", "f",	/* 1E18 */
	"g", "g", "h", "h", "h", "h", "h", "h",	/* 1E20 */
	"h", "h", "h", "h", "i", "i", "i", "i",	/* 1E28 */
	"k", "k", "k", "k", "k", "k", "l", "l",	/* 1E30 */
	"l", "l", "l", "l", "l", "l", "m", "m",	/* 1E38 */
	"m", "m", "m", "m", "n", "n", "n", "n",	/* 1E40 */
	"n", "n", "n", "n", "o", "o", "o", "o",	/* 1E48 */
	"o", "o", "o", "o", "p", "p", "p", "p",	/* 1E50 */
	"r", "r", "r", "r", "r", "r", "r", "r",	/* 1E58 */
	"s", "s", "s", "s", "s", "s", "s", "s",	/* 1E60 */
	"s", "s", "t", "t", "t", "t", "t", "t",	/* 1E68 */
	"t", "t", "u", "u", "u", "u", "u", "u",	/* 1E70 */
	"u", "u", "u", "u", "v", "v", "v", "v",	/* 1E78 */
	"w", "w", "w", "w", "w", "w", "w", "w",	/* 1E80 */
	"w", "w", "x", "x", "x", "x", "y", "y",	/* 1E88 */
	"z", "z", "z", "z", "z", "z", "h", "t",	/* 1E90 */
	"w", "y", "a", "s", "s", "s", "ss", NULL,	/* 1E98 */
	"a", "a", "a", "a", "a", "a", "a", "a",	/* 1EA0 */
	"a", "a", "a", "a", "a", "a", "a", "a",	/* 1EA8 */
	"a", "a", "a", "a", "a", "a", "a", "a",	/* 1EB0 */
	"e", "e", "e", "e", "e", "e", "e", "e",	/* 1EB8 */
	"e", "e", "e", "e", "e", "e", "e", "e",	/* 1EC0 */
	"i", "i", "i", "i", "o", "o", "o", "o",	/* 1EC8 */
	"o", "o", "o", "o", "o", "o", "o", "o",	/* 1ED0 */
	"o", "o", "o", "o", "o", "o", "o", "o",	/* 1ED8 */
	"o", "o", "o", "o", "u", "u", "u", "u",	/* 1EE0 */
	"u", "u", "u", "u", "u", "u", "u", "u",	/* 1EE8 */
	"u", "u", "y", "y", "y", "y", "y", "y",	/* 1EF0 */
	"y", "y", "ll", "ll", "v", "v", "y", "y",	/* 1EF8 */
};

/* what one character becomes */
typedef enum FoldKind
{
	FOLD_KEEP,					/* part of a word: the bytes in out */
	FOLD_SPACE,					/* separates words */
	FOLD_DROP					/* vanishes (apostrophes, marks, invisibles) */
} FoldKind;

/*
 * The next character of s (len bytes left) as a code point in *cp; returns
 * the bytes it takes, at least 1.  An invalid sequence (only possible in a
 * SQL_ASCII database) is one byte with *cp = -1.
 */
static int
utf8_next(const unsigned char *s, int len, int32 *cp)
{
	unsigned char c = s[0];
	int			n;
	int32		v;

	if (c < 0x80)
	{
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		v = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		v = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		v = c & 0x07;
	}
	else
	{
		*cp = -1;
		return 1;
	}
	if (len < n)
	{
		*cp = -1;
		return 1;
	}
	for (int i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
		{
			*cp = -1;
			return 1;
		}
		v = (v << 6) | (s[i] & 0x3F);
	}
	/* overlong forms, surrogates and beyond U+10FFFF are invalid */
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
		(v >= 0xD800 && v <= 0xDFFF))
	{
		*cp = -1;
		return 1;
	}
	*cp = v;
	return n;
}

/* a code point below U+0800 as UTF-8 into out; returns its length */
static int
utf8_put2(int32 cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	out[0] = (char) (0xC0 | (cp >> 6));
	out[1] = (char) (0x80 | (cp & 0x3F));
	return 2;
}

/*
 * What the character cp (its UTF-8 bytes at src, srclen long) becomes:
 * a piece of a word (written to out, at most srclen bytes), a word
 * separator, or nothing.
 */
static FoldKind
fold_char(int32 cp, const char *src, int srclen, char *out, int *outlen)
{
	const char *f = NULL;

	if (cp < 0)
		return FOLD_SPACE;
	if (cp < 0x80)
	{
		if (cp >= 'A' && cp <= 'Z')
		{
			out[0] = (char) (cp + ('a' - 'A'));
			*outlen = 1;
			return FOLD_KEEP;
		}
		if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
		{
			out[0] = (char) cp;
			*outlen = 1;
			return FOLD_KEEP;
		}
		return (cp == '\'' || cp == '`') ? FOLD_DROP : FOLD_SPACE;
	}
	switch (cp)
	{
		case 0x00AA:			/* feminine ordinal */
			f = "a";
			break;
		case 0x00BA:			/* masculine ordinal */
			f = "o";
			break;
		case 0x00AD:			/* soft hyphen */
		case 0x00B4:			/* acute accent, typed as an apostrophe */
		case 0x02BB:			/* modifier letter turned comma (okina) */
		case 0x02BC:			/* modifier letter apostrophe */
		case 0x2018:			/* quotation marks typed as apostrophes */
		case 0x2019:
		case 0x201B:
		case 0x2032:			/* prime */
		case 0x200B:			/* zero-width space, non-joiner, joiner */
		case 0x200C:
		case 0x200D:
		case 0x2060:			/* word joiner */
		case 0xFEFF:			/* byte order mark */
			return FOLD_DROP;
		default:
			break;
	}
	if (f == NULL)
	{
		if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
			return FOLD_SPACE;	/* C1 controls, Latin-1 symbols, x, / */
		if (cp <= 0x24F)
			f = fold_latin[cp - 0xC0];
		else if (cp >= 0x1E00 && cp <= 0x1EFF)
			f = fold_latin_additional[cp - 0x1E00];
		else if (cp >= 0x0300 && cp <= 0x036F)
			return FOLD_DROP;	/* combining marks: decomposed accents */
		else if ((cp >= 0x2000 && cp <= 0x206F) ||	/* general punctuation */
				 (cp >= 0x2E00 && cp <= 0x2E7F) ||	/* supplemental */
				 (cp >= 0x3000 && cp <= 0x3003) ||	/* ideographic space, marks */
				 (cp >= 0xFE50 && cp <= 0xFE6F) ||	/* small forms */
				 (cp >= 0x2100 && cp <= 0x2BFF) ||	/* symbols, arrows, shapes */
				 (cp >= 0x1F000 && cp <= 0x1FAFF))	/* emoji */
			return FOLD_SPACE;
		else if (cp >= 0xFE00 && cp <= 0xFE0F)
			return FOLD_DROP;	/* variation selectors */
		else if (cp >= 0xFF01 && cp <= 0xFF5E)
		{
			/* full-width ASCII: as the ASCII character */
			return fold_char(cp - 0xFEE0, NULL, 1, out, outlen);
		}
		else if ((cp >= 0x0391 && cp <= 0x03AB && cp != 0x03A2) ||
				 (cp >= 0x0410 && cp <= 0x042F))
		{
			*outlen = utf8_put2(cp + 0x20, out);	/* Greek, Cyrillic capitals */
			return FOLD_KEEP;
		}
		else if (cp == 0x03C2)
		{
			*outlen = utf8_put2(0x03C3, out);	/* final sigma: sigma */
			return FOLD_KEEP;
		}
		else if (cp >= 0x0400 && cp <= 0x040F)
		{
			*outlen = utf8_put2(cp + 0x50, out);
			return FOLD_KEEP;
		}
		else if (cp >= 0xFB00 && cp <= 0xFB06)
		{
			static const char *const ligatures[] = {"ff", "fi", "fl", "ffi", "ffl", "st", "st"};

			f = ligatures[cp - 0xFB00];
		}
	}
	if (f == NULL)
	{
		/* any other character: kept as it is */
		memcpy(out, src, srclen);
		*outlen = srclen;
		return FOLD_KEEP;
	}
	*outlen = strlen(f);
	Assert(*outlen <= srclen);
	memcpy(out, f, *outlen);
	return FOLD_KEEP;
}

/*
 * s (len bytes of UTF-8) folded: lower case, Latin letters in ASCII,
 * apostrophes and marks removed, anything else that is not a letter or a
 * digit a separator; the words one space apart, no space first or last.
 * out holds at least len + 1 bytes; returns the length written (NUL
 * terminated).
 */
static int
fold_text(const char *s, int len, char *out)
{
	const unsigned char *u = (const unsigned char *) s;
	int			pos = 0;
	int			n = 0;
	bool		pending_space = false;

	while (pos < len)
	{
		int32		cp;
		int			step = utf8_next(u + pos, len - pos, &cp);
		char		piece[4];
		int			plen;

		switch (fold_char(cp, s + pos, step, piece, &plen))
		{
			case FOLD_KEEP:
				/* the separator's byte was read already: out stays <= in */
				if (pending_space && n > 0)
					out[n++] = ' ';
				pending_space = false;
				memcpy(out + n, piece, plen);
				n += plen;
				break;
			case FOLD_SPACE:
				pending_space = true;
				break;
			case FOLD_DROP:
				break;
		}
		pos += step;
	}
	out[n] = '\0';
	return n;
}

/* the next word of a folded string (one space apart); false at the end */
static bool
next_word(const char *s, int len, int *pos, const char **word, int *wlen)
{
	int			p = *pos;
	int			start;

	while (p < len && s[p] == ' ')
		p++;
	if (p >= len)
		return false;
	start = p;
	while (p < len && s[p] != ' ')
		p++;
	*word = s + start;
	*wlen = p - start;
	*pos = p;
	return true;
}

static bool
word_is(const char *word, int wlen, const char *w)
{
	return (int) strlen(w) == wlen && memcmp(word, w, wlen) == 0;
}

static bool
word_in(const char *word, int wlen, const char *const *list)
{
	for (; *list; list++)
		if (word_is(word, wlen, *list))
			return true;
	return false;
}

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

/* ---- SQL: the text in and out, in the server encoding ---- */

/* a text argument as UTF-8 bytes (converted when the server's is another) */
static const char *
arg_utf8(text *t, int *len)
{
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);
	const char *u = pg_server_to_any(s, n, PG_UTF8);

	*len = (u == s) ? n : (int) strlen(u);
	return u;
}

/* UTF-8 bytes as text in the server encoding */
static text *
utf8_text(const char *s, int len)
{
	const char *t = pg_any_to_server(s, len, PG_UTF8);

	return cstring_to_text_with_len(t, (t == s) ? len : (int) strlen(t));
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

/* the thresholds argument (not NULL) as a C array of n doubles */
static void
thresholds_float8(FunctionCallInfo fcinfo, int argno, Datum **th, int *n)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("comparison thresholds cannot be NULL")));
	link_thresholds_arg(PG_GETARG_ARRAYTYPE_P(argno), FLOAT8OID, th, n);
}

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
	thresholds_float8(fcinfo, 2, &th, &n);
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

/*
 * Level of two standardised names: thresholds (Jaro-Winkler) strictest
 * first, e.g. '{0.92,0.8}': 5 exact, 4 similarity >= 0.92 or one edit
 * (Damerau-Levenshtein), 3 similarity >= 0.8, 2 same phonetic code
 * (name_phonetic), 1 different, 0 missing (NULL or empty).  With n
 * thresholds: exact n + 3, the phonetic level 2.  The cheap measures come
 * first; the phonetic code only for names they call different.
 */
PG_FUNCTION_INFO_V1(compare_name);
Datum
compare_name(PG_FUNCTION_ARGS)
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
	text	   *pa,
			   *pb;
	int			sa,
				sb;
	const char *ua,
			   *ub;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT32(0);
	thresholds_float8(fcinfo, 2, &th, &n);
	if (n < 1 || n > 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("compare_name takes 1 to 12 thresholds"),
				 errhint("The levels are missing, different, phonetic, one per threshold and exact: at most 16.")));
	a = PG_GETARG_TEXT_PP(0);
	b = PG_GETARG_TEXT_PP(1);
	if (VARSIZE_ANY_EXHDR(a) == 0 || VARSIZE_ANY_EXHDR(b) == 0)
		PG_RETURN_INT32(0);
	if (VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0)
		PG_RETURN_INT32(n + 3);

	wa = link_text_chars(a, &la);
	wb = link_text_chars(b, &lb);
	jw = link_jaro_winkler(wa, la, wb, lb);
	if (jw >= DatumGetFloat8(th[0]) ||
		(Abs(la - lb) <= 1 && link_damerau_levenshtein(wa, la, wb, lb) <= 1))
		PG_RETURN_INT32(n + 2);
	for (int k = 1; k < n; k++)
		if (jw >= DatumGetFloat8(th[k]))
			PG_RETURN_INT32(n + 2 - k);

	ua = arg_utf8(a, &sa);
	ub = arg_utf8(b, &sb);
	pa = name_phonetic_text(ua, sa);
	pb = name_phonetic_text(ub, sb);
	if (pa != NULL && pb != NULL &&
		VARSIZE_ANY_EXHDR(pa) == VARSIZE_ANY_EXHDR(pb) &&
		memcmp(VARDATA_ANY(pa), VARDATA_ANY(pb), VARSIZE_ANY_EXHDR(pa)) == 0)
		PG_RETURN_INT32(2);
	PG_RETURN_INT32(1);
}
