package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mmablate/mmablate/models/engine"
)

// Options are the build-time choices that are not part of the model's
// identity (they change speed and optimisation, not the function computed).
type Options struct {
	Seed      uint64             // initial weights come from rand.NewPCG(Seed, seedStream)
	Workers   int                // goroutines for every layer (products, attention, norms, elementwise); ≤ 1 runs inline
	MaxImages int                // images per batch the activations are sized for; 0 = B·T/connector.tokens
	AdamW     engine.AdamWConfig // zero value = DefaultAdamW
	ClipNorm  float64            // global gradient-norm clip; 0 = DefaultClipNorm, < 0 = off
}

// DefaultAdamW is the optimiser setting of LLM pre-training (β2 = 0.95 for
// stability with large batches, decoupled decay 0.1 on matrices only).
var DefaultAdamW = engine.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}

// DefaultClipNorm is the usual pre-training gradient clip.
const DefaultClipNorm = 1.0

// seedStream separates the weight-init stream from other users of a seed.
const seedStream = 0x6d6f64656c73 // "models"

// Model is the multimodal model (or the bare decoder when Config.Vision is
// nil) built for one batch shape, with its parameters, activations and
// AdamW state. It is not safe for concurrent use.
type Model struct {
	Config    Config
	B, T      int
	Params    *engine.Params[float32]
	maxImages int
	clip      float64

	pool  *engine.Pool
	dec   *decoder
	img   *imagePath // nil for a text-only model
	opt   *engine.AdamW[float32]
	acts  *decoderActs
	ids   []int32     // [B·T] token ids with placeholders replaced by 0 for the embedding
	slots []int       // [≤ B·T] the last batch's placeholder positions; capacity B·T, so Forward does not allocate
	imgs  []float32   // [maxImages·N, D] connector outputs
	dimgs []float32   // [maxImages·N, D] their gradient
	acc   Accelerator // nil: Step runs on the CPU engine
}

// New validates cfg and builds a model for batches of B sequences of T
// tokens, initialised from opts.Seed.
func New(cfg Config, B, T int, opts Options) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if B <= 0 || T <= 0 || T > cfg.Decoder.MaxSeq {
		return nil, fmt.Errorf("batch shape %d×%d: need B > 0 and 0 < T ≤ model.decoder.max_seq (%d)", B, T, cfg.Decoder.MaxSeq)
	}
	m := &Model{Config: cfg, B: B, T: T, Params: engine.NewParams[float32](), clip: opts.ClipNorm}
	if m.clip == 0 {
		m.clip = DefaultClipNorm
	}
	if opts.Workers > 1 {
		m.pool = engine.NewPool(opts.Workers)
		// Every layer built on Params splits its products, norms and
		// elementwise loops over the pool (OpenBLAS then runs one thread
		// inside the pool's regions), not only attention.
		m.Params.Pool = m.pool
	}
	rng := rand.New(rand.NewPCG(opts.Seed, seedStream))
	m.dec = newDecoder(m.Params, cfg.Decoder, m.pool)
	m.dec.init(rng)
	if m.dec.prune != nil {
		m.dec.prune.initPredictor(opts.Seed)
	}
	arena := engine.NewArena[float32]()
	if cfg.Vision != nil {
		m.maxImages = opts.MaxImages
		if m.maxImages == 0 {
			m.maxImages = B * T / cfg.Connector.Tokens
		}
		if m.maxImages <= 0 {
			return nil, fmt.Errorf("model.connector.tokens %d does not fit one image into a %d×%d batch", cfg.Connector.Tokens, B, T)
		}
		img, err := newImagePath(m.Params, arena, cfg, m.maxImages, m.pool, rng)
		if err != nil {
			return nil, err
		}
		m.img = img
		rows := m.maxImages * cfg.Connector.Tokens * cfg.Decoder.Width
		m.imgs, m.dimgs = arena.Take(rows), arena.Take(rows)
	}
	m.acts = m.dec.newActs(arena, B, T)
	m.ids = make([]int32, B*T)
	adam := opts.AdamW
	if adam == (engine.AdamWConfig{}) {
		adam = DefaultAdamW
	}
	m.opt = engine.NewAdamW(m.Params, adam)
	return m, nil
}

// Close stops the model's worker goroutines and closes its Accelerator.
func (m *Model) Close() {
	if m.pool != nil {
		m.pool.Close()
	}
	if m.acc != nil {
		m.acc.Close()
	}
}

// Forward computes the batch's loss (masked mean cross-entropy), keeping
// the activations Backward needs. A NaN or Inf loss is an error naming the
// first activation where a non-finite value appeared.
func (m *Model) Forward(b *Batch) (float64, error) {
	places, err := m.placeholders(b)
	if err != nil {
		return 0, err
	}
	D := m.Config.Decoder.Width
	copy(m.ids, b.Tokens)
	for _, p := range places {
		m.ids[p] = 0 // any valid row: the image token overwrites it
	}
	x0 := m.acts.xs[0]
	m.dec.embed.Forward(x0, m.ids)
	if m.dec.prune != nil {
		m.dec.prune.prepare(b, m.img != nil)
	}
	if m.img != nil && b.NumImages > 0 {
		rows := len(places)
		m.img.forward(m.imgs[:rows*D], b.Images, b.NumImages)
		for r, p := range places {
			copy(x0[p*D:(p+1)*D], m.imgs[r*D:(r+1)*D])
		}
	}
	loss := m.dec.forward(m.acts, b.Pos, b.DocIDs, b.Targets, b.LossMask)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, m.firstNonFinite(b)
	}
	return loss, nil
}

func (m *Model) tokensPerImage() int {
	if m.Config.Connector == nil {
		return 0
	}
	return m.Config.Connector.Tokens
}

// firstNonFinite walks the saved activations in forward order and names the
// first layer whose output holds a NaN or Inf (on the image side: the
// images, each ViT layer, the connector's tokens).
func (m *Model) firstNonFinite(b *Batch) error {
	D := m.Config.Decoder.Width
	if m.img != nil && b.NumImages > 0 {
		tokens := m.imgs[:b.NumImages*m.tokensPerImage()*D]
		if err := m.img.firstNonFinite(b.Images, tokens, b.NumImages); err != nil {
			return err
		}
	}
	if err := engine.CheckFinite("llm.tok_embed output", m.acts.xs[0]); err != nil {
		return err
	}
	for l := range m.Config.Decoder.Layers {
		ba := &m.acts.blocks[l]
		if err := engine.CheckFinite(fmt.Sprintf("llm.layers.%d attention output", l), ba.h); err != nil {
			return err
		}
		if err := engine.CheckFinite(fmt.Sprintf("llm.layers.%d mlp output", l), m.acts.xs[l+1]); err != nil {
			return err
		}
	}
	if err := engine.CheckFinite("llm.norm output", m.acts.fn); err != nil {
		return err
	}
	if err := engine.CheckFinite("logits", m.acts.logits); err != nil {
		return err
	}
	return errors.New("non-finite loss with finite logits (empty or non-finite loss mask?)")
}

// Backward zeroes the gradients and fills them for the batch of the last
// Forward.
func (m *Model) Backward(b *Batch) {
	m.Params.ZeroGrad()
	m.dec.backward(m.acts, b.Pos, b.Targets, b.LossMask)
	dx := m.acts.dx
	D := m.Config.Decoder.Width
	if m.img != nil && b.NumImages > 0 {
		// The placeholders' embeddings were overwritten, so their gradient
		// belongs to the image tokens, not to the embedding table.
		rows := 0
		for p, tok := range b.Tokens {
			if tok == b.ImageTokenID {
				copy(m.dimgs[rows*D:(rows+1)*D], dx[p*D:(p+1)*D])
				clear(dx[p*D : (p+1)*D])
				rows++
			}
		}
		m.img.backward(m.dimgs[:rows*D], b.NumImages)
	}
	m.dec.embed.Backward(dx, m.ids)
}

// StepStats describes one optimiser step.
type StepStats struct {
	Step     int     // 1-based count of AdamW updates, including this one
	Loss     float64 // before the update
	GradNorm float64 // global L2 norm before clipping
}

// Step runs forward, backward, gradient clipping and one AdamW update with
// learning rate lr. A non-finite loss or gradient stops before the update
// with an error naming the step and the first layer or tensor affected; the
// weights are then unchanged.
func (m *Model) Step(b *Batch, lr float64) (StepStats, error) {
	if m.acc != nil {
		return m.acc.Step(b, lr)
	}
	st := StepStats{Step: m.opt.T() + 1}
	loss, err := m.Forward(b)
	st.Loss = loss
	if err != nil {
		return st, fmt.Errorf("step %d: loss %v: %w", st.Step, loss, err)
	}
	m.Backward(b)
	if err := m.Params.CheckGrads(); err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	st.GradNorm = m.Params.ClipGradNorm(m.clip)
	m.opt.Step(lr)
	return st, nil
}

// Logits returns the last Forward's logits [B·T, V] (row b·T+t predicts the
// token after position t), e.g. for greedy decoding. The slice is the
// model's buffer: the next Forward overwrites it.
func (m *Model) Logits() []float32 { return m.acts.logits }

// CopyWeights copies every parameter from src, a model of the same config
// built for another batch shape (say B = 1 for decoding beside a training
// model). AdamW state is not copied.
func (m *Model) CopyWeights(src *Model) error {
	a, b := m.Params.All(), src.Params.All()
	if len(a) != len(b) {
		return fmt.Errorf("copy weights: %d tensors, source has %d", len(a), len(b))
	}
	for i, p := range a {
		if p.Name != b[i].Name || !slices.Equal(p.Shape, b[i].Shape) {
			return fmt.Errorf("copy weights: tensor %d is %s %v, source has %s %v", i, p.Name, p.Shape, b[i].Name, b[i].Shape)
		}
	}
	if err := src.pull(); err != nil {
		return fmt.Errorf("copy weights: %w", err)
	}
	copy(m.Params.Data(), src.Params.Data())
	return m.push()
}

// Steps is the number of AdamW updates taken (restored by LoadOptimizer).
func (m *Model) Steps() int {
	if m.acc != nil {
		return m.acc.Steps()
	}
	return m.opt.T()
}

// NumParams counts every parameter scalar, and those that train (a frozen
// ViT's are not).
func (m *Model) NumParams() (total, trainable int) {
	for _, p := range m.Params.All() {
		total += p.Size
		if !p.Frozen {
			trainable += p.Size
		}
	}
	return total, trainable
}
