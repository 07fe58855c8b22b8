package tokenizer

import (
	"bufio"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// TrainOptions configure Train.
type TrainOptions struct {
	// VocabSize is the total vocabulary: specials, the 256 byte tokens and
	// the merged tokens. Training stops earlier when no pair is left.
	VocabSize int
	// MinFrequency: pairs seen fewer times are never merged (0 or 1: any).
	MinFrequency int64
	// Specials are the special tokens, given the first ids; nil means
	// DefaultSpecials.
	Specials []string
	// AddPrefixSpace puts a space before text that does not start with one,
	// so a word has the same ids at the start of a text as after a space.
	// Off by default, as in GPT-2.
	AddPrefixSpace bool
}

// Trainer counts pre-tokenized words, then learns merges from the counts.
// Memory grows with the number of distinct words, not with the text.
type Trainer struct {
	opts     TrainOptions
	specials []string
	words    map[string]int64 // raw bytes of a pre-tokenized word → count
}

// NewTrainer checks opts.
func NewTrainer(opts TrainOptions) (*Trainer, error) {
	specials := opts.Specials
	if specials == nil {
		specials = DefaultSpecials
	}
	seen := make(map[string]bool, len(specials))
	for i, s := range specials {
		if len(s) < 2 {
			return nil, fmt.Errorf("tokenizer: train: special token %d (%q) must be at least 2 bytes, or it would be a byte token", i, s)
		}
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("tokenizer: train: special token %d (%q) is not valid UTF-8, which tokenizer.json cannot hold", i, s)
		}
		if seen[s] {
			return nil, fmt.Errorf("tokenizer: train: special token %q given twice", s)
		}
		seen[s] = true
	}
	if least := 256 + len(specials); opts.VocabSize < least {
		return nil, fmt.Errorf("tokenizer: train: vocab size %d is smaller than 256 byte tokens + %d specials = %d",
			opts.VocabSize, len(specials), least)
	}
	if opts.MinFrequency < 0 {
		return nil, fmt.Errorf("tokenizer: train: min frequency %d is negative", opts.MinFrequency)
	}
	if opts.VocabSize > maxID {
		return nil, fmt.Errorf("tokenizer: train: vocab size %d is more than %d", opts.VocabSize, maxID)
	}
	return &Trainer{opts: opts, specials: slices.Clone(specials), words: make(map[string]int64)}, nil
}

// AddText counts the words of one training sequence. Special-token text in
// it is ordinary text, as in Hugging Face's trainer.
func (tr *Trainer) AddText(text string) {
	if tr.opts.AddPrefixSpace && text != "" && !strings.HasPrefix(text, " ") {
		text = " " + text
	}
	for i := 0; i < len(text); {
		j := nextPiece(text, i)
		if n, ok := tr.words[text[i:j]]; ok {
			tr.words[text[i:j]] = n + 1
		} else {
			tr.words[strings.Clone(text[i:j])] = 1 // don't pin the caller's text
		}
		i = j
	}
}

// AddReader counts r line by line, each line with its ending as one
// sequence, as Hugging Face's train_from_files does; name is for errors.
func (tr *Trainer) AddReader(ctx context.Context, name string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line, err := br.ReadString('\n')
		tr.AddText(line)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tokenizer: train: read %s: %w", name, err)
		}
	}
}

// Words is the number of distinct words counted so far.
func (tr *Trainer) Words() int { return len(tr.words) }

type trainWord struct {
	syms  []int32
	count int64
	seen  int // the last merge step that visited this word
}

type pairCount struct {
	count int64
	a, b  int32
}

// pairQueue is a max-heap by count; ties go to the smaller pair (a, then b)
// by id, the order Hugging Face's BpeTrainer uses.
type pairQueue []pairCount

func (q pairQueue) Len() int { return len(q) }
func (q pairQueue) Less(i, j int) bool {
	if q[i].count != q[j].count {
		return q[i].count > q[j].count
	}
	if q[i].a != q[j].a {
		return q[i].a < q[j].a
	}
	return q[i].b < q[j].b
}
func (q pairQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)   { *q = append(*q, x.(pairCount)) }
func (q *pairQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// Train learns merges and returns the tokenizer. Ids: the specials first,
// then the 256 bytes ordered by their byte-level rune, then merged tokens in
// the order learned. Each step merges the most frequent adjacent pair; ties
// go to the pair with the smaller (left id, right id). This is Hugging Face
// BpeTrainer's rule, so both learn the same merges from the same text
// (TestTrainMatchesHF).
func (tr *Trainer) Train(ctx context.Context) (*Tokenizer, error) {
	var tokens []string // id → raw bytes
	ids := make(map[string]int32)
	for _, s := range tr.specials {
		ids[s] = int32(len(tokens))
		tokens = append(tokens, s)
	}
	alphabet := make([]int, 256)
	for b := range alphabet {
		alphabet[b] = b
	}
	sort.Slice(alphabet, func(i, j int) bool { return byteRune[alphabet[i]] < byteRune[alphabet[j]] })
	var byteID [256]int32
	for _, b := range alphabet {
		raw := string([]byte{byte(b)})
		if id, ok := ids[raw]; ok { // a one-byte special
			byteID[b] = id
			continue
		}
		byteID[b] = int32(len(tokens))
		ids[raw] = byteID[b]
		tokens = append(tokens, raw)
	}

	keys := make([]string, 0, len(tr.words))
	for w := range tr.words {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	words := make([]trainWord, len(keys))
	counts := make(map[uint64]int64)
	where := make(map[uint64][]int32) // word indexes; may repeat, deduplicated by trainWord.seen
	for i, w := range keys {
		syms := make([]int32, len(w))
		for j := 0; j < len(w); j++ {
			syms[j] = byteID[w[j]]
		}
		words[i] = trainWord{syms: syms, count: tr.words[w], seen: -1}
		for j := 0; j+1 < len(syms); j++ {
			k := pairKey(syms[j], syms[j+1])
			counts[k] += words[i].count
			if l := where[k]; len(l) == 0 || l[len(l)-1] != int32(i) {
				where[k] = append(l, int32(i))
			}
		}
	}
	q := make(pairQueue, 0, len(counts))
	for k, c := range counts {
		q = append(q, pairCount{count: c, a: int32(k >> 32), b: int32(uint32(k))})
	}
	heap.Init(&q)

	minFreq := max(tr.opts.MinFrequency, 1)
	var merges [][2]string
	var changes []pairChange
	specials := make(map[string]bool, len(tr.specials))
	for _, sp := range tr.specials {
		specials[sp] = true
	}
	for step := 0; len(tokens) < tr.opts.VocabSize && q.Len() > 0; step++ {
		if step%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if step%4096 == 0 {
				slog.Debug("tokenizer: training", "merges", step, "vocab", len(tokens), "target", tr.opts.VocabSize)
			}
		}
		top := heap.Pop(&q).(pairCount)
		k := pairKey(top.a, top.b)
		if c := counts[k]; c != top.count {
			top.count = c
			heap.Push(&q, top) // stale entry: requeue with the current count
			continue
		}
		if top.count < minFreq {
			break
		}
		merged := tokens[top.a] + tokens[top.b]
		if specials[merged] {
			continue // never spell a special from ordinary text; the pair is dropped for good
		}
		id, ok := ids[merged]
		if !ok {
			id = int32(len(tokens))
			ids[merged] = id
			tokens = append(tokens, merged)
		}
		merges = append(merges, [2]string{byteLevelString(tokens[top.a]), byteLevelString(tokens[top.b])})

		fresh := make(map[uint64]bool)
		for _, wi := range where[k] {
			w := &words[wi]
			if w.seen == step {
				continue
			}
			w.seen = step
			changes = mergeWord(w, top.a, top.b, id, changes[:0])
			for _, c := range changes {
				counts[c.key] += c.delta * w.count
				if c.delta > 0 {
					where[c.key] = append(where[c.key], wi)
					fresh[c.key] = true
				}
			}
		}
		delete(where, k)
		newPairs := make([]uint64, 0, len(fresh))
		for p := range fresh {
			newPairs = append(newPairs, p)
		}
		slices.Sort(newPairs)
		for _, p := range newPairs {
			if c := counts[p]; c > 0 {
				heap.Push(&q, pairCount{count: c, a: int32(p >> 32), b: int32(uint32(p))})
			}
		}
	}

	s := spec{vocab: make(map[string]int32, len(tokens)), merges: merges, addPrefixSpace: tr.opts.AddPrefixSpace, useRegex: true}
	for id, raw := range tokens {
		if id < len(tr.specials) {
			s.vocab[raw] = int32(id)
			s.added = append(s.added, AddedToken{ID: int32(id), Content: raw, Special: true})
			continue
		}
		s.vocab[byteLevelString(raw)] = int32(id)
	}
	t, err := build(s)
	if err != nil {
		return nil, errors.Join(errors.New("tokenizer: train: internal error"), err)
	}
	return t, nil
}

// pairChange is a change of one pair's count within one word.
type pairChange struct {
	key   uint64
	delta int64
}

// mergeWord replaces each non-overlapping (a, b), left to right, by id and
// appends the pair-count changes, as Hugging Face's Word::merge does.
func mergeWord(w *trainWord, a, b, id int32, changes []pairChange) []pairChange {
	s := w.syms
	out := s[:0]
	for i := 0; i < len(s); i++ {
		if i+1 < len(s) && s[i] == a && s[i+1] == b {
			if len(out) > 0 {
				prev := out[len(out)-1]
				changes = append(changes, pairChange{pairKey(prev, a), -1}, pairChange{pairKey(prev, id), +1})
			}
			if i+2 < len(s) {
				next := s[i+2]
				changes = append(changes, pairChange{pairKey(b, next), -1}, pairChange{pairKey(id, next), +1})
			}
			out = append(out, id)
			i++
			continue
		}
		out = append(out, s[i])
	}
	w.syms = out
	return changes
}
