package tokenizer

import (
	"fmt"
	"strings"
	"sync"
)

// Special token contents every mmablate tokenizer carries.
const (
	Image      = "<|image|>"      // one image placeholder position
	EndOfChunk = "<|endofchunk|>" // ends an interleaved chunk (OpenFlamingo's convention)
	BOS        = "<|bos|>"
	EOS        = "<|eos|>"
	Pad        = "<|pad|>"
)

// DefaultSpecials are the special tokens Train adds, in id order.
var DefaultSpecials = []string{Image, EndOfChunk, BOS, EOS, Pad}

// AddedToken is a token matched in the raw text before pre-tokenization
// (Hugging Face's added_tokens entry).
type AddedToken struct {
	ID      int32
	Content string
	// Special tokens are parsed only by EncodeWithSpecials; non-special added
	// tokens are always parsed, as in Hugging Face.
	Special bool
	// LStrip and RStrip absorb the whitespace to the token's left or right.
	LStrip, RStrip bool
	// Normalized tokens are matched after the others (a second pass), as
	// Hugging Face matches them on the normalized text.
	Normalized bool
}

// merge is what a pair of adjacent ids becomes: lower rank merges first.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// Tokenizer is a byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	tokens []string // id → token as spelled in tokenizer.json ("" for an unused id)
	raw    []string // id → the bytes the token decodes to
	vocab  map[string]int32
	// model marks ids of the BPE model's vocabulary (as opposed to added tokens).
	model  []bool
	merges map[uint64]merge
	order  [][2]int32 // merges by rank, for Save
	byteID [256]int32 // id of each single-byte token, -1 when the vocabulary lacks it
	added  []AddedToken
	// Matchers for the added tokens: [0] parses specials too, [1] does not.
	matchers [2]addedMatcher

	addPrefixSpace bool
	useRegex       bool
	ignoreMerges   bool
	wordID         map[string]int32 // raw bytes → id, used when ignoreMerges is set
	unkID          int32            // -1: bytes without a token are dropped, as Hugging Face does
	fuseUnk        bool

	scratch sync.Pool // *encodeState
}

// cacheEntries bounds each encodeState's word cache; when full it is cleared,
// which keeps memory flat without LRU bookkeeping on the hot path.
const cacheEntries = 1 << 15

type encodeState struct {
	cache   map[string][]int32
	syms    []symbol
	heap    mergeHeap
	ids     []int32
	prefixd []byte
}

// Encode returns the ids of text. Special-token text is encoded as ordinary
// text; use EncodeWithSpecials to parse it. Encode implements data.Tokenizer.
func (t *Tokenizer) Encode(text string) []int32 { return t.AppendEncode(nil, text) }

// EncodeWithSpecials is Encode, except that special-token text such as
// "<|image|>" becomes the special token's id.
func (t *Tokenizer) EncodeWithSpecials(text string) []int32 {
	return t.appendEncode(nil, text, true)
}

// AppendEncode appends text's ids to dst (Encode without the allocation).
func (t *Tokenizer) AppendEncode(dst []int32, text string) []int32 {
	return t.appendEncode(dst, text, false)
}

func (t *Tokenizer) appendEncode(dst []int32, text string, specials bool) []int32 {
	st, _ := t.scratch.Get().(*encodeState)
	if st == nil {
		st = &encodeState{cache: make(map[string][]int32)}
	}
	m := &t.matchers[0]
	if !specials {
		m = &t.matchers[1]
	}
	m.split(text, func(seg string, id int32) {
		if id >= 0 {
			dst = append(dst, id)
			return
		}
		dst = t.encodeSegment(dst, seg, st)
	})
	t.scratch.Put(st)
	return dst
}

// encodeSegment encodes text between added tokens.
func (t *Tokenizer) encodeSegment(dst []int32, seg string, st *encodeState) []int32 {
	if t.addPrefixSpace && !strings.HasPrefix(seg, " ") {
		st.prefixd = append(append(st.prefixd[:0], ' '), seg...)
		seg = string(st.prefixd)
	}
	if !t.useRegex {
		return t.encodeWord(dst, seg, st)
	}
	for i := 0; i < len(seg); {
		j := nextPiece(seg, i)
		dst = t.encodeWord(dst, seg[i:j], st)
		i = j
	}
	return dst
}

func (t *Tokenizer) encodeWord(dst []int32, word string, st *encodeState) []int32 {
	if len(word) == 1 && t.byteID[word[0]] >= 0 {
		return append(dst, t.byteID[word[0]])
	}
	if ids, ok := st.cache[word]; ok {
		return append(dst, ids...)
	}
	if t.ignoreMerges {
		if id, ok := t.wordID[word]; ok {
			return append(dst, id)
		}
	}
	st.ids = t.bpe(st.ids[:0], word, st)
	if len(st.cache) >= cacheEntries {
		clear(st.cache)
	}
	st.cache[strings.Clone(word)] = append([]int32(nil), st.ids...)
	return append(dst, st.ids...)
}

// Decode returns the bytes the ids stand for, exactly: unlike Hugging Face's
// decode it does not replace invalid UTF-8, so Decode(Encode(s)) == s.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	n := 0
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.raw) || t.tokens[id] == "" {
			return "", fmt.Errorf("tokenizer: decode: id %d at position %d is not in the vocabulary (size %d)", id, i, len(t.raw))
		}
		n += len(t.raw[id])
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		b.WriteString(t.raw[id])
	}
	return b.String(), nil
}

// VocabSize is one more than the largest id: the embedding table's rows.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns the spelling of id in tokenizer.json.
func (t *Tokenizer) Token(id int32) (string, bool) {
	if id < 0 || int(id) >= len(t.tokens) || t.tokens[id] == "" {
		return "", false
	}
	return t.tokens[id], true
}

// ID returns the id of a token spelled as in tokenizer.json (byte-level
// spelling for model tokens, content for added tokens).
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// AddedTokens returns the added tokens, specials included, in id order.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// SpecialID returns the id of the special token with this content.
func (t *Tokenizer) SpecialID(content string) (int32, bool) {
	for _, a := range t.added {
		if a.Special && a.Content == content {
			return a.ID, true
		}
	}
	return -1, false
}

// MissingSpecials lists which of DefaultSpecials the tokenizer lacks; a
// tokenizer used for training must have none missing.
func (t *Tokenizer) MissingSpecials() []string {
	var missing []string
	for _, s := range DefaultSpecials {
		if _, ok := t.SpecialID(s); !ok {
			missing = append(missing, s)
		}
	}
	return missing
}

func (t *Tokenizer) specialOrMinus1(content string) int32 {
	id, _ := t.SpecialID(content)
	return id
}

// ImageID is the id of <|image|>, or -1 when the tokenizer lacks it (see MissingSpecials).
func (t *Tokenizer) ImageID() int32 { return t.specialOrMinus1(Image) }

// EndOfChunkID is the id of <|endofchunk|>, or -1.
func (t *Tokenizer) EndOfChunkID() int32 { return t.specialOrMinus1(EndOfChunk) }

// BOSID is the id of <|bos|>, or -1.
func (t *Tokenizer) BOSID() int32 { return t.specialOrMinus1(BOS) }

// EOSID is the id of <|eos|>, or -1.
func (t *Tokenizer) EOSID() int32 { return t.specialOrMinus1(EOS) }

// PadID is the id of <|pad|>, or -1.
func (t *Tokenizer) PadID() int32 { return t.specialOrMinus1(Pad) }
