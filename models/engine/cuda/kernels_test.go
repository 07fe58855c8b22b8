package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestColumnSums: colsum, colsum_h and the dw and db sums of
// layernorm_bwd_h against float64 sums on the host, with widths that are
// and are not a multiple of 4, matrices 4 bytes off a 16-byte boundary,
// and row counts that leave a short last block. (A colsum with 16-byte
// loads, four columns a thread and one atomic a column a block measured
// no faster on an H200: the ViT block's bias gradients 0.337 → 0.329 ms
// a step; BenchmarkImageParts.)
func TestColumnSums(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.enter()()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ rows, cols, off int }{{3136, 768, 0}, {100, 770, 0}, {37, 12, 1}, {2304, 1024, 0}, {5, 150528, 0}} {
		t.Run(fmt.Sprintf("%dx%d_off%d", c.rows, c.cols, c.off), func(t *testing.T) {
			defer d.enter()()
			rows, cols, size := c.rows, c.cols, c.rows*c.cols
			vals := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = rng.Float32()*2 - 1
				}
				return v
			}
			// bf16-exact values, so the fp32 and the bf16 sources hold the same numbers
			src := vals(size + c.off)
			for i := range src {
				src[i] = math.Float32frombits(math.Float32bits(src[i]) &^ 0xffff)
			}
			x, mean, rstd := vals(size+c.off), vals(rows), vals(rows)
			bufs := make([]Buf, 4)
			for i, v := range [][]float32{src, x, mean, rstd} {
				if bufs[i], err = d.alloc(len(v)); err != nil {
					t.Fatal(err)
				}
				if err := upload(d, bufs[i], v); err != nil {
					t.Fatal(err)
				}
			}
			gh, err := d.alloc((size + c.off + 1) / 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.castBF16(gh, bufs[0], size+c.off); err != nil {
				t.Fatal(err)
			}
			sums, err := d.alloc(4 * cols)
			if err != nil {
				t.Fatal(err)
			}
			g, xb := bufs[0].Off(c.off), bufs[1].Off(c.off)
			ghOff := Buf{P: half(gh, c.off), N: size}
			if err := errors.Join(d.colsumAdd(sums, g, rows, cols), d.colsumAddH(sums.Off(cols), ghOff, rows, cols)); err != nil {
				t.Fatal(err)
			}
			norm := cols <= 32*lnSlots // the norm's rows fit its registers
			if norm {
				dx, err := d.alloc(size) // the input gradient, not checked here
				if err != nil {
					t.Fatal(err)
				}
				if err := d.layerNormBackwardH(dx, Buf{}, sums.Off(2*cols), sums.Off(3*cols), Buf{}, ghOff, xb, bufs[1], bufs[2], bufs[3], rows, cols); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]float32, 4*cols)
			if err := download(d, got, sums); err != nil {
				t.Fatal(err)
			}
			want := make([]float32, 4*cols)
			for j := range cols {
				var s, sw float64
				for r := range rows {
					gv := float64(src[c.off+r*cols+j])
					s += gv
					sw += gv * (float64(x[c.off+r*cols+j]) - float64(mean[r])) * float64(rstd[r])
				}
				want[j], want[cols+j], want[2*cols+j], want[3*cols+j] = float32(s), float32(s), float32(sw), float32(s)
			}
			for i, name := range []string{"colsum", "colsum_h", "layernorm_bwd_h dw", "layernorm_bwd_h db"} {
				if i >= 2 && !norm {
					break
				}
				if r := relDiffFloor(got[i*cols:(i+1)*cols], want[i*cols:(i+1)*cols], 1); r > 1e-5 || math.IsNaN(r) {
					t.Errorf("%s: relative difference %.3g (bound 1e-5)", name, r)
				}
			}
		})
	}
}

// TestRMSNormBackward: dx (with a residual, or added into), its bf16
// copy and dw from the norm's backward with a bf16 output gradient,
// against float64 on the host, for rows that take rmsnorm_bwd_cols (a
// warp partly past the row; the widest row a block covers; a short last
// block) and rows that take the scalar kernel (too wide, not a multiple
// of 4, 4 bytes off a 16-byte boundary).
func TestRMSNormBackward(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.enter()()
	rng := rand.New(rand.NewPCG(7, 8))
	type tc struct {
		rows, cols, off int
		res             bool
	}
	for _, c := range []tc{{100, 1024, 0, true}, {37, 36, 0, false}, {19, 4096, 0, true}, {9, 4100, 0, true}, {33, 30, 0, false}, {50, 64, 1, true}} {
		t.Run(fmt.Sprintf("%dx%d_off%d_res%v", c.rows, c.cols, c.off, c.res), func(t *testing.T) {
			defer d.enter()()
			rows, cols, size := c.rows, c.cols, c.rows*c.cols
			vals := func(n int, lo float32) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = lo + rng.Float32()*(1-lo)
				}
				return v
			}
			g := vals(size+c.off, -1)
			for i := range g { // bf16-exact, as the bf16 gradient holds them
				g[i] = math.Float32frombits(math.Float32bits(g[i]) &^ 0xffff)
			}
			x, w, rstd, prior := vals(size+c.off, -1), vals(cols, -1), vals(rows, 0.5), vals(size+c.off, -1)
			bufs := make([]Buf, 5)
			for i, v := range [][]float32{g, x, w, rstd, prior} {
				if bufs[i], err = d.alloc(len(v)); err != nil {
					t.Fatal(err)
				}
				if err := upload(d, bufs[i], v); err != nil {
					t.Fatal(err)
				}
			}
			gh, errG := d.allocBF16(size + c.off)
			dxh, errH := d.allocBF16(size + c.off)
			dw, errW := d.alloc(cols)
			dx, errX := d.alloc(size + c.off)
			if err := errors.Join(errG, errH, errW, errX, d.castBF16(gh, bufs[0], size+c.off)); err != nil {
				t.Fatal(err)
			}
			res := Buf{}
			if c.res {
				res = bufs[4].Off(c.off)
			} else if err := upload(d, dx, prior); err != nil { // dx += the gradient
				t.Fatal(err)
			}
			dxOff, dxhOff := dx.Off(c.off), Buf{P: half(dxh, c.off), N: size}
			if err := d.rmsBackwardH(dxOff, dxhOff, res, dw, Buf{P: half(gh, c.off), N: size}, bufs[1].Off(c.off), bufs[2], bufs[3], rows, cols); err != nil {
				t.Fatal(err)
			}
			gotDX, gotDW := make([]float32, size+c.off), make([]float32, cols)
			if err := errors.Join(download(d, gotDX, dx), download(d, gotDW, dw)); err != nil {
				t.Fatal(err)
			}
			gotDXH := downloadBF16Rows(t, d, dxh, 1, size+c.off, size+c.off)
			wantDX, wantDW := make([]float32, size), make([]float64, cols)
			for r := range rows {
				rr, dot := float64(rstd[r]), 0.0
				for j := range cols {
					i := c.off + r*cols + j
					dot += float64(g[i]) * float64(w[j]) * float64(x[i]) * rr
				}
				dot /= float64(cols)
				for j := range cols {
					i := c.off + r*cols + j
					gv, xv := float64(g[i]), float64(x[i])
					wantDX[r*cols+j] = float32(float64(prior[i]) + rr*(gv*float64(w[j])-xv*rr*dot))
					wantDW[j] += gv * xv * rr
				}
			}
			dwWant := make([]float32, cols)
			for j, v := range wantDW {
				dwWant[j] = float32(v)
			}
			for _, chk := range []struct {
				name      string
				got, want []float32
				bound     float64
			}{
				{"dx", gotDX[c.off:], wantDX, 1e-5},
				{"dx bf16", gotDXH[c.off:], wantDX, 8e-3},
				{"dw", gotDW, dwWant, 1e-5},
			} {
				if r := relDiffFloor(chk.got, chk.want, 1); r > chk.bound || math.IsNaN(r) {
					t.Errorf("%s: relative difference %.3g (bound %g)", chk.name, r, chk.bound)
				}
			}
		})
	}
}

// TestConvColumns: the C-Abstractor's 3×3 convolutions' im2col_h3 and
// col2im_h3 against im2col_h and col2im_h (the generic kernels, any
// geometry) on the same inputs: the columns bit for bit, the input
// gradient up to the order of its nine-term sums. Grids square and not,
// with and without the reference's 14×14.
func TestConvColumns(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.enter()()
	rng := rand.New(rand.NewPCG(9, 10))
	for _, g := range []conv{{B: 2, H: 14, W: 14, C: 64}, {B: 3, H: 5, W: 5, C: 32}, {B: 1, H: 3, W: 7, C: 96}} {
		g.K, g.stride, g.pad, g.Ho, g.Wo = 3, 1, 1, g.H, g.W
		t.Run(fmt.Sprintf("%dx%dx%dx%d", g.B, g.H, g.W, g.C), func(t *testing.T) {
			defer d.enter()()
			pix := g.B * g.H * g.W
			x := make([]float32, pix*g.C)
			for i := range x {
				x[i] = rng.Float32()*2 - 1
			}
			xb, err := d.alloc(len(x))
			if err != nil {
				t.Fatal(err)
			}
			if err := upload(d, xb, x); err != nil {
				t.Fatal(err)
			}
			var cols [2]Buf
			var dx [2]Buf
			for i := range 2 {
				c, errC := d.allocBF16(pix * 9 * g.C)
				dd, errD := d.alloc(pix * g.C)
				if err := errors.Join(errC, errD, upload(d, dd, x)); err != nil { // dx starts at x: the kernels add
					t.Fatal(err)
				}
				cols[i], dx[i] = c, dd
			}
			generic := func(name string, f uintptr, n int, args ...any) error {
				return d.launch(name, f, ewGrid(n), block1(ewBlock), 0, args...)
			}
			if err := errors.Join(d.im2colH(cols[0], xb, g),
				generic("im2col_h", d.k.im2colH, pix*g.C, cols[1], xb, g.B, g.H, g.W, g.C, g.K, g.stride, g.pad, g.Ho, g.Wo)); err != nil {
				t.Fatal(err)
			}
			fast := downloadBF16Rows(t, d, cols[0], 1, pix*9*g.C, pix*9*g.C)
			slow := downloadBF16Rows(t, d, cols[1], 1, pix*9*g.C, pix*9*g.C)
			for i := range fast {
				if fast[i] != slow[i] {
					t.Fatalf("im2col_h3 entry %d (row %d, column %d) = %v, im2col_h %v", i, i/(9*g.C), i%(9*g.C), fast[i], slow[i])
				}
			}
			// the columns as an output gradient: col2im of the same entries
			if err := errors.Join(d.col2imAddH(dx[0], cols[0], g),
				generic("col2im_h", d.k.col2imH, pix*g.C, dx[1], cols[0], g.B, g.H, g.W, g.C, g.K, g.stride, g.pad, g.Ho, g.Wo)); err != nil {
				t.Fatal(err)
			}
			got, want := make([]float32, pix*g.C), make([]float32, pix*g.C)
			if err := errors.Join(download(d, got, dx[0]), download(d, want, dx[1])); err != nil {
				t.Fatal(err)
			}
			if r := relDiffFloor(got, want, 1); r > 1e-6 || math.IsNaN(r) {
				t.Errorf("col2im_h3 against col2im_h: relative difference %.3g (bound 1e-6)", r)
			}
		})
	}
}
