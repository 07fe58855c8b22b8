package cuda

import (
	"fmt"
	"unsafe"
)

// kernels are the entry points of kernels.cu in the loaded module.
type kernels struct {
	embedFwd, embedBwd, rmsFwd, rmsBwd, rope, add, swigluFwd, swigluBwd uintptr
	softmax, softmaxBwd, ceFwd, ceBwd, sumsq, sum, adamw                uintptr
	rowsScatter, rowsGather                                             uintptr
}

func (d *Device) loadKernels(cubin []byte) error {
	var mod uintptr
	if err := d.drv.call("cuModuleLoadData", d.drv.cuModuleLoadData, uintptr(unsafe.Pointer(&mod)), uintptr(unsafe.Pointer(&cubin[0]))); err != nil {
		return err
	}
	k := &d.k
	for name, dst := range map[string]*uintptr{
		"embed_fwd": &k.embedFwd, "embed_bwd": &k.embedBwd, "rmsnorm_fwd": &k.rmsFwd, "rmsnorm_bwd": &k.rmsBwd,
		"rope": &k.rope, "add": &k.add, "swiglu_fwd": &k.swigluFwd, "swiglu_bwd": &k.swigluBwd,
		"attn_softmax": &k.softmax, "attn_softmax_bwd": &k.softmaxBwd, "ce_fwd": &k.ceFwd, "ce_bwd": &k.ceBwd,
		"sumsq": &k.sumsq, "sum": &k.sum, "adamw": &k.adamw,
		"rows_scatter": &k.rowsScatter, "rows_gather_clear": &k.rowsGather,
	} {
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

func (d *Device) rmsForward(out, rstd, x, w Buf, n, dim int, eps float64) error {
	return d.launch("rmsnorm_fwd", d.k.rmsFwd, grid1((n+warpsBlock-1)/warpsBlock), block1(32*warpsBlock), 0,
		out, rstd, x, w, n, dim, float32(eps))
}

// rmsBackward: dx may be the zero Buf (no input gradient).
func (d *Device) rmsBackward(dx, dw, dout, x, w, rstd Buf, n, dim int) error {
	if 4*dim > 48<<10 {
		return fmt.Errorf("cuda: rmsnorm backward: width %d needs more than 48 KiB of shared memory", dim)
	}
	rows := 64
	return d.launch("rmsnorm_bwd", d.k.rmsBwd, grid1((n+rows-1)/rows), block1(32*warpsBlock), 4*dim,
		dx, dw, dout, x, w, rstd, n, dim, rows)
}

func (d *Device) ropeApply(out, x, pos, cs, sn Buf, n, heads, hd int, sign float32, accumulate bool) error {
	acc := b2i(accumulate)
	total := n * heads * hd / 2
	return d.launch("rope", d.k.rope, grid1((total+ewBlock-1)/ewBlock), block1(ewBlock), 0,
		out, x, pos, cs, sn, n, heads, hd, sign, acc)
}

func (d *Device) addInto(out, a, b Buf, n int) error {
	return d.launch("add", d.k.add, ewGrid(n), block1(ewBlock), 0, out, a, b, i64(n))
}

func (d *Device) swigluForward(g, s, h1, h3 Buf, n int) error {
	return d.launch("swiglu_fwd", d.k.swigluFwd, ewGrid(n), block1(ewBlock), 0, g, s, h1, h3, i64(n))
}

func (d *Device) swigluBackward(dg, dh3, h1, h3, s Buf, n int) error {
	return d.launch("swiglu_bwd", d.k.swigluBwd, ewGrid(n), block1(ewBlock), 0, dg, dh3, h1, h3, s, i64(n))
}

// maxSoftmaxT is the longest row the softmax kernels cache in 48 KiB of
// shared memory (the backward caches two rows).
const maxSoftmaxT = 48 << 10 / 8

// attnSoftmax: bs is the causal row-block size of the products (T: none).
func (d *Device) attnSoftmax(p, docs Buf, B, H, T, bs int, causal bool) error {
	return d.launch("attn_softmax", d.k.softmax, [3]int{T, B * H, 1}, block1(softmaxBlock(T)), 4*T, p, docs, T, H, b2i(causal), bs)
}

func (d *Device) attnSoftmaxBackward(dp, p Buf, BH, T, bs int, causal bool) error {
	return d.launch("attn_softmax_bwd", d.k.softmaxBwd, [3]int{T, BH, 1}, block1(softmaxBlock(T)), 8*T, dp, p, T, b2i(causal), bs)
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
	return d.launch("ce_fwd", d.k.ceFwd, grid1(n), block1(1024), 0, stats, rowloss, logits, targets, mask, V)
}

func (d *Device) ceBackward(dlogits, logits, stats, targets, mask Buf, n, V int, w float32) error {
	return d.launch("ce_bwd", d.k.ceBwd, grid1(n), block1(1024), 0, dlogits, logits, stats, targets, mask, V, w)
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

// i64 marks a kernel argument of C type long long.
type i64 int64
