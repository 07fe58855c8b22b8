package ifprune

import (
	"fmt"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// Modes of the predictor (model.decoder.ffn_pruning besides "none").
const (
	ModeStatic      = "static"
	ModeInstruction = "instruction"
)

// PredictorConfig sizes a mask predictor.
type PredictorConfig struct {
	Mode   string // ModeStatic or ModeInstruction
	Vocab  int    // V: instruction token ids are in [0, V)
	Layers int    // L
	Hidden int    // F, the FFN channels scored per layer
	Width  int    // E, the instruction embedding width
	MLP    int    // P, the score MLP's hidden size
}

// Predictor maps each group's instruction tokens to scores [L·F] (layer l's
// channel j at l·F + j); see the package doc for the architecture.
// Parameters are registered under "ifprune.". Buffers are sized by Build
// for at most maxTokens instruction tokens and maxGroups groups per call.
type Predictor[T engine.Float] struct {
	Cfg PredictorConfig

	Static *engine.Param[T]     // [L, F] (static mode)
	Embed  *engine.Embedding[T] // [V, E] (instruction mode)
	// Enc is the residual encoder layer E → 2E → E (GELU), Head the score
	// MLP E → P → L·F (GELU); every Linear has a bias.
	Enc1, Enc2, Head1, Head2 *engine.Linear[T]

	// Forward's inputs and activations, kept for Backward.
	ids                 []int32 // [N] instruction tokens of every group, concatenated
	starts              []int   // [G+1] group g's tokens are ids[starts[g]:starts[g+1]]
	e, h, dh, de        []T     // [maxTokens, E]
	encH, encA, encD    []T     // [maxTokens, 2E]: pre-, post-GELU, gradient
	z, dz               []T     // [maxGroups, E]
	headH, headA, headD []T     // [maxGroups, P]
}

// NewPredictor registers the predictor's parameters in ps.
func NewPredictor[T engine.Float](ps *engine.Params[T], c PredictorConfig) (*Predictor[T], error) {
	if c.Layers <= 0 || c.Hidden <= 0 {
		return nil, fmt.Errorf("ifprune: predictor needs layers and hidden > 0, got %d and %d", c.Layers, c.Hidden)
	}
	p := &Predictor[T]{Cfg: c}
	switch c.Mode {
	case ModeStatic:
		p.Static = ps.Add("ifprune.static_scores", c.Layers, c.Hidden)
		p.Static.Decay = false // a score vector, not a matrix to shrink
	case ModeInstruction:
		if c.Vocab <= 0 || c.Width <= 0 || c.MLP <= 0 {
			return nil, fmt.Errorf("ifprune: instruction predictor needs vocab, width and mlp > 0, got %d, %d, %d", c.Vocab, c.Width, c.MLP)
		}
		p.Embed = engine.NewEmbedding(ps, "ifprune.embed", c.Vocab, c.Width)
		p.Enc1 = engine.NewLinear(ps, "ifprune.enc.fc1", c.Width, 2*c.Width, true)
		p.Enc2 = engine.NewLinear(ps, "ifprune.enc.fc2", 2*c.Width, c.Width, true)
		p.Head1 = engine.NewLinear(ps, "ifprune.head.fc1", c.Width, c.MLP, true)
		p.Head2 = engine.NewLinear(ps, "ifprune.head.fc2", c.MLP, c.Layers*c.Hidden, true)
	default:
		return nil, fmt.Errorf("ifprune: unknown predictor mode %q (want %s or %s)", c.Mode, ModeStatic, ModeInstruction)
	}
	return p, nil
}

// Init draws the initial weights: normal(0, 0.02) for every matrix and the
// static scores (near-equal scores start every channel at a soft mask of
// about k/F, so all channels get gradient at first), biases zero.
func (p *Predictor[T]) Init(rng *rand.Rand) {
	if p.Static != nil {
		p.Static.Normal(rng, 0.02)
		return
	}
	p.Embed.W.Normal(rng, 0.02)
	for _, l := range p.linears() {
		l.W.Normal(rng, 0.02)
	}
}

// Build sizes the activation buffers for up to maxTokens instruction tokens
// and maxGroups groups per Forward.
func (p *Predictor[T]) Build(maxTokens, maxGroups int) {
	if p.Static != nil {
		return
	}
	E, P := p.Cfg.Width, p.Cfg.MLP
	p.e, p.h, p.dh, p.de = make([]T, maxTokens*E), make([]T, maxTokens*E), make([]T, maxTokens*E), make([]T, maxTokens*E)
	p.encH, p.encA, p.encD = make([]T, maxTokens*2*E), make([]T, maxTokens*2*E), make([]T, maxTokens*2*E)
	p.z, p.dz = make([]T, maxGroups*E), make([]T, maxGroups*E)
	p.headH, p.headA, p.headD = make([]T, maxGroups*P), make([]T, maxGroups*P), make([]T, maxGroups*P)
	p.ids = make([]int32, 0, maxTokens)
	p.starts = make([]int, 0, maxGroups+1)
}

// Forward writes scores [G, L·F] for G groups: group g's instruction is
// ids[starts[g]:starts[g+1]] (starts has G+1 entries, ascending, starting
// at 0). An empty instruction pools to zero. The static predictor ignores
// the instructions and writes its scores for every group. ids and starts
// are copied; Backward uses them.
func (p *Predictor[T]) Forward(scores []T, ids []int32, starts []int) {
	G, LF := len(starts)-1, p.Cfg.Layers*p.Cfg.Hidden
	if p.Static != nil {
		for g := range G {
			copy(scores[g*LF:(g+1)*LF], p.Static.Data())
		}
		return
	}
	N, E := len(ids), p.Cfg.Width
	if N > cap(p.ids) || G+1 > cap(p.starts) {
		panic(fmt.Sprintf("ifprune: predictor built for %d tokens and %d groups, got %d and %d", cap(p.ids), cap(p.starts)-1, N, G))
	}
	p.ids = append(p.ids[:0], ids...)
	p.starts = append(p.starts[:0], starts...)
	e, h := p.e[:N*E], p.h[:N*E]
	p.Embed.Forward(e, p.ids)
	mlpForward(h, e, p.encH[:N*2*E], p.encA[:N*2*E], p.Enc1, p.Enc2)
	engine.AddTo(h, e)
	z := p.z[:G*E]
	clear(z)
	for g := range G {
		lo, hi := p.starts[g], p.starts[g+1]
		if hi == lo {
			continue
		}
		zg := z[g*E : (g+1)*E]
		for t := lo; t < hi; t++ {
			engine.AddTo(zg, h[t*E:(t+1)*E])
		}
		engine.Scale(zg, T(1/float64(hi-lo)))
	}
	P := p.Cfg.MLP
	mlpForward(scores[:G*LF], z, p.headH[:G*P], p.headA[:G*P], p.Head1, p.Head2)
}

// Backward adds the predictor's gradients for dscores [G, L·F], the
// gradient of the last Forward's scores.
func (p *Predictor[T]) Backward(dscores []T) {
	G, LF := len(p.starts)-1, p.Cfg.Layers*p.Cfg.Hidden
	if p.Static != nil {
		// Static runs with the same starts as any caller; its G rows all
		// came from the one vector.
		for g := 0; g*LF < len(dscores); g++ {
			engine.AddTo(p.Static.Grad(), dscores[g*LF:(g+1)*LF])
		}
		return
	}
	N, E := len(p.ids), p.Cfg.Width
	dz := p.dz[:G*E]
	clear(dz)
	P := p.Cfg.MLP
	mlpBackward(dz, dscores[:G*LF], p.z[:G*E], p.headH[:G*P], p.headA[:G*P], p.headD[:G*P], p.Head1, p.Head2)
	dh := p.dh[:N*E]
	for g := range G {
		lo, hi := p.starts[g], p.starts[g+1]
		for t := lo; t < hi; t++ {
			row := dh[t*E : (t+1)*E]
			copy(row, dz[g*E:(g+1)*E])
			engine.Scale(row, T(1/float64(hi-lo)))
		}
	}
	de := p.de[:N*E]
	copy(de, dh) // the residual passes ∂L/∂h to e unchanged
	mlpBackward(de, dh, p.e[:N*E], p.encH[:N*2*E], p.encA[:N*2*E], p.encD[:N*2*E], p.Enc1, p.Enc2)
	p.Embed.Backward(de, p.ids)
}

func (p *Predictor[T]) linears() []*engine.Linear[T] {
	return []*engine.Linear[T]{p.Enc1, p.Enc2, p.Head1, p.Head2}
}

// mlpForward computes out = fc2(GELU(fc1(x))), keeping the pre- and
// post-GELU activations hid, act.
func mlpForward[T engine.Float](out, x, hid, act []T, fc1, fc2 *engine.Linear[T]) {
	fc1.Forward(hid, x)
	engine.GELUForward(act, hid)
	fc2.Forward(out, act)
}

// mlpBackward adds dx and the four tensors' gradients; dact is scratch.
func mlpBackward[T engine.Float](dx, dout, x, hid, act, dact []T, fc1, fc2 *engine.Linear[T]) {
	clear(dact)
	fc2.Backward(dact, dout, act)
	dhid := act // act is no longer needed: reuse it for ∂L/∂hid
	clear(dhid)
	engine.GELUBackward(dhid, dact, hid)
	fc1.Backward(dx, dhid, x)
}

// NumParams counts the predictor's parameters (they do not run at decode
// time: the predictor runs once per input).
func (p *Predictor[T]) NumParams() int {
	if p.Static != nil {
		return p.Static.Size
	}
	n := p.Embed.W.Size
	for _, l := range p.linears() {
		n += l.W.Size + l.B.Size
	}
	return n
}
