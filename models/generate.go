package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mmablate/mmablate/models/engine"
)

// Prompt is one generation request: token ids in which each image is a run
// of connector.tokens ImageTokenID placeholders (adjacent images make one
// longer run), and the images those runs stand for.
type Prompt struct {
	Tokens []int32
	// Images holds the prompt's normalised 3×R×R images, contiguous, in the
	// order of their placeholder runs (as Batch.Images does).
	Images []float32
	// Instruction is the text a pruned model (model.decoder.ffn_pruning
	// instruction) predicts this prompt's FFN masks from, e.g. the query's
	// task prompt; empty: the prompt's first ffn_instruction_tokens text
	// tokens. Other models ignore it.
	Instruction []int32
}

// Generator decodes greedily from a Model with a key/value cache. It reads
// the model's weights and layers in place (no copy: a Step of the model
// between two generations is seen by the next Prefill) and owns every
// buffer it writes, sized once by NewGenerator for Batch prompts of up to
// Context tokens each (prompt plus generated tokens but the last).
//
// Layout. Prompts are not padded. A prefill pass packs whole prompts back to
// back (at most max(Context, Batch) tokens per pass); the projections,
// norms and MLP run on the packed rows, and attention runs per prompt over
// its own tokens only. Prompt r's keys (after QK-norm and RoPE) and values
// go to cache row r from slot 0, KV heads only, so a row never sees another
// row and no compute is spent on padding. Each decoding step feeds one token
// per unfinished row at that row's own next position; attention reads the
// row's cache up to that position.
//
// Images go through the model's ViT and connector (its inference forward,
// up to the model's image budget per call) once per prompt image, and their
// tokens replace the placeholders' embeddings in order, as in training.
//
// Decoding is greedy: the highest logit, ties to the lowest id. The image
// placeholder id of a multimodal model is never chosen (no image could fill
// it). A row stops after emitting a stop id (not included in its output) or
// after maxNew tokens.
//
// A Generator shares the model's layers and worker pool, so it must not run
// while the model runs, nor after Model.Close. Steps do not allocate.
type Generator struct {
	Batch, Context int
	// ImageTokenID is the placeholder id in Prompt.Tokens (multimodal
	// models; a text-only model treats every id as text).
	ImageTokenID int32

	m      *Model
	attn1  *engine.Attention[float32] // one query over a cache row: no causal mask
	rows   int                        // rows per forward pass: max(Context, Batch)
	chunk  int                        // images per ViT call
	kc, vc [][]float32                // [L][Batch, Context, KV·hd] keys after QK-norm and RoPE, values

	ids, pos          []int32   // [rows]
	x, an, branch     []float32 // [rows, D] residual stream, norm output, a branch's output
	rstd              []float32 // [rows]
	q, k, v, qn, kn   []float32 // [rows, H·hd] / [rows, KV·hd]; q and k also hold the rotated values
	qrstd, krstd      []float32 // [rows·H], [rows·KV]
	att               []float32 // [rows, H·hd] attention output
	probs             []float32 // [H, Context, Context] one prompt's attention probabilities
	h1, h3, sg, gated []float32 // [rows, F] SwiGLU intermediates
	mlp               engine.SwiGLUActs[float32]
	last, fn          []float32 // [Batch, D] last rows of a prefill pass, final norm output
	frstd             []float32 // [Batch]
	logits            []float32 // [Batch, V]: row i predicts the next token of prompt act[i]
	feats             []float32 // [chunk·N, D] image tokens
	places            []int     // [Context] placeholder positions of one prompt
	prune             *genPrune // per-prompt gathered FFNs of a pruned model; nil when the FFN is dense

	segs   []segment // the prompts of the current prefill pass
	act    []int     // unfinished rows, ascending; logits row i belongs to act[i]
	lens   []int     // [Batch] tokens in each row's cache
	out    [][]int32 // [Batch][≤ Context] generated tokens
	stop   []int32
	maxNew int
	ready  bool // logits hold the next-token predictions of act
}

// segment is one prompt inside a packed prefill pass.
type segment struct{ row, off, n int }

// NewGenerator builds a generator for batches of up to batch prompts, each
// with prompt tokens + new tokens − 1 ≤ context ≤ model.decoder.max_seq.
func NewGenerator(m *Model, batch, context int, imageTokenID int32) (*Generator, error) {
	c := m.Config.Decoder
	if batch <= 0 || context <= 0 || context > c.MaxSeq {
		return nil, fmt.Errorf("generator %d×%d: need batch > 0 and 0 < context ≤ model.decoder.max_seq (%d)", batch, context, c.MaxSeq)
	}
	D, hd, V, F := c.Width, c.HeadDim(), c.Vocab, c.FFNHidden
	qd, kvd := c.Heads*hd, c.KVHeads*hd
	rows := max(context, batch)
	g := &Generator{Batch: batch, Context: context, ImageTokenID: imageTokenID, m: m, rows: rows,
		attn1: engine.NewAttention[float32](c.Heads, c.KVHeads, hd, false, m.pool)}
	a := engine.NewArena[float32]()
	for range c.Layers {
		g.kc = append(g.kc, a.Take(batch*context*kvd))
		g.vc = append(g.vc, a.Take(batch*context*kvd))
	}
	g.ids, g.pos = make([]int32, rows), make([]int32, rows)
	g.x, g.an, g.branch, g.rstd = a.Take(rows*D), a.Take(rows*D), a.Take(rows*D), a.Take(rows)
	g.q, g.k, g.v, g.att = a.Take(rows*qd), a.Take(rows*kvd), a.Take(rows*kvd), a.Take(rows*qd)
	if c.QKNorm {
		g.qn, g.kn = a.Take(rows*qd), a.Take(rows*kvd)
		g.qrstd, g.krstd = a.Take(rows*c.Heads), a.Take(rows*c.KVHeads)
	}
	g.probs = a.Take(c.Heads * context * context)
	g.h1, g.h3, g.sg, g.gated = a.Take(rows*F), a.Take(rows*F), a.Take(rows*F), a.Take(rows*F)
	g.last, g.fn, g.frstd = a.Take(batch*D), a.Take(batch*D), a.Take(batch)
	g.logits = a.Take(batch * V)
	if m.img != nil {
		N := m.Config.Connector.Tokens
		g.chunk = max(1, min(m.maxImages, context/N))
		g.feats = a.Take(g.chunk * N * D)
	}
	g.places = make([]int, 0, context)
	if m.dec.prune.masked() {
		g.prune = newGenPrune(g, m.dec.prune, batch, D)
	}
	g.segs = make([]segment, 0, batch)
	g.act = make([]int, 0, batch)
	g.lens = make([]int, batch)
	g.out = make([][]int32, batch)
	for r := range g.out {
		g.out[r] = make([]int32, 0, context)
	}
	return g, nil
}

// Generate decodes every prompt greedily, Batch prompts at a time, and
// returns each prompt's new tokens (without the stop id that ended it).
// Every prompt is checked before any is run. ctx is checked between steps.
func (g *Generator) Generate(ctx context.Context, prompts []Prompt, maxNew int, stop []int32) ([][]int32, error) {
	if err := g.checkRequest(maxNew, stop); err != nil {
		return nil, err
	}
	for i, p := range prompts {
		if err := g.checkPrompt(p, maxNew); err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i, err)
		}
	}
	res := make([][]int32, len(prompts))
	for start := 0; start < len(prompts); start += g.Batch {
		end := min(start+g.Batch, len(prompts))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		active := g.prefill(prompts[start:end], maxNew, stop)
		var err error
		for err == nil && active > 0 {
			if err = ctx.Err(); err == nil {
				active, err = g.Step()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("prompts %d..%d: %w", start, end-1, err)
		}
		for r := range end - start {
			res[start+r] = slices.Clone(g.out[r])
		}
	}
	return res, nil
}

// Prefill starts a batch, discarding the previous one: it checks the
// prompts, runs them through the model filling cache rows
// 0..len(prompts)-1 (row r is prompts[r]), and leaves each row's next-token
// logits for Step. Rows stop at any id in stop or after maxNew new tokens.
func (g *Generator) Prefill(prompts []Prompt, maxNew int, stop []int32) error {
	g.ready = false
	if len(prompts) == 0 || len(prompts) > g.Batch {
		return fmt.Errorf("prefill: %d prompts, the generator takes 1 to %d", len(prompts), g.Batch)
	}
	if err := g.checkRequest(maxNew, stop); err != nil {
		return err
	}
	for i, p := range prompts {
		if err := g.checkPrompt(p, maxNew); err != nil {
			return fmt.Errorf("prompt %d: %w", i, err)
		}
	}
	g.prefill(prompts, maxNew, stop)
	return nil
}

// Step chooses each unfinished row's greedy token, appends it to the row's
// output unless it is a stop id, retires rows that stopped or reached
// maxNew, and runs the model on the others' new tokens. It returns the
// number of rows still unfinished (0: the batch is done).
func (g *Generator) Step() (int, error) {
	if !g.ready {
		return 0, errors.New("step: no prefilled batch (call Prefill first)")
	}
	V := g.m.Config.Decoder.Vocab
	n := 0
	for i, r := range g.act {
		tok, ok := g.greedy(g.logits[i*V : (i+1)*V])
		if !ok {
			g.ready = false
			return 0, fmt.Errorf("row %d: non-finite logits after %d generated tokens", r, len(g.out[r]))
		}
		if slices.Contains(g.stop, tok) {
			continue
		}
		g.out[r] = append(g.out[r], tok)
		if len(g.out[r]) == g.maxNew {
			continue
		}
		g.act[n], g.ids[n], g.pos[n] = r, tok, int32(g.lens[r])
		n++
	}
	g.act = g.act[:n]
	if n == 0 {
		return 0, nil
	}
	D := g.m.Config.Decoder.Width
	x := g.x[:n*D]
	g.m.dec.embed.Forward(x, g.ids[:n])
	g.layers(n, true)
	g.head(x, g.logits[:n*V])
	for _, r := range g.act {
		g.lens[r]++
	}
	return n, nil
}

// Logits returns the next-token logits [V] of row r (a view into the
// generator's buffer, overwritten by the next Step), or nil when the row is
// finished or no batch is prefilled.
func (g *Generator) Logits(r int) []float32 {
	if !g.ready {
		return nil
	}
	V := g.m.Config.Decoder.Vocab
	if i := slices.Index(g.act, r); i >= 0 {
		return g.logits[i*V : (i+1)*V]
	}
	return nil
}

// Output returns the tokens row r has generated so far (a view, valid until
// the next Prefill).
func (g *Generator) Output(r int) []int32 { return g.out[r] }

func (g *Generator) checkRequest(maxNew int, stop []int32) error {
	if maxNew <= 0 {
		return fmt.Errorf("max new tokens %d: must be positive", maxNew)
	}
	V := int32(g.m.Config.Decoder.Vocab)
	for i, s := range stop {
		if s < 0 || s >= V {
			return fmt.Errorf("stop id %d (index %d) outside the vocabulary [0, %d)", s, i, V)
		}
	}
	return nil
}

// checkPrompt validates one prompt against the model and the generator's
// sizes before anything runs, naming the offending position.
func (g *Generator) checkPrompt(p Prompt, maxNew int) error {
	n := len(p.Tokens)
	switch {
	case n == 0:
		return errors.New("no tokens")
	case n > g.Context:
		return fmt.Errorf("%d tokens, longer than the generator's context of %d", n, g.Context)
	case n+maxNew-1 > g.Context:
		return fmt.Errorf("%d tokens + %d new tokens need a context of %d, the generator's is %d", n, maxNew, n+maxNew-1, g.Context)
	}
	V := int32(g.m.Config.Decoder.Vocab)
	images := g.m.img != nil
	N := g.m.tokensPerImage()
	placeholders, run := 0, 0
	for i, t := range p.Tokens {
		if images && t == g.ImageTokenID {
			placeholders++
			run++
			continue
		}
		if run%max(N, 1) != 0 {
			return fmt.Errorf("image placeholders at positions %d..%d: a run of %d is not a whole number of images of model.connector.tokens = %d", i-run, i-1, run, N)
		}
		run = 0
		if t < 0 || t >= V {
			return fmt.Errorf("token %d at position %d outside the vocabulary [0, %d)", t, i, V)
		}
	}
	if run%max(N, 1) != 0 {
		return fmt.Errorf("image placeholders at positions %d..%d: a run of %d is not a whole number of images of model.connector.tokens = %d", n-run, n-1, run, N)
	}
	if len(p.Instruction) > g.m.Config.Decoder.MaxSeq {
		return fmt.Errorf("instruction of %d tokens, longer than model.decoder.max_seq %d", len(p.Instruction), g.m.Config.Decoder.MaxSeq)
	}
	for i, t := range p.Instruction {
		if t < 0 || t >= V {
			return fmt.Errorf("instruction token %d at position %d outside the vocabulary [0, %d)", t, i, V)
		}
	}
	if !images {
		if len(p.Images) != 0 {
			return fmt.Errorf("%d image values, but the model is text-only", len(p.Images))
		}
		return nil
	}
	R := g.m.Config.Vision.Resolution
	per := 3 * R * R
	if len(p.Images)%per != 0 {
		return fmt.Errorf("Images has %d values, not a whole number of 3×%d×%d images", len(p.Images), R, R)
	}
	if k := len(p.Images) / per; placeholders != k*N {
		return fmt.Errorf("%d image placeholders (id %d), want %d images × %d tokens = %d", placeholders, g.ImageTokenID, k, N, k*N)
	}
	return nil
}

// prefill runs checked prompts in packed passes and returns the number of
// rows left to decode.
func (g *Generator) prefill(prompts []Prompt, maxNew int, stop []int32) int {
	g.ready = false
	g.stop = append(g.stop[:0], stop...)
	g.maxNew = maxNew
	g.act = g.act[:0]
	for r := range prompts {
		g.act = append(g.act, r)
		g.out[r] = g.out[r][:0]
		if g.prune != nil {
			g.gather(r, prompts[r])
		}
	}
	for i := 0; i < len(prompts); {
		g.segs = g.segs[:0]
		n := 0
		for i < len(prompts) && n+len(prompts[i].Tokens) <= g.rows {
			g.segs = append(g.segs, segment{row: i, off: n, n: len(prompts[i].Tokens)})
			n += len(prompts[i].Tokens)
			i++
		}
		g.pass(prompts, n)
	}
	g.ready = true
	return len(g.act)
}

// pass runs the n packed tokens of g.segs through the model and writes the
// logits of each prompt's last token to its row.
func (g *Generator) pass(prompts []Prompt, n int) {
	c := g.m.Config.Decoder
	D, V := c.Width, c.Vocab
	images := g.m.img != nil
	for _, s := range g.segs {
		for j, t := range prompts[s.row].Tokens {
			if images && t == g.ImageTokenID {
				t = 0 // any valid row: the image token overwrites it
			}
			g.ids[s.off+j], g.pos[s.off+j] = t, int32(j)
		}
	}
	x := g.x[:n*D]
	g.m.dec.embed.Forward(x, g.ids[:n])
	for _, s := range g.segs {
		g.spliceImages(x[s.off*D:(s.off+s.n)*D], prompts[s.row])
	}
	g.layers(n, false)
	k := len(g.segs)
	for i, s := range g.segs {
		end := s.off + s.n
		copy(g.last[i*D:(i+1)*D], x[(end-1)*D:end*D])
		g.lens[s.row] = s.n
	}
	r0 := g.segs[0].row
	g.head(g.last[:k*D], g.logits[r0*V:(r0+k)*V])
}

// spliceImages encodes the prompt's images and writes their tokens over
// the placeholder rows of x [prompt tokens, D].
func (g *Generator) spliceImages(x []float32, p Prompt) {
	if g.m.img == nil || len(p.Images) == 0 {
		return
	}
	D, N, R := g.m.Config.Decoder.Width, g.m.Config.Connector.Tokens, g.m.Config.Vision.Resolution
	per := 3 * R * R
	places := g.places[:0]
	for j, t := range p.Tokens {
		if t == g.ImageTokenID {
			places = append(places, j)
		}
	}
	K := len(p.Images) / per
	for k0 := 0; k0 < K; k0 += g.chunk {
		c := min(g.chunk, K-k0)
		feats := g.feats[:c*N*D]
		g.m.img.forward(feats, p.Images[k0*per:(k0+c)*per], c)
		for r, pl := range places[k0*N : (k0+c)*N] {
			copy(x[pl*D:(pl+1)*D], feats[r*D:(r+1)*D])
		}
	}
}

// layers runs the decoder blocks on g.x[:n·D] with positions g.pos[:n]:
// a prefill pass over g.segs (decode false), or one new token per row of
// g.act (decode true). It appends the keys and values to the cache.
func (g *Generator) layers(n int, decode bool) {
	c := g.m.Config.Decoder
	D, H, KV, hd := c.Width, c.Heads, c.KVHeads, c.HeadDim()
	qd, kvd, C := H*hd, KV*hd, g.Context
	x, an, branch, rstd := g.x[:n*D], g.an[:n*D], g.branch[:n*D], g.rstd[:n]
	q, k, v, att := g.q[:n*qd], g.k[:n*kvd], g.v[:n*kvd], g.att[:n*qd]
	pos := g.pos[:n]
	F := c.FFNHidden
	g.mlp = engine.SwiGLUActs[float32]{N: n, H1: g.h1[:n*F], H3: g.h3[:n*F], S: g.sg[:n*F], G: g.gated[:n*F]}
	for l, b := range g.m.dec.blocks {
		b.attnNorm.Forward(an, rstd, x)
		b.wq.Forward(q, an)
		b.wk.Forward(k, an)
		b.wv.Forward(v, an)
		qIn, kIn := q, k
		if b.qNorm != nil {
			qIn, kIn = g.qn[:n*qd], g.kn[:n*kvd]
			b.qNorm.Forward(qIn, g.qrstd[:n*H], q)
			b.kNorm.Forward(kIn, g.krstd[:n*KV], k)
		}
		g.m.dec.rope.Forward(q, qIn, pos, H)
		g.m.dec.rope.Forward(k, kIn, pos, KV)
		kc, vc := g.kc[l], g.vc[l]
		if decode {
			for i, r := range g.act {
				L := int(pos[i]) + 1
				row := kc[r*C*kvd : (r*C+L)*kvd]
				vrow := vc[r*C*kvd : (r*C+L)*kvd]
				copy(row[(L-1)*kvd:], k[i*kvd:(i+1)*kvd])
				copy(vrow[(L-1)*kvd:], v[i*kvd:(i+1)*kvd])
				g.attn1.Forward(att[i*qd:(i+1)*qd], g.probs[:H*L], q[i*qd:(i+1)*qd], row, vrow, nil, 1, 1, L)
			}
		} else {
			for _, s := range g.segs {
				row := kc[s.row*C*kvd : (s.row*C+s.n)*kvd]
				vrow := vc[s.row*C*kvd : (s.row*C+s.n)*kvd]
				copy(row, k[s.off*kvd:(s.off+s.n)*kvd])
				copy(vrow, v[s.off*kvd:(s.off+s.n)*kvd])
				b.attn.Forward(att[s.off*qd:(s.off+s.n)*qd], g.probs[:H*s.n*s.n], q[s.off*qd:(s.off+s.n)*qd], row, vrow, nil, 1, s.n, s.n)
			}
		}
		b.wo.Forward(branch, att)
		engine.AddTo(x, branch)
		b.mlpNorm.Forward(an, rstd, x)
		if g.prune != nil {
			g.prunedFFN(l, branch, an, decode)
		} else {
			b.mlp.Forward(branch, an, &g.mlp)
		}
		engine.AddTo(x, branch)
	}
}

// head writes the logits out [k, V] of the final hidden states h [k, D].
func (g *Generator) head(h, out []float32) {
	D := g.m.Config.Decoder.Width
	k := len(h) / D
	fn := g.fn[:k*D]
	g.m.dec.norm.Forward(fn, g.frstd[:k], h)
	g.m.dec.head.Forward(out, fn)
}

// greedy returns the highest logit's id (ties to the lowest id, the image
// placeholder excluded), or false when a logit is NaN or infinite.
func (g *Generator) greedy(logits []float32) (int32, bool) {
	skip := int32(-1)
	if g.m.img != nil {
		skip = g.ImageTokenID
	}
	best, bestV := int32(-1), float32(math.Inf(-1))
	for j, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, false
		}
		if int32(j) != skip && (best < 0 || v > bestV) {
			best, bestV = int32(j), v
		}
	}
	return best, true
}
