package eval

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/mmablate/mmablate/data/tokenizer"
)

// The prompt texts. A demonstration's text ends with its target and the
// query's text stops where the target would start, so that the query
// tokenises as a prefix of a demonstration (the byte-level BPE splits
// before the space that opens the target).
const (
	captionPrefix  = "Caption:"
	questionPrefix = "Question: "
	answerPrefix   = " Answer:"
)

// demoText is the text after a demonstration's image.
func demoText(task Task, ex *example, target string) string {
	return queryText(task, ex) + " " + target
}

// queryText is the text after the query's image.
func queryText(task Task, ex *example) string {
	if task == TaskVQA {
		return questionPrefix + ex.question + answerPrefix
	}
	return captionPrefix
}

// demo is one demonstration: a support example and its target text.
type demo struct {
	ex     *example
	target string
}

// drawDemos draws k distinct support examples for one query, and each
// one's target (a caption demonstration's reference is drawn among its
// references; a VQA demonstration's is its true answer). The draw depends
// only on (seed, task, trial, query) and is done one demonstration at a
// time, so the k = 4 demonstrations are the first four of k = 8.
func drawDemos(seed uint64, task Task, trial, query int, support []example, k int) []demo {
	rng := rand.New(rand.NewPCG(seed, demoStream(task, trial, query)))
	idx := make([]int, len(support))
	for i := range idx {
		idx[i] = i
	}
	demos := make([]demo, k)
	for i := range k {
		j := i + rng.IntN(len(idx)-i) // a partial Fisher–Yates shuffle
		idx[i], idx[j] = idx[j], idx[i]
		ex := &support[idx[i]]
		target := ex.answer
		if task == TaskCaption {
			target = ex.refs[rng.IntN(len(ex.refs))]
		}
		demos[i] = demo{ex: ex, target: target}
	}
	return demos
}

// demoStream is the PCG stream of one (task, trial, query): distinct
// tuples get unrelated streams.
func demoStream(task Task, trial, query int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(task))
	return splitmix(h.Sum64() ^ splitmix(uint64(trial)<<32^uint64(query)))
}

// splitmix is SplitMix64's finaliser, a bijective mixer of 64-bit keys.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// specials are the token ids a prompt is built from.
type specials struct {
	image, endOfChunk, bos, eos, pad int32
}

func specialsOf(tok *tokenizer.Tokenizer) (specials, error) {
	if missing := tok.MissingSpecials(); len(missing) > 0 {
		return specials{}, fmt.Errorf("tokenizer lacks the special tokens %v that prompts are built from", missing)
	}
	return specials{image: tok.ImageID(), endOfChunk: tok.EndOfChunkID(), bos: tok.BOSID(), eos: tok.EOSID(), pad: tok.PadID()}, nil
}

// promptBuilder lays prompts out as the mixer packs training documents:
//
//	<|bos|> [<|image|>×N demo text <|endofchunk|>]×k <|image|>×N query text
//
// one document, with N placeholders per image.
type promptBuilder struct {
	tok    *tokenizer.Tokenizer
	sp     specials
	n      int // placeholders per image (model.connector.tokens)
	budget int // longest prompt: the generator's context less the new tokens but one
}

// prompt is a built prompt: its tokens and, in placeholder order, the
// examples whose images fill them.
type prompt struct {
	tokens  []int32
	images  []*example
	demos   []demo // the demonstrations kept, in prompt order
	dropped int    // demonstrations dropped from the front to fit the budget
	// instruction is the query's task prompt (its text before the target),
	// from which an instruction-pruned model predicts its FFN masks.
	instruction []int32
}

// build lays out demos then the query. A prompt over the budget loses its
// earliest demonstrations, whole (never part of an image or of a text),
// until it fits; a query that does not fit alone is an error.
func (b promptBuilder) build(task Task, query *example, demos []demo) (prompt, error) {
	demoTokens := make([][]int32, len(demos))
	total := 1 // <|bos|>
	for i, d := range demos {
		demoTokens[i] = b.appendImage(nil)
		demoTokens[i] = b.tok.AppendEncode(demoTokens[i], demoText(task, d.ex, d.target))
		demoTokens[i] = append(demoTokens[i], b.sp.endOfChunk)
		total += len(demoTokens[i])
	}
	queryTokens := b.tok.AppendEncode(b.appendImage(nil), queryText(task, query))
	total += len(queryTokens)
	drop := 0
	for ; total > b.budget && drop < len(demos); drop++ {
		total -= len(demoTokens[drop])
	}
	if total > b.budget {
		return prompt{}, fmt.Errorf("query %s (id %q): %d prompt tokens without any demonstration, more than the %d that max_seq and the %s new tokens leave",
			query.where, query.id, total, b.budget, task)
	}
	// The instruction is the query's text after its image placeholders;
	// capped so that nothing appended to it can reach queryTokens.
	p := prompt{tokens: make([]int32, 0, total), demos: demos[drop:], dropped: drop,
		instruction: queryTokens[b.n:len(queryTokens):len(queryTokens)]}
	p.tokens = append(p.tokens, b.sp.bos)
	for i, d := range demos[drop:] {
		p.tokens = append(p.tokens, demoTokens[drop+i]...)
		p.images = append(p.images, d.ex)
	}
	p.tokens = append(p.tokens, queryTokens...)
	p.images = append(p.images, query)
	return p, nil
}

func (b promptBuilder) appendImage(dst []int32) []int32 {
	for range b.n {
		dst = append(dst, b.sp.image)
	}
	return dst
}
