package scoring

import (
	"slices"
	"strings"
	"unicode"
)

// cocoPunctuation is pycocoevalcap's PUNCTUATIONS list (tokenizer/
// ptbtokenizer.py): tokens dropped after PTB tokenisation. The reference
// compares it against tokens that Stanford's "-lowerCase" option has already
// lower-cased, so its upper-case entries -LRB-, -RRB-, -LCB-, -RCB- never
// match and bracket tokens survive as "-lrb-" and so on. That quirk is kept:
// the list is compared against lower-case tokens here too.
var cocoPunctuation = []string{"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
	".", "?", "!", ",", ":", "-", "--", "...", ";"}

// ptbAbbreviations keep their trailing period as part of the token, as the
// Stanford lexer's abbreviation lists do for the common cases in captions.
var ptbAbbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true, "jr": true,
	"sr": true, "vs": true, "etc": true, "inc": true, "ltd": true, "co": true, "corp": true,
	"mt": true, "ave": true, "fig": true, "no": true, "jan": true, "feb": true, "mar": true,
	"apr": true, "jun": true, "jul": true, "aug": true, "sep": true, "sept": true, "oct": true,
	"nov": true, "dec": true,
}

// ptbBrackets are the PTB escapes for brackets, already lower-cased as
// "-lowerCase" prints them.
var ptbBrackets = map[rune]string{
	'(': "-lrb-", ')': "-rrb-", '[': "-lsb-", ']': "-rsb-", '{': "-lcb-", '}': "-rcb-",
}

// PTBTokenize turns one caption into the tokens pycocoevalcap scores: the
// Stanford PTBTokenizer (CoreNLP 3.4.1, run with -preserveLines -lowerCase),
// then every token in pycocoevalcap's PUNCTUATIONS list dropped.
//
// It follows the PTB conventions that English captions meet: punctuation is
// split from words ("cat." → "cat" "."); "n't" and the clitics 's 're 've
// 'll 'd 'm are split ("don't" → "do" "n't", "can't" → "ca" "n't", "it's" →
// "it" "'s"); "cannot" → "can" "not"; hyphenated words, decimal numbers
// ("3.5") and digit groups ("1,000") stay whole; double quotes become PTB's
// opening or closing quote token (two backquotes, two apostrophes) and
// single quotes a backquote or an apostrophe, by position (all dropped
// later); "..." and longer runs of periods become "..."; "--", em and en
// dashes become "--"; brackets become -lrb- -rrb- -lsb- -rsb- -lcb- -rcb-
// (kept, see cocoPunctuation); acronyms ("u.s.", "e.g."), single capital
// initials ("J.") and a short list of abbreviations ("mr.", "etc.", "st.")
// keep their period.
//
// Where it can differ from Stanford's Java lexer (the shapes world's
// captions, American-spelled words with commas, colons and periods, meet
// none of these): British spellings are not Americanised ("colour" stays,
// where the lexer's americanize option, a default of its PTB mode, gives
// "color"); "/" and "*" are not escaped as "\/" "\*"; the lexer's full
// abbreviation lists and its "Inc. ." sentence-end rule are reduced to the
// list above; ".." is two "." tokens; a run of '?' and '!' is one token;
// the assimilations gonna/gotta/wanna/lemme/gimme are not split; SGML/XML
// tags, URLs, e-mail addresses, emoticons and phone numbers get no special
// treatment (their punctuation is split off like any other); a carriage
// return or U+2028 inside a caption, which makes the Java tool emit an
// extra line and misalign the rest of the file, is treated as a space.
func PTBTokenize(s string) []string {
	rs := []rune(s)
	var out []string
	emit := func(tok string) {
		tok = lowerFull(tok)
		if !slices.Contains(cocoPunctuation, tok) {
			out = append(out, tok)
		}
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case isWordRune(r):
			j := scanWord(rs, i)
			word := string(rs[i:j])
			if j < len(rs) && rs[j] == '.' && keepsPeriod(word) {
				word += "."
				j++
			}
			for _, part := range splitClitics(word) {
				emit(part)
			}
			i = j
		default:
			tok, j := scanPunct(rs, i)
			emit(tok)
			i = j
		}
	}
	return out
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isApostrophe(r rune) bool { return r == '\'' || r == '’' }

// scanWord returns the end of the word starting at rs[i]: word runes joined
// by single hyphens, apostrophes (clitics are split later), periods inside
// numbers and acronyms, and commas inside digit groups.
func scanWord(rs []rune, i int) int {
	j := i + 1
	for j < len(rs) {
		r := rs[j]
		if isWordRune(r) {
			j++
			continue
		}
		if j+1 >= len(rs) {
			break
		}
		prev, next := rs[j-1], rs[j+1]
		switch {
		case (r == '-' || isApostrophe(r)) && isWordRune(prev) && isWordRune(next):
		case (r == '.' || r == ',') && unicode.IsDigit(prev) && unicode.IsDigit(next):
		case r == '.' && unicode.IsLetter(prev) && unicode.IsLetter(next) && isAcronymSoFar(rs[i:j]):
		default:
			return j
		}
		j++
	}
	return j
}

// isAcronymSoFar reports whether w is single letters separated by periods
// ("u", "u.s"), the only words in which a period between letters is kept.
func isAcronymSoFar(w []rune) bool {
	for k, r := range w {
		if k%2 == 0 && !unicode.IsLetter(r) || k%2 == 1 && r != '.' {
			return false
		}
	}
	return len(w)%2 == 1
}

// keepsPeriod reports whether a period right after word belongs to it.
func keepsPeriod(word string) bool {
	rs := []rune(word)
	if len(rs) == 1 && unicode.IsUpper(rs[0]) {
		return true // an initial, "J."
	}
	if len(rs) >= 3 && isAcronymSoFar(rs) {
		return true // "u.s." — the period after the last letter
	}
	return ptbAbbreviations[strings.ToLower(word)]
}

// ptbClitics are split from the end of a word as PTB does: "n't", or the
// apostrophe and what follows it.
var ptbClitics = []string{"n't", "'s", "'re", "'ve", "'ll", "'d", "'m"}

// splitClitics splits "n't" and the clitics off a word; "cannot" becomes
// "can" "not". Curly apostrophes count as straight ones (the Java lexer
// normalises them too); other internal apostrophes ("o'clock") stay.
func splitClitics(word string) []string {
	norm := strings.ReplaceAll(word, "’", "'")
	if len(norm) == len("cannot") && strings.EqualFold(norm, "cannot") {
		return []string{norm[:3], norm[3:]}
	}
	for _, c := range ptbClitics {
		// Byte lengths match because the suffixes are ASCII and EqualFold
		// compares rune by rune.
		if k := len(norm) - len(c); k > 0 && strings.EqualFold(norm[k:], c) {
			return []string{norm[:k], norm[k:]}
		}
	}
	return []string{word}
}

// scanPunct returns the token for the non-word, non-space rune at rs[i] and
// the index after it.
func scanPunct(rs []rune, i int) (string, int) {
	r := rs[i]
	run := func(match func(rune) bool) int {
		j := i
		for j < len(rs) && match(rs[j]) {
			j++
		}
		return j
	}
	opening := i == 0 || unicode.IsSpace(rs[i-1]) || strings.ContainsRune("([{<“‘`\"'", rs[i-1])
	switch {
	case r == '.':
		if j := run(func(c rune) bool { return c == '.' }); j-i >= 3 {
			return "...", j
		}
		return ".", i + 1
	case r == '…':
		return "...", i + 1
	case r == '-':
		if j := run(func(c rune) bool { return c == '-' }); j-i >= 2 {
			return "--", j
		}
		return "-", i + 1
	case r == '—' || r == '–':
		return "--", i + 1
	case r == '?' || r == '!':
		j := run(func(c rune) bool { return c == '?' || c == '!' })
		return string(rs[i:j]), j
	case r == '"':
		if opening {
			return "``", i + 1
		}
		return "''", i + 1
	case r == '“' || r == '„':
		return "``", i + 1
	case r == '”':
		return "''", i + 1
	case r == '`' || r == '\'':
		if i+1 < len(rs) && rs[i+1] == r {
			return string([]rune{r, r}), i + 2
		}
		if r == '`' || opening {
			return "`", i + 1
		}
		return "'", i + 1
	case r == '‘':
		return "`", i + 1
	case r == '’':
		return "'", i + 1
	}
	if b, ok := ptbBrackets[r]; ok {
		return b, i + 1
	}
	return string(r), i + 1
}

// lowerFull lower-cases as Java's String.toLowerCase(Locale.ENGLISH) and
// Python's str.lower() both do, which differ from strings.ToLower in the
// two context-dependent Unicode mappings: U+0130 (İ) becomes "i̇" (i plus
// combining dot) and a capital sigma ending a word becomes final sigma ς.
func lowerFull(s string) string {
	if !strings.ContainsRune(s, 'İ') && !strings.ContainsRune(s, 'Σ') {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for k, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && k > 0 && isCased(rs[k-1]) && (k+1 == len(rs) || !isCased(rs[k+1])):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func isCased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }
