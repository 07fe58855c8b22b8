package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cublasLt is cuBLASLt, loaded beside cuBLAS: its heuristic lists several
// algorithms for a product where cublasGemmEx runs the first, so a shape
// that the first fits badly (the ViT's 3136-row products on 132 SMs) can
// be timed against the others.
type cublasLt struct {
	lib                                     *library
	handle                                  uintptr
	create, descCreate, descSet             uintptr
	layoutCreate, prefCreate, prefSet       uintptr
	heuristic, matmul, statusFn             uintptr
	descDestroy, layoutDestroy, prefDestroy uintptr
}

var cublasLtNames = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}

func loadCublasLt() (*cublasLt, error) {
	lib, err := openLibrary("cuBLASLt ships with cuBLAS", cublasLtNames...)
	if err != nil {
		return nil, err
	}
	c := &cublasLt{lib: lib}
	if err := lib.bind(map[string]*uintptr{
		"cublasLtCreate": &c.create, "cublasLtMatmulDescCreate": &c.descCreate,
		"cublasLtMatmulDescSetAttribute": &c.descSet, "cublasLtMatrixLayoutCreate": &c.layoutCreate,
		"cublasLtMatmulPreferenceCreate": &c.prefCreate, "cublasLtMatmulPreferenceSetAttribute": &c.prefSet,
		"cublasLtMatmulAlgoGetHeuristic": &c.heuristic, "cublasLtMatmul": &c.matmul,
		"cublasLtMatmulDescDestroy": &c.descDestroy, "cublasLtMatrixLayoutDestroy": &c.layoutDestroy,
		"cublasLtMatmulPreferenceDestroy": &c.prefDestroy, "cublasLtGetStatusString": &c.statusFn,
	}); err != nil {
		return nil, err
	}
	if err := c.check("cublasLtCreate", first(purego.SyscallN(c.create, uintptr(unsafe.Pointer(&c.handle))))); err != nil {
		return nil, err
	}
	return c, nil
}

// call runs fn(args…) unless err is already set, and returns the first
// error. As driver.call, it moves Go variables passed as
// uintptr(unsafe.Pointer(&x)) to the heap for the call.
//
//go:uintptrescapes
func (c *cublasLt) call(err error, name string, fn uintptr, args ...uintptr) error {
	if err != nil {
		return err
	}
	return c.check(name, first(purego.SyscallN(fn, args...)))
}

func (c *cublasLt) check(call string, r uintptr) error {
	if r == 0 {
		return nil
	}
	s, _, _ := purego.SyscallN(c.statusFn, r)
	return &Error{Lib: c.lib.name, Call: call, Code: int(r), Msg: goString(s)}
}

// cuBLASLt's enumerations (cublasLt.h).
const (
	ltDescTransA       = 3 // CUBLASLT_MATMUL_DESC_TRANSA
	ltDescTransB       = 4
	ltDescEpilogue     = 7 // CUBLASLT_MATMUL_DESC_EPILOGUE
	ltDescBiasPointer  = 8
	ltDescBiasType     = 26 // CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE
	ltEpilogueBias     = 4  // CUBLASLT_EPILOGUE_BIAS: D = alpha·A·B + beta·C + bias, bias broadcast over D's columns
	ltPrefMaxWorkspace = 1  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
	ltPrefReduction    = 3  // CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK
	ltPrefAlignA       = 5  // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES; B, C, D follow
	// ltReductionFP32: no split of k, or a split whose parts are added in
	// the compute type in a workspace (CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE):
	// no atomics, no bf16 partial sums.
	ltReductionFP32 = 2
)

// ltAlgo is cublasLtMatmulHeuristicResult_t: the algorithm (64 opaque
// bytes), its workspace, status and wave count.
type ltAlgo struct {
	algo      [8]uint64
	workspace uint64
	state     int32
	waves     float32
	_         [4]int32
}

// ltShape is one product in gemmEx's row-major terms with its types.
type ltShape struct {
	tA, tB        bool
	m, n, k       int
	lda, ldb, ldc int
	ab, ct        uintptr // operand and C types
	align         uint32  // bytes every pointer is aligned to (≤ 256)
	// biasAlign, where not 0: the product adds a bias [n] of C's type to
	// every row in its epilogue, the bias pointer aligned to biasAlign
	// bytes (kept out of align, which sets the operands' declared
	// alignment).
	biasAlign uint32
}

// ptrAlign is the largest power of two, at most 256, dividing every p.
func ptrAlign(ps ...uintptr) uint32 {
	a := uint32(256)
	for _, p := range ps {
		for a > 1 && p%uintptr(a) != 0 {
			a /= 2
		}
	}
	return a
}

// ltPlan is a shape's descriptors and candidate algorithms.
type ltPlan struct {
	desc, la, lb, lc uintptr
	algos            []ltAlgo
	best             int  // the algorithm gemm runs
	bias             bool // the bias epilogue: run sets its pointer
}

// plan builds s's descriptors (column-major, as gemmEx: Cᵀ = op(B)ᵀ·op(A)ᵀ)
// and asks the heuristic for up to want algorithms that fit workspace
// bytes. On failure it destroys what it created.
func (c *cublasLt) plan(s ltShape, want int, workspace uint64) (*ltPlan, error) {
	p := &ltPlan{bias: s.biasAlign != 0}
	var err error
	opA, opB := int32(op(s.tB)), int32(op(s.tA))
	err = c.call(err, "cublasLtMatmulDescCreate", c.descCreate, uintptr(unsafe.Pointer(&p.desc)), cublasCompute32F, cudaR32F)
	err = c.call(err, "cublasLtMatmulDescSetAttribute", c.descSet, p.desc, ltDescTransA, uintptr(unsafe.Pointer(&opA)), 4)
	err = c.call(err, "cublasLtMatmulDescSetAttribute", c.descSet, p.desc, ltDescTransB, uintptr(unsafe.Pointer(&opB)), 4)
	if s.biasAlign != 0 {
		epi, bt := int32(ltEpilogueBias), int32(s.ct) // a bf16 output takes a bf16 bias (cuBLAS 13 on an H200 has no fp32 one)
		err = c.call(err, "cublasLtMatmulDescSetAttribute", c.descSet, p.desc, ltDescEpilogue, uintptr(unsafe.Pointer(&epi)), 4)
		err = c.call(err, "cublasLtMatmulDescSetAttribute", c.descSet, p.desc, ltDescBiasType, uintptr(unsafe.Pointer(&bt)), 4)
	}
	// Column-major: A' = op(B) is n×k, B' = op(A) is k×m, C' is n×m.
	rows := func(t bool, r, c int) (int, int) {
		if t {
			return c, r
		}
		return r, c
	}
	ar, ac := rows(s.tB, s.n, s.k)
	br, bc := rows(s.tA, s.k, s.m)
	err = c.call(err, "cublasLtMatrixLayoutCreate", c.layoutCreate, uintptr(unsafe.Pointer(&p.la)), s.ab, uintptr(ar), uintptr(ac), uintptr(s.ldb))
	err = c.call(err, "cublasLtMatrixLayoutCreate", c.layoutCreate, uintptr(unsafe.Pointer(&p.lb)), s.ab, uintptr(br), uintptr(bc), uintptr(s.lda))
	err = c.call(err, "cublasLtMatrixLayoutCreate", c.layoutCreate, uintptr(unsafe.Pointer(&p.lc)), s.ct, uintptr(s.n), uintptr(s.m), uintptr(s.ldc))
	var pref uintptr
	err = c.call(err, "cublasLtMatmulPreferenceCreate", c.prefCreate, uintptr(unsafe.Pointer(&pref)))
	mask := uint32(ltReductionFP32)
	err = c.call(err, "cublasLtMatmulPreferenceSetAttribute", c.prefSet, pref, ltPrefMaxWorkspace, uintptr(unsafe.Pointer(&workspace)), 8)
	err = c.call(err, "cublasLtMatmulPreferenceSetAttribute", c.prefSet, pref, ltPrefReduction, uintptr(unsafe.Pointer(&mask)), 4)
	for attr := uintptr(ltPrefAlignA); attr < ltPrefAlignA+4; attr++ {
		err = c.call(err, "cublasLtMatmulPreferenceSetAttribute", c.prefSet, pref, attr, uintptr(unsafe.Pointer(&s.align)), 4)
	}
	res := make([]ltAlgo, want)
	var got int32
	err = c.call(err, fmt.Sprintf("cublasLtMatmulAlgoGetHeuristic(m=%d n=%d k=%d)", s.m, s.n, s.k), c.heuristic, c.handle,
		p.desc, p.la, p.lb, p.lc, p.lc, pref, uintptr(want), uintptr(unsafe.Pointer(&res[0])), uintptr(unsafe.Pointer(&got)))
	if pref != 0 {
		purego.SyscallN(c.prefDestroy, pref)
	}
	if err == nil {
		for _, r := range res[:got] {
			if r.state == 0 {
				p.algos = append(p.algos, r)
			}
		}
		if len(p.algos) == 0 {
			err = fmt.Errorf("cuBLASLt: no algorithm for m=%d n=%d k=%d", s.m, s.n, s.k)
		}
	}
	if err != nil {
		c.destroy(p)
		return nil, err
	}
	return p, nil
}

// destroy frees what plan created for p (a half-built plan's zero handles
// are skipped).
func (c *cublasLt) destroy(p *ltPlan) {
	for _, l := range []uintptr{p.la, p.lb, p.lc} {
		if l != 0 {
			purego.SyscallN(c.layoutDestroy, l)
		}
	}
	if p.desc != 0 {
		purego.SyscallN(c.descDestroy, p.desc)
	}
}

// run queues p's product with algorithm i on stream (workspace ws of
// wsBytes): D = alpha·op(A)·op(B) + beta·C (+ bias, a plan with the bias
// epilogue) in gemmEx's row-major terms, D at dst (c itself, another
// buffer of C's layout, or a scratch one). The bias pointer is the
// descriptor's: it is set on each call, which cuBLASLt reads when the
// product is queued.
func (c *cublasLt) run(d *Device, p *ltPlan, i int, alpha float32, a, b uintptr, beta float32, cc, dst, bias uintptr, ws uintptr, wsBytes uint64, stream uintptr) error {
	if p.bias {
		if err := c.call(nil, "cublasLtMatmulDescSetAttribute(bias pointer)", c.descSet, p.desc, ltDescBiasPointer, uintptr(unsafe.Pointer(&bias)), 8); err != nil {
			return err
		}
	}
	d.scalars[0], d.scalars[1] = alpha, beta
	al, be := d.host+2*maxArgs*8, d.host+2*maxArgs*8+4
	r := first(purego.SyscallN(c.matmul, c.handle, p.desc, al, b, p.la, a, p.lb, be, cc, p.lc, dst, p.lc,
		uintptr(unsafe.Pointer(&p.algos[i].algo)), ws, uintptr(wsBytes), stream))
	return c.check("cublasLtMatmul", r)
}

// ltTuner runs the bf16 products through cuBLASLt, each shape with the
// algorithm that timed fastest among the heuristic's candidates the first
// time the shape came (on its own operands, the output to a scratch
// buffer). On an H200, on zero data, the heuristic's first choice, which
// cublasGemmEx runs, was 8–12% slower than the best candidate on the
// reference decoder's products (dec-up 121.5 against 108.5 µs, the LM head
// 1401 against 1282: BenchmarkLtAlgos); on real steps the gain is about
// 1% (BenchmarkGemmTuning: text 45.09 → 44.65 ms, images 54.19 → 53.84).
// The choice rests on timings, so two runs may pick differently and differ
// in the last bits, as the atomic sums already make them.
type ltTuner struct {
	lt     *cublasLt
	plans  map[ltShape]*ltPlan // a nil plan: cublasGemmEx runs the shape
	ws     map[uintptr]Buf     // a workspace per stream: streams run at once
	events [2]uintptr          // timing events, made at the first tuning
}

const (
	ltWorkspace  = 32 << 20 // bytes
	ltCandidates = 8
	ltReps       = 5
)

// gemm runs s through cuBLASLt, D = alpha·op(A)·op(B) + beta·C (+ bias
// where s has one) into dst, tuning it first if it is new; false where the
// shape has no plan and cublasGemmEx (or, with a bias, the kernels before
// it) should run it.
func (t *ltTuner) gemm(d *Device, s ltShape, alpha float32, a, b uintptr, beta float32, c, dst, bias uintptr) (bool, error) {
	p, ok := t.plans[s]
	if !ok {
		var err error
		if p, err = t.tune(d, s, alpha, a, b, beta, c, bias); err != nil {
			return false, err
		}
		t.plans[s] = p
	}
	if p == nil {
		return false, nil
	}
	ws, err := t.workspace(d)
	if err != nil {
		return false, err
	}
	return true, t.lt.run(d, p, p.best, alpha, a, b, beta, c, dst, bias, ws.P, ltWorkspace, d.stream)
}

func (t *ltTuner) workspace(d *Device) (Buf, error) {
	if w, ok := t.ws[d.stream]; ok {
		return w, nil
	}
	w, err := d.alloc(ltWorkspace / 4)
	if err != nil {
		return Buf{}, fmt.Errorf("cuBLASLt workspace: %w", err)
	}
	t.ws[d.stream] = w
	return w, nil
}

// tune plans s and times its candidates, ltReps runs each after two
// untimed ones, reading a, b and c and writing a scratch output. Without
// a candidate it returns nil (cublasGemmEx); without room for the scratch
// output or without timing events, the heuristic's first.
func (t *ltTuner) tune(d *Device, s ltShape, alpha float32, a, b uintptr, beta float32, c, bias uintptr) (p *ltPlan, err error) {
	p, err = t.lt.plan(s, ltCandidates, ltWorkspace)
	if err != nil {
		return nil, nil
	}
	if len(p.algos) == 1 || d.drv.cuEventCreate == 0 {
		return p, nil
	}
	if t.events[0] == 0 {
		for i := range t.events {
			if err := d.drv.call("cuEventCreate", d.drv.cuEventCreate, uintptr(unsafe.Pointer(&t.events[i])), 0); err != nil {
				t.events[0] = 0
				return p, nil
			}
		}
	}
	es := 4
	if s.ct == cudaR16BF {
		es = 2
	}
	scratch, err := d.alloc((s.m*s.ldc*es + 3) / 4)
	if err != nil {
		return p, nil
	}
	plan, best := p, float32(math.MaxFloat32)
	defer func() {
		if ferr := d.drv.call("cuMemFree", d.drv.cuMemFree, scratch.P); ferr != nil && err == nil {
			err = fmt.Errorf("cuBLASLt tuning's scratch output: %w", ferr)
		}
		if p == nil || err != nil || best == math.MaxFloat32 { // the plan is not kept: free it
			t.lt.destroy(plan)
			p = nil
		}
	}()
	ws, err := t.workspace(d)
	if err != nil {
		return nil, err
	}
	for i := range p.algos {
		run := func() error {
			return t.lt.run(d, p, i, alpha, a, b, beta, c, scratch.P, bias, ws.P, ltWorkspace, d.stream)
		}
		if run() != nil || run() != nil {
			continue // a candidate the library rejects at run time
		}
		err := d.drv.call("cuEventRecord", d.drv.cuEventRecord, t.events[0], d.stream)
		for range ltReps {
			err = errors.Join(err, run())
		}
		err = errors.Join(err, d.drv.call("cuEventRecord", d.drv.cuEventRecord, t.events[1], d.stream), d.sync())
		var ms float32
		if err == nil {
			err = d.drv.call("cuEventElapsedTime", d.drv.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), t.events[0], t.events[1])
		}
		if err != nil {
			if serr := d.sync(); serr != nil {
				return nil, serr // the context is broken, not the candidate
			}
			continue
		}
		if ms < best {
			best, p.best = ms, i
		}
	}
	return p, nil // nil by the deferred check where no candidate ran
}
