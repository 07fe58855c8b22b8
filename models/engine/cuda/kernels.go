package cuda

import (
	"fmt"
	"unsafe"
)

// kernels are the entry points of kernels.cu in the loaded module.
type kernels struct {
	embedFwd, embedBwd, rmsFwd, rmsBwd, rope, add, swigluFwd, swigluBwd           uintptr
	softmax, softmaxBwd, ceFwd, ceBwd, ceFwd4, ceBwd4, ceFused, sumsq, sum, adamw uintptr
	softmaxWarp, softmaxBwdWarp                                                   uintptr
	softmaxH, softmaxBwdH, softmaxWarpH, softmaxBwdWarpH                          uintptr // bf16 forms
	rowsScatter, rowsGather                                                       uintptr
	// vectorised norms, qk-norm with RoPE, bf16 SwiGLU
	rmsFwd4, rmsBwdCols, qkRopeFwd, qkRopeBwd, qkRopeFwd4, qkRopeBwd4, swigluFwdH, swigluBwdH uintptr
	castBF16, castBF16Rows                                                                    uintptr
	// the image path (image.go)
	lnFwd, lnBwd, addBcast, geluFwd, geluBwd, siluFwd, siluBwd            uintptr
	softmaxRows, softmaxRowsBwd, poolFwd, poolBwd, im2col, col2im, colsum uintptr
	// its bf16 forms
	lnFwdH, lnBwdH, biasRowsH, residualBias, geluFwdH, geluBwdH, colsumH, softmaxRowsH, softmaxRowsBwdH uintptr
	im2colH, col2imH, im2colH3, col2imH3                                                                uintptr
	// flash attention (sm_80 on): one instance per head width of
	// flashHeadDims
	flashFwd, flashBwd     [len(flashHeadDims)]uintptr
	flashFwdBi, flashBwdBi [len(flashHeadDims)]uintptr // bidirectional (the ViT's)
	flashDot               uintptr
}

// flashHeadDims are the head widths the flash-attention kernels are
// instantiated for (kernels.cu's FLASH_KERNELS); wider heads would need more
// than the 48 KiB of static shared memory the backward kernel stages in.
var flashHeadDims = [...]int{16, 32, 64}

// flashMinCC is the first compute capability with bf16 mma.sync.
const flashMinCC = 80

func (d *Device) loadKernels(cubin []byte) error {
	var mod uintptr
	if err := d.drv.call("cuModuleLoadData", d.drv.cuModuleLoadData, uintptr(unsafe.Pointer(&mod)), uintptr(unsafe.Pointer(&cubin[0]))); err != nil {
		return err
	}
	k := &d.k
	names := map[string]*uintptr{
		"embed_fwd": &k.embedFwd, "embed_bwd": &k.embedBwd, "rmsnorm_fwd": &k.rmsFwd, "rmsnorm_bwd": &k.rmsBwd,
		"rope": &k.rope, "add": &k.add, "swiglu_fwd": &k.swigluFwd, "swiglu_bwd": &k.swigluBwd,
		"attn_softmax": &k.softmax, "attn_softmax_bwd": &k.softmaxBwd,
		"attn_softmax_warp": &k.softmaxWarp, "attn_softmax_bwd_warp": &k.softmaxBwdWarp, "ce_fwd": &k.ceFwd, "ce_bwd": &k.ceBwd, "ce_fwd4": &k.ceFwd4, "ce_bwd4": &k.ceBwd4, "ce_fused": &k.ceFused,
		"attn_softmax_h": &k.softmaxH, "attn_softmax_bwd_h": &k.softmaxBwdH,
		"attn_softmax_warp_h": &k.softmaxWarpH, "attn_softmax_bwd_warp_h": &k.softmaxBwdWarpH,
		"sumsq": &k.sumsq, "sum": &k.sum, "adamw": &k.adamw,
		"rmsnorm_fwd4": &k.rmsFwd4, "rmsnorm_bwd_cols": &k.rmsBwdCols, "qknorm_rope_fwd": &k.qkRopeFwd, "qknorm_rope_bwd": &k.qkRopeBwd,
		"qknorm_rope_fwd4": &k.qkRopeFwd4, "qknorm_rope_bwd4": &k.qkRopeBwd4,
		"swiglu_fwd_h": &k.swigluFwdH, "swiglu_bwd_h": &k.swigluBwdH,
		"rows_scatter": &k.rowsScatter, "rows_gather_clear": &k.rowsGather, "cast_bf16": &k.castBF16, "cast_bf16_rows": &k.castBF16Rows,
		"layernorm_fwd": &k.lnFwd, "layernorm_bwd": &k.lnBwd, "add_bcast": &k.addBcast,
		"gelu_fwd": &k.geluFwd, "gelu_bwd": &k.geluBwd, "silu_fwd": &k.siluFwd, "silu_bwd": &k.siluBwd,
		"softmax_rows": &k.softmaxRows, "softmax_rows_bwd": &k.softmaxRowsBwd,
		"avgpool_fwd": &k.poolFwd, "avgpool_bwd": &k.poolBwd, "im2col": &k.im2col, "col2im": &k.col2im, "colsum": &k.colsum,
		"layernorm_fwd_h": &k.lnFwdH, "layernorm_bwd_h": &k.lnBwdH, "bias_rows_h": &k.biasRowsH, "residual_bias": &k.residualBias, "im2col_h": &k.im2colH, "col2im_h": &k.col2imH,
		"im2col_h3": &k.im2colH3, "col2im_h3": &k.col2imH3,
		"gelu_fwd_h": &k.geluFwdH, "gelu_bwd_h": &k.geluBwdH, "colsum_h": &k.colsumH,
		"softmax_rows_h": &k.softmaxRowsH, "softmax_rows_bwd_h": &k.softmaxRowsBwdH,
	}
	if d.cc >= flashMinCC {
		names["flash_dot"] = &k.flashDot
		for i, hd := range flashHeadDims {
			names[fmt.Sprintf("flash_fwd_%d", hd)] = &k.flashFwd[i]
			names[fmt.Sprintf("flash_bwd_%d", hd)] = &k.flashBwd[i]
			names[fmt.Sprintf("flash_fwd_bi_%d", hd)] = &k.flashFwdBi[i]
			names[fmt.Sprintf("flash_bwd_bi_%d", hd)] = &k.flashBwdBi[i]
		}
	}
	for name, dst := range names {
		cn := cString(name)
		if err := d.drv.call("cuModuleGetFunction "+name, d.drv.cuModuleGetFunction, uintptr(unsafe.Pointer(dst)), mod, uintptr(unsafe.Pointer(&cn[0]))); err != nil {
			return err
		}
	}
	return nil
}

// Launch shapes: block sizes suit the H100/H200 (and any sm_70+).
const (
	ewBlock    = 256
	rowBlock   = 256 // one block per row (softmax, cross-entropy, embedding)
	warpsBlock = 8   // rmsnorm: warps per block, one row per warp
	ewMaxGrid  = 132 * 16
)

func grid1(n int) [3]int  { return [3]int{n, 1, 1} }
func block1(n int) [3]int { return [3]int{n, 1, 1} }

func ewGrid(n int) [3]int { return grid1(min((n+ewBlock-1)/ewBlock, ewMaxGrid)) }

func (d *Device) embedForward(out, w, ids Buf, n, D int) error {
	return d.launch("embed_fwd", d.k.embedFwd, grid1(n), block1(rowBlock), 0, out, w, ids, n, D)
}

func (d *Device) embedBackward(dw, dout, ids Buf, n, D int) error {
	return d.launch("embed_bwd", d.k.embedBwd, grid1(n), block1(rowBlock), 0, dw, dout, ids, n, D)
}

// rowsScatter copies rows [nrows, D] to x's rows places[r].
func (d *Device) rowsScatter(x, rows, places Buf, nrows, D int) error {
	return d.launch("rows_scatter", d.k.rowsScatter, grid1(nrows), block1(rowBlock), 0, x, rows, places, D)
}

// rowsGatherClear moves dx's rows places[r] into rows [nrows, D], zeroing them in dx.
func (d *Device) rowsGatherClear(rows, dx, places Buf, nrows, D int) error {
	return d.launch("rows_gather_clear", d.k.rowsGather, grid1(nrows), block1(rowBlock), 0, rows, dx, places, D)
}

// rmsForward: oh (the zero Buf: none) gets out's bf16 rounding as well;
// out may then be the zero Buf.
func (d *Device) rmsForward(out, oh, rstd, x, w Buf, n, dim int, eps float64) error {
	return d.addRMSForward(x, out, oh, rstd, Buf{}, Buf{}, w, n, dim, eps)
}

// addRMSForward sets sum = a + b and normalises it as rmsForward does, in
// one pass (a, b the zero Buf: sum is the input as it is).
func (d *Device) addRMSForward(sum, out, oh, rstd, a, b, w Buf, n, dim int, eps float64) error {
	return d.addRMS(sum, out, oh, rstd, a, b, Buf{}, w, n, dim, eps)
}

// addRMSForwardH is addRMSForward with b in bf16 (bh).
func (d *Device) addRMSForwardH(sum, out, oh, rstd, a, bh, w Buf, n, dim int, eps float64) error {
	return d.addRMS(sum, out, oh, rstd, a, Buf{}, bh, w, n, dim, eps)
}

func (d *Device) addRMS(sum, out, oh, rstd, a, b, bh, w Buf, n, dim int, eps float64) error {
	name, f := "rmsnorm_fwd", d.k.rmsFwd
	if rowsVec(dim, oh, sum, out, a, b) && bh.P%8 == 0 {
		name, f = "rmsnorm_fwd4", d.k.rmsFwd4
	}
	return d.launch(name, f, grid1((n+warpsBlock-1)/warpsBlock), block1(32*warpsBlock), 0,
		out, rstd, sum, w, n, dim, float32(eps), oh, a, b, bh)
}

// rmsVec is kernels.cu's RMS_VEC: the float4 chunks of a row a lane of
// rmsnorm_fwd4 holds.
const rmsVec = 8

// rowsVec says whether rmsnorm_fwd4 takes rows of dim floats: dim a
// multiple of 4 and at most 128·rmsVec, every fp32 row 16-byte aligned and
// every bf16 row (h) 8-byte aligned. Zero Bufs pass.
func rowsVec(dim int, h Buf, fp32 ...Buf) bool {
	return dim%4 == 0 && dim <= 128*rmsVec && aligned(h, fp32...)
}

// aligned says whether h (bf16) is 8-byte and every fp32 Buf 16-byte
// aligned: rows of a multiple of 4 elements then are too.
func aligned(h Buf, fp32 ...Buf) bool {
	if h.P%8 != 0 {
		return false
	}
	for _, b := range fp32 {
		if b.P%16 != 0 {
			return false
		}
	}
	return true
}

// rmsBackward adds the input gradient into dx, or with res (not the zero
// Buf) sets dx = res + it; dxh (the zero Buf: none) gets dx's bf16
// rounding. dx may be the zero Buf (no input gradient).
func (d *Device) rmsBackward(dx, dxh, res, dw, dout, x, w, rstd Buf, n, dim int) error {
	return d.rmsBack(dx, dxh, res, dw, dout, Buf{}, x, w, rstd, n, dim)
}

// rmsBackwardH is rmsBackward with the output gradient in bf16 (douth).
func (d *Device) rmsBackwardH(dx, dxh, res, dw, douth, x, w, rstd Buf, n, dim int) error {
	return d.rmsBack(dx, dxh, res, dw, Buf{}, douth, x, w, rstd, n, dim)
}

func (d *Device) rmsBack(dx, dxh, res, dw, dout, douth, x, w, rstd Buf, n, dim int) error {
	if colsVec(dim, dxh, dx, dout, x, res) && douth.P%8 == 0 {
		// 32 rows a block: the reference step's 16384 rows in 512 blocks,
		// one wave; 16 (two waves) measured 118 µs a call on an H200, 24
		// and 32 97-99 (BenchmarkBandwidthKernels).
		const rows = 32
		return d.launch("rmsnorm_bwd_cols", d.k.rmsBwdCols, grid1((n+rows-1)/rows), block1((dim/4+31)/32*32), 0,
			dx, dw, dout, x, w, rstd, n, dim, rows, res, dxh, douth)
	}
	if 4*dim > 48<<10 {
		return fmt.Errorf("cuda: rmsnorm backward: width %d needs more than 48 KiB of shared memory", dim)
	}
	// The scalar kernel (odd or wide rows): about a thousand blocks, since
	// with its per-element shared atomics 64 rows a block (256 blocks for
	// 16384 rows) ran latency-bound at a quarter of the memory bandwidth;
	// each block's dw partial is still added to dw once.
	rows := min(64, max(warpsBlock, n/1024/warpsBlock*warpsBlock))
	return d.launch("rmsnorm_bwd", d.k.rmsBwd, grid1((n+rows-1)/rows), block1(32*warpsBlock), 4*dim,
		dx, dw, dout, x, w, rstd, n, dim, rows, res, dxh, douth)
}

// colsVec says whether rmsnorm_bwd_cols takes rows of dim floats: a
// multiple of 4 and at most 4096 (a block's 1024 threads of float4
// chunks), every fp32 row 16-byte and every bf16 row (h) 8-byte aligned.
// Zero Bufs pass.
func colsVec(dim int, h Buf, fp32 ...Buf) bool {
	return dim%4 == 0 && dim <= 4*1024 && aligned(h, fp32...)
}

// headsVec says whether the vectorised qk-norm kernels take heads of
// width hd: 8·L with L a power of two ≤ 32, fp32 rows 16-byte and bf16
// rows 8-byte aligned.
func headsVec(hd int, h Buf, fp32 ...Buf) bool {
	L := hd / 8
	return hd%8 == 0 && L > 0 && L <= 32 && L&(L-1) == 0 && rowsVec(4, h, fp32...)
}

// qkGrid covers rows with warps of 32/(hd/8) rows each, at most 64 warps
// an SM of an H100/H200 (the kernels stride over the rest).
func qkGrid(rows, hd int) [3]int {
	warps := (rows*(hd/8) + 31) / 32
	return grid1(min((warps+warpsBlock-1)/warpsBlock, 132*64/warpsBlock))
}

// headsIn is an input of q or k heads as a projection wrote it: fp32 x
// or, where x is the zero Buf, bf16 xh; its tokens stride elements apart
// (heads·hd, or the fused q|k output's width).
type headsIn struct {
	x, xh  Buf
	stride int
}

// vec says whether the vectorised qk kernels can read it.
func (in headsIn) vec() bool { return in.stride%4 == 0 && rowsVec(4, in.xh, in.x) }

// qkNormRope normalises each head's row of in ([n, heads·hd]; rstd
// [n·heads] saved) and rotates it by its position, into out or, rounded,
// into oh (not the zero Buf: bf16 precision's attention operands).
func (d *Device) qkNormRope(out, oh, rstd Buf, in headsIn, w, pos, cs, sn Buf, n, heads, hd int, eps float64) error {
	rows := n * heads
	if headsVec(hd, oh, out, cs, sn) && in.vec() {
		return d.launch("qknorm_rope_fwd4", d.k.qkRopeFwd4, qkGrid(rows, hd), block1(32*warpsBlock), 0,
			out, oh, rstd, in.x, w, pos, cs, sn, i64(rows), heads, hd, float32(eps), in.xh, in.stride)
	}
	return d.launch("qknorm_rope_fwd", d.k.qkRopeFwd, grid1((rows+warpsBlock-1)/warpsBlock), block1(32*warpsBlock), 0,
		out, oh, rstd, in.x, w, pos, cs, sn, i64(rows), heads, hd, float32(eps), in.xh, in.stride)
}

// qkNormRopeBackward sets dx (or, rounded, dxh where it is not the zero
// Buf; its tokens hs elements apart) from dy, the rotated rows' gradient,
// and adds the norm weight's gradient into dw.
func (d *Device) qkNormRopeBackward(dx, dxh, dw, dy Buf, in headsIn, w, rstd, pos, cs, sn Buf, n, heads, hd, hs int) error {
	if 4*warpsBlock*hd > 48<<10 {
		return fmt.Errorf("cuda: qk-norm backward: head width %d needs more than 48 KiB of shared memory", hd)
	}
	rows := n * heads
	if headsVec(hd, dxh, dx, dy, cs, sn) && hs%4 == 0 && in.vec() {
		return d.launch("qknorm_rope_bwd4", d.k.qkRopeBwd4, qkGrid(rows, hd), block1(32*warpsBlock), 4*hd,
			dx, dxh, dw, dy, in.x, w, rstd, pos, cs, sn, i64(rows), heads, hd, hs, in.xh, in.stride)
	}
	// About a thousand blocks; dw's few columns take one atomic add per block.
	per := max(warpsBlock, (rows/1024+warpsBlock-1)/warpsBlock*warpsBlock)
	return d.launch("qknorm_rope_bwd", d.k.qkRopeBwd, grid1((rows+per-1)/per), block1(32*warpsBlock), 4*warpsBlock*hd,
		dx, dxh, dw, dy, in.x, w, rstd, pos, cs, sn, i64(rows), heads, hd, per, hs, in.xh, in.stride)
}

// ropeApply rotates the heads of in: with oh (bf16, not the zero Buf) the
// result goes there, rounded, instead of to out, its tokens hs elements
// apart.
func (d *Device) ropeApply(out, oh Buf, in headsIn, pos, cs, sn Buf, n, heads, hd, hs int, sign float32) error {
	total := n * heads * hd / 2
	return d.launch("rope", d.k.rope, grid1((total+ewBlock-1)/ewBlock), block1(ewBlock), 0,
		out, in.x, pos, cs, sn, n, heads, hd, sign, oh, hs, in.xh, in.stride)
}

func (d *Device) addInto(out, a, b Buf, n int) error {
	return d.launch("add", d.k.add, ewGrid(n), block1(ewBlock), 0, out, a, b, i64(n))
}

// swigluForward sets g = h1·σ(h1)·h3 (fp32 and tf32 precision).
func (d *Device) swigluForward(g, h1, h3 Buf, n int) error {
	return d.launch("swiglu_fwd", d.k.swigluFwd, ewGrid(n), block1(ewBlock), 0, g, h1, h3, i64(n))
}

// swigluBackward: dg becomes ∂L/∂h1 in place, dh3 is set to ∂L/∂h3.
func (d *Device) swigluBackward(dg, dh3, h1, h3 Buf, n int) error {
	return d.launch("swiglu_bwd", d.k.swigluBwd, ewGrid(n), block1(ewBlock), 0, dg, dh3, h1, h3, i64(n))
}

// swigluForwardH is bf16 precision's SwiGLU: gh = h1·σ(h1)·h3, every
// buffer bf16.
func (d *Device) swigluForwardH(gh, h1, h3 Buf, n int) error {
	return d.launch("swiglu_fwd_h", d.k.swigluFwdH, ewGrid((n+3)/4), block1(ewBlock), 0, gh, h1, h3, i64(n))
}

// swigluBackwardH sets dgh (∂L/∂h1) and dh3h (∂L/∂h3) from dg (∂L/∂g;
// it may be dgh) and the forward's h1 and h3, every buffer bf16.
func (d *Device) swigluBackwardH(dgh, dh3h, dg, h1, h3 Buf, n int) error {
	return d.launch("swiglu_bwd_h", d.k.swigluBwdH, ewGrid((n+3)/4), block1(ewBlock), 0, dgh, dh3h, dg, h1, h3, i64(n))
}

// maxSoftmaxT is the longest row the softmax kernels cache in 48 KiB of
// shared memory (the backward caches two rows).
const maxSoftmaxT = 48 << 10 / 8

// warpSoftmaxT is the longest row the one-warp-per-row softmax kernels
// hold in registers (32 scores a lane); longer rows take the block kernels.
const warpSoftmaxT = 1024

// attnSoftmax: bs is the causal row-block size of the products (T: none).
// The scores are in p; the probabilities replace them there, or with ph
// (bf16, not the zero Buf) go there, rounded, instead (separate kernels:
// the fp32 ones carry no bf16 branch).
func (d *Device) attnSoftmax(p, ph, docs Buf, B, H, T, bs int, causal bool) error {
	if T <= warpSoftmaxT {
		rows := B * H * T
		g, blk := grid1((rows+warpsBlock-1)/warpsBlock), block1(32*warpsBlock)
		if ph.P != 0 {
			return d.launch("attn_softmax_warp_h", d.k.softmaxWarpH, g, blk, 0, p, docs, T, H, b2i(causal), bs, i64(rows), ph)
		}
		return d.launch("attn_softmax_warp", d.k.softmaxWarp, g, blk, 0, p, docs, T, H, b2i(causal), bs, i64(rows))
	}
	g, blk := [3]int{T, B * H, 1}, block1(softmaxBlock(T))
	if ph.P != 0 {
		return d.launch("attn_softmax_h", d.k.softmaxH, g, blk, 4*T, p, docs, T, H, b2i(causal), bs, ph)
	}
	return d.launch("attn_softmax", d.k.softmax, g, blk, 4*T, p, docs, T, H, b2i(causal), bs)
}

// attnSoftmaxBackward turns dp into dS in place, reading the
// probabilities from p; with ph and dh (bf16, both or neither) it reads
// them from ph and writes dS, rounded, to dh instead.
func (d *Device) attnSoftmaxBackward(dp, p, ph, dh Buf, BH, T, bs int, causal bool) error {
	if (ph.P == 0) != (dh.P == 0) {
		return fmt.Errorf("cuda: attention softmax backward: the bf16 probabilities and dS go together")
	}
	if T <= warpSoftmaxT {
		rows := BH * T
		g, blk := grid1((rows+warpsBlock-1)/warpsBlock), block1(32*warpsBlock)
		if ph.P != 0 {
			return d.launch("attn_softmax_bwd_warp_h", d.k.softmaxBwdWarpH, g, blk, 0, dp, ph, T, b2i(causal), bs, i64(rows), dh)
		}
		return d.launch("attn_softmax_bwd_warp", d.k.softmaxBwdWarp, g, blk, 0, dp, p, T, b2i(causal), bs, i64(rows))
	}
	g, blk := [3]int{T, BH, 1}, block1(softmaxBlock(T))
	if ph.P != 0 {
		return d.launch("attn_softmax_bwd_h", d.k.softmaxBwdH, g, blk, 8*T, dp, ph, T, b2i(causal), bs, dh)
	}
	return d.launch("attn_softmax_bwd", d.k.softmaxBwd, g, blk, 8*T, dp, p, T, b2i(causal), bs)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// softmaxBlock: one thread per 4 keys, 32 to 1024 threads.
func softmaxBlock(T int) int { return min(1024, max(32, (T/4+31)/32*32)) }

func (d *Device) ceForward(stats, rowloss, logits, targets, mask Buf, n, V int) error {
	name, f := "ce_fwd", d.k.ceFwd
	if V%4 == 0 && logits.P%16 == 0 {
		name, f = "ce_fwd4", d.k.ceFwd4
	}
	return d.launch(name, f, grid1(n), block1(1024), 0, stats, rowloss, logits, targets, mask, V)
}

// ceFusedMax is the longest row ce_fused holds (kernels.cu's
// 4·CE_THREADS·CE_VEC).
const ceFusedMax = 4 * 512 * 16

// ceFusable says whether ceFused takes rows of V logits with these
// buffers (else ceForward then ceBackward).
func ceFusable(V int, logits, logitsH, dlogits, dh Buf) bool {
	return V%4 == 0 && V <= ceFusedMax && logits.P%16 == 0 && logitsH.P%8 == 0 && dlogits.P%16 == 0 && dh.P%8 == 0
}

// ceFused is ceForward and ceBackward (loss weight w) in one pass over
// the logits, fp32 (logits) or, where that is the zero Buf, bf16
// (logitsH); the caller checks ceFusable.
func (d *Device) ceFused(stats, rowloss, dlogits, dh, logits, logitsH, targets, mask Buf, n, V int, w float32) error {
	return d.launch("ce_fused", d.k.ceFused, grid1(n), block1(512), 0, stats, rowloss, logits, targets, mask, V, w, dlogits, dh, logitsH)
}

// ceBackward: with dh (bf16) the gradient goes there, rounded, instead of
// to dlogits.
func (d *Device) ceBackward(dlogits, dh, logits, stats, targets, mask Buf, n, V int, w float32) error {
	name, f := "ce_bwd", d.k.ceBwd
	if V%4 == 0 && logits.P%16 == 0 && dlogits.P%16 == 0 && dh.P%8 == 0 {
		name, f = "ce_bwd4", d.k.ceBwd4
	}
	return d.launch(name, f, grid1(n), block1(1024), 0, dlogits, logits, stats, targets, mask, V, w, dh)
}

// reduce sums x (or x² with squares) in double on the GPU into per-block
// partials and adds those on the host in block order, so the result does not
// depend on timing.
func (d *Device) reduce(partials, x Buf, n int, squares bool) (float64, error) {
	blocks := min(maxPartials, max(1, (n+ewBlock-1)/ewBlock))
	f, name := d.k.sum, "sum"
	if squares {
		f, name = d.k.sumsq, "sumsq"
	}
	if err := d.launch(name, f, grid1(blocks), block1(ewBlock), 0, partials, x, i64(n)); err != nil {
		return 0, err
	}
	out := d.scratchD[:blocks]
	if err := d.drv.call("cuMemcpyDtoH", d.drv.cuMemcpyDtoH, d.host+2*maxArgs*8+16, partials.P, uintptr(8*blocks)); err != nil {
		return 0, err
	}
	var s float64
	for _, v := range out {
		s += v
	}
	return s, nil
}

// layerNorm: out = LayerNorm(x) over rows [n, dim]; mean, rstd [n] saved.
func (d *Device) layerNorm(out, mean, rstd, x, w, b Buf, n, dim int, eps float64) error {
	return d.launch("layernorm_fwd", d.k.lnFwd, grid1((n+warpsBlock-1)/warpsBlock), block1(32*warpsBlock), 0,
		out, mean, rstd, x, w, b, n, dim, float32(eps))
}

// layerNormBackward adds dx (the zero Buf: none), dw and db.
func (d *Device) layerNormBackward(dx, dw, db, dout, x, w, mean, rstd Buf, n, dim int) error {
	if 8*dim > 48<<10 {
		return fmt.Errorf("cuda: layernorm backward: width %d needs more than 48 KiB of shared memory", dim)
	}
	// 16 rows a block: the image path's row counts (images × patches) are
	// small enough that 64 would leave most of the GPU idle.
	rows := 16
	return d.launch("layernorm_bwd", d.k.lnBwd, grid1((n+rows-1)/rows), block1(32*warpsBlock), 8*dim,
		dx, dw, db, dout, x, w, mean, rstd, n, dim, rows)
}

// colsumAdd adds the column sums of src [rows, cols] into dst [cols].
func (d *Device) colsumAdd(dst, src Buf, rows, cols int) error {
	grid, chunk := colsumGrid(rows, cols)
	return d.launch("colsum", d.k.colsum, grid, block1(ewBlock), 0, dst, src, rows, cols, chunk)
}

// colsumGrid is the column-sum kernels' grid (colsum, colsum_h): a
// thread a column, the rows in chunks such that the grid has a few
// thousand blocks.
func colsumGrid(rows, cols int) (grid [3]int, chunk int) {
	xb := (cols + ewBlock - 1) / ewBlock
	chunk = max(16, rows*xb/2048)
	return [3]int{xb, (rows + chunk - 1) / chunk, 1}, chunk
}

// addBcast adds row [period] to every period-long stretch of y [n].
func (d *Device) addBcast(y, row Buf, n, period int) error {
	return d.launch("add_bcast", d.k.addBcast, ewGrid(n), block1(ewBlock), 0, y, row, i64(n), period)
}

func (d *Device) gelu(a, h Buf, n int) error {
	return d.launch("gelu_fwd", d.k.geluFwd, ewGrid(n), block1(ewBlock), 0, a, h, i64(n))
}

// geluBackward multiplies dd in place by GELU'(h).
func (d *Device) geluBackward(dd, h Buf, n int) error {
	return d.launch("gelu_bwd", d.k.geluBwd, ewGrid(n), block1(ewBlock), 0, dd, h, i64(n))
}

func (d *Device) silu(out, x Buf, n int) error {
	return d.launch("silu_fwd", d.k.siluFwd, ewGrid(n), block1(ewBlock), 0, out, x, i64(n))
}

// siluBackward sets dx = dout·SiLU'(x).
func (d *Device) siluBackward(dx, dout, x Buf, n int) error {
	return d.launch("silu_bwd", d.k.siluBwd, ewGrid(n), block1(ewBlock), 0, dx, dout, x, i64(n))
}

// softmaxRows: unmasked softmax in place over rows [rows, L].
func (d *Device) softmaxRows(p Buf, rows, L int) error {
	if L > maxSoftmaxT {
		return fmt.Errorf("cuda: softmax over %d keys: at most %d", L, maxSoftmaxT)
	}
	return d.launch("softmax_rows", d.k.softmaxRows, grid1(rows), block1(softmaxBlock(L)), 4*L, p, L)
}

func (d *Device) softmaxRowsBackward(dp, p Buf, rows, L int) error {
	return d.launch("softmax_rows_bwd", d.k.softmaxRowsBwd, grid1(rows), block1(softmaxBlock(L)), 0, dp, p, L)
}

// avgPool sets out [B, oh, ow, C] to x [B, H, W, C]'s adaptive average pool.
func (d *Device) avgPool(out, x Buf, B, H, W, C, oh, ow int) error {
	return d.launch("avgpool_fwd", d.k.poolFwd, ewGrid(B*oh*ow*C), block1(ewBlock), 0, out, x, B, H, W, C, oh, ow)
}

// avgPoolBackward adds dx [B, H, W, C] from dout [B, oh, ow, C].
func (d *Device) avgPoolBackward(dx, dout Buf, B, H, W, C, oh, ow int) error {
	return d.launch("avgpool_bwd", d.k.poolBwd, grid1(B*H*W), block1(min(256, (C+31)/32*32)), 0, dx, dout, B, H, W, C, oh, ow)
}

// conv is a K×K convolution's geometry on NHWC grids (engine.Conv2d).
type conv struct{ B, H, W, C, K, stride, pad, Ho, Wo int }

// im2col sets cols [B·Ho·Wo, C·K·K] from x.
func (d *Device) im2colFwd(cols, x Buf, g conv) error {
	return d.launch("im2col", d.k.im2col, ewGrid(g.B*g.Ho*g.Wo*g.C*g.K*g.K), block1(ewBlock), 0,
		cols, x, g.B, g.H, g.W, g.C, g.K, g.stride, g.pad, g.Ho, g.Wo)
}

// im2colH is im2colFwd writing the bf16 cols: a thread per (output
// pixel, channel), or per 8 channels for the C-Abstractor's convolutions
// (im2col_h3), 32-bit indices.
func (d *Device) im2colH(cols, x Buf, g conv) error {
	if err := g.fits32(); err != nil {
		return err
	}
	if g.same3(8) && aligned(Buf{}, cols, x) {
		return d.launch("im2col_h3", d.k.im2colH3, ewGrid(g.B*g.H*g.W*g.C/8), block1(ewBlock), 0,
			cols, x, g.B, g.H, g.W, g.C)
	}
	return d.launch("im2col_h", d.k.im2colH, ewGrid(g.B*g.Ho*g.Wo*g.C), block1(ewBlock), 0,
		cols, x, g.B, g.H, g.W, g.C, g.K, g.stride, g.pad, g.Ho, g.Wo)
}

// col2imAddH is col2imAdd reading the bf16 cols, 32-bit indices; for the
// C-Abstractor's convolutions col2im_h3, a block per (image row, 32
// channels).
func (d *Device) col2imAddH(dx, cols Buf, g conv) error {
	if err := g.fits32(); err != nil {
		return err
	}
	if smem := 3 * g.W * col2imChannels * 9 * 2; g.same3(col2imChannels) && aligned(Buf{}, cols) && smem <= 48<<10 {
		return d.launch("col2im_h3", d.k.col2imH3, [3]int{g.B * g.H, g.C / col2imChannels, 1}, block1(256), smem,
			dx, cols, g.B, g.H, g.W, g.C)
	}
	return d.launch("col2im_h", d.k.col2imH, ewGrid(g.B*g.H*g.W*g.C), block1(ewBlock), 0,
		dx, cols, g.B, g.H, g.W, g.C, g.K, g.stride, g.pad, g.Ho, g.Wo)
}

// col2imChannels is kernels.cu's C2I_CG: the channels a col2im_h3 block
// takes.
const col2imChannels = 32

// same3 says whether g is a 3×3 convolution with stride 1 and padding 1
// (the output grid the input's) over a multiple of cg channels.
func (g conv) same3(cg int) bool {
	return g.K == 3 && g.stride == 1 && g.pad == 1 && g.Ho == g.H && g.Wo == g.W && g.C%cg == 0
}

// fits32 checks that im2col_h's and col2im_h's 32-bit element indices
// (pixels × channels, on either side) cannot overflow.
func (g conv) fits32() error {
	if int64(g.B)*int64(max(g.H*g.W, g.Ho*g.Wo))*int64(g.C) >= 1<<31 {
		return fmt.Errorf("cuda: convolution of %d×%d×%d×%d: more than 2³¹ elements", g.B, g.H, g.W, g.C)
	}
	return nil
}

// col2im adds cols' entries into dx [B, H, W, C] (32-bit indices).
func (d *Device) col2imAdd(dx, cols Buf, g conv) error {
	if err := g.fits32(); err != nil {
		return err
	}
	return d.launch("col2im", d.k.col2im, ewGrid(g.B*g.H*g.W*g.C), block1(ewBlock), 0,
		dx, cols, g.B, g.H, g.W, g.C, g.K, g.stride, g.pad, g.Ho, g.Wo)
}

// layerNormH is layerNorm writing its output in bf16 only (oh).
func (d *Device) layerNormH(oh, mean, rstd, x, w, b Buf, n, dim int, eps float64) error {
	return d.launch("layernorm_fwd_h", d.k.lnFwdH, grid1((n+warpsBlock-1)/warpsBlock), block1(32*warpsBlock), 0,
		oh, mean, rstd, x, w, b, n, dim, float32(eps))
}

// lnSlots is layernorm_bwd_h's LN_SLOTS: the widest row it takes is
// 32·lnSlots.
const lnSlots = 32

// layerNormBackwardH adds dx and writes its bf16 rounding to dxh (the
// zero Buf: not written), and adds dw and db, from the output gradient gh
// (bf16) or, where gh is the zero Buf, g (fp32), in one pass (a warp a
// row, the block's dw and db partials in registers and shared memory).
func (d *Device) layerNormBackwardH(dx, dxh, dw, db, g, gh, x, w, mean, rstd Buf, n, dim int) error {
	if dim > 32*lnSlots {
		return fmt.Errorf("cuda: bf16 layernorm backward: width %d, at most %d", dim, 32*lnSlots)
	}
	// Four warps a block and about three blocks an SM (396 on an
	// H100/H200; the registers of the row and the partials allow about
	// that many): 8 rows a block for the ViT's 3136.
	const warps = 4
	rows := max(warps, (n+395)/396)
	return d.launch("layernorm_bwd_h", d.k.lnBwdH, grid1((n+rows-1)/rows), block1(32*warps), 8*dim,
		dx, dxh, dw, db, g, gh, x, w, mean, rstd, n, dim, rows)
}

// rowsGrid is bias_rows_h's and residual_bias's grid: four columns a
// thread, at most 4096 row blocks.
func rowsGrid(rows, period int) [3]int {
	return [3]int{(period/4 + ewBlock - 1) / ewBlock, max(1, min(rows, 4096)), 1}
}

// biasRowsH sets the bf16 y [rows, period] to row [period] on every row
// (period a multiple of 4).
func (d *Device) biasRowsH(y, row Buf, rows, period int) error {
	return d.launch("bias_rows_h", d.k.biasRowsH, rowsGrid(rows, period), block1(ewBlock), 0, y, row, rows, period)
}

// residualBias sets y [rows, period] = x + row on every row (period a
// multiple of 4).
func (d *Device) residualBias(y, x, row Buf, rows, period int) error {
	return d.launch("residual_bias", d.k.residualBias, rowsGrid(rows, period), block1(ewBlock), 0, y, x, row, rows, period)
}

// geluH sets the bf16 a [n] to GELU of the bf16 h (n a multiple of 4).
func (d *Device) geluH(a, h Buf, n int) error {
	return d.launch("gelu_fwd_h", d.k.geluFwdH, ewGrid((n+3)/4), block1(ewBlock), 0, a, h, i64(n))
}

// geluBackwardH multiplies the bf16 dd [n] in place by GELU'(h), h bf16.
func (d *Device) geluBackwardH(dd, h Buf, n int) error {
	return d.launch("gelu_bwd_h", d.k.geluBwdH, ewGrid((n+3)/4), block1(ewBlock), 0, dd, h, i64(n))
}

// colsumAddH is colsumAdd over a bf16 src.
func (d *Device) colsumAddH(dst, src Buf, rows, cols int) error {
	grid, chunk := colsumGrid(rows, cols)
	return d.launch("colsum_h", d.k.colsumH, grid, block1(ewBlock), 0, dst, src, rows, cols, chunk)
}

// softmaxRowsH writes to the bf16 ph [rows, ld] the softmax of the first
// L ≤ 1024 entries of each row of s [rows, ld].
func (d *Device) softmaxRowsH(ph, s Buf, rows, L, ld int) error {
	if L > 1024 {
		return fmt.Errorf("cuda: bf16 softmax over %d keys: at most 1024", L)
	}
	return d.launch("softmax_rows_h", d.k.softmaxRowsH, grid1((rows+7)/8), block1(256), 0, s, ph, L, ld, i64(rows))
}

// softmaxRowsBackwardH writes dS to the bf16 dh from dP (dp, fp32) and P
// (ph, bf16), all [rows, ld] with L entries used.
func (d *Device) softmaxRowsBackwardH(dh, dp, ph Buf, rows, L, ld int) error {
	return d.launch("softmax_rows_bwd_h", d.k.softmaxRowsBwdH, grid1((rows+7)/8), block1(256), 0, dp, ph, dh, L, ld, i64(rows))
}

// castBF16 sets the bf16 buffer out [n] (2-byte elements) to in [n]
// rounded to nearest, ties to even.
func (d *Device) castBF16(out, in Buf, n int) error {
	if 2*n > 4*out.N || n > in.N {
		panic(fmt.Sprintf("cuda: bf16 cast of %d elements from %d into a %d-byte buffer", n, in.N, 4*out.N))
	}
	return d.launch("cast_bf16", d.k.castBF16, ewGrid((n+3)/4), block1(ewBlock), 0, out, in, i64(n))
}

// castBF16Rows sets rows [rows, w] of the bf16 buffer out, os elements
// apart, to in [rows, w] rounded.
func (d *Device) castBF16Rows(out Buf, os int, in Buf, w, rows int) error {
	if rows > 0 && (2*((rows-1)*os+w) > 4*out.N || rows*w > in.N) {
		panic(fmt.Sprintf("cuda: bf16 row cast of %d×%d (stride %d) from %d into a %d-byte buffer", rows, w, os, in.N, 4*out.N))
	}
	return d.launch("cast_bf16_rows", d.k.castBF16Rows, ewGrid(rows*w), block1(ewBlock), 0, out, os, in, w, i64(rows))
}

// allocBF16 returns a zeroed device buffer of n bf16 (2-byte) elements.
func (d *Device) allocBF16(n int) (Buf, error) { return d.alloc((n + 1) / 2) }

// i64 marks a kernel argument of C type long long.
type i64 int64
