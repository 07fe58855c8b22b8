package models

import (
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/ifprune"
)

// pruneStream separates the mask predictor's init stream from the
// decoder's, so adding a predictor leaves every other initial weight as
// the dense model's.
const pruneStream = seedStream + 1

// pruner is the decoder's instruction-following pruning
// (model.decoder.ffn_pruning static or instruction, see models/ifprune):
// per batch it splits the rows into groups (document pieces), predicts
// scores from each group's instruction, turns them into one SoftTopK mask
// per group and layer, and the blocks run their FFNs masked. With k = F
// (ffn_active full) the masks are all ones, so the blocks keep the dense
// SwiGLU path and the predictor does not run: the model is the dense one,
// bit for bit, plus unused predictor weights.
type pruner struct {
	k, F, L  int
	temp     float64
	fallback int // K: first tokens used when a group marks no instruction
	static   bool
	dense    bool // k ≥ F
	hard     bool // SetHardMasks: hard top-k masks in Forward, no mask gradient
	ste      bool // straight-through: hard masks in Forward, SoftTopK's gradient in Backward
	pred     *ifprune.Predictor[float32]
	ffn      []ifprune.MaskedSwiGLU[float32]

	// Per batch, sized by build for B·T rows.
	group         []int32     // [n] row → group
	ids           []int32     // instruction tokens of every group
	starts        []int       // [G+1]
	scores, dsc   []float32   // [G, L·F]
	masks, dmasks [][]float32 // [L][G·F] the masks the FFNs run, their gradient
	soft          [][]float32 // [L][G·F] SoftTopK masks (Backward's Jacobian); = masks unless ste
	idx           []int       // HardTopK scratch [F]
	groups        int
	scratch       *ifprune.MaskedScratch[float32]
}

func newPruner(ps *engine.Params[float32], c DecoderConfig, blocks []*block) *pruner {
	if !c.Pruned() {
		return nil
	}
	E, P := c.PredictorSizes()
	mode := ifprune.ModeInstruction
	if c.FFNPruning == PruneStatic {
		mode = ifprune.ModeStatic
	}
	pred, err := ifprune.NewPredictor(ps, ifprune.PredictorConfig{Mode: mode, Vocab: c.Vocab, Layers: c.Layers, Hidden: c.FFNHidden, Width: E, MLP: P})
	if err != nil {
		panic(err) // the config was validated: every size is positive
	}
	p := &pruner{k: c.ActiveFFN(), F: c.FFNHidden, L: c.Layers, temp: c.MaskTemperature(), fallback: c.FFNInstructionTokens,
		static: mode == ifprune.ModeStatic, pred: pred, ste: c.FFNMaskEstimator != EstimatorSoft}
	p.dense = p.k >= p.F
	for _, b := range blocks {
		p.ffn = append(p.ffn, ifprune.MaskedSwiGLU[float32]{SwiGLU: b.mlp})
	}
	return p
}

// masked reports whether the blocks run the masked FFN.
func (p *pruner) masked() bool { return p != nil && !p.dense }

// build sizes the per-batch buffers for n = B·T rows and the predictor
// for instructions of up to max(n, maxSeq) tokens (a generation prompt may
// be longer than a training row).
func (p *pruner) build(a *engine.Arena[float32], n, maxSeq int) {
	if p.dense {
		return // the predictor never runs: no buffers to hold
	}
	p.pred.Build(max(n, maxSeq), n)
	p.idx = make([]int, p.F)
	G := n
	if p.static {
		G = 1
	}
	p.group = make([]int32, n)
	p.ids = make([]int32, 0, n)
	p.starts = make([]int, 0, n+1)
	p.scores, p.dsc = a.Take(G*p.L*p.F), a.Take(G*p.L*p.F)
	for range p.L {
		p.masks = append(p.masks, a.Take(G*p.F))
		p.dmasks = append(p.dmasks, a.Take(G*p.F))
		if p.ste {
			p.soft = append(p.soft, a.Take(G*p.F))
		} else {
			p.soft = append(p.soft, p.masks[len(p.masks)-1])
		}
	}
	p.scratch = ifprune.NewMaskedScratch(a, n, p.F)
}

// prepare computes the batch's groups and masks before the blocks run.
func (p *pruner) prepare(b *Batch, images bool) {
	if p.dense {
		return
	}
	p.ids, p.starts = p.ids[:0], p.starts[:0]
	if p.static {
		clear(p.group) // one group: the mask does not depend on the input
		p.starts = append(p.starts, 0, 0)
	} else {
		g := int32(-1)
		for i := range b.Tokens {
			if i%b.T == 0 || b.DocIDs[i] != b.DocIDs[i-1] {
				g++
				lo := len(p.ids)
				p.starts = append(p.starts, lo)
				p.ids = appendInstruction(p.ids, b, i, images, p.fallback)
			}
			p.group[i] = g
		}
		p.starts = append(p.starts, len(p.ids))
	}
	p.groups = len(p.starts) - 1
	LF := p.L * p.F
	p.pred.Forward(p.scores[:p.groups*LF], p.ids, p.starts)
	for g := range p.groups {
		for l := range p.L {
			s, m := p.scores[g*LF+l*p.F:g*LF+(l+1)*p.F], p.masks[l][g*p.F:(g+1)*p.F]
			if !p.hard {
				ifprune.SoftTopK(p.soft[l][g*p.F:(g+1)*p.F], s, p.k, p.temp)
			}
			if p.hard || p.ste {
				ifprune.HardMask(m, s, p.k, p.idx)
			}
		}
	}
	for l := range p.L {
		clear(p.dmasks[l][:p.groups*p.F])
	}
}

// appendInstruction appends the instruction of the document piece that
// starts at flat position i (it runs to the row's end or the next DocID):
// its tokens marked in b.Instruction, or else its first k text tokens.
func appendInstruction(ids []int32, b *Batch, i int, images bool, k int) []int32 {
	end := (i/b.T + 1) * b.T
	text := func(j int) bool { return !images || b.Tokens[j] != b.ImageTokenID }
	lo := len(ids)
	for j := i; j < end && b.DocIDs[j] == b.DocIDs[i]; j++ {
		if len(b.Instruction) > 0 && b.Instruction[j] && text(j) {
			ids = append(ids, b.Tokens[j])
		}
	}
	if len(ids) > lo {
		return ids
	}
	for j := i; j < end && b.DocIDs[j] == b.DocIDs[i] && len(ids)-lo < k; j++ {
		if text(j) {
			ids = append(ids, b.Tokens[j])
		}
	}
	return ids
}

// backward turns the blocks' mask gradients into score gradients
// (SoftTopK's implicit differentiation; with ste the gradient taken at the
// hard mask passes through the soft one) and runs the predictor's
// backward. SetHardMasks' masks have no gradient.
func (p *pruner) backward() {
	if p.dense || p.hard {
		return
	}
	LF := p.L * p.F
	dsc := p.dsc[:p.groups*LF]
	clear(dsc)
	for g := range p.groups {
		for l := range p.L {
			o := g*LF + l*p.F
			ifprune.SoftTopKBackward(dsc[o:o+p.F], p.dmasks[l][g*p.F:(g+1)*p.F], p.soft[l][g*p.F:(g+1)*p.F], p.temp)
		}
	}
	p.pred.Backward(dsc)
}

// initPredictor draws the predictor's weights from their own stream.
func (p *pruner) initPredictor(seed uint64) {
	p.pred.Init(rand.New(rand.NewPCG(seed, pruneStream)))
}

// SetHardMasks switches a pruned model's Forward between the masks of
// training (false, the default: soft, or hard with the straight-through
// estimator) and the hard top-k masks that generation gathers with no
// gradient (true: Backward gives the predictor none). It does nothing for
// a dense model.
func (m *Model) SetHardMasks(hard bool) {
	if m.dec.prune != nil {
		m.dec.prune.hard = hard
	}
}

// genPrune is a Generator's per-prompt gathered FFN weights, and the pool
// task that runs them (bound once, so a decoding step does not allocate).
type genPrune struct {
	rows   [][]*ifprune.Gathered[float32] // [Batch][L]
	scores []float32                      // [L·F]
	ids    []int32

	// The current prunedFFN call, read by task.
	g      *Generator
	l      int
	decode bool
	out, x []float32
	task   func(int)
}

func newGenPrune(g *Generator, p *pruner, batch, dim int) *genPrune {
	gp := &genPrune{g: g, rows: make([][]*ifprune.Gathered[float32], batch), scores: make([]float32, p.L*p.F)}
	for r := range gp.rows {
		for range p.L {
			gp.rows[r] = append(gp.rows[r], ifprune.NewGathered[float32](dim, p.k))
		}
	}
	gp.task = gp.run
	return gp
}

// run applies item i's gathered FFN: active row i (decode) or prompt
// segment i (prefill), each on its own rows of x, out and the scratch.
func (gp *genPrune) run(i int) {
	g := gp.g
	D, k := g.m.Config.Decoder.Width, g.m.dec.prune.k
	lo, n, r := i, 1, 0
	if gp.decode {
		r = g.act[i]
	} else {
		s := g.segs[i]
		lo, n, r = s.off, s.n, s.row
	}
	gp.rows[r][gp.l].Forward(nil, gp.out[lo*D:(lo+n)*D], gp.x[lo*D:(lo+n)*D], g.h1[lo*k:(lo+n)*k], g.h3[lo*k:(lo+n)*k])
}

// gather predicts prompt pr's hard masks once and gathers row r's pruned
// FFN weights for every layer. The instruction is pr.Instruction, or else
// the prompt's first model.decoder.ffn_instruction_tokens text tokens.
func (g *Generator) gather(r int, pr Prompt) {
	p, gp := g.m.dec.prune, g.prune
	if p.static && r > 0 {
		return // one mask for every input: row 0's weights serve all rows
	}
	gp.ids = gp.ids[:0]
	if !p.static {
		if len(pr.Instruction) > 0 {
			gp.ids = append(gp.ids, pr.Instruction...)
		} else {
			for _, t := range pr.Tokens {
				if len(gp.ids) == p.fallback {
					break
				}
				if g.m.img == nil || t != g.ImageTokenID {
					gp.ids = append(gp.ids, t)
				}
			}
		}
	}
	p.pred.Forward(gp.scores, gp.ids, []int{0, len(gp.ids)})
	for l, b := range g.m.dec.blocks {
		idx := ifprune.HardTopK(p.idx, gp.scores[l*p.F:(l+1)*p.F], p.k)
		gp.rows[r][l].Gather(b.mlp, idx)
	}
}

// prunedFFN runs the gathered FFNs on the n rows of a pass, one pool task
// per prompt segment (prefill) or per active row (decode): each prompt has
// its own weights, so rows cannot share one product.
func (g *Generator) prunedFFN(l int, out, x []float32, decode bool) {
	gp := g.prune
	if g.m.dec.prune.static {
		// Every row has row 0's weights: one product over all rows.
		k := g.m.dec.prune.k
		n := len(x) / g.m.Config.Decoder.Width
		gp.rows[0][l].Forward(g.m.pool, out, x, g.h1[:n*k], g.h3[:n*k])
		return
	}
	gp.l, gp.decode, gp.out, gp.x = l, decode, out, x
	n := len(g.segs)
	if decode {
		n = len(g.act)
	}
	g.m.pool.For(n, gp.task)
	gp.out, gp.x = nil, nil
}
