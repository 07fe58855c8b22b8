package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/vision"
)

// imagePath is a multimodal model's image side on the GPU: the ViT of
// models/vision and a connector of models/connector, with the host
// engine's layer definitions, reading weights from and adding gradients to
// the trainer's arena. Only patchify runs on the host (the images arrive
// there); the patches go to the device and everything after runs there.
type imagePath struct {
	tr   *Trainer
	d    *Device
	maxK int // images per batch the buffers hold

	// ViT sizes: resolution, patch, grid side, patches per image, width,
	// heads, head dim, MLP hidden, depth.
	R, P, g, np, dv, H, hd, F, depth int
	frozen                           bool
	N, D                             int // tokens per image, decoder width

	patchW, patchB, pos, normW, normB int // arena offsets
	blocks                            []vitBlock

	// bf16: bf16 precision with shapes the bf16 kernels take; the ViT's
	// products then read bf16 operands and its activations that only
	// products read are bf16 (vitForwardH, vitBackwardH); ldp is the score
	// rows' stride there (np rounded up to 8, so every row of every
	// (image, head) block starts 16-byte aligned in bf16).
	bf16 bool
	ldp  int
	// flash: bf16 on a GPU and head width the flash kernels take; the
	// ViT's attention is then their bidirectional form (no score square;
	// the backward writes dk and dv into dqkvH, adds dq into dqF, fp32
	// [maxK·np, dv], and keeps its row terms in dvec).
	flash     bool
	dqF, dvec Buf
	// aux: the side stream the bf16 ViT backward's weight gradients run
	// on (stream.go); nil where the driver has none, and everything runs
	// on the main stream.
	aux *sideStream

	staging         *staging
	hostPatches     []float32 // [maxK·np, 3P²], carved from staging
	bufs            []Buf     // every allocation, for Close
	allocErr        error     // failed allocations
	patches         Buf
	xs              []Buf // residual stream [maxK·np, dv], depth+1
	acts            []vitActs
	meanF, rstdF    Buf
	grid, dgrid     Buf // ViT output and its gradient [maxK·np, dv]
	tokens, dtokens Buf // connector output and its gradient [maxK·N, D]
	// ViT backward scratch
	dx, da, do, dqkv, dgelu, dp Buf
	vitBwd                      attnArrays
	ptrs                        Buf // the attention products' pointer arrays
	hostPtrs                    []uint64
	// bf16 only: the patches' bf16 copy; the scores (forward) and dP
	// (backward), fp32 [maxK·H, np, ldp]; the backward's bf16 gradients
	// (dxH the residual stream's copy, daH a norm's output gradient, doH
	// the attention output's, dqkvH q|k|v's, dhidH the MLP hidden layer's,
	// dSH the scores') and the pointer arrays of the attention backward.
	patchesH, scores                 Buf
	dxH, daH, doH, dqkvH, dhidH, dSH Buf
	bwdH                             attnArraysH

	conn deviceConnector
}

// vitBlock is one ViT block's arena offsets (weight, bias pairs).
type vitBlock struct{ ln1W, ln1B, qkvW, qkvB, projW, projB, ln2W, ln2B, fc1W, fc1B, fc2W, fc2B int }

// vitActs is one ViT block's saved activations; its input is xs[l]. In
// bf16 (imagePath.bf16) the norms' outputs, q|k|v, the probabilities, the
// attention output and the MLP's hidden layer before and after GELU are
// the bf16 buffers (…H) and their fp32 forms are not allocated.
type vitActs struct {
	a1, mean1, rstd1, qkv, o, probs, h, a2, mean2, rstd2, hid, act Buf
	ptr                                                            attnArrays
	a1H, qkvH, probsH, oH, a2H, hidH, actH                         Buf
	ptrH                                                           attnArraysH
	lse                                                            Buf // flash: each row's log-sum-exp [maxK·H·np]
}

// attnArraysH are attnArrays for the bf16 attention: q, k, v, p and o
// point at bf16 blocks, s at the fp32 scores (or dP) the first product
// writes and the softmax reads; p and s rows are ldp elements apart.
type attnArraysH struct{ q, k, v, s, p, o uintptr }

// attnArrays are the device addresses of [maxK·H] arrays of operand
// pointers for the batched attention products, entry b·H+h pointing at
// head h of image b (p: its [Tq, Tk] score block).
type attnArrays struct{ q, k, v, p, o uintptr }

// deviceConnector is a connector's forward and backward on the GPU: from
// ip.grid to ip.tokens, and from ip.dtokens to the connector's gradients
// and, with dgrid, adding into ip.dgrid.
type deviceConnector interface {
	forward(K int) error
	backward(K int, dgrid bool) error
}

// offsets finds tensors in the host arena by name, collecting every miss.
type offsets struct {
	ps   *engine.Params[float32]
	errs []error
}

func (o *offsets) get(name string) int {
	p, ok := o.ps.Lookup(name)
	if !ok {
		o.errs = append(o.errs, fmt.Errorf("cuda: parameter %s missing from the model", name))
		return 0
	}
	return p.Offset
}

// linear returns name.weight's and name.bias's offsets.
func (o *offsets) linear(name string) (w, b int) {
	return o.get(name + ".weight"), o.get(name + ".bias")
}

// newImagePath lays out m's image path on the GPU (tr.img is set first, so
// a failure's Close frees what was taken).
func newImagePath(tr *Trainer) error {
	m := tr.m
	vc, cc := m.Config.Vision, m.Config.Connector
	ip := &imagePath{tr: tr, d: tr.d, maxK: m.MaxImages(),
		R: vc.Resolution, P: vc.Patch, g: vc.Resolution / vc.Patch, dv: vc.Width, H: vc.Heads,
		hd: vc.Width / vc.Heads, F: vision.DefaultMLPRatio * vc.Width, depth: vc.Depth, frozen: vc.Freeze,
		N: cc.Tokens, D: tr.c.Width}
	ip.np = ip.g * ip.g
	tr.img = ip
	o := &offsets{ps: m.Params}
	ip.patchW, ip.patchB = o.linear("vit.patch_embed")
	ip.pos = o.get("vit.pos_embed")
	ip.normW, ip.normB = o.linear("vit.norm")
	for l := range ip.depth {
		pre := fmt.Sprintf("vit.blocks.%d.", l)
		var b vitBlock
		b.ln1W, b.ln1B = o.linear(pre + "ln1")
		b.qkvW, b.qkvB = o.linear(pre + "attn.qkv")
		b.projW, b.projB = o.linear(pre + "attn.proj")
		b.ln2W, b.ln2B = o.linear(pre + "ln2")
		b.fc1W, b.fc1B = o.linear(pre + "mlp.fc1")
		b.fc2W, b.fc2B = o.linear(pre + "mlp.fc2")
		ip.blocks = append(ip.blocks, b)
	}
	if err := errors.Join(o.errs...); err != nil {
		return err
	}
	K, n, dv, F := ip.maxK, ip.maxK*ip.np, ip.dv, ip.F
	pp := vision.Channels * ip.P * ip.P
	ip.bf16 = tr.prec == BF16 && ip.np <= 1024 && ip.hd%8 == 0 && dv <= 32*lnSlots
	ip.flash = ip.bf16 && tr.d.flashAvailable(ip.hd)
	ip.ldp = (ip.np + 7) &^ 7
	st, err := tr.d.newStaging(stagingBytes(n * pp))
	if err != nil {
		return err
	}
	ip.staging, ip.hostPatches = st, carve[float32](st, n*pp)
	ip.patches = ip.take(n * pp)
	// Pointer arrays: 6 per ViT block and 6 for its backward at most, 10
	// for attnpool.
	ip.ptrs = ip.take(2 * K * ip.H * (6*ip.depth + 16))
	for range ip.depth + 1 {
		ip.xs = append(ip.xs, ip.take(n*dv))
	}
	if ip.bf16 {
		ip.patchesH = ip.take16(n * pp)
		if !ip.flash { // the batched attention's scores, shared by the blocks (arraysH points into them)
			ip.scores = ip.take(K * ip.H * ip.np * ip.ldp)
		}
	}
	for range ip.depth {
		if ip.bf16 {
			ip.acts = append(ip.acts, ip.actsH())
			continue
		}
		a := vitActs{a1: ip.take(n * dv), mean1: ip.take(n), rstd1: ip.take(n), qkv: ip.take(3 * n * dv),
			o: ip.take(n * dv), probs: ip.take(K * ip.H * ip.np * ip.np), h: ip.take(n * dv),
			a2: ip.take(n * dv), mean2: ip.take(n), rstd2: ip.take(n), hid: ip.take(n * F), act: ip.take(n * F)}
		a.ptr = ip.arrays(a.qkv, 3*dv, a.qkv.Off(dv), a.qkv.Off(2*dv), 3*dv, a.probs, a.o, dv, ip.np, ip.np, false)
		ip.acts = append(ip.acts, a)
	}
	ip.meanF, ip.rstdF, ip.grid = ip.take(n), ip.take(n), ip.take(n*dv)
	ip.tokens, ip.dtokens = ip.take(K*ip.N*ip.D), ip.take(K*ip.N*ip.D)
	switch {
	case ip.frozen:
	case ip.bf16:
		ip.allocateBackwardH()
		// Four side passes a block and one after, two events each.
		if aux, err := tr.d.initSide(8*ip.depth + 4); err == nil {
			ip.aux = aux
		}
	default:
		ip.dgrid, ip.dx, ip.da, ip.do = ip.take(n*dv), ip.take(n*dv), ip.take(n*dv), ip.take(n*dv)
		ip.dqkv, ip.dgelu, ip.dp = ip.take(3*n*dv), ip.take(n*F), ip.take(K*ip.H*ip.np*ip.np)
		ip.vitBwd = ip.arrays(ip.dqkv, 3*dv, ip.dqkv.Off(dv), ip.dqkv.Off(2*dv), 3*dv, ip.dp, ip.do, dv, ip.np, ip.np, false)
	}
	switch cc.Type {
	case models.ConnAvgPool:
		ip.conn = newAvgPool(ip, o)
	case models.ConnMLP:
		ip.conn = newMLPConnector(ip, o)
	case models.ConnAttnPool:
		ip.conn = newAttnPool(ip, o)
	case models.ConnCAbstractor:
		ip.conn = newCAbstractor(ip, o, cc.Depth)
	default:
		return fmt.Errorf("cuda: model.connector.type %q has no GPU kernels", cc.Type)
	}
	if err := errors.Join(ip.allocErr, errors.Join(o.errs...)); err != nil {
		return err
	}
	return upload(ip.d, ip.ptrs, ip.hostPtrs)
}

// actsH allocates one block's activations for the bf16 ViT.
func (ip *imagePath) actsH() vitActs {
	n, dv, F := ip.maxK*ip.np, ip.dv, ip.F
	a := vitActs{a1H: ip.take16(n * dv), mean1: ip.take(n), rstd1: ip.take(n), qkvH: ip.take16(3 * n * dv),
		oH: ip.take16(n * dv), h: ip.take(n * dv),
		a2H: ip.take16(n * dv), mean2: ip.take(n), rstd2: ip.take(n), hidH: ip.take16(n * F), actH: ip.take16(n * F)}
	if ip.flash {
		a.lse = ip.take(ip.maxK * ip.H * ip.np)
		return a
	}
	a.probsH = ip.take16(ip.maxK * ip.H * ip.np * ip.ldp)
	a.ptrH = ip.arraysH(a.qkvH, a.probsH, a.oH)
	return a
}

// allocateBackwardH allocates the bf16 ViT's backward buffers.
func (ip *imagePath) allocateBackwardH() {
	n, dv := ip.maxK*ip.np, ip.dv
	ip.dgrid, ip.dx, ip.dxH, ip.daH, ip.doH = ip.take(n*dv), ip.take(n*dv), ip.take16(n*dv), ip.take16(n*dv), ip.take16(n*dv)
	ip.dqkvH, ip.dhidH = ip.take16(3*n*dv), ip.take16(n*ip.F)
	if ip.flash {
		ip.dqF, ip.dvec = ip.take(n*dv), ip.take(ip.maxK*ip.H*ip.np)
		return
	}
	ip.dSH = ip.take16(ip.maxK * ip.H * ip.np * ip.ldp)
	ip.bwdH = ip.arraysH(ip.dqkvH, ip.dSH, ip.doH)
}

// arraysH appends the pointer arrays of one bf16 attention over (image,
// head) pairs: q, k, v the column blocks of qkv [maxK·np, 3·dv], p blocks
// of [np, ldp] in p, o rows of [maxK·np, dv], s blocks of ip.scores.
func (ip *imagePath) arraysH(qkv, p, o Buf) attnArraysH {
	count, np, dv := ip.maxK*ip.H, ip.np, ip.dv
	array := func(at func(b, h int) uintptr) uintptr {
		addr := ip.ptrs.P + uintptr(8*len(ip.hostPtrs))
		for j := range count {
			ip.hostPtrs = append(ip.hostPtrs, uint64(at(j/ip.H, j%ip.H)))
		}
		return addr
	}
	col := func(base Buf, ld, c int) func(b, h int) uintptr {
		return func(b, h int) uintptr { return half(base, b*np*ld+c+h*ip.hd) }
	}
	block := func(b, h int) int { return (b*ip.H + h) * np * ip.ldp }
	return attnArraysH{q: array(col(qkv, 3*dv, 0)), k: array(col(qkv, 3*dv, dv)), v: array(col(qkv, 3*dv, 2*dv)),
		s: array(func(b, h int) uintptr { return ip.scores.At(block(b, h)) }),
		p: array(func(b, h int) uintptr { return half(p, block(b, h)) }), o: array(col(o, dv, 0))}
}

// take16 allocates n bf16 elements.
func (ip *imagePath) take16(n int) Buf { return ip.take((n + 1) / 2) }

// take allocates n elements, recording the buffer (a zero Buf after a
// failure, which the caller's error check reports).
func (ip *imagePath) take(n int) Buf {
	b, err := ip.d.alloc(n)
	if err != nil {
		ip.allocErr = errors.Join(ip.allocErr, err)
		return Buf{}
	}
	ip.bufs = append(ip.bufs, b)
	return b
}

// arrays appends the pointer arrays of one attention: q rows [Tq] with
// stride ldq per image (shared: every image reads the same q), k and v rows
// [Tk] with stride ldkv, p [maxK·H, Tq, Tk], o rows [Tq] with stride ldo.
func (ip *imagePath) arrays(q Buf, ldq int, k, v Buf, ldkv int, p, o Buf, ldo, Tq, Tk int, shared bool) attnArrays {
	array := func(base Buf, rows, ld int, probs bool) uintptr {
		addr := ip.ptrs.P + uintptr(8*len(ip.hostPtrs))
		for j := range ip.maxK * ip.H {
			b, h := j/ip.H, j%ip.H
			off := b*rows*ld + h*ip.hd
			if probs {
				off = j * Tq * Tk
			}
			ip.hostPtrs = append(ip.hostPtrs, uint64(base.At(off)))
		}
		return addr
	}
	qrows := Tq
	if shared {
		qrows = 0
	}
	return attnArrays{q: array(q, qrows, ldq, false), k: array(k, Tk, ldkv, false), v: array(v, Tk, ldkv, false),
		p: array(p, 0, 0, true), o: array(o, Tq, ldo, false)}
}

// attention: p = softmax(q·kᵀ/√hd) over [K·H] (image, head) pairs, o = p·v.
func (ip *imagePath) attention(a attnArrays, probs Buf, K, Tq, Tk, ldq, ldkv, ldo int) error {
	d, prec, count := ip.d, ip.tr.prec, K*ip.H
	scale := float32(1 / math.Sqrt(float64(ip.hd)))
	return errors.Join(
		d.gemmBatched(prec, false, true, Tq, Tk, ip.hd, scale, a.q, ldq, a.k, ldkv, 0, a.p, Tk, count),
		d.softmaxRows(probs, count*Tq, Tk),
		d.gemmBatched(prec, false, false, Tq, ip.hd, Tk, 1, a.p, Tk, a.v, ldkv, 0, a.o, ldo, count))
}

// attentionBack sets g.q, g.k, g.v (each image's own rows: beta 0) from
// g.o, with g.p (dp, [K·H, Tq, Tk]) as scratch; f are the forward's arrays.
func (ip *imagePath) attentionBack(f, g attnArrays, probs, dp Buf, K, Tq, Tk, ldq, ldkv, ldo int) error {
	d, prec, count, hd := ip.d, ip.tr.prec, K*ip.H, ip.hd
	scale := float32(1 / math.Sqrt(float64(hd)))
	return errors.Join(
		d.gemmBatched(prec, true, false, Tk, hd, Tq, 1, f.p, Tk, g.o, ldo, 0, g.v, ldkv, count),      // dv = pᵀ·do
		d.gemmBatched(prec, false, true, Tq, Tk, hd, 1, g.o, ldo, f.v, ldkv, 0, g.p, Tk, count),      // dp = do·vᵀ
		d.softmaxRowsBackward(dp, probs, count*Tq, Tk),                                               // ds
		d.gemmBatched(prec, false, false, Tq, hd, Tk, scale, g.p, Tk, f.k, ldkv, 0, g.q, ldq, count), // dq = ds·k/√hd
		d.gemmBatched(prec, true, false, Tk, hd, Tq, scale, g.p, Tk, f.q, ldq, 0, g.k, ldkv, count))  // dk = dsᵀ·q/√hd
}

// affine: y [n, out] = x [n, in]·Wᵀ + b, W and b arena offsets (b < 0:
// no bias).
func (ip *imagePath) affine(y, x Buf, w, b, n, in, out int) error {
	tr := ip.tr
	if err := tr.d.gemm(tr.prec, false, true, n, out, in, 1, x.P, in, tr.w.At(w), in, 0, y.P, out); err != nil {
		return err
	}
	if b < 0 {
		return nil
	}
	return tr.d.addBcast(y, tr.w.Off(b), n*out, out)
}

// affineBack: dx = beta·dx + dout·W (the zero Buf: no input gradient),
// dW += doutᵀ·x, db += Σrows dout (b < 0: no bias).
func (ip *imagePath) affineBack(dx Buf, beta float32, dout, x Buf, w, b, n, in, out int) error {
	tr := ip.tr
	if dx.P != 0 {
		if err := tr.d.gemm(tr.prec, false, false, n, in, out, 1, dout.P, out, tr.w.At(w), in, beta, dx.P, in); err != nil {
			return err
		}
	}
	if err := tr.d.gemm(tr.prec, true, false, out, in, n, 1, dout.P, out, x.P, in, 1, tr.g.At(w), in); err != nil {
		return err
	}
	if b < 0 {
		return nil
	}
	return tr.d.colsumAdd(tr.g.Off(b), dout, n, out)
}

// affineH is affine in bf16 (imagePath.bf16): xh is x's bf16 copy, the
// weights' comes from the trainer's wh.
func (ip *imagePath) affineH(y, xh Buf, w, b, n, in, out int) error {
	tr := ip.tr
	return tr.d.gemmBF16Bias(false, false, true, n, out, in, xh.P, in, half(tr.wh, w), in, tr.w.Off(b), 0, Buf{}, y)
}

// affineBackH is affineBack in bf16: dout is rounded into douth for the
// two products, the input gradient goes to the bf16 dxh (set) and xh is
// x's bf16 copy.
func (ip *imagePath) affineBackH(dxh, dout, douth, xh Buf, w, b, n, in, out int) error {
	tr := ip.tr
	return errors.Join(tr.d.castBF16(douth, dout, n*out), tr.linearBackH(dxh, douth, xh, w, n, in, out, 0),
		tr.d.colsumAdd(tr.g.Off(b), dout, n, out))
}

// forward runs the batch's K images (their patches uploaded) through the
// ViT and the connector into ip.tokens [K·N, D].
func (ip *imagePath) forward(K int) error {
	if err := ip.vitForward(K); err != nil {
		return fmt.Errorf("vit forward: %w", err)
	}
	if err := ip.conn.forward(K); err != nil {
		return fmt.Errorf("connector forward: %w", err)
	}
	return nil
}

// patchifyHost cuts the batch's K images into patches on the host (the
// images arrive there), one image per task over GOMAXPROCS goroutines: it
// is host time the GPU waits for between steps. uploadPatches sends them
// to the device.
func (ip *imagePath) patchifyHost(images []float32, K int) {
	per, out := vision.Channels*ip.R*ip.R, ip.np*vision.Channels*ip.P*ip.P
	w := min(K, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for g := range w {
		wg.Go(func() {
			for k := g; k < K; k += w {
				engine.Patchify(ip.hostPatches[k*out:(k+1)*out], images[k*per:(k+1)*per], 1, vision.Channels, ip.R, ip.P)
			}
		})
	}
	wg.Wait()
}

func (ip *imagePath) uploadPatches(K int) error {
	return uploadAsync(ip.d, ip.patches, ip.hostPatches[:K*ip.np*vision.Channels*ip.P*ip.P])
}

func (ip *imagePath) vitForward(K int) error {
	if ip.bf16 {
		return ip.vitForwardH(K)
	}
	d, n, dv, F := ip.d, K*ip.np, ip.dv, ip.F
	pp := vision.Channels * ip.P * ip.P
	tr := ip.tr
	x := ip.xs[0]
	if err := errors.Join(ip.affine(x, ip.patches, ip.patchW, ip.patchB, n, pp, dv),
		d.addBcast(x, tr.w.Off(ip.pos), n*dv, ip.np*dv)); err != nil {
		return fmt.Errorf("vit.patch_embed: %w", err)
	}
	for l, b := range ip.blocks {
		a, next := &ip.acts[l], ip.xs[l+1]
		err := errors.Join(
			d.layerNorm(a.a1, a.mean1, a.rstd1, x, tr.w.Off(b.ln1W), tr.w.Off(b.ln1B), n, dv, normEps),
			ip.affine(a.qkv, a.a1, b.qkvW, b.qkvB, n, dv, 3*dv),
			ip.attention(a.ptr, a.probs, K, ip.np, ip.np, 3*dv, 3*dv, dv),
			ip.affine(a.h, a.o, b.projW, b.projB, n, dv, dv),
			d.addInto(a.h, a.h, x, n*dv),
			d.layerNorm(a.a2, a.mean2, a.rstd2, a.h, tr.w.Off(b.ln2W), tr.w.Off(b.ln2B), n, dv, normEps),
			ip.affine(a.hid, a.a2, b.fc1W, b.fc1B, n, dv, F),
			d.gelu(a.act, a.hid, n*F),
			ip.affine(next, a.act, b.fc2W, b.fc2B, n, F, dv),
			d.addInto(next, next, a.h, n*dv))
		if err != nil {
			return fmt.Errorf("vit.blocks.%d: %w", l, err)
		}
		x = next
	}
	return d.layerNorm(ip.grid, ip.meanF, ip.rstdF, x, tr.w.Off(ip.normW), tr.w.Off(ip.normB), n, dv, normEps)
}

// backward fills the connector's and (unless frozen) the ViT's gradients
// from ip.dtokens.
func (ip *imagePath) backward(K int) error {
	if !ip.frozen {
		if err := ip.d.zero(Buf{P: ip.dgrid.P, N: K * ip.np * ip.dv}); err != nil {
			return err
		}
	}
	if err := ip.conn.backward(K, !ip.frozen); err != nil {
		return fmt.Errorf("connector backward: %w", err)
	}
	if ip.frozen {
		return nil
	}
	if err := ip.vitBackward(K); err != nil {
		return fmt.Errorf("vit backward: %w", err)
	}
	return nil
}

func (ip *imagePath) vitBackward(K int) error {
	if ip.bf16 {
		return ip.vitBackwardH(K)
	}
	d, n, dv, F, tr := ip.d, K*ip.np, ip.dv, ip.F, ip.tr
	pp := vision.Channels * ip.P * ip.P
	g := tr.g
	// dx carries the residual stream's gradient down through the blocks;
	// each branch adds its input gradient into it.
	if err := errors.Join(d.zero(Buf{P: ip.dx.P, N: n * dv}),
		d.layerNormBackward(ip.dx, g.Off(ip.normW), g.Off(ip.normB), ip.dgrid, ip.xs[ip.depth], tr.w.Off(ip.normW), ip.meanF, ip.rstdF, n, dv)); err != nil {
		return fmt.Errorf("vit.norm: %w", err)
	}
	for l := ip.depth - 1; l >= 0; l-- {
		b, a, x := ip.blocks[l], &ip.acts[l], ip.xs[l]
		err := errors.Join(
			ip.affineBack(ip.dgelu, 0, ip.dx, a.act, b.fc2W, b.fc2B, n, F, dv),
			d.geluBackward(ip.dgelu, a.hid, n*F),
			ip.affineBack(ip.da, 0, ip.dgelu, a.a2, b.fc1W, b.fc1B, n, dv, F),
			d.layerNormBackward(ip.dx, g.Off(b.ln2W), g.Off(b.ln2B), ip.da, a.h, tr.w.Off(b.ln2W), a.mean2, a.rstd2, n, dv),
			ip.affineBack(ip.do, 0, ip.dx, a.o, b.projW, b.projB, n, dv, dv),
			ip.attentionBack(a.ptr, ip.vitBwd, a.probs, ip.dp, K, ip.np, ip.np, 3*dv, 3*dv, dv),
			ip.affineBack(ip.da, 0, ip.dqkv, a.a1, b.qkvW, b.qkvB, n, dv, 3*dv),
			d.layerNormBackward(ip.dx, g.Off(b.ln1W), g.Off(b.ln1B), ip.da, x, tr.w.Off(b.ln1W), a.mean1, a.rstd1, n, dv))
		if err != nil {
			return fmt.Errorf("vit.blocks.%d: %w", l, err)
		}
	}
	if err := errors.Join(d.colsumAdd(g.Off(ip.pos), ip.dx, K, ip.np*dv),
		ip.affineBack(Buf{}, 0, ip.dx, ip.patches, ip.patchW, ip.patchB, n, pp, dv)); err != nil {
		return fmt.Errorf("vit.patch_embed: %w", err)
	}
	return nil
}

// vitForwardH is vitForward in bf16 (ip.bf16): the products read the bf16
// copies of their operands (the weights' from the trainer's wh) and
// accumulate in fp32. Each adds its bias (and, on the residual stream,
// the residual) in the same pass (gemmBF16Bias): bf16 outputs (q|k|v, the
// MLP's hidden layer) are rounded once.
func (ip *imagePath) vitForwardH(K int) error {
	d, n, dv, F, tr := ip.d, K*ip.np, ip.dv, ip.F, ip.tr
	pp := vision.Channels * ip.P * ip.P
	w := tr.w
	x := ip.xs[0]
	if err := errors.Join(d.castBF16(ip.patchesH, ip.patches, n*pp),
		ip.affineH(x, ip.patchesH, ip.patchW, ip.patchB, n, pp, dv),
		d.addBcast(x, w.Off(ip.pos), n*dv, ip.np*dv)); err != nil {
		return fmt.Errorf("vit.patch_embed: %w", err)
	}
	for l, b := range ip.blocks {
		a, next := &ip.acts[l], ip.xs[l+1]
		err := errors.Join(
			d.layerNormH(a.a1H, a.mean1, a.rstd1, x, w.Off(b.ln1W), w.Off(b.ln1B), n, dv, normEps),
			d.gemmBF16Bias(true, false, true, n, 3*dv, dv, a.a1H.P, dv, half(tr.wh, b.qkvW), dv, w.Off(b.qkvB), half(tr.wh, b.qkvB), Buf{}, a.qkvH),
			ip.attentionH(a, K),
			d.gemmBF16Bias(false, false, true, n, dv, dv, a.oH.P, dv, half(tr.wh, b.projW), dv, w.Off(b.projB), 0, x, a.h),
			d.layerNormH(a.a2H, a.mean2, a.rstd2, a.h, w.Off(b.ln2W), w.Off(b.ln2B), n, dv, normEps),
			d.gemmBF16Bias(true, false, true, n, F, dv, a.a2H.P, dv, half(tr.wh, b.fc1W), dv, w.Off(b.fc1B), half(tr.wh, b.fc1B), Buf{}, a.hidH),
			d.geluH(a.actH, a.hidH, n*F),
			d.gemmBF16Bias(false, false, true, n, dv, F, a.actH.P, F, half(tr.wh, b.fc2W), F, w.Off(b.fc2B), 0, a.h, next))
		if err != nil {
			return fmt.Errorf("vit.blocks.%d: %w", l, err)
		}
		x = next
	}
	return d.layerNorm(ip.grid, ip.meanF, ip.rstdF, x, w.Off(ip.normW), w.Off(ip.normB), n, dv, normEps)
}

// flashShape is the ViT attention's geometry for the flash kernels.
func (ip *imagePath) flashShape(K int) flashShape {
	return flashShape{B: K, T: ip.np, H: ip.H, KV: ip.H, hd: ip.hd, bidirectional: true, ldq: 3 * ip.dv, ldkv: 3 * ip.dv}
}

// attentionH is block blk's bf16 attention of K images, from its qkvH to
// its oH: flash attention, or batched products over (image, head) pairs
// with the scores in fp32 (ip.scores) and the probabilities in blk.probsH.
func (ip *imagePath) attentionH(blk *vitActs, K int) error {
	d, count, np, hd, dv := ip.d, K*ip.H, ip.np, ip.hd, ip.dv
	if ip.flash {
		return d.flashForward(Buf{}, blk.oH, blk.lse, blk.qkvH, bf16Cols(blk.qkvH, dv), bf16Cols(blk.qkvH, 2*dv), Buf{}, ip.flashShape(K))
	}
	a, probsH := blk.ptrH, blk.probsH
	scale := float32(1 / math.Sqrt(float64(hd)))
	return errors.Join(
		d.gemmBatchedBF16(false, true, np, np, hd, scale, a.q, 3*dv, a.k, 3*dv, 0, a.s, ip.ldp, count),
		d.softmaxRowsH(probsH, ip.scores, count*np, np, ip.ldp),
		d.gemmBatchedBF16Out(false, false, np, hd, np, 1, a.p, ip.ldp, a.v, 3*dv, 0, a.o, dv, count))
}

// attentionBackH sets the q, k and v column blocks of dqkvH from doH:
// flash attention's backward (dq added up in dqF, then rounded); or
// the batched products (dP in ip.scores, dS in ip.dSH).
func (ip *imagePath) attentionBackH(blk *vitActs, K int) error {
	d, count, np, hd, dv := ip.d, K*ip.H, ip.np, ip.hd, ip.dv
	if ip.flash {
		n, qkv := K*np, blk.qkvH
		return errors.Join(
			d.flashBackward(ip.dqF, bf16Cols(ip.dqkvH, dv), bf16Cols(ip.dqkvH, 2*dv), ip.dvec, qkv, bf16Cols(qkv, dv), bf16Cols(qkv, 2*dv),
				blk.oH, ip.doH, blk.lse, Buf{}, ip.flashShape(K)),
			d.castBF16Rows(ip.dqkvH, 3*dv, ip.dqF, dv, n))
	}
	f, g, probsH := blk.ptrH, ip.bwdH, blk.probsH
	scale := float32(1 / math.Sqrt(float64(hd)))
	return errors.Join(
		d.gemmBatchedBF16Out(true, false, np, hd, np, 1, f.p, ip.ldp, g.o, dv, 0, g.v, 3*dv, count),        // dv = pᵀ·do
		d.gemmBatchedBF16(false, true, np, np, hd, 1, g.o, dv, f.v, 3*dv, 0, g.s, ip.ldp, count),           // dp = do·vᵀ
		d.softmaxRowsBackwardH(ip.dSH, ip.scores, probsH, count*np, np, ip.ldp),                            // ds
		d.gemmBatchedBF16Out(false, false, np, hd, np, scale, g.p, ip.ldp, f.k, 3*dv, 0, g.q, 3*dv, count), // dq = ds·k/√hd
		d.gemmBatchedBF16Out(true, false, np, hd, np, scale, g.p, ip.ldp, f.q, 3*dv, 0, g.k, 3*dv, count))  // dk = dsᵀ·q/√hd
}

// vitBackwardH is vitBackward in bf16: every product reads bf16 operands;
// the input-gradient products that feed only kernels write bf16 (the norms'
// output gradients, the attention output's, the MLP hidden layer's), and
// the norms' backward keeps the residual stream's gradient in fp32 with
// its bf16 copy beside it. The weight-gradient products and bias sums run
// on the side stream (ip.aux), each after the main-stream work it reads;
// the main stream waits for them only before it overwrites what they read
// (dx and dxH at the next norm's backward, the hidden and q|k|v gradients
// a block later) and at the end.
func (ip *imagePath) vitBackwardH(K int) error {
	d, n, dv, F, tr := ip.d, K*ip.np, ip.dv, ip.F, ip.tr
	pp := vision.Channels * ip.P * ip.P
	w, g := tr.w, tr.g
	if ip.aux != nil {
		ip.aux.next = 0
	}
	side := func(f func() error) (uintptr, error) {
		if ip.aux == nil {
			return 0, f()
		}
		return d.onSide(ip.aux, f)
	}
	waitFor := func(ev uintptr) error {
		if ev == 0 {
			return nil
		}
		return d.wait(0, ev)
	}
	if err := errors.Join(d.zero(Buf{P: ip.dx.P, N: n * dv}),
		d.layerNormBackwardH(ip.dx, ip.dxH, g.Off(ip.normW), g.Off(ip.normB), ip.dgrid, Buf{}, ip.xs[ip.depth], w.Off(ip.normW), ip.meanF, ip.rstdF, n, dv)); err != nil {
		return fmt.Errorf("vit.norm: %w", err)
	}
	var hidRead, qkvRead uintptr // the side's last reads of dhidH and dqkvH (the block above's)
	for l := ip.depth - 1; l >= 0; l-- {
		b, a, x := ip.blocks[l], &ip.acts[l], ip.xs[l]
		var errs []error
		e := func(err error) { errs = append(errs, err) }
		ev := func(v uintptr, err error) uintptr { e(err); return v }
		// fc2, then GELU, from dx (the block output's gradient)
		e(waitFor(hidRead))
		e(tr.inputGradH(ip.dhidH, ip.dxH, b.fc2W, n, F, dv, 0))
		fc2 := ev(side(func() error {
			return errors.Join(d.colsumAdd(g.Off(b.fc2B), ip.dx, n, dv), tr.weightGradH(ip.dxH, a.actH, b.fc2W, n, F, dv))
		}))
		e(d.geluBackwardH(ip.dhidH, a.hidH, n*F))
		// fc1 and ln2: dx becomes h's gradient
		e(tr.inputGradH(ip.daH, ip.dhidH, b.fc1W, n, dv, F, 0))
		hidRead = ev(side(func() error {
			return errors.Join(d.colsumAddH(g.Off(b.fc1B), ip.dhidH, n, F), tr.weightGradH(ip.dhidH, a.a2H, b.fc1W, n, dv, F))
		}))
		e(waitFor(fc2))
		e(d.layerNormBackwardH(ip.dx, ip.dxH, g.Off(b.ln2W), g.Off(b.ln2B), Buf{}, ip.daH, a.h, w.Off(b.ln2W), a.mean2, a.rstd2, n, dv))
		// proj and the attention
		e(tr.inputGradH(ip.doH, ip.dxH, b.projW, n, dv, dv, 0))
		proj := ev(side(func() error {
			return errors.Join(d.colsumAdd(g.Off(b.projB), ip.dx, n, dv), tr.weightGradH(ip.dxH, a.oH, b.projW, n, dv, dv))
		}))
		e(waitFor(qkvRead))
		e(ip.attentionBackH(a, K))
		// qkv and ln1: dx becomes the block input's gradient
		e(tr.inputGradH(ip.daH, ip.dqkvH, b.qkvW, n, dv, 3*dv, 0))
		qkvRead = ev(side(func() error {
			return errors.Join(d.colsumAddH(g.Off(b.qkvB), ip.dqkvH, n, 3*dv), tr.weightGradH(ip.dqkvH, a.a1H, b.qkvW, n, dv, 3*dv))
		}))
		e(waitFor(proj))
		e(d.layerNormBackwardH(ip.dx, ip.dxH, g.Off(b.ln1W), g.Off(b.ln1B), Buf{}, ip.daH, x, w.Off(b.ln1W), a.mean1, a.rstd1, n, dv))
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("vit.blocks.%d: %w", l, err)
		}
	}
	last, err := side(func() error {
		return errors.Join(d.colsumAdd(g.Off(ip.pos), ip.dx, K, ip.np*dv),
			tr.weightGradH(ip.dxH, ip.patchesH, ip.patchW, n, pp, dv),
			d.colsumAdd(g.Off(ip.patchB), ip.dx, n, dv))
	})
	if err := errors.Join(err, waitFor(last)); err != nil { // the side stream is in order: its last event covers it all
		return fmt.Errorf("vit.patch_embed: %w", err)
	}
	return nil
}
