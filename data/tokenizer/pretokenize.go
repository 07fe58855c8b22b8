package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Rune classes of the GPT-2 split pattern. Bytes that are not valid UTF-8
// count as classOther, so any byte string splits and round-trips.
type runeClass uint8

const (
	classOther runeClass = iota
	classSpace
	classLetter
	classNumber
)

var asciiClass = func() (t [utf8.RuneSelf]runeClass) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		t[r] = slowClass(r)
	}
	return t
}()

func slowClass(r rune) runeClass {
	switch {
	case unicode.IsSpace(r): // the White_Space property, as the \s of Oniguruma
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// classAt returns the class and byte width of the rune starting at s[i].
func classAt(s string, i int) (runeClass, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return classOther, 1
	}
	return slowClass(r), w
}

// nextPiece returns the end of the piece of s that starts at i (i < len(s)),
// following the GPT-2 pattern's alternatives in order:
//
//	's|'t|'re|'ve|'m|'ll|'d      ASCII contractions, case-sensitive
//	 ?\p{L}+ | ?\p{N}+           a run of letters or of numbers, with one optional leading space
//	 ?[^\s\p{L}\p{N}]+           a run of anything else, with one optional leading space
//	\s+(?!\S)                    whitespace not followed by non-whitespace: a run that
//	                             ends the text, or all of a run but its last rune
//	\s+                          otherwise (a single whitespace rune before a word)
func nextPiece(s string, i int) int {
	n := len(s)
	if s[i] == '\'' && i+1 < n {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < n && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < n && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	start := i
	cls, w := classAt(s, i)
	if s[i] == ' ' && i+1 < n {
		if next, nw := classAt(s, i+1); next != classSpace {
			cls, w, start = next, nw, i+1
		}
	}
	if cls != classSpace {
		j := start + w
		for j < n {
			c, cw := classAt(s, j)
			if c != cls {
				break
			}
			j += cw
		}
		return j
	}
	// A whitespace run: find its end and the start of its last rune.
	j, last := i+w, i
	for j < n {
		c, cw := classAt(s, j)
		if c != classSpace {
			break
		}
		last = j
		j += cw
	}
	if j == n || last == i {
		return j
	}
	return last
}
