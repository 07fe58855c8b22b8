package tokenizer

import (
	"strings"
	"unicode"
)

// addedMatcher finds added tokens in raw text, leftmost-longest, in two
// passes as Hugging Face does: first the tokens matched on the raw text
// (normalized=false, specials by default), then, in the text between them,
// the normalized ones. The tokenizer has no normalizer, so both passes look
// at the same bytes.
type addedMatcher struct {
	passes [2]tokenSet
}

// tokenSet is one pass: tokens grouped by first byte, longest first.
type tokenSet struct {
	first   [256]bool // a cheap filter before the map
	byFirst map[byte][]AddedToken
}

func newAddedMatcher(added []AddedToken, withSpecials bool) addedMatcher {
	var m addedMatcher
	for _, a := range added {
		if a.Special && !withSpecials || a.Content == "" {
			continue
		}
		p := &m.passes[0]
		if a.Normalized {
			p = &m.passes[1]
		}
		if p.byFirst == nil {
			p.byFirst = make(map[byte][]AddedToken)
		}
		list := append(p.byFirst[a.Content[0]], a)
		// Longest first, so the first prefix match is the longest.
		for i := len(list) - 1; i > 0 && len(list[i].Content) > len(list[i-1].Content); i-- {
			list[i], list[i-1] = list[i-1], list[i]
		}
		p.byFirst[a.Content[0]] = list
		p.first[a.Content[0]] = true
	}
	return m
}

// split calls fn for each piece of text in order: id >= 0 for an added
// token, id == -1 for text between tokens (never empty).
func (m *addedMatcher) split(text string, fn func(seg string, id int32)) {
	if m.passes[0].byFirst == nil && m.passes[1].byFirst == nil {
		if text != "" {
			fn(text, -1)
		}
		return
	}
	m.passes[0].split(text, func(seg string, id int32) {
		if id >= 0 {
			fn(seg, id)
			return
		}
		m.passes[1].split(seg, fn)
	})
}

func (p *tokenSet) split(text string, fn func(seg string, id int32)) {
	if p.byFirst == nil {
		if text != "" {
			fn(text, -1)
		}
		return
	}
	done := 0 // text[:done] has been handed to fn
	for i := 0; i < len(text); i++ {
		if !p.first[text[i]] {
			continue
		}
		for _, a := range p.byFirst[text[i]] {
			if !strings.HasPrefix(text[i:], a.Content) {
				continue
			}
			start, end := i, i+len(a.Content)
			if a.LStrip {
				start = done + len(strings.TrimRightFunc(text[done:start], unicode.IsSpace))
			}
			if a.RStrip {
				end = len(text) - len(strings.TrimLeftFunc(text[end:], unicode.IsSpace))
			}
			if start > done {
				fn(text[done:start], -1)
			}
			fn(text[start:end], a.ID)
			done = end
			i = end - 1
			break
		}
	}
	if done < len(text) {
		fn(text[done:], -1)
	}
}
