package vision

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// Prefix is the safetensors name prefix of every encoder tensor.
const Prefix = "vit"

const (
	normEps = 1e-5 // LayerNorm eps of MODEL-SPEC.md (PyTorch's default)
	initStd = 0.02 // normal(0, 0.02) for linears and the position embedding
)

// ViT is the image encoder of MODEL-SPEC.md: patch embedding, learned
// position embedding, Depth pre-norm transformer blocks, final LayerNorm.
// It maps images [B, 3, R, R] (normalised, NCHW) to a patch grid
// [B, g, g, Dv] (channels-last, g = R/P). Build it with New, initialise with
// Init (or load weights), size its activations once with Build, then call
// Forward and Backward every step.
type ViT[T engine.Float] struct {
	Cfg        Config
	PatchEmbed *engine.Linear[T] // vit.patch_embed [Dv, 3·P·P] + bias
	PosEmbed   *engine.Param[T]  // vit.pos_embed [Np, Dv]
	Blocks     []*Block[T]
	Norm       *engine.LayerNorm[T] // vit.norm

	act   *vitActs[T] // nil until Build
	batch int         // images in the last Forward (-1: none yet); Backward uses the same
}

// Block is one pre-norm transformer block: h = x + MHA(LN1(x)),
// x' = h + MLP(LN2(h)).
type Block[T engine.Float] struct {
	LN1  *engine.LayerNorm[T]
	QKV  *engine.Linear[T] // [3Dv, Dv]: q, k, v stacked in that order
	Attn *engine.Attention[T]
	Proj *engine.Linear[T]
	LN2  *engine.LayerNorm[T]
	// MLP registers fc1 [4Dv, Dv] and fc2 [Dv, 4Dv]. The encoder takes any
	// batch up to its Build size, so each call hands it an engine.MLPActs
	// over the first B images' part of the block's buffers.
	MLP *engine.MLP[T]
}

// vitActs holds the activations saved for Backward, sized for maxB images;
// a call with B images uses the first B images' worth of every buffer (all
// are batch-major).
type vitActs[T engine.Float] struct {
	maxB      int
	patches   []T // [B·Np, 3P²]
	xs        [][]T
	blocks    []blockActs[T]
	meanF     []T // final norm [B·Np]
	rstdF     []T
	dx, da    []T // backward scratch [B·Np, Dv]
	do        []T // [B·Np, Dv]
	dqkv      []T // [B·Np, 3Dv]
	dgelu     []T // [B·Np, 4Dv]: the MLP's hidden gradient
	attnDelta []T // attention backward scratch [B, H, Np, Np]
}

// blockActs is one block's saved activations; x (the block input) lives in
// vitActs.xs.
type blockActs[T engine.Float] struct {
	a1, mean1, rstd1 []T // LN1 out [B·Np, Dv], stats [B·Np]
	qkv              []T // [B·Np, 3Dv]
	o                []T // attention out, heads concatenated [B·Np, Dv]
	probs            []T // [B, H, Np, Np]
	h                []T // residual after attention [B·Np, Dv]
	a2, mean2, rstd2 []T // LN2
	hid, act         []T // MLP pre- and post-GELU [B·Np, 4Dv]
}

// New validates cfg and registers the encoder's tensors in ps under the
// names of MODEL-SPEC.md (vit.patch_embed.weight, vit.blocks.0.attn.qkv.weight,
// ...). With cfg.Freeze they are marked frozen: no gradient, no AdamW update.
// pool spreads attention over (image, head); nil runs it inline.
func New[T engine.Float](ps *engine.Params[T], cfg Config, pool *engine.Pool) (*ViT[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MLPRatio == 0 {
		cfg.MLPRatio = DefaultMLPRatio
	}
	d, p := cfg.Width, cfg.Patch
	v := &ViT[T]{
		Cfg:        cfg,
		PatchEmbed: engine.NewLinear(ps, Prefix+".patch_embed", Channels*p*p, d, true),
		PosEmbed:   ps.Add(Prefix+".pos_embed", cfg.NumPatches(), d),
	}
	for i := range cfg.Depth {
		name := fmt.Sprintf("%s.blocks.%d", Prefix, i)
		b := &Block[T]{
			LN1:  engine.NewLayerNorm(ps, name+".ln1", d, normEps),
			QKV:  engine.NewLinear(ps, name+".attn.qkv", d, 3*d, true),
			Attn: engine.NewAttention[T](cfg.Heads, cfg.Heads, d/cfg.Heads, false, pool),
			Proj: engine.NewLinear(ps, name+".attn.proj", d, d, true),
			LN2:  engine.NewLayerNorm(ps, name+".ln2", d, normEps),
			MLP:  engine.NewMLP(ps, name+".mlp", d, cfg.Hidden(), d),
		}
		b.Attn.QStride, b.Attn.KVStride = 3*d, 3*d // read q, k, v in place from qkv
		v.Blocks = append(v.Blocks, b)
	}
	v.Norm = engine.NewLayerNorm(ps, Prefix+".norm", d, normEps)
	if cfg.Freeze {
		ps.SetFrozen(Prefix+".", true)
	}
	return v, nil
}

// Frozen reports whether the encoder is frozen; a caller then passes a nil
// grid gradient to the connector, since nothing would consume it.
func (v *ViT[T]) Frozen() bool { return v.Cfg.Freeze }

// Grid is the patch grid side g; the output is [B, g, g, Width].
func (v *ViT[T]) Grid() int { return v.Cfg.Grid() }

// Init draws the initial weights from rng as MODEL-SPEC.md prescribes:
// normal(0, 0.02) for linears and the position embedding, zero biases, unit
// norm weights, and the residual-branch outputs (attn.proj, mlp.fc2) scaled
// by 1/sqrt(2·Depth) so the residual stream's variance does not grow with
// depth (GPT-2's rule).
func (v *ViT[T]) Init(rng *rand.Rand) {
	out := initStd / math.Sqrt(2*float64(v.Cfg.Depth))
	v.PatchEmbed.Init(rng, initStd)
	v.PosEmbed.Normal(rng, initStd)
	for _, b := range v.Blocks {
		b.LN1.Reset()
		b.QKV.Init(rng, initStd)
		b.Proj.Init(rng, out)
		b.LN2.Reset()
		b.MLP.FC1.Init(rng, initStd)
		b.MLP.FC2.Init(rng, out)
	}
	v.Norm.Reset()
}

// SetPosEmbed loads a position embedding src [from², Width] trained on a
// from×from grid, resampling it bilinearly (ResizePosEmbed) when from differs
// from this encoder's grid. A checkpoint loader calls it for vit.pos_embed
// when the stored shape differs, e.g. after raising the image resolution.
func (v *ViT[T]) SetPosEmbed(src []T, from int) error {
	return ResizePosEmbed(v.PosEmbed.Data(), src, from, v.Grid(), v.Cfg.Width)
}

// PosEmbedGrid returns the grid side of a stored position embedding of shape
// [Np, width], or an error when the shape cannot be one (not two dimensions,
// another width, Np not a square).
func PosEmbedGrid(shape []int, width int) (int, error) {
	if len(shape) != 2 || shape[1] != width {
		return 0, fmt.Errorf("vision: %s.pos_embed has shape %v, want [patches, %d]", Prefix, shape, width)
	}
	g := int(math.Round(math.Sqrt(float64(shape[0]))))
	if g <= 0 || g*g != shape[0] {
		return 0, fmt.Errorf("vision: %s.pos_embed has %d positions, not a square grid", Prefix, shape[0])
	}
	return g, nil
}

// Build takes the activation buffers for up to maxImages images per call from
// a. Frozen encoders take no gradient buffers. It must be called once,
// after every parameter of the model is registered.
func (v *ViT[T]) Build(a *engine.Arena[T], maxImages int) {
	if maxImages <= 0 {
		panic(fmt.Sprintf("vision: Build: %d images per batch", maxImages))
	}
	c := v.Cfg
	np, d, f, h := c.NumPatches(), c.Width, c.Hidden(), c.Heads
	n := maxImages * np
	s := &vitActs[T]{maxB: maxImages, patches: a.Take(n * Channels * c.Patch * c.Patch)}
	for range c.Depth + 1 {
		s.xs = append(s.xs, a.Take(n*d))
	}
	for range c.Depth {
		s.blocks = append(s.blocks, blockActs[T]{
			a1: a.Take(n * d), mean1: a.Take(n), rstd1: a.Take(n),
			qkv: a.Take(n * 3 * d), o: a.Take(n * d), probs: a.Take(maxImages * h * np * np),
			h:  a.Take(n * d),
			a2: a.Take(n * d), mean2: a.Take(n), rstd2: a.Take(n),
			hid: a.Take(n * f), act: a.Take(n * f),
		})
	}
	s.meanF, s.rstdF = a.Take(n), a.Take(n)
	if !c.Freeze {
		s.dx, s.da, s.do = a.Take(n*d), a.Take(n*d), a.Take(n*d)
		s.dqkv = a.Take(n * 3 * d)
		s.dgelu = a.Take(n * f)
		s.attnDelta = a.Take(maxImages * h * np * np)
	}
	v.act = s
	v.batch = -1
}

// Forward encodes images [B, 3, R, R] into out [B, g, g, Dv], for any
// B ≤ the Build size (0 included). It panics (a programming error) when Build was not
// called or a length is wrong.
func (v *ViT[T]) Forward(out, images []T) {
	c, s := v.Cfg, v.act
	if s == nil {
		panic("vision: ViT.Forward before Build")
	}
	per := Channels * c.Resolution * c.Resolution
	B := len(images) / per
	if B*per != len(images) || B > s.maxB {
		panic(fmt.Sprintf("vision: ViT.Forward: %d values are not a whole batch of at most %d images of 3×%d×%d",
			len(images), s.maxB, c.Resolution, c.Resolution))
	}
	v.batch = B
	np, d, f, h := c.NumPatches(), c.Width, c.Hidden(), c.Heads
	n := B * np
	if len(out) != n*d {
		panic(fmt.Sprintf("vision: ViT.Forward: out has %d values, want %d", len(out), n*d))
	}
	if B == 0 {
		return
	}
	patches := s.patches[:n*Channels*c.Patch*c.Patch]
	engine.Patchify(patches, images, B, Channels, c.Resolution, c.Patch)
	x := s.xs[0][:n*d]
	v.PatchEmbed.Forward(x, patches)
	engine.AddBroadcast(x, v.PosEmbed.Data())
	for l, b := range v.Blocks {
		ba := &s.blocks[l]
		a1, mean1, rstd1 := ba.a1[:n*d], ba.mean1[:n], ba.rstd1[:n]
		qkv, o, probs, hres := ba.qkv[:n*3*d], ba.o[:n*d], ba.probs[:B*h*np*np], ba.h[:n*d]
		a2, mean2, rstd2 := ba.a2[:n*d], ba.mean2[:n], ba.rstd2[:n]
		hid, act := ba.hid[:n*f], ba.act[:n*f]
		next := s.xs[l+1][:n*d]

		b.LN1.Forward(a1, mean1, rstd1, x)
		b.QKV.Forward(qkv, a1)
		b.Attn.Forward(o, probs, qkv, qkv[d:], qkv[2*d:], nil, B, np, np)
		b.Proj.Forward(hres, o)
		engine.AddTo(hres, x)
		b.LN2.Forward(a2, mean2, rstd2, hres)
		// The MLP runs its GELU over the pool, like its products.
		b.MLP.Forward(next, a2, &engine.MLPActs[T]{N: n, H: hid, A: act})
		engine.AddTo(next, hres)
		x = next
	}
	v.Norm.Forward(out, s.meanF[:n], s.rstdF[:n], x)
}

// FirstNonFinite walks the activations of the last Forward in forward order
// and returns an *engine.NonFiniteError naming the first that holds a NaN or
// Inf (vit.patch_embed output, vit.blocks.{i} attention output,
// vit.blocks.{i} mlp output), or nil. out is that Forward's output, checked
// last as the vit.norm output. A training loop calls it after a non-finite
// loss, to say where the values first went bad.
func (v *ViT[T]) FirstNonFinite(out []T) error {
	s, B := v.act, v.batch
	if s == nil || B <= 0 {
		return nil
	}
	n := B * v.Cfg.NumPatches() * v.Cfg.Width
	if err := engine.CheckFinite(Prefix+".patch_embed output", s.xs[0][:n]); err != nil {
		return err
	}
	for l := range v.Blocks {
		if err := engine.CheckFinite(fmt.Sprintf("%s.blocks.%d attention output", Prefix, l), s.blocks[l].h[:n]); err != nil {
			return err
		}
		if err := engine.CheckFinite(fmt.Sprintf("%s.blocks.%d mlp output", Prefix, l), s.xs[l+1][:n]); err != nil {
			return err
		}
	}
	return engine.CheckFinite(Prefix+".norm output", out)
}

// Backward adds every parameter gradient from dout [B, g, g, Dv], the
// gradient of the last Forward's output. Images get no gradient. A frozen
// encoder does nothing.
func (v *ViT[T]) Backward(dout []T) {
	if v.Cfg.Freeze {
		return
	}
	c, s, B := v.Cfg, v.act, v.batch
	if s == nil || B < 0 {
		panic("vision: ViT.Backward before Forward")
	}
	np, d, f, h := c.NumPatches(), c.Width, c.Hidden(), c.Heads
	n := B * np
	if len(dout) != n*d {
		panic(fmt.Sprintf("vision: ViT.Backward: dout has %d values, want %d", len(dout), n*d))
	}
	if B == 0 {
		return
	}
	dx, da, do := s.dx[:n*d], s.da[:n*d], s.do[:n*d]
	dqkv, dgelu := s.dqkv[:n*3*d], s.dgelu[:n*f]
	delta := s.attnDelta[:B*h*np*np]

	// dx carries the residual stream's gradient down through the blocks;
	// each branch adds its input gradient into it in place.
	clear(dx)
	v.Norm.Backward(dx, dout, s.xs[c.Depth][:n*d], s.meanF[:n], s.rstdF[:n])
	for l := c.Depth - 1; l >= 0; l-- {
		b, ba := v.Blocks[l], &s.blocks[l]
		x := s.xs[l][:n*d]
		a1, mean1, rstd1 := ba.a1[:n*d], ba.mean1[:n], ba.rstd1[:n]
		qkv, o, probs, hres := ba.qkv[:n*3*d], ba.o[:n*d], ba.probs[:B*h*np*np], ba.h[:n*d]
		a2, mean2, rstd2 := ba.a2[:n*d], ba.mean2[:n], ba.rstd2[:n]
		hid, act := ba.hid[:n*f], ba.act[:n*f]

		clear(da)
		b.MLP.Backward(da, dx, a2, &engine.MLPActs[T]{N: n, H: hid, A: act, DA: dgelu})
		b.LN2.Backward(dx, da, hres, mean2, rstd2) // dx is now d(h)

		clear(do)
		b.Proj.Backward(do, dx, o)
		clear(dqkv)
		b.Attn.Backward(dqkv, dqkv[d:], dqkv[2*d:], delta, do, qkv, qkv[d:], qkv[2*d:], probs, B, np, np)
		clear(da)
		b.QKV.Backward(da, dqkv, a1)
		b.LN1.Backward(dx, da, x, mean1, rstd1) // dx is now d(x)
	}
	if !v.PosEmbed.Frozen {
		engine.SumBroadcast(v.PosEmbed.Grad(), dx)
	}
	v.PatchEmbed.Backward(nil, dx, s.patches[:n*Channels*c.Patch*c.Patch])
}
