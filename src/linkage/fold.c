/*-------------------------------------------------------------------------
 *
 * fold.c
 *		Text folded to lower-case ASCII words, for the name and address
 *		standardisers (names.c, address.c).
 *
 * Owns the folding table (Latin letters to ASCII: e acute e, sharp s ss,
 * o slash o, ae, ...), reading UTF-8 by character, splitting a folded text
 * into words, and the text in and out in the server encoding.  Folding
 * never makes a text longer, so every buffer is sized from the input.
 *
 * Names and addresses identify people, so nothing here prints a value.
 *
 * src/linkage/fold.c
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
/*
 * The next character of s (len bytes left) as a code point in *cp; returns
 * the bytes it takes, at least 1.  An invalid sequence (only possible in a
 * SQL_ASCII database) is one byte with *cp = -1.
 */
int
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
FoldKind
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
int
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
bool
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

bool
word_is(const char *word, int wlen, const char *w)
{
	return (int) strlen(w) == wlen && memcmp(word, w, wlen) == 0;
}

bool
word_in(const char *word, int wlen, const char *const *list)
{
	for (; *list; list++)
		if (word_is(word, wlen, *list))
			return true;
	return false;
}

/* ---- SQL: the text in and out, in the server encoding ---- */

/* a text argument as UTF-8 bytes (converted when the server's is another) */
const char *
arg_utf8(text *t, int *len)
{
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);
	const char *u = pg_server_to_any(s, n, PG_UTF8);

	*len = (u == s) ? n : (int) strlen(u);
	return u;
}

/* UTF-8 bytes as text in the server encoding */
text *
utf8_text(const char *s, int len)
{
	const char *t = pg_any_to_server(s, len, PG_UTF8);

	return cstring_to_text_with_len(t, (t == s) ? len : (int) strlen(t));
}
