package cuda

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mmablate/mmablate/models"
)

// Options configure a Trainer.
type Options struct {
	Precision Precision // "" = fp32
	GPU       int       // device ordinal
	// materialised keeps bf16 attention on the batched products and
	// softmax kernels where the flash kernels exist (the benchmarks' A/B).
	materialised bool
}

// Trainer trains a models.Model on the GPU: it implements
// models.Accelerator (Model.SetAccelerator), holding the weights, gradients
// and AdamW moments in one device arena of the host Params' layout. The
// whole step runs on the GPU: a multimodal model's image path (ViT and
// connector, image.go and connector.go) as well as the decoder, clipping
// and AdamW; only patchify (cutting the images into patches) stays on the
// host.
// It is not safe for concurrent use.
type Trainer struct {
	d    *Device
	m    *models.Model
	c    models.DecoderConfig
	prec Precision

	B, T, n          int
	nb, bs           int // causal row blocks of the attention products: nb blocks of bs rows
	hd, qd, kvd, gh  int
	t                int // AdamW updates taken
	clip             float64
	b1, b2, eps, wdc float64

	// flash: bf16 precision's attention runs the flash kernels (flash.go)
	// where the GPU and head width have them; no [B·H, T, T] buffer
	// exists then. Else attnH: the attention's batched products read bf16
	// operands (bf16 precision where every operand pointer is 16-byte
	// aligned: head width and T multiples of 8); else fp32 ones under
	// tr.prec.
	flash, attnH bool

	w, g, mom, vel Buf // [P] the parameter arena and its gradient and moments
	// bf16 precision only (else zero Bufs): wh [P] is the weights rounded
	// to bf16, refreshed by every AdamW update; doutH the logits' gradient
	// in bf16 (ce_bwd or ce_fused write it; [B·T, V], at least F, D and qd
	// wide too: the benchmarks use it as any product's output gradient); dGH
	// and dH3H [B·T, F] the SwiGLU backward's results in bf16 (dGH holds
	// its input, ∂L/∂g, first).
	wh, doutH Buf
	dGH, dH3H Buf
	// bf16 precision: the residual stream's gradients dx and dh in bf16,
	// written by the norms' backward for the linear backwards that read
	// them; dqkvH [B·T, qd+2·kvd] the q, k and v projections' output
	// gradients side by side in bf16 (qk-norm's or RoPE's backward writes
	// q's and k's columns, v's are cast), so that wq, wk and wv, adjacent
	// in the arena, take one input- and one weight-gradient product.
	dxH, dhH, dqkvH Buf
	chunkLo         Buf // int64 [chunks]
	chunkHi         Buf
	chunkFlags      Buf // int32 [chunks]
	chunkLR         Buf // float32 [chunks]: the tensor's LRScale
	chunks          int
	embed, norm     int // arena offsets
	layers          []layerParams

	cos, sin                   Buf // [MaxSeq, hd/2]
	ids, pos, docs, tgt, mask  Buf
	xs                         []Buf
	acts                       []layerActs
	fn, frstd, logits, ceStats Buf
	fnH                        Buf // bf16 copy of fn (bf16 precision)
	// logitsH: bf16 precision's logits, in bf16 as autocast's head product
	// gives them, where ce_fused takes the vocabulary (logits is then the
	// zero Buf): the head product writes, and the cross-entropy reads,
	// half the bytes (2 GB of the reference step's 3).
	logitsH                   Buf
	rowloss, branch, partials Buf
	dx, dh, dnorm, dlogits    Buf
	datt, dq, dqRot           Buf
	dk, dkRot, dv, scratch    Buf
	dG, dH3                   Buf
	ptrs                      Buf // device pointer arrays for the batched attention products
	bwdPtrs                   attnPtrs
	// attnH only: scratchH [B·H, T, T] is dS in bf16 (the softmax
	// backward's output), dattH [B·T, H·hd] the attention output's
	// gradient in bf16, bwdPtrsH their pointer arrays (p and o).
	scratchH, dattH Buf
	bwdPtrsH        attnPtrs
	// flash only: dvec [B·H, T], the softmax backward's row terms
	// (dattH is dO, wo's input-gradient product writes it in bf16 only).
	dvec Buf

	// The batch's host side, carved from staging (pinned memory, copied
	// asynchronously): hostIDs holds its tokens with each image
	// placeholder replaced by 0. staged: copies from staging may still be
	// queued (a forward that failed before reading its loss back).
	staging                             *staging
	hostIDs, hostPos, hostDocs, hostTgt []int32
	hostMask                            []float32
	staged                              bool
	count                               float64 // Σ mask of the current batch

	// The image path (ViT and connector) on the GPU: its tokens replace
	// the placeholders' rows of the embedding output, and the gradient at
	// those rows is its backward's input. Its parameters are the arena's
	// span [imgLo, imgHi).
	imgLo, imgHi int
	img          *imagePath // nil for a text-only model
	places       Buf        // int32 [≤ B·T]
	hostPlaces   []int32
	rows, images int // image tokens and images in the current batch

	gap gapTimer // the GPU's idle time between consecutive Steps
}

// layerParams are one block's parameter offsets in the arena (-1: absent).
type layerParams struct {
	attnNorm, wq, wk, wv, wo, qNorm, kNorm, mlpNorm, w1, w3, w2 int
}

// layerActs are one block's saved activations.
type layerActs struct {
	an, arstd, q, k, v, qrstd, krstd, qRot, kRot Buf
	probs, att, h, mn, mrstd, h1, h3, gg         Buf
	// bf16 precision: bf16 copies of the linear layers' inputs, cast once
	// where they are made and read by the forward and the weight-gradient
	// products. The fp32 an, mn and gg are not kept then (only the copies
	// are read), nor is tr.fn.
	anH, attH, mnH, ggH Buf
	// bf16 precision: the w1 and w3 products' outputs, written in bf16
	// (SwiGLU, their one reader, widens them), in place of h1 and h3; qkH
	// [B·T, qd+kvd] the q|k projection (wq and wk adjacent: one product)
	// in bf16 in place of q and k, read by qk-norm or RoPE; and where the
	// attention reads bf16 operands (flash, attnH) the v projection goes
	// straight to vH, with no fp32 v.
	h1H, h3H, qkH Buf
	// attnH: the attention products' bf16 operands in place of the fp32
	// qRot, kRot and probs (not allocated then): q and k as RoPE writes
	// them, v cast once from the projection, and the softmax's
	// probabilities [B·H, T, T]; ptrH their pointer arrays.
	qRotH, kRotH, vH, probsH Buf
	ptr, ptrH                attnPtrs
	// flash: each row's log2-sum-exp [B·H, T] (flash.go), in place of
	// probsH.
	lse Buf
}

// attnPtrs are the device addresses of [B·H]-long arrays of operand
// pointers, entry j = i·(B·KV) + b·KV + g for query head h = g·(H/KV) + i:
// the B·KV entries of group index i are heads that share no kv head, so a
// product accumulating into dk or dv runs once per i. q, p and o have one
// array per causal row block r, pointing r·bs rows in.
type attnPtrs struct {
	k, v    uintptr
	q, p, o []uintptr
}

// NewTrainer opens GPU opts.GPU and copies m's weights and AdamW state
// there, with each tensor's Frozen and LRScale as they stand now: set them
// before. A model with decoder parameters this backend does not know (ffn
// pruning) is an error.
func NewTrainer(m *models.Model, opts Options) (*Trainer, error) {
	if m.Config.Decoder.Pruned() {
		return nil, fmt.Errorf("cuda: model.decoder.ffn_pruning %s has no GPU kernels: train it with device cpu", m.Config.Decoder.FFNPruning)
	}
	prec, err := ParsePrecision(string(opts.Precision))
	if err != nil {
		return nil, err
	}
	d, err := Open(opts.GPU)
	if err != nil {
		return nil, err
	}
	tr := &Trainer{d: d, m: m, c: m.Config.Decoder, prec: prec, B: m.B, T: m.T, n: m.B * m.T, clip: m.ClipNorm(),
		flash: prec == BF16 && !opts.materialised && d.flashAvailable(m.Config.Decoder.HeadDim())}
	adam := m.Optimizer().Config
	tr.b1, tr.b2, tr.eps, tr.wdc = adam.Beta1, adam.Beta2, adam.Eps, adam.WeightDecay
	if err := tr.layout(); err != nil {
		return nil, err
	}
	defer d.enter()()
	err = tr.allocate()
	if err == nil && tr.imgHi > tr.imgLo {
		if err = newImagePath(tr); err != nil {
			err = fmt.Errorf("cuda: the image path's buffers: %w", err)
		}
	}
	if err == nil {
		if err = tr.push(); err != nil {
			err = fmt.Errorf("cuda: weights to the GPU: %w", err)
		}
	}
	if err == nil {
		err = tr.gap.init(d)
	}
	if err != nil {
		// A failed NewTrainer holds no GPU memory: free what allocate took
		// (Close skips the buffers it never got).
		return nil, errors.Join(err, tr.Close())
	}
	return tr, nil
}

// Device is the GPU the trainer runs on.
func (tr *Trainer) Device() *Device { return tr.d }

// Precision is the matrix-product arithmetic in use.
func (tr *Trainer) Precision() Precision { return tr.prec }

// layout finds every decoder tensor in the host arena and checks that the
// arena holds nothing else.
func (tr *Trainer) layout() error {
	ps := tr.m.Params
	total := 0
	off := func(name string) (int, error) {
		p, ok := ps.Lookup(name)
		if !ok {
			return 0, fmt.Errorf("cuda: parameter %s missing from the model", name)
		}
		total += p.Size
		return p.Offset, nil
	}
	var errs []error
	get := func(name string) int {
		o, err := off(name)
		errs = append(errs, err)
		return o
	}
	tr.embed = get("llm.tok_embed.weight")
	tr.norm = get("llm.norm.weight")
	for l := range tr.c.Layers {
		pre := fmt.Sprintf("llm.layers.%d.", l)
		lp := layerParams{attnNorm: get(pre + "attn_norm.weight"), wq: get(pre + "attn.wq.weight"),
			wk: get(pre + "attn.wk.weight"), wv: get(pre + "attn.wv.weight"), wo: get(pre + "attn.wo.weight"),
			qNorm: -1, kNorm: -1, mlpNorm: get(pre + "mlp_norm.weight"),
			w1: get(pre + "mlp.w1.weight"), w3: get(pre + "mlp.w3.weight"), w2: get(pre + "mlp.w2.weight")}
		if tr.c.QKNorm {
			lp.qNorm, lp.kNorm = get(pre+"attn.q_norm.weight"), get(pre+"attn.k_norm.weight")
		}
		tr.layers = append(tr.layers, lp)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	qd, kvd, D := tr.c.Heads*tr.c.HeadDim(), tr.c.KVHeads*tr.c.HeadDim(), tr.c.Width
	for l, lp := range tr.layers {
		if lp.wk != lp.wq+qd*D || lp.wv != lp.wk+kvd*D {
			return fmt.Errorf("cuda: llm.layers.%d: attn.wq, wk and wv are not adjacent in the parameter arena, as the fused q|k|v gradient products need", l)
		}
	}
	tr.imgLo, tr.imgHi = tr.m.ImageParams()
	total += tr.imgHi - tr.imgLo
	if total != ps.Len() {
		return fmt.Errorf("cuda: the model has %d parameters, the GPU decoder knows %d: a decoder feature (e.g. ffn pruning) this backend does not implement", ps.Len(), total)
	}
	return nil
}

func (tr *Trainer) allocate() error {
	c, d := tr.c, tr.d
	n, B, T, D, F, V := tr.n, tr.B, tr.T, c.Width, c.FFNHidden, c.Vocab
	tr.hd = c.HeadDim()
	tr.qd, tr.kvd, tr.gh = c.Heads*tr.hd, c.KVHeads*tr.hd, c.Heads/c.KVHeads
	qd, kvd, H, KV := tr.qd, tr.kvd, c.Heads, c.KVHeads
	// Checked before any buffer is allocated.
	if T > maxSoftmaxT && !tr.flash {
		return fmt.Errorf("cuda: sequence length %d: the GPU attention softmax handles at most %d (precision bf16 with a head width in %v on sm_80 or later has no such limit)",
			T, maxSoftmaxT, flashHeadDims)
	}
	var errs []error
	take := func(k int) Buf {
		b, err := d.alloc(k)
		errs = append(errs, err)
		return b
	}
	P := tr.m.Params.Len()
	tr.w, tr.g, tr.mom, tr.vel = take(P), take(P), take(P), take(P)
	// AdamW chunks: never across tensors, so each carries one decay flag
	// and one learning-rate scale.
	const chunk = 1 << 15
	var lo, hi []int64
	var flags []int32
	var lrs []float32
	for _, p := range tr.m.Params.All() {
		if p.Frozen {
			continue
		}
		f := int32(0)
		if p.Decay && tr.wdc != 0 {
			f = 1
		}
		for s := p.Offset; s < p.Offset+p.Size; s += chunk {
			lo, hi, flags = append(lo, int64(s)), append(hi, int64(min(s+chunk, p.Offset+p.Size))), append(flags, f)
			lrs = append(lrs, float32(p.LRScale))
		}
	}
	tr.chunks = len(lo)
	tr.chunkLo, tr.chunkHi, tr.chunkFlags, tr.chunkLR = take(2*len(lo)), take(2*len(hi)), take(len(flags)), take(len(lrs))
	half := tr.hd / 2
	tr.cos, tr.sin = take(c.MaxSeq*half), take(c.MaxSeq*half)
	tr.ids, tr.pos, tr.docs, tr.tgt, tr.mask = take(n), take(n), take(n), take(n), take(n)
	for range c.Layers + 1 {
		tr.xs = append(tr.xs, take(n*D))
	}
	take16 := func(k int) Buf { return take((k + 1) / 2) }
	tr.attnH = !tr.flash && tr.prec == BF16 && tr.hd%8 == 0 && T%8 == 0
	for range c.Layers {
		a := layerActs{arstd: take(n), h: take(n * D), mrstd: take(n)}
		if !tr.flash { // the flash forward writes attH only
			a.att = take(n * qd)
		}
		if tr.prec != BF16 {
			a.an, a.mn, a.gg, a.h1, a.h3 = take(n*D), take(n*D), take(n*F), take(n*F), take(n*F)
			a.q, a.k = take(n*qd), take(n*kvd)
		} else {
			a.h1H, a.h3H, a.qkH = take16(n*F), take16(n*F), take16(n*(qd+kvd))
		}
		if !tr.flash && !tr.attnH {
			a.v = take(n * kvd)
		}
		switch {
		case tr.flash:
			a.qRotH, a.kRotH, a.vH, a.lse = take16(n*qd), take16(n*kvd), take16(n*kvd), take(B*H*T)
		case tr.attnH:
			a.qRotH, a.kRotH, a.vH, a.probsH = take16(n*qd), take16(n*kvd), take16(n*kvd), take16(B*H*T*T)
		default:
			a.qRot, a.kRot, a.probs = take(n*qd), take(n*kvd), take(B*H*T*T)
		}
		if c.QKNorm {
			a.qrstd, a.krstd = take(n*H), take(n*KV)
		}
		tr.acts = append(tr.acts, a)
	}
	tr.frstd, tr.ceStats = take(n), take(2*n)
	if tr.prec == BF16 && ceFusable(V, Buf{}, Buf{}, Buf{}, Buf{}) {
		tr.logitsH = take16(n * V)
	} else {
		tr.logits = take(n * V)
	}
	if tr.prec != BF16 {
		tr.fn = take(n * D)
	}
	tr.rowloss, tr.partials = take(n), take(2*maxPartials)
	if tr.prec == BF16 {
		tr.branch = take16(n * D)
	} else {
		tr.branch = take(n * D)
	}
	tr.dx, tr.dh = take(n*D), take(n*D)
	if tr.prec == BF16 { // the products write it in bf16 (normBack)
		tr.dnorm = take16(n * D)
	} else {
		tr.dnorm = take(n * D)
	}
	tr.dqRot, tr.dkRot = take(n*qd), take(n*kvd)
	if !tr.flash { // flash attention writes v's gradient into dqkvH's v columns
		tr.dv = take(n * kvd)
	}
	if tr.prec != BF16 { // bf16: qk-norm's or RoPE's backward writes them into dqkvH only
		tr.dq, tr.dk = take(n*qd), take(n*kvd)
	}
	if !tr.flash && !tr.attnH { // else wo's input gradient goes to dattH only
		tr.datt = take(n * qd)
	}
	switch {
	case tr.flash:
		tr.dattH, tr.dvec = take16(n*qd), take(B*H*T)
	case tr.attnH:
		tr.scratch, tr.scratchH, tr.dattH = take(B*H*T*T), take16(B*H*T*T), take16(n*qd)
	default:
		tr.scratch = take(B * H * T * T)
	}
	if tr.prec != BF16 {
		// In bf16 ce_bwd, w2's input-gradient product and swiglu_bwd
		// write these only in bf16 (doutH, dGH, dH3H): the products are
		// their one reader.
		tr.dlogits, tr.dG, tr.dH3 = take(n*V), take(n*F), take(n*F)
	} else {
		tr.wh, tr.doutH, tr.fnH = take16(P), take16(n*max(V, F, D, qd)), take16(n*D)
		tr.dGH, tr.dH3H = take16(n*F), take16(n*F)
		tr.dxH, tr.dhH, tr.dqkvH = take16(n*D), take16(n*D), take16(n*(qd+2*kvd))
		for l := range tr.acts {
			a := &tr.acts[l]
			a.anH, a.attH, a.mnH, a.ggH = take16(n*D), take16(n*qd), take16(n*D), take16(n*F)
		}
	}
	// Row blocks let the causal products skip most of the masked upper
	// triangle ((nb−1)/2nb of it) at nb times the calls.
	tr.nb = 1
	if T%4 == 0 && T >= 256 {
		tr.nb = 4
	}
	tr.bs = T / tr.nb
	BH, nb, bs := B*H, tr.nb, tr.bs
	// At most 2+3·nb arrays of BH pointers per set, fp32 and bf16 sets per
	// layer and for the backward's shared buffers.
	tr.ptrs = take(2 * BH * (2 + 3*nb) * 2 * (c.Layers + 1))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	errs = append(errs, upload(d, tr.chunkLo, lo), upload(d, tr.chunkHi, hi), upload(d, tr.chunkFlags, flags), upload(d, tr.chunkLR, lrs))
	// RoPE tables exactly as engine.NewRoPE computes them.
	cs, sn := make([]float32, c.MaxSeq*half), make([]float32, c.MaxSeq*half)
	for p := range c.MaxSeq {
		for i := range half {
			theta := math.Pow(c.RopeBase, -2*float64(i)/float64(tr.hd))
			s, co := math.Sincos(float64(p) * theta)
			cs[p*half+i], sn[p*half+i] = float32(co), float32(s)
		}
	}
	errs = append(errs, upload(d, tr.cos, cs), upload(d, tr.sin, sn))
	// Pointer arrays: per layer q, k, v, p, o; then the shared backward
	// buffers dq, dk, dv, dS, dO in the same order. A buffer not allocated
	// (the zero Buf) gets no array (address 0).
	host := make([]uint64, 0, BH*(2+3*nb)*2*(c.Layers+1))
	// kind 0: [B, T, H·hd] (q, o); 1: [B, T, KV·hd] (k, v); 2: [B·H, T, T]
	// (p); es: the element size in bytes (4, or 2 for bf16).
	array := func(buf Buf, kind, r, es int) uintptr {
		if buf.P == 0 {
			return 0
		}
		base := tr.ptrs.P + uintptr(8*len(host))
		for j := range BH {
			i, rem := j/(B*KV), j%(B*KV)
			b, g := rem/KV, rem%KV
			h := g*tr.gh + i
			var off int
			switch kind {
			case 0:
				off = b*T*qd + h*tr.hd + r*bs*qd
			case 1:
				off = b*T*kvd + g*tr.hd
			case 2:
				off = (b*H+h)*T*T + r*bs*T
			}
			host = append(host, uint64(buf.P+uintptr(es*off)))
		}
		return base
	}
	arrays := func(q, k, v, p, o Buf, es int) attnPtrs {
		ap := attnPtrs{k: array(k, 1, 0, es), v: array(v, 1, 0, es)}
		for r := range nb {
			ap.q = append(ap.q, array(q, 0, r, es))
			ap.p = append(ap.p, array(p, 2, r, es))
			ap.o = append(ap.o, array(o, 0, r, es))
		}
		return ap
	}
	for l := range tr.acts {
		a := &tr.acts[l]
		a.ptr = arrays(a.qRot, a.kRot, a.v, a.probs, a.att, 4)
		a.ptrH = arrays(a.qRotH, a.kRotH, a.vH, a.probsH, Buf{}, 2)
	}
	tr.bwdPtrs = arrays(tr.dqRot, tr.dkRot, tr.dv, tr.scratch, tr.datt, 4)
	tr.bwdPtrsH = arrays(Buf{}, Buf{}, Buf{}, tr.scratchH, tr.dattH, 2)
	errs = append(errs, upload(d, tr.ptrs, host))
	if tr.imgHi > tr.imgLo {
		tr.places = take(n)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st, err := d.newStaging(6 * stagingBytes(n))
	if err != nil {
		return err
	}
	tr.staging = st
	tr.hostIDs, tr.hostPos, tr.hostDocs, tr.hostTgt = carve[int32](st, n), carve[int32](st, n), carve[int32](st, n), carve[int32](st, n)
	tr.hostMask, tr.hostPlaces = carve[float32](st, n), carve[int32](st, n)[:0]
	return nil
}

// Steps implements models.Accelerator.
func (tr *Trainer) Steps() int { return tr.t }

// Push implements models.Accelerator: host weights and AdamW state → GPU.
func (tr *Trainer) Push() error {
	defer tr.d.enter()()
	return tr.push()
}

func (tr *Trainer) push() error {
	tr.gap.reset()
	o := tr.m.Optimizer()
	tr.t = o.T()
	err := errors.Join(upload(tr.d, tr.w, tr.m.Params.Data()), upload(tr.d, tr.mom, o.M()), upload(tr.d, tr.vel, o.V()))
	if err == nil && tr.prec == BF16 {
		err = tr.d.castBF16(tr.wh, tr.w, tr.w.N)
	}
	return err
}

// Pull implements models.Accelerator: GPU weights and AdamW state → host.
func (tr *Trainer) Pull() error {
	defer tr.d.enter()()
	tr.gap.reset()
	P := tr.m.Params.Len()
	mom, vel := make([]float32, P), make([]float32, P)
	if err := errors.Join(download(tr.d, tr.m.Params.Data(), tr.w), download(tr.d, mom, tr.mom), download(tr.d, vel, tr.vel)); err != nil {
		return err
	}
	return tr.m.Optimizer().SetState(tr.t, mom, vel)
}

// Close implements models.Accelerator: it frees the trainer's device
// buffers. The Device's cuBLAS handle, pinned argument block and loaded
// kernels (a few MB) stay until the process exits.
func (tr *Trainer) Close() error {
	defer tr.d.enter()()
	var errs []error
	if tr.img != nil && tr.img.aux != nil {
		errs = append(errs, tr.d.sync(), tr.d.closeSide(tr.img.aux))
		tr.img.aux = nil
	}
	for _, b := range tr.all() {
		if b.P != 0 {
			errs = append(errs, tr.d.drv.call("cuMemFree", tr.d.drv.cuMemFree, b.P))
		}
	}
	errs = append(errs, tr.d.freeStaging(tr.staging))
	if tr.img != nil {
		errs = append(errs, tr.d.freeStaging(tr.img.staging))
	}
	return errors.Join(errs...)
}

func (tr *Trainer) all() []Buf {
	bs := []Buf{tr.w, tr.g, tr.mom, tr.vel, tr.chunkLo, tr.chunkHi, tr.chunkFlags, tr.chunkLR, tr.cos, tr.sin,
		tr.ids, tr.pos, tr.docs, tr.tgt, tr.mask, tr.fn, tr.frstd, tr.logits, tr.logitsH, tr.ceStats, tr.rowloss, tr.branch,
		tr.partials, tr.dx, tr.dh, tr.dnorm, tr.dlogits, tr.datt, tr.dq, tr.dqRot, tr.dk, tr.dkRot, tr.dv, tr.scratch, tr.dG, tr.dH3, tr.ptrs, tr.wh, tr.doutH, tr.fnH, tr.dGH, tr.dH3H, tr.scratchH, tr.dattH, tr.dvec,
		tr.dxH, tr.dhH, tr.dqkvH}
	bs = append(bs, tr.places)
	if tr.img != nil {
		bs = append(bs, tr.img.bufs...)
	}
	bs = append(bs, tr.xs...)
	for _, a := range tr.acts {
		bs = append(bs, a.an, a.arstd, a.q, a.k, a.v, a.qrstd, a.krstd, a.qRot, a.kRot,
			a.probs, a.att, a.h, a.mn, a.mrstd, a.h1, a.h3, a.gg, a.anH, a.attH, a.mnH, a.ggH, a.h1H, a.h3H,
			a.qRotH, a.kRotH, a.vH, a.probsH, a.lse, a.qkH)
	}
	return bs
}

// Step implements models.Accelerator: forward, backward, clipping and one
// AdamW update on the GPU, with Model.Step's contract (a non-finite loss or
// gradient stops before the update, naming the step).
func (tr *Trainer) Step(b *models.Batch, lr float64) (models.StepStats, error) {
	defer tr.d.enter()()
	st := models.StepStats{Step: tr.t + 1}
	loss, err := tr.forward(b)
	st.Loss = loss
	if err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	// forward's loss read-back waited for the GPU, so begin's event is done.
	if err := tr.gap.measure(); err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		if err := tr.nonFiniteImages(b); err != nil {
			return st, fmt.Errorf("step %d: %w", st.Step, err)
		}
		return st, fmt.Errorf("step %d: loss %v on the GPU (run the same config with device cpu to find the layer)", st.Step, loss)
	}
	if err := tr.backward(); err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	ss, err := tr.d.reduce(tr.partials, tr.g, tr.g.N, true)
	if err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	st.GradNorm = math.Sqrt(ss)
	if math.IsNaN(st.GradNorm) || math.IsInf(st.GradNorm, 0) {
		// Name the tensor the way the CPU engine does.
		if err := download(tr.d, tr.m.Params.Grad(), tr.g); err != nil {
			return st, err
		}
		if err := tr.m.Params.CheckGrads(); err != nil {
			return st, fmt.Errorf("step %d: %w", st.Step, err)
		}
		return st, fmt.Errorf("step %d: gradient norm %v", st.Step, st.GradNorm)
	}
	scale := float32(1)
	if tr.clip > 0 && st.GradNorm > tr.clip {
		scale = float32(tr.clip / (st.GradNorm + 1e-6))
	}
	tr.t++
	if err := tr.update(scale, lr); err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	if err := tr.gap.end(); err != nil {
		return st, fmt.Errorf("step %d: %w", st.Step, err)
	}
	return st, nil
}

// update launches AdamW step tr.t over every trainable weight, the
// gradients scaled by scale (clipping), and refreshes the bf16 copy.
func (tr *Trainer) update(scale float32, lr float64) error {
	bc1 := 1 - math.Pow(tr.b1, float64(tr.t))
	bc2 := 1 - math.Pow(tr.b2, float64(tr.t))
	return tr.d.launch("adamw", tr.d.k.adamw, grid1(tr.chunks), block1(ewBlock), 0,
		tr.w, tr.g, tr.mom, tr.vel, tr.chunkLo, tr.chunkHi, tr.chunkFlags, tr.chunkLR, scale,
		float32(tr.b1), float32(tr.b2), float32(tr.eps), float32(lr/bc1), float32(1/math.Sqrt(bc2)), float32(1-lr*tr.wdc),
		float32(lr*tr.wdc), tr.wh)
}

// IdleTime is the GPU's total idle time between consecutive Steps so far,
// timed by CUDA events: from the end of one step's last kernel (AdamW) to
// the start of the next step's first copy, the time the device waited for
// the host to hand it the next batch. A Pull or Push in between (a
// checkpoint) starts a new run of steps: that gap is not counted. ok is
// false where the driver has no event timing.
func (tr *Trainer) IdleTime() (idle time.Duration, ok bool) {
	return tr.gap.idle, tr.gap.evStart != 0
}

// ForwardBackward computes the batch's loss and fills the GPU gradients
// (no update), for parity tests and benchmarks; Grads copies them out.
func (tr *Trainer) ForwardBackward(b *models.Batch) (float64, error) {
	defer tr.d.enter()()
	loss, err := tr.forward(b)
	if err != nil {
		return loss, err
	}
	return loss, tr.backward()
}

// Grads copies the GPU gradient arena (the host Params' layout) into dst.
func (tr *Trainer) Grads(dst []float32) error {
	defer tr.d.enter()()
	return download(tr.d, dst, tr.g)
}

// upload checks the batch against what the GPU kernels index with (an out
// of range id would read outside a buffer) and copies it to the device.
func (tr *Trainer) uploadBatch(b *models.Batch, places []int) error {
	if b.B != tr.B || b.T != tr.T {
		return fmt.Errorf("batch %d×%d, the GPU model is built for %d×%d", b.B, b.T, tr.B, tr.T)
	}
	n, V := tr.n, tr.c.Vocab
	if len(b.Tokens) != n || len(b.Targets) != n || len(b.Pos) != n || len(b.DocIDs) != n || len(b.LossMask) != n {
		return fmt.Errorf("batch: tokens %d, targets %d, pos %d, doc ids %d, loss mask %d; want %d each",
			len(b.Tokens), len(b.Targets), len(b.Pos), len(b.DocIDs), len(b.LossMask), n)
	}
	copy(tr.hostIDs, b.Tokens)
	for _, p := range places {
		tr.hostIDs[p] = 0 // any valid row: the image token overwrites it
	}
	tr.count = 0
	for i := range n {
		if t := tr.hostIDs[i]; t < 0 || int(t) >= V {
			return fmt.Errorf("batch: token %d at %d outside [0, %d)", t, i, V)
		}
		if p := b.Pos[i]; p < 0 || int(p) >= tr.c.MaxSeq {
			return fmt.Errorf("batch: position %d at %d outside [0, %d)", p, i, tr.c.MaxSeq)
		}
		if b.LossMask[i] != 0 {
			if t := b.Targets[i]; t < 0 || int(t) >= V {
				return fmt.Errorf("batch: target %d at %d outside [0, %d)", t, i, V)
			}
		}
		tr.count += float64(b.LossMask[i])
	}
	copy(tr.hostPos, b.Pos)
	copy(tr.hostDocs, b.DocIDs)
	copy(tr.hostTgt, b.Targets)
	copy(tr.hostMask, b.LossMask)
	d := tr.d
	tr.staged = true
	return errors.Join(uploadAsync(d, tr.ids, tr.hostIDs), uploadAsync(d, tr.pos, tr.hostPos), uploadAsync(d, tr.docs, tr.hostDocs),
		uploadAsync(d, tr.tgt, tr.hostTgt), uploadAsync(d, tr.mask, tr.hostMask))
}

// linear runs y[n,out] = x[n,in]·Wᵀ. In bf16 precision the product reads
// xh, x's bf16 copy (toBF16), and the weights' bf16 copy.
func (tr *Trainer) linear(y, x, xh Buf, w, n, in, out int) error {
	if tr.prec == BF16 {
		return tr.d.gemmBF16(false, true, n, out, in, 1, xh.P, in, half(tr.wh, w), in, 0, y.P, out)
	}
	return tr.d.gemm(tr.prec, false, true, n, out, in, 1, x.P, in, tr.w.At(w), in, 0, y.P, out)
}

// linearBackH is bf16 precision's linearBack with the input gradient in
// bf16: dxh = doutH·W (beta 0) or dxh += doutH·W (beta 1, rounded again),
// dW += doutHᵀ·xh.
func (tr *Trainer) linearBackH(dxh, doutH, xh Buf, w, n, in, out int, beta float32) error {
	if err := tr.inputGradH(dxh, doutH, w, n, in, out, beta); err != nil {
		return err
	}
	return tr.weightGradH(doutH, xh, w, n, in, out)
}

// inputGradH is linearBackH's first product: dxh = doutH·W (beta 0) or
// dxh += doutH·W (beta 1), in bf16.
func (tr *Trainer) inputGradH(dxh, doutH Buf, w, n, in, out int, beta float32) error {
	return tr.d.gemmBF16Out(false, false, n, in, out, 1, doutH.P, out, half(tr.wh, w), in, beta, dxh.P, in)
}

// weightGradH is linearBackH's second: dW[out,in] += doutHᵀ·xh (fp32).
func (tr *Trainer) weightGradH(doutH, xh Buf, w, n, in, out int) error {
	return tr.d.gemmBF16(true, false, out, in, n, 1, doutH.P, out, xh.P, in, 1, tr.g.At(w), in)
}

// toNorm runs the backward products of a linear layer that reads a norm's
// output (width D): dnorm = dout·W (beta 0) or += (beta 1), and dW +=
// doutᵀ·x. In bf16 precision dnorm is bf16 (doutH and xh the bf16
// operands), as autocast's products give their input gradients: the
// norm's backward reads half the bytes.
func (tr *Trainer) toNorm(dout, doutH, x, xh Buf, w, out int, beta float32) error {
	if tr.prec == BF16 {
		return tr.linearBackH(tr.dnorm, doutH, xh, w, tr.n, tr.c.Width, out, beta)
	}
	return tr.linearBack(tr.dnorm, dout, Buf{}, x, Buf{}, w, tr.n, tr.c.Width, out, beta)
}

// normBack is the backward of the norm with weight at arena offset w, input
// x and saved rstd, from dnorm (rmsBackward's dx, dxh and res).
func (tr *Trainer) normBack(dx, dxh, res Buf, w int, x, rstd Buf) error {
	if tr.prec == BF16 {
		return tr.d.rmsBackwardH(dx, dxh, res, tr.g.Off(w), tr.dnorm, x, tr.w.Off(w), rstd, tr.n, tr.c.Width)
	}
	return tr.d.rmsBackward(dx, dxh, res, tr.g.Off(w), tr.dnorm, x, tr.w.Off(w), rstd, tr.n, tr.c.Width)
}

// qkvBack is the input- and weight-gradient products of wq, wk and wv:
// dnorm = dq·Wq + dk·Wk + dv·Wv (sets) and each dW += doutᵀ·an. In bf16
// precision each is one product of depth qd+2·kvd over dqkvH (v's
// gradient cast into its columns here) and the three adjacent weights,
// instead of three of which two are thin (kvd deep) and, adding into
// dnorm, read and write it whole: those ran at about 130 of the H200's
// TFLOP/s (BenchmarkDecoderProducts).
func (tr *Trainer) qkvBack(a *layerActs, lp layerParams) error {
	d, n, D := tr.d, tr.n, tr.c.Width
	if tr.prec != BF16 {
		return errors.Join(tr.linearBack(tr.dnorm, tr.dq, Buf{}, a.an, Buf{}, lp.wq, n, D, tr.qd, 0),
			tr.linearBack(tr.dnorm, tr.dk, Buf{}, a.an, Buf{}, lp.wk, n, D, tr.kvd, 1),
			tr.linearBack(tr.dnorm, tr.dv, Buf{}, a.an, Buf{}, lp.wv, n, D, tr.kvd, 1))
	}
	S := tr.qd + 2*tr.kvd
	if !tr.flash { // flash attention's backward has written v's gradient there
		if err := d.castBF16Rows(bf16Cols(tr.dqkvH, tr.qd+tr.kvd), S, tr.dv, tr.kvd, n); err != nil {
			return err
		}
	}
	return tr.linearBackH(tr.dnorm, tr.dqkvH, a.anH, lp.wq, n, D, S, 0)
}

// bf16Cols is the bf16 buffer b from element i on (a column block of a
// row-major matrix, addressed with its full row stride).
func bf16Cols(b Buf, i int) Buf { return Buf{P: half(b, i), N: b.N - (i+1)/2} }

// linearBack adds dW[out,in] += doutᵀ·x and sets (beta 0) or adds (beta 1)
// dx[n,in] = dout·W. In bf16 precision both products read doutH, dout's
// bf16 copy, which the kernel that computed dout writes beside it (every
// output gradient of the decoder has one), and x's (xh) and the weights'
// bf16 copies.
func (tr *Trainer) linearBack(dx, dout, doutH, x, xh Buf, w, n, in, out int, beta float32) error {
	d := tr.d
	if tr.prec == BF16 {
		if doutH.P == 0 {
			return fmt.Errorf("cuda: linear backward of the weight at %d: bf16 precision needs the output gradient's bf16 copy", w)
		}
		if err := d.gemmBF16(false, false, n, in, out, 1, doutH.P, out, half(tr.wh, w), in, beta, dx.P, in); err != nil {
			return err
		}
		return tr.weightGradH(doutH, xh, w, n, in, out)
	}
	if err := d.gemm(tr.prec, false, false, n, in, out, 1, dout.P, out, tr.w.At(w), in, beta, dx.P, in); err != nil {
		return err
	}
	return d.gemm(tr.prec, true, false, out, in, n, 1, dout.P, out, x.P, in, 1, tr.g.At(w), in)
}

// qkvForward runs the q, k and v projections: in bf16 precision q|k as
// one product into qkH (bf16) and v into vH (bf16) where the attention
// reads bf16 operands, else three fp32-output products.
func (tr *Trainer) qkvForward(a *layerActs, lp layerParams) error {
	n, D := tr.n, tr.c.Width
	if tr.prec != BF16 {
		return errors.Join(tr.linear(a.q, a.an, Buf{}, lp.wq, n, D, tr.qd), tr.linear(a.k, a.an, Buf{}, lp.wk, n, D, tr.kvd),
			tr.linear(a.v, a.an, Buf{}, lp.wv, n, D, tr.kvd))
	}
	err := tr.linearH(a.qkH, a.anH, lp.wq, n, D, tr.qd+tr.kvd)
	if a.vH.P != 0 {
		return errors.Join(err, tr.linearH(a.vH, a.anH, lp.wv, n, D, tr.kvd))
	}
	return errors.Join(err, tr.linear(a.v, Buf{}, a.anH, lp.wv, n, D, tr.kvd))
}

// qkIn is where qkvForward left q and k.
func (tr *Trainer) qkIn(a *layerActs) (q, k headsIn) {
	if tr.prec == BF16 {
		s := tr.qd + tr.kvd
		return headsIn{xh: a.qkH, stride: s}, headsIn{xh: bf16Cols(a.qkH, tr.qd), stride: s}
	}
	return headsIn{x: a.q, stride: tr.qd}, headsIn{x: a.k, stride: tr.kvd}
}

// mlpIn runs the MLP's w1 and w3 products and SwiGLU: in bf16 precision
// the products write h1 and h3 in bf16 (PyTorch's autocast keeps them so
// too), which halves what SwiGLU and its backward read.
func (tr *Trainer) mlpIn(a *layerActs, lp layerParams) error {
	d, n, D, F := tr.d, tr.n, tr.c.Width, tr.c.FFNHidden
	if tr.prec == BF16 {
		return errors.Join(tr.linearH(a.h1H, a.mnH, lp.w1, n, D, F), tr.linearH(a.h3H, a.mnH, lp.w3, n, D, F),
			d.swigluForwardH(a.ggH, a.h1H, a.h3H, n*F))
	}
	return errors.Join(tr.linear(a.h1, a.mn, Buf{}, lp.w1, n, D, F), tr.linear(a.h3, a.mn, Buf{}, lp.w3, n, D, F),
		d.swigluForward(a.gg, a.h1, a.h3, n*F))
}

// branchOut runs a block's output product (wo or w2, input width in)
// into tr.branch: in bf16 precision the product writes it in bf16 (as
// autocast's do; the residual add that reads it widens it again), halving
// the bytes on both sides.
func (tr *Trainer) branchOut(x, xh Buf, w, in int) error {
	if tr.prec == BF16 {
		return tr.linearH(tr.branch, xh, w, tr.n, in, tr.c.Width)
	}
	return tr.linear(tr.branch, x, xh, w, tr.n, in, tr.c.Width)
}

// addNorm sets sum = a + tr.branch and normalises it by the norm weight at
// arena offset w (addRMSForward, tr.branch as branchOut wrote it).
func (tr *Trainer) addNorm(sum, out, oh, rstd, a Buf, w int) error {
	if tr.prec == BF16 {
		return tr.d.addRMSForwardH(sum, out, oh, rstd, a, tr.branch, tr.w.Off(w), tr.n, tr.c.Width, normEps)
	}
	return tr.d.addRMSForward(sum, out, oh, rstd, a, tr.branch, tr.w.Off(w), tr.n, tr.c.Width, normEps)
}

// linearH is linear with its output y in bf16 (bf16 precision only).
func (tr *Trainer) linearH(yh, xh Buf, w, n, in, out int) error {
	return tr.d.gemmBF16Out(false, true, n, out, in, 1, xh.P, in, half(tr.wh, w), in, 0, yh.P, out)
}

// toBF16 sets xh to x [k] rounded to bf16 where the precision is bf16: a
// linear layer's input, cast once for its forward and weight-gradient
// products, where the kernel that made it (a batched product) cannot
// write the copy itself as the norms and SwiGLU do.
func (tr *Trainer) toBF16(xh, x Buf, k int) error {
	if tr.prec != BF16 {
		return nil
	}
	return tr.d.castBF16(xh, x, k)
}

// half is the address of element i of a bf16 buffer.
func half(b Buf, i int) uintptr { return b.P + uintptr(2*i) }

const normEps = 1e-5 // models' normEps

func (tr *Trainer) forward(b *models.Batch) (float64, error) {
	places, err := tr.m.ImagePlaces(b) // checks b as the CPU engine does
	if err != nil {
		return 0, err
	}
	if tr.staged { // the staging area is about to be rewritten
		if err := tr.d.sync(); err != nil {
			return 0, err
		}
		tr.staged = false
	}
	tr.rows, tr.images = len(places), 0
	if tr.rows > 0 {
		tr.images = b.NumImages
		tr.img.patchifyHost(b.Images, tr.images)
	}
	// The step's first GPU work follows: the gap since the last step's end
	// includes the host's patchify, which the GPU waits for.
	if err := tr.gap.begin(); err != nil {
		return 0, err
	}
	if err := tr.uploadBatch(b, places); err != nil {
		return 0, err
	}
	c, d := tr.c, tr.d
	n, D, F, H, KV, hd := tr.n, c.Width, c.FFNHidden, c.Heads, c.KVHeads, tr.hd
	var errs []error
	e := func(err error) { errs = append(errs, err) }
	e(d.embedForward(tr.xs[0], tr.w.Off(tr.embed), tr.ids, n, D))
	if tr.rows > 0 {
		tr.hostPlaces = tr.hostPlaces[:0]
		for _, p := range places {
			tr.hostPlaces = append(tr.hostPlaces, int32(p))
		}
		e(uploadAsync(d, tr.places, tr.hostPlaces))
		e(tr.img.uploadPatches(tr.images))
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
		if err := tr.img.forward(tr.images); err != nil {
			return 0, err
		}
		e(d.rowsScatter(tr.xs[0], tr.img.tokens, tr.places, tr.rows, D))
	}
	for l, lp := range tr.layers {
		x, a := tr.xs[l], &tr.acts[l]
		if l == 0 { // later layers' attention norms run with the residual add before them
			e(d.rmsForward(a.an, a.anH, a.arstd, x, tr.w.Off(lp.attnNorm), n, D, normEps))
		}
		e(tr.qkvForward(a, lp))
		qIn, kIn := tr.qkIn(a)
		if c.QKNorm {
			e(d.qkNormRope(a.qRot, a.qRotH, a.qrstd, qIn, tr.w.Off(lp.qNorm), tr.pos, tr.cos, tr.sin, n, H, hd, normEps))
			e(d.qkNormRope(a.kRot, a.kRotH, a.krstd, kIn, tr.w.Off(lp.kNorm), tr.pos, tr.cos, tr.sin, n, KV, hd, normEps))
		} else {
			e(d.ropeApply(a.qRot, a.qRotH, qIn, tr.pos, tr.cos, tr.sin, n, H, hd, tr.qd, 1))
			e(d.ropeApply(a.kRot, a.kRotH, kIn, tr.pos, tr.cos, tr.sin, n, KV, hd, tr.kvd, 1))
		}
		e(tr.attention(a))
		if !tr.flash { // the flash kernel writes attH itself
			e(tr.toBF16(a.attH, a.att, n*tr.qd))
		}
		e(tr.branchOut(a.att, a.attH, lp.wo, tr.qd))
		e(tr.addNorm(a.h, a.mn, a.mnH, a.mrstd, x, lp.mlpNorm))
		e(tr.mlpIn(a, lp))
		e(tr.branchOut(a.gg, a.ggH, lp.w2, F))
		// xs[l+1] = h + branch, normalised by the next layer's attention
		// norm or the final norm
		if l+1 < c.Layers {
			na := &tr.acts[l+1]
			e(tr.addNorm(tr.xs[l+1], na.an, na.anH, na.arstd, a.h, tr.layers[l+1].attnNorm))
		} else {
			e(tr.addNorm(tr.xs[l+1], tr.fn, tr.fnH, tr.frstd, a.h, tr.norm))
		}
		if err := errors.Join(errs...); err != nil {
			return 0, fmt.Errorf("llm.layers.%d forward: %w", l, err)
		}
	}
	if c.Layers == 0 {
		e(d.rmsForward(tr.fn, tr.fnH, tr.frstd, tr.xs[0], tr.w.Off(tr.norm), n, D, normEps))
	}
	e(tr.head(tr.lossWeight()))
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("head forward: %w", err)
	}
	total, err := d.reduce(tr.partials, tr.rowloss, n, false)
	if err != nil {
		return 0, err
	}
	tr.staged = false // the read-back waited for the stream, copies and all
	if tr.count == 0 {
		return 0, nil
	}
	return total / tr.count, nil
}

// attention: probs = softmax(mask(q·kᵀ/√hd)), att = probs·v, per (b, h),
// row block r computing only its first (r+1)·bs keys. With attnH the
// products read bf16 operands: q and k as RoPE wrote them, v cast here,
// the scores go to scratch and the softmax writes the probabilities in
// bf16 only.
func (tr *Trainer) attention(a *layerActs) error {
	d, c := tr.d, tr.c
	if tr.flash { // qkvForward wrote vH
		return d.flashForward(Buf{}, a.attH, a.lse, a.qRotH, a.kRotH, a.vH, tr.docs, tr.flashShape())
	}
	T, hd, BH, bs := tr.T, tr.hd, tr.B*c.Heads, tr.bs
	scale := float32(1 / math.Sqrt(float64(hd)))
	in, scores, probs := a.ptr, a.ptr.p, a.probs
	if tr.attnH { // qkvForward wrote vH
		in, scores, probs = a.ptrH, tr.bwdPtrs.p, tr.scratch
	}
	for r := range tr.nb {
		w := (r + 1) * bs
		if err := tr.attnGemm(false, true, bs, w, hd, scale, in.q[r], tr.qd, in.k, tr.kvd, 0, scores[r], T, BH); err != nil {
			return err
		}
	}
	if err := d.attnSoftmax(probs, a.probsH, tr.docs, tr.B, c.Heads, T, bs, true); err != nil {
		return err
	}
	for r := range tr.nb {
		w := (r + 1) * bs
		if err := tr.attnGemm(false, false, bs, hd, w, 1, in.p[r], T, in.v, tr.kvd, 0, a.ptr.o[r], tr.qd, BH); err != nil {
			return err
		}
	}
	return nil
}

// attentionBack adds into dqRot, dkRot, dv (zeroed by the caller) from
// datt; the flash kernels set them instead, from dattH (which wo's
// input-gradient product writes in bf16) and attH. With attnH the products
// read bf16 operands: the forward's, dattH, and dS as the softmax
// backward writes it (bf16 only).
func (tr *Trainer) attentionBack(a *layerActs) error {
	d, c := tr.d, tr.c
	if tr.flash {
		s := tr.flashShape()
		s.ldv = tr.qd + 2*tr.kvd // dv straight into the v columns of dqkvH, which qkvBack's product reads
		return d.flashBackward(tr.dqRot, tr.dkRot, bf16Cols(tr.dqkvH, tr.qd+tr.kvd), tr.dvec, a.qRotH, a.kRotH, a.vH, a.attH, tr.dattH,
			a.lse, tr.docs, s)
	}
	T, hd, BH, BKV, bs := tr.T, tr.hd, tr.B*c.Heads, tr.B*c.KVHeads, tr.bs
	scale := float32(1 / math.Sqrt(float64(hd)))
	g := tr.bwdPtrs // the outputs: dv, dP (scratch), dq, dk
	in, dO, dS := a.ptr, g.o, g.p
	if tr.attnH { // woBack wrote dO in bf16 only
		in, dO, dS = a.ptrH, tr.bwdPtrsH.o, tr.bwdPtrsH.p
	}
	for r := range tr.nb {
		w := (r + 1) * bs
		for i := range tr.gh {
			o := uintptr(8 * i * BKV)
			// dv_g += p_hᵀ·dO_h
			if err := tr.attnGemm(true, false, w, hd, bs, 1, in.p[r]+o, T, dO[r]+o, tr.qd, 1, g.v+o, tr.kvd, BKV); err != nil {
				return err
			}
		}
		// dP = dO·vᵀ (the softmax backward turns it into dS)
		if err := tr.attnGemm(false, true, bs, w, hd, 1, dO[r], tr.qd, in.v, tr.kvd, 0, g.p[r], T, BH); err != nil {
			return err
		}
	}
	if err := d.attnSoftmaxBackward(tr.scratch, a.probs, a.probsH, tr.scratchH, BH, T, bs, true); err != nil {
		return err
	}
	for r := range tr.nb {
		w := (r + 1) * bs
		if err := tr.attnGemm(false, false, bs, hd, w, scale, dS[r], T, in.k, tr.kvd, 1, g.q[r], tr.qd, BH); err != nil {
			return err
		}
		for i := range tr.gh {
			o := uintptr(8 * i * BKV)
			// dk_g += scale·dSᵀ·q_h
			if err := tr.attnGemm(true, false, w, hd, bs, scale, dS[r]+o, T, in.q[r]+o, tr.qd, 1, g.k+o, tr.kvd, BKV); err != nil {
				return err
			}
		}
	}
	return nil
}

// woBack is wo's input- and weight-gradient products from dh (dhH its
// bf16 copy, or the zero Buf): the input gradient goes to datt, or where
// the attention's backward reads bf16 operands (flash, attnH) to dattH
// only, its one reader there.
func (tr *Trainer) woBack(a *layerActs, lp layerParams, dhH Buf) error {
	if tr.flash || tr.attnH {
		return tr.linearBackH(tr.dattH, dhH, a.attH, lp.wo, tr.n, tr.qd, tr.c.Width, 0)
	}
	return tr.linearBack(tr.datt, tr.dh, dhH, a.att, a.attH, lp.wo, tr.n, tr.qd, tr.c.Width, 0)
}

func (tr *Trainer) flashShape() flashShape {
	return flashShape{B: tr.B, T: tr.T, H: tr.c.Heads, KV: tr.c.KVHeads, hd: tr.hd}
}

// attnGemm is the attention's batched product: bf16 operands under
// attnH (a and b then point to bf16 arrays), else fp32 ones under the
// trainer's precision. Outputs are fp32 either way.
func (tr *Trainer) attnGemm(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc, count int) error {
	if tr.attnH {
		return tr.d.gemmBatchedBF16(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count)
	}
	return tr.d.gemmBatched(tr.prec, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count)
}

func (tr *Trainer) backward() error {
	c, d := tr.c, tr.d
	n, D, F, V, H, KV, hd := tr.n, c.Width, c.FFNHidden, c.Vocab, c.Heads, c.KVHeads, tr.hd
	var errs []error
	e := func(err error) { errs = append(errs, err) }
	e(d.zero(tr.g))
	dl, dlH := tr.logitsGrad()
	if !tr.fusedCE() { // else the forward's ce_fused has set it
		e(d.ceBackward(dl, dlH, tr.logits, tr.ceStats, tr.tgt, tr.mask, n, V, tr.lossWeight()))
	}
	e(tr.toNorm(dl, dlH, tr.fn, tr.fnH, tr.embed, V, 0))
	e(d.zero(tr.dx))
	// dxH, dhH, dqH, dkH: bf16 copies of the linear backwards' output
	// gradients, written by the kernels that make them (zero Bufs outside
	// bf16 precision); dqH and dkH are columns of dqkvH, S elements a row.
	S := tr.qd + 2*tr.kvd
	dxH, dhH, dqH, dkH := tr.dxH, tr.dhH, Buf{}, Buf{}
	if tr.prec == BF16 {
		dqH, dkH = tr.dqkvH, bf16Cols(tr.dqkvH, tr.qd)
	}
	e(tr.normBack(tr.dx, dxH, Buf{}, tr.norm, tr.xs[c.Layers], tr.frstd))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("head backward: %w", err)
	}
	for l := c.Layers - 1; l >= 0; l-- {
		lp, a, x := tr.layers[l], &tr.acts[l], tr.xs[l]
		// dx holds ∂L/∂xs[l+1]; the residual passes it to h unchanged
		// (the mlp norm's backward adds its part to a copy).
		if tr.prec == BF16 {
			// ∂L/∂g in bf16 (as autocast's products give it), into dGH,
			// which SwiGLU's backward then turns into ∂L/∂h1 in place.
			e(tr.linearBackH(tr.dGH, dxH, a.ggH, lp.w2, n, F, D, 0))
			e(d.swigluBackwardH(tr.dGH, tr.dH3H, tr.dGH, a.h1H, a.h3H, n*F))
		} else {
			e(tr.linearBack(tr.dG, tr.dx, Buf{}, a.gg, Buf{}, lp.w2, n, F, D, 0))
			e(d.swigluBackward(tr.dG, tr.dH3, a.h1, a.h3, n*F))
		}
		e(tr.toNorm(tr.dG, tr.dGH, a.mn, a.mnH, lp.w1, F, 0))
		e(tr.toNorm(tr.dH3, tr.dH3H, a.mn, a.mnH, lp.w3, F, 1))
		e(tr.normBack(tr.dh, dhH, tr.dx, lp.mlpNorm, a.h, a.mrstd))
		// dh holds ∂L/∂h; the residual passes it to x unchanged (as above).
		e(tr.woBack(a, lp, dhH))
		if !tr.flash {
			e(d.zero(tr.dqRot))
			e(d.zero(tr.dkRot))
			e(d.zero(tr.dv))
		}
		e(tr.attentionBack(a))
		// with dqH, dkH (bf16) the results go there only: the products read nothing else
		if c.QKNorm {
			qIn, kIn := tr.qkIn(a)
			e(d.qkNormRopeBackward(tr.dq, dqH, tr.g.Off(lp.qNorm), tr.dqRot, qIn, tr.w.Off(lp.qNorm), a.qrstd, tr.pos, tr.cos, tr.sin, n, H, hd, S))
			e(d.qkNormRopeBackward(tr.dk, dkH, tr.g.Off(lp.kNorm), tr.dkRot, kIn, tr.w.Off(lp.kNorm), a.krstd, tr.pos, tr.cos, tr.sin, n, KV, hd, S))
		} else {
			e(d.ropeApply(tr.dq, dqH, headsIn{x: tr.dqRot, stride: tr.qd}, tr.pos, tr.cos, tr.sin, n, H, hd, S, -1))
			e(d.ropeApply(tr.dk, dkH, headsIn{x: tr.dkRot, stride: tr.kvd}, tr.pos, tr.cos, tr.sin, n, KV, hd, S, -1))
		}
		e(tr.qkvBack(a, lp))
		e(tr.normBack(tr.dx, dxH, tr.dh, lp.attnNorm, x, a.arstd))
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("llm.layers.%d backward: %w", l, err)
		}
	}
	if err := tr.imageBackward(); err != nil {
		return fmt.Errorf("image path backward: %w", err)
	}
	if err := d.embedBackward(tr.g.Off(tr.embed), tr.dx, tr.ids, n, D); err != nil {
		return fmt.Errorf("llm.tok_embed backward: %w", err)
	}
	return nil
}

// logitsGrad is where the logits' gradient goes: dlogits, or in bf16
// precision (the zero dlogits then) its bf16 form in doutH, the head
// product's operand, which nothing else reads.
func (tr *Trainer) logitsGrad() (dl, dlH Buf) {
	if tr.prec == BF16 {
		return tr.dlogits, tr.doutH
	}
	return tr.dlogits, Buf{}
}

// head sets the logits from the final norm's output and the rows' losses
// and, where ce_fused takes the vocabulary, the logits' gradient with loss
// weight w.
func (tr *Trainer) head(w float32) error {
	n, D, V := tr.n, tr.c.Width, tr.c.Vocab
	var err error
	if tr.logitsH.P != 0 {
		err = tr.linearH(tr.logitsH, tr.fnH, tr.embed, n, D, V)
	} else {
		err = tr.linear(tr.logits, tr.fn, tr.fnH, tr.embed, n, D, V)
	}
	if tr.fusedCE() {
		dl, dlH := tr.logitsGrad()
		return errors.Join(err, tr.d.ceFused(tr.ceStats, tr.rowloss, dl, dlH, tr.logits, tr.logitsH, tr.tgt, tr.mask, n, V, w))
	}
	return errors.Join(err, tr.d.ceForward(tr.ceStats, tr.rowloss, tr.logits, tr.tgt, tr.mask, n, V))
}

// fusedCE says whether the forward's ce_fused makes the logits' gradient.
func (tr *Trainer) fusedCE() bool {
	dl, dlH := tr.logitsGrad()
	return ceFusable(tr.c.Vocab, tr.logits, tr.logitsH, dl, dlH)
}

// lossWeight is the mean's weight 1/Σmask of the batch (0 for none).
func (tr *Trainer) lossWeight() float32 {
	if tr.count > 0 {
		return float32(1 / tr.count)
	}
	return 0
}

// nonFiniteImages names the first image-side layer that goes non-finite
// on b when the host engine runs the image path with the device's weights
// (nil when none does, or b has no images), since the device loss alone
// cannot say.
func (tr *Trainer) nonFiniteImages(b *models.Batch) error {
	if tr.rows == 0 {
		return nil
	}
	if err := download(tr.d, tr.m.Params.Data()[tr.imgLo:tr.imgHi], tr.w.Off(tr.imgLo)); err != nil {
		return err
	}
	_, _, err := tr.m.ImageForward(b)
	return err
}

// imageBackward moves the placeholders' rows of dx (∂L/∂ embedding
// output) into the image tokens' gradient and runs the image path's
// backward, which adds its gradients into the arena (zeroed, with the
// rest, by backward).
func (tr *Trainer) imageBackward() error {
	if tr.rows == 0 {
		return nil
	}
	if err := tr.d.rowsGatherClear(tr.img.dtokens, tr.dx, tr.places, tr.rows, tr.c.Width); err != nil {
		return err
	}
	return tr.img.backward(tr.images)
}
