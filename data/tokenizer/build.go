package tokenizer

import (
	"fmt"
	"sort"
)

// maxID bounds ids read from a file before anything is sized by them, and
// maxUnusedIDs the holes among them, so a tiny file cannot demand a huge table.
const (
	maxID        = 1 << 24
	maxUnusedIDs = 1 << 16
)

// spec is everything a Tokenizer is built from, whether loaded or trained.
type spec struct {
	vocab          map[string]int32 // model vocabulary, byte-level spelling → id
	merges         [][2]string      // by rank
	added          []AddedToken
	addPrefixSpace bool
	useRegex       bool
	ignoreMerges   bool
	unkToken       string // "" for none
	fuseUnk        bool
}

// build checks s and derives the lookup tables. Errors name the tokenizer.json key.
func build(s spec) (*Tokenizer, error) {
	t := &Tokenizer{
		vocab:          make(map[string]int32, len(s.vocab)+len(s.added)),
		merges:         make(map[uint64]merge, len(s.merges)),
		order:          make([][2]int32, 0, len(s.merges)),
		addPrefixSpace: s.addPrefixSpace,
		useRegex:       s.useRegex,
		ignoreMerges:   s.ignoreMerges,
		fuseUnk:        s.fuseUnk,
		unkID:          -1,
	}
	size := 0
	byID := make(map[int32]string, len(s.vocab))
	for tok, id := range s.vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("model.vocab[%q]: id %d out of range [0, %d)", tok, id, maxID)
		}
		if tok == "" {
			return nil, fmt.Errorf("model.vocab: empty token (id %d)", id)
		}
		if other, dup := byID[id]; dup {
			a, b := min(other, tok), max(other, tok)
			return nil, fmt.Errorf("model.vocab: tokens %q and %q share id %d", a, b, id)
		}
		byID[id] = tok
		size = max(size, int(id)+1)
	}
	// Hugging Face ignores an added token's id and assigns one (its model id,
	// else the next after the vocabulary and earlier added tokens); a file
	// that says otherwise would not give Hugging Face's ids, so it is refused.
	addedIDs := make(map[string]int32, len(s.added))
	next := int32(len(s.vocab))
	for i, a := range s.added {
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: empty content", i)
		}
		want, ok := addedIDs[a.Content]
		if !ok {
			want, ok = s.vocab[a.Content]
		}
		if !ok {
			want = next
		}
		if a.ID != want {
			return nil, fmt.Errorf("added_tokens[%d] (%q): id %d, but Hugging Face assigns it id %d", i, a.Content, a.ID, want)
		}
		if _, dup := addedIDs[a.Content]; dup {
			return nil, fmt.Errorf("added_tokens[%d]: %q is listed twice", i, a.Content)
		}
		addedIDs[a.Content] = a.ID
		if a.ID >= next {
			next = a.ID + 1
		}
		size = max(size, int(a.ID)+1)
	}
	if entries := len(byID) + len(s.added); size > entries+maxUnusedIDs {
		return nil, fmt.Errorf("model.vocab: largest id %d leaves more than %d unused ids among %d tokens", size-1, maxUnusedIDs, entries)
	}
	t.tokens = make([]string, size)
	t.raw = make([]string, size)
	t.model = make([]bool, size)
	for id, tok := range byID {
		t.tokens[id], t.model[id] = tok, true
		t.vocab[tok] = id
		if raw, ok := rawBytes(tok); ok {
			t.raw[id] = raw
		} else {
			t.raw[id] = tok // Hugging Face's ByteLevel decoder passes such tokens through
		}
	}
	for _, a := range s.added {
		t.tokens[a.ID], t.raw[a.ID] = a.Content, a.Content
		t.vocab[a.Content] = a.ID
	}
	t.added = append([]AddedToken(nil), s.added...)
	sort.SliceStable(t.added, func(i, j int) bool { return t.added[i].ID < t.added[j].ID })

	special := make(map[int32]bool)
	for _, a := range s.added {
		special[a.ID] = a.Special
	}
	for b := range 256 {
		t.byteID[b] = -1
		if id, ok := s.vocab[string(byteRune[b])]; ok {
			t.byteID[b] = id
		}
	}
	for i, m := range s.merges {
		a, okA := s.vocab[m[0]]
		b, okB := s.vocab[m[1]]
		c, okC := s.vocab[m[0]+m[1]]
		switch {
		case !okA:
			return nil, fmt.Errorf("model.merges[%d]: token %q is not in model.vocab", i, m[0])
		case !okB:
			return nil, fmt.Errorf("model.merges[%d]: token %q is not in model.vocab", i, m[1])
		case !okC:
			return nil, fmt.Errorf("model.merges[%d]: merged token %q is not in model.vocab", i, m[0]+m[1])
		}
		t.order = append(t.order, [2]int32{a, b})
		if special[c] {
			// Hugging Face would spell the special from ordinary text here;
			// specials stay atomic, so the merge is kept in the file only.
			continue
		}
		// A repeated pair keeps its last rank, as Hugging Face's map does.
		t.merges[pairKey(a, b)] = merge{rank: int32(i), id: c}
	}
	if s.unkToken != "" {
		id, ok := s.vocab[s.unkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token: %q is not in model.vocab", s.unkToken)
		}
		t.unkID = id
	}
	if s.ignoreMerges {
		t.wordID = make(map[string]int32, len(s.vocab))
		for id, tok := range byID {
			if special[id] {
				continue // as with merges above: a special's id never comes from ordinary text
			}
			if raw, ok := rawBytes(tok); ok {
				t.wordID[raw] = id
			}
		}
	}
	t.matchers[0] = newAddedMatcher(t.added, true)
	t.matchers[1] = newAddedMatcher(t.added, false)
	return t, nil
}
