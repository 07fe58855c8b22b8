package cuda

import (
	"fmt"
	"math"
	"unsafe"
)

// Flash attention (kernels.cu, "flash attention"): bf16 precision's
// causal decoder attention computed tile by tile, never writing the
// [B·H, T, T] scores. Its forward keeps each row's log-sum-exp instead, and
// its backward recomputes the probabilities from it; the sequence length is
// then bounded by memory for activations, not by a softmax row that must
// fit in shared memory.

// flashShape is one attention call's geometry.
type flashShape struct{ B, T, H, KV, hd int }

// flashIndex is hd's instance in flashHeadDims, or -1.
func flashIndex(hd int) int {
	for i, h := range flashHeadDims {
		if h == hd {
			return i
		}
	}
	return -1
}

// flashAvailable says whether the flash kernels exist for this GPU and
// head width.
func (d *Device) flashAvailable(hd int) bool {
	return d.cc >= flashMinCC && flashIndex(hd) >= 0
}

// grid is a launch over the rows (or keys) in blocks of `rows`, and the
// batch's heads: (blocks, heads), or (heads, blocks) with flashLPT
// (kernels.cu's flash_order, the kernels' lpt argument).
func (s flashShape) grid(rows, heads int) [3]int {
	n := (s.T + rows - 1) / rows
	if flashLPT {
		return [3]int{s.B * heads, n, 1}
	}
	return [3]int{n, s.B * heads, 1}
}

// lpt is the kernels' lpt argument for flashLPT.
func lpt() int {
	if flashLPT {
		return 1
	}
	return 0
}

// flashTile is kernels.cu's FLASH_TILE: rows (or keys) per block.
const flashTile = 64

// The kernel variants, for A/B runs on the device: only tests and
// benchmarks change these (flash_test.go reads MMABLATE_FLASH_FWD,
// MMABLATE_FLASH_BWD and MMABLATE_FLASH_ORDER), and TestFlashAttention
// runs every variant.
var (
	// flashFwdRows are the forward's query rows a block: 128
	// (flash_fwd128_HD, 32 a warp) or 64 (flash_fwd_HD, 16 a warp).
	flashFwdRows = 128
	// flashBwd2: the backward is flash_bwd2_HD (Q and dO B fragments by
	// ldmatrix.x4, a barrier a step fewer), not round 1's flash_bwd_HD.
	flashBwd2 = true
	// flashLPT: all heads' longest blocks start first (grid (B·H,
	// blocks)), not each head's (grid (blocks, B·H)); kernels.cu's
	// flash_order.
	flashLPT = true
)

// flashScales are 1/√hd and the kernels' base-2 score scale log2(e)/√hd.
func flashScales(hd int) (scale, scale2 float32) {
	s := 1 / math.Sqrt(float64(hd))
	return float32(s), float32(s * math.Log2E)
}

func (d *Device) flashKernel(set *[len(flashHeadDims)]uintptr, name string, hd int) (uintptr, string, error) {
	i := flashIndex(hd)
	if d.cc < flashMinCC || i < 0 {
		return 0, "", fmt.Errorf("cuda: flash attention needs sm_80 or later and a head width in %v (have %s, %d)", flashHeadDims, d.SM, hd)
	}
	return set[i], fmt.Sprintf("%s_%d", name, hd), nil
}

// flashForward sets o [B·T, H·hd] (fp32), oh (its bf16 copy) and lse2
// [B·H, T] from the bf16 q [B·T, H·hd], k and v [B·T, KV·hd]; docs [B·T]
// are the document ids (attention stays within a document).
func (d *Device) flashForward(o, oh, lse2, q, k, v, docs Buf, s flashShape) error {
	set, kname, rows := &d.k.flashFwd128, "flash_fwd128", 128
	if flashFwdRows == 64 {
		set, kname, rows = &d.k.flashFwd, "flash_fwd", 64
	}
	f, name, err := d.flashKernel(set, kname, s.hd)
	if err != nil {
		return err
	}
	_, scale2 := flashScales(s.hd)
	return d.launch(name, f, s.grid(rows, s.H), block1(4*32), 0, q, k, v, docs, o, oh, lse2, s.T, s.H, s.KV, scale2, lpt())
}

// flashBackward sets dq (fp32, [B·T, H·hd]), dk and dv ([B·T, KV·hd]) from
// the forward's bf16 operands, its fp32 output o and lse2, and the output
// gradient dO (fp32) with its bf16 copy dOh. dvec [B·H, T] is scratch, and
// so is dkvh [2·B·T·H·hd] where KV < H (the zero Buf where KV = H): each
// query head's share of dk and dv before the group sums. Two kernels and
// the group sum: flash_dot (the row terms, and dq zeroed) and flash_bwd
// (dk, dv, and dq added into by key tiles).
func (d *Device) flashBackward(dq, dk, dv, dvec, dkvh, q, k, v, o, dO, dOh, lse2, docs Buf, s flashShape) error {
	set, kname := &d.k.flashBwd, "flash_bwd"
	if flashBwd2 {
		set, kname = &d.k.flashBwd2, "flash_bwd2"
	}
	f, name, err := d.flashKernel(set, kname, s.hd)
	if err != nil {
		return err
	}
	rows := s.B * s.T * s.H
	if dq.N < rows*s.hd {
		panic(fmt.Sprintf("cuda: flash backward: dq of %d floats for %d", dq.N, rows*s.hd))
	}
	if err := d.launch("flash_dot", d.k.flashDot, grid1((rows+warpsBlock-1)/warpsBlock), block1(32*warpsBlock), 0,
		dvec, dq, dO, o, s.T, s.H, s.hd, i64(rows)); err != nil {
		return err
	}
	scale, scale2 := flashScales(s.hd)
	dkh, dvh := dk, dv
	if s.KV < s.H {
		if dkvh.N < 2*rows*s.hd {
			panic(fmt.Sprintf("cuda: flash backward: scratch of %d floats for %d", dkvh.N, 2*rows*s.hd))
		}
		dkh, dvh = dkvh, dkvh.Off(rows*s.hd)
	}
	if err := d.launch(name, f, s.grid(flashTile, s.H), block1(4*32), 0, q, k, v, dOh, lse2, dvec, docs, dq, dkh, dvh, s.T, s.H, s.KV, scale2, scale, lpt()); err != nil {
		return err
	}
	if s.KV < s.H {
		n := s.B * s.T * s.KV * s.hd
		return d.launch("flash_group_sum", d.k.flashGroupSum, ewGrid(n), block1(ewBlock), 0, dk, dv, dkh, dvh, s.H, s.KV, s.hd, i64(s.B*s.T))
	}
	return nil
}

// kernelResources are a compiled kernel's registers per thread and local
// (spilled) bytes per thread, for tuning the flash kernels.
func (d *Device) kernelResources(f uintptr) (regs, local int, err error) {
	const attrLocalBytes, attrNumRegs = 3, 4 // CU_FUNC_ATTRIBUTE_*
	var r, l int32
	if err := d.drv.call("cuFuncGetAttribute", d.drv.cuFuncGetAttribute, uintptr(unsafe.Pointer(&r)), attrNumRegs, f); err != nil {
		return 0, 0, err
	}
	if err := d.drv.call("cuFuncGetAttribute", d.drv.cuFuncGetAttribute, uintptr(unsafe.Pointer(&l)), attrLocalBytes, f); err != nil {
		return 0, 0, err
	}
	return int(r), int(l), nil
}
