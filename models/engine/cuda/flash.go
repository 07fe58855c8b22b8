package cuda

import (
	"fmt"
	"math"
	"unsafe"
)

// Flash attention (kernels.cu, "flash attention"): bf16 precision's
// causal decoder attention, and in a bidirectional form the ViT's,
// computed tile by tile, never writing the
// [B·H, T, T] scores. Its forward keeps each row's log-sum-exp instead, and
// its backward recomputes the probabilities from it; the sequence length is
// then bounded by memory for activations, not by a softmax row that must
// fit in shared memory.

// flashShape is one attention call's geometry: causal over [B·T, H·hd] q
// and [B·T, KV·hd] k and v, or, bidirectional, the q rows ldq and the k and
// v rows ldkv elements apart (the ViT's column blocks of q|k|v).
type flashShape struct {
	B, T, H, KV, hd int
	bidirectional   bool
	ldq, ldkv       int
	ldv             int // the causal backward's dv: bf16 rows ldv elements apart
}

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

// flashTile is kernels.cu's FLASH_TILE: keys a backward block.
const flashTile = 64

// flashFwdRows are the forward's query rows a block.
const flashFwdRows = 128

// flashScales are 1/√hd and the kernels' base-2 score scale log2(e)/√hd.
func flashScales(hd int) (scale, scale2 float32) {
	s := 1 / math.Sqrt(float64(hd))
	return float32(s), float32(s * math.Log2E)
}

// flashKernel is the instance for s's head width of the causal kernel set
// or, where s is bidirectional, of bi, and its name.
func (d *Device) flashKernel(causal, bi *[len(flashHeadDims)]uintptr, name string, s flashShape) (uintptr, string, error) {
	if !d.flashAvailable(s.hd) {
		return 0, "", fmt.Errorf("cuda: flash attention needs sm_80 or later and a head width in %v (have %s, %d)", flashHeadDims, d.SM, s.hd)
	}
	set := causal
	if s.bidirectional {
		set, name = bi, name+"_bi"
	}
	return set[flashIndex(s.hd)], fmt.Sprintf("%s_%d", name, s.hd), nil
}

// flashForward sets oh [B·T, H·hd] (bf16), o (its fp32 value, where not
// the zero Buf: the tests) and lse2 [B·H, T] from the bf16 q [B·T, H·hd],
// k and v [B·T, KV·hd]; docs [B·T] are the document ids (attention stays
// within a document). Grid (B·H, row blocks): all heads' longest blocks
// first (kernels.cu's grid orders).
func (d *Device) flashForward(o, oh, lse2, q, k, v, docs Buf, s flashShape) error {
	f, name, err := d.flashKernel(&d.k.flashFwd, &d.k.flashFwdBi, "flash_fwd", s)
	if err != nil {
		return err
	}
	_, scale2 := flashScales(s.hd)
	grid := [3]int{s.B * s.H, (s.T + flashFwdRows - 1) / flashFwdRows, 1}
	return d.launch(name, f, grid, block1(4*32), 0, q, k, v, docs, o, oh, lse2, s.T, s.H, s.KV, scale2, s.ldq, s.ldkv)
}

// flashBackward sets dq (fp32, [B·T, H·hd]), dk (fp32, [B·T, KV·hd]) and
// dv (bf16, rows ldv apart; bidirectional: dk and dv bf16, rows ldkv
// apart) from the forward's bf16 operands, its bf16 output oh and lse2,
// and the output gradient's bf16 copy dOh. dvec [B·H, T] is scratch. Two kernels:
// flash_dot (the row terms, and dq zeroed) and flash_bwd (grid (B·KV, key
// blocks): dk and dv, each block over its kv head's H/KV query heads, and
// dq added into by key tiles).
func (d *Device) flashBackward(dq, dk, dv, dvec, q, k, v, oh, dOh, lse2, docs Buf, s flashShape) error {
	f, name, err := d.flashKernel(&d.k.flashBwd, &d.k.flashBwdBi, "flash_bwd", s)
	if err != nil {
		return err
	}
	rows := s.B * s.T * s.H
	if dq.N < rows*s.hd {
		panic(fmt.Sprintf("cuda: flash backward: dq of %d floats for %d", dq.N, rows*s.hd))
	}
	if err := d.flashDot(dvec, dq, dOh, oh, s); err != nil {
		return err
	}
	scale, scale2 := flashScales(s.hd)
	grid := [3]int{s.B * s.KV, (s.T + flashTile - 1) / flashTile, 1}
	ldkv := s.ldkv
	if !s.bidirectional {
		ldkv = s.ldv // the causal kernel reads k and v densely and takes dv's row stride here
	}
	return d.launch(name, f, grid, block1(4*32), 0, q, k, v, dOh, lse2, dvec, docs, dq, dk, dv, s.T, s.H, s.KV, scale2, scale, s.ldq, ldkv)
}

// flashDot launches flash_dot: hd/8 threads a (token, head) row.
func (d *Device) flashDot(dvec, dq, dOh, oh Buf, s flashShape) error {
	if (dq.P|dOh.P|oh.P)%16 != 0 {
		return fmt.Errorf("cuda: flash backward: dq %#x, dO %#x and o %#x must be 16-byte aligned", dq.P, dOh.P, oh.P)
	}
	threads := s.B * s.T * s.H * (s.hd / 8)
	return d.launch("flash_dot", d.k.flashDot, grid1((threads+255)/256), block1(256), 0,
		dvec, dq, dOh, oh, s.T, s.H, s.hd, i64(s.B*s.T*s.H))
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
