package models

import (
	"fmt"
	"math/rand/v2"
)

// Batch is one training batch of B packed sequences of length T (MODEL-SPEC
// "Multimodal model"). Every per-token slice has B·T entries, row-major
// (sequence b, position t at b·T+t).
type Batch struct {
	B, T     int
	Tokens   []int32   // input token ids; ImageTokenID marks image placeholders
	Targets  []int32   // next-token targets; any value where LossMask is 0
	LossMask []float32 // 1 where the position counts in the loss, else 0
	Pos      []int32   // position ids, restarting at 0 for each packed document
	DocIDs   []int32   // document ids: attention never crosses documents
	// Instruction marks each document's instruction tokens, which a
	// model.decoder.ffn_pruning: instruction model's mask predictor reads;
	// nil or all false: every document falls back to its first
	// ffn_instruction_tokens text tokens. Other models ignore it.
	Instruction []bool

	// Images holds NumImages normalised 3×R×R images, contiguous, in the
	// order their placeholder runs appear in Tokens.
	Images    []float32
	NumImages int
	// ImageTokenID is the placeholder id. Each image owns one run of exactly
	// connector.tokens consecutive placeholders; the k-th image's outputs
	// replace the k-th run's embeddings.
	ImageTokenID int32
}

// placeholders checks b against the model's shapes and returns the flat
// positions of image placeholders, in order. Every failure is an error
// naming the field, never a panic inside a layer.
func (m *Model) placeholders(b *Batch) ([]int, error) {
	if b.B != m.B || b.T != m.T {
		return nil, fmt.Errorf("batch is %d×%d, the model was built for %d×%d", b.B, b.T, m.B, m.T)
	}
	n := b.B * b.T
	for _, f := range []struct {
		name     string
		len      int
		optional bool // may be empty
	}{{"Tokens", len(b.Tokens), false}, {"Targets", len(b.Targets), false}, {"LossMask", len(b.LossMask), false}, {"Pos", len(b.Pos), false}, {"DocIDs", len(b.DocIDs), false}, {"Instruction", len(b.Instruction), true}} {
		if f.len != n && !(f.optional && f.len == 0) {
			return nil, fmt.Errorf("batch %s has %d entries, want B·T = %d", f.name, f.len, n)
		}
	}
	V := int32(m.Config.Decoder.Vocab)
	images := m.Config.Vision != nil
	if cap(m.slots) < n {
		m.slots = make([]int, 0, n) // once per model: a placeholder per token at most
	}
	places := m.slots[:0]
	for i, tok := range b.Tokens {
		switch {
		case images && tok == b.ImageTokenID:
			places = append(places, i)
		case tok < 0 || tok >= V:
			return nil, fmt.Errorf("batch Tokens[%d] = %d outside the vocabulary [0, %d)", i, tok, V)
		}
		if b.LossMask[i] != 0 && (b.Targets[i] < 0 || b.Targets[i] >= V) {
			return nil, fmt.Errorf("batch Targets[%d] = %d outside the vocabulary [0, %d) where LossMask is %v", i, b.Targets[i], V, b.LossMask[i])
		}
		if p := b.Pos[i]; p < 0 || int(p) >= m.Config.Decoder.MaxSeq {
			return nil, fmt.Errorf("batch Pos[%d] = %d outside [0, model.decoder.max_seq = %d)", i, p, m.Config.Decoder.MaxSeq)
		}
	}
	m.slots = places
	if !images {
		if b.NumImages != 0 {
			return nil, fmt.Errorf("batch has %d images but the model is text-only", b.NumImages)
		}
		return nil, nil
	}
	N := m.Config.Connector.Tokens
	R := m.Config.Vision.Resolution
	if b.NumImages < 0 || b.NumImages > m.maxImages {
		return nil, fmt.Errorf("batch has %d images, the model was built for at most %d", b.NumImages, m.maxImages)
	}
	if len(b.Images) != b.NumImages*3*R*R {
		return nil, fmt.Errorf("batch Images has %d values, want NumImages·3·%d·%d = %d", len(b.Images), R, R, b.NumImages*3*R*R)
	}
	if len(places) != b.NumImages*N {
		return nil, fmt.Errorf("batch has %d image placeholders, want %d images × %d tokens = %d", len(places), b.NumImages, N, b.NumImages*N)
	}
	for k := range b.NumImages {
		run := places[k*N : (k+1)*N]
		if run[N-1]-run[0] != N-1 || run[0]/b.T != run[N-1]/b.T {
			return nil, fmt.Errorf("batch image %d: its %d placeholders are not consecutive within one sequence (positions %d..%d)", k, N, run[0], run[N-1])
		}
	}
	return places, nil
}

// SyntheticBatch is the benchmark batch of `mmablate bench train` and of
// bench/pytorch/mmablate_ref.py's bench mode: B sequences of T random
// tokens, one document each, next-token targets; with images, one random
// image per sequence whose connector.tokens placeholders (loss mask 0) open
// the sequence. cfg must be valid and, with images, have T ≥ connector.tokens.
func SyntheticBatch(cfg Config, B, T int, images bool, seed uint64) *Batch {
	V := int32(cfg.Decoder.Vocab)
	rng := rand.New(rand.NewPCG(seed, seed))
	b := &Batch{B: B, T: T, ImageTokenID: V - 1,
		Tokens: make([]int32, B*T), Targets: make([]int32, B*T), LossMask: make([]float32, B*T),
		Pos: make([]int32, B*T), DocIDs: make([]int32, B*T)}
	for i := range b.Tokens {
		b.Tokens[i] = rng.Int32N(V - 1)
		b.Pos[i] = int32(i % T)
		b.LossMask[i] = 1
	}
	if images {
		N, R := cfg.Connector.Tokens, cfg.Vision.Resolution
		for s := range B {
			for j := range N {
				b.Tokens[s*T+j], b.LossMask[s*T+j] = b.ImageTokenID, 0
			}
		}
		b.NumImages = B
		b.Images = make([]float32, B*3*R*R)
		for i := range b.Images {
			b.Images[i] = float32(rng.NormFloat64())
		}
	}
	for i := range b.Targets {
		next := b.Tokens[(i/T)*T+(i%T+1)%T]
		b.Targets[i] = min(next, V-2) // never the placeholder id
	}
	return b
}
