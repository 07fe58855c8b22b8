package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bf16Round is kernels.cu's bf16_rn for finite x: to nearest, ties to even.
func bf16Round(x float32) float32 {
	u := math.Float32bits(x)
	u = (u + 0x7fff + (u>>16)&1) &^ 0xffff
	return math.Float32frombits(u)
}

// flashReference is causal (or, s.bidirectional, unmasked by position),
// document-masked attention and its backward in float64: o, lse (natural
// log), dq, dk, dv for q [B·T, H·hd], k, v [B·T, KV·hd] and dO [B·T, H·hd].
func flashReference(s flashShape, q, k, v, dO []float32, docs []int32) (o, lse, dq, dk, dv []float64) {
	B, T, H, KV, hd := s.B, s.T, s.H, s.KV, s.hd
	qd, kvd := H*hd, KV*hd
	o, lse, dq = make([]float64, B*T*qd), make([]float64, B*H*T), make([]float64, B*T*qd)
	dk, dv = make([]float64, B*T*kvd), make([]float64, B*T*kvd)
	scale := 1 / math.Sqrt(float64(hd))
	p, dp := make([]float64, T), make([]float64, T)
	keys := func(i int) int { // keys 0 … keys(i)−1 are visible from query i
		if s.bidirectional {
			return T
		}
		return i + 1
	}
	for b := range B {
		for h := range H {
			g := h / (H / KV)
			qi := func(t, d int) int { return (b*T+t)*qd + h*hd + d }
			ki := func(t, d int) int { return (b*T+t)*kvd + g*hd + d }
			for i := range T {
				mx := math.Inf(-1)
				for j := range keys(i) {
					p[j] = math.Inf(-1)
					if docs[b*T+j] != docs[b*T+i] {
						continue
					}
					dot := 0.0
					for d := range hd {
						dot += float64(q[qi(i, d)]) * float64(k[ki(j, d)])
					}
					p[j] = dot * scale
					mx = max(mx, p[j])
				}
				sum := 0.0
				for j := range keys(i) {
					p[j] = math.Exp(p[j] - mx)
					sum += p[j]
				}
				lse[(b*H+h)*T+i] = mx + math.Log(sum)
				rowD := 0.0
				for j := range keys(i) {
					p[j] /= sum
					dp[j] = 0
					for d := range hd {
						o[qi(i, d)] += p[j] * float64(v[ki(j, d)])
						dp[j] += float64(dO[qi(i, d)]) * float64(v[ki(j, d)])
					}
					rowD += p[j] * dp[j]
				}
				for j := range keys(i) {
					ds := p[j] * (dp[j] - rowD) * scale
					for d := range hd {
						dq[qi(i, d)] += ds * float64(k[ki(j, d)])
						dk[ki(j, d)] += ds * float64(q[qi(i, d)])
						dv[ki(j, d)] += p[j] * float64(dO[qi(i, d)])
					}
				}
			}
		}
	}
	return o, lse, dq, dk, dv
}

// TestFlashAttention: the flash kernels against flashReference on
// bf16-rounded inputs, for each head width they are built for, with
// grouped kv heads, packed documents and T not a multiple of the tile.
// The bound covers P and dS rounded to bf16 as product operands.
func TestFlashAttention(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if d.cc < flashMinCC {
		t.Skipf("%s has no bf16 mma.sync: the flash kernels need sm_80 or later", d.SM)
	}
	for i, hd := range flashHeadDims {
		for _, k := range []struct {
			name string
			f    uintptr
		}{{"flash_fwd", d.k.flashFwd[i]}, {"flash_bwd", d.k.flashBwd[i]}, {"flash_fwd_bi", d.k.flashFwdBi[i]}, {"flash_bwd_bi", d.k.flashBwdBi[i]}} {
			regs, local, err := d.kernelResources(k.f)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("flash kernel %s_%d: %d registers, %d spilled bytes a thread\n", k.name, hd, regs, local)
		}
	}
	const bound = 2e-2
	for _, tc := range []struct {
		s    flashShape
		docs int
	}{
		{flashShape{B: 2, T: 100, H: 4, KV: 2, hd: 16}, 2},
		{flashShape{B: 1, T: 192, H: 2, KV: 1, hd: 32}, 3},
		{flashShape{B: 2, T: 130, H: 4, KV: 4, hd: 64}, 1},
		{flashShape{B: 1, T: 300, H: 2, KV: 1, hd: 64}, 3},
		{flashShape{B: 2, T: 200, H: 8, KV: 2, hd: 64}, 2},
		// Bidirectional, q, k and v column blocks of one [B·T, 3·H·hd]
		// buffer (the ViT's q|k|v), T not a multiple of the tiles.
		{flashShape{B: 3, T: 196, H: 4, KV: 4, hd: 64, bidirectional: true}, 1},
		{flashShape{B: 2, T: 50, H: 2, KV: 2, hd: 16, bidirectional: true}, 1},
		{flashShape{B: 2, T: 130, H: 2, KV: 2, hd: 32, bidirectional: true}, 1},
	} {
		s := tc.s
		name := fmt.Sprintf("B%d T%d H%d KV%d hd%d docs%d", s.B, s.T, s.H, s.KV, s.hd, tc.docs)
		if s.bidirectional {
			name += " bidirectional"
		}
		t.Run(name, func(t *testing.T) {
			defer d.enter()()
			n, qd, kvd := s.B*s.T, s.H*s.hd, s.KV*s.hd
			rng := rand.New(rand.NewPCG(5, uint64(s.hd)))
			fill := func(k int, sd float64) []float32 {
				x := make([]float32, k)
				for i := range x {
					x[i] = bf16Round(float32(rng.NormFloat64() * sd))
				}
				return x
			}
			q, k, v, dO := fill(n*qd, 1), fill(n*kvd, 1), fill(n*kvd, 1), fill(n*qd, 0.1)
			docs := make([]int32, n)
			for b := range s.B {
				for i := range s.T {
					docs[b*s.T+i] = int32(i * tc.docs / s.T)
				}
			}
			var bufs []Buf
			var errs []error
			take := func(k int) Buf {
				b, err := d.alloc(k)
				bufs, errs = append(bufs, b), append(errs, err)
				return b
			}
			defer func() {
				for _, b := range bufs {
					d.drv.call("cuMemFree", d.drv.cuMemFree, b.P)
				}
			}()
			qf, kf, vf, dOf := take(n*qd), take(n*kvd), take(n*kvd), take(n*qd)
			qh, kh, vh, dOh := take(n*qd), take(n*kvd), take(n*kvd), take(n*qd)
			o, oh, lse2, dvec := take(n*qd), take(n*qd), take(s.B*s.H*s.T), take(s.B*s.H*s.T)
			dq, dk, dv, db := take(n*qd), take(n*kvd), take(n*kvd), take(n)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(upload(d, qf, q), upload(d, kf, k), upload(d, vf, v), upload(d, dOf, dO), upload(d, db, docs),
				d.castBF16(qh, qf, n*qd), d.castBF16(kh, kf, n*kvd), d.castBF16(vh, vf, n*kvd), d.castBF16(dOh, dOf, n*qd)); err != nil {
				t.Fatal(err)
			}
			if s.bidirectional { // q|k|v as the ViT lays them out
				w := qd + 2*kvd
				qkv := take((n*w + 1) / 2)
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				if err := errors.Join(d.castBF16Rows(qkv, w, qf, qd, n), d.castBF16Rows(bf16Cols(qkv, qd), w, kf, kvd, n),
					d.castBF16Rows(bf16Cols(qkv, qd+kvd), w, vf, kvd, n)); err != nil {
					t.Fatal(err)
				}
				qh, kh, vh = qkv, bf16Cols(qkv, qd), bf16Cols(qkv, qd+kvd)
				s.ldq, s.ldkv = w, w
				// dk and dv come out in bf16, in a q|k|v gradient laid out
				// the same way
				dqkv := take((n*w + 1) / 2)
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				dk, dv = bf16Cols(dqkv, qd), bf16Cols(dqkv, qd+kvd)
			} else { // dv comes out in bf16, rows ldv apart (2 elements of padding here)
				s.ldv = kvd + 2
				dv = take((n*s.ldv + 1) / 2)
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
			}
			if err := errors.Join(d.flashForward(o, oh, lse2, qh, kh, vh, db, s),
				d.flashBackward(dq, dk, dv, dvec, qh, kh, vh, oh, dOh, lse2, db, s)); err != nil {
				t.Fatal(err)
			}
			wo, wl, wdq, wdk, wdv := flashReference(s, q, k, v, dO, docs)
			for _, c := range []struct {
				name string
				buf  Buf
				want []float64
				conv float64
			}{{"o", o, wo, 1}, {"lse", lse2, wl, math.Ln2}, {"dq", dq, wdq, 1}, {"dk", dk, wdk, 1}, {"dv", dv, wdv, 1}} {
				got := make([]float32, len(c.want))
				if s.bidirectional && (c.name == "dk" || c.name == "dv") {
					got = downloadBF16Rows(t, d, c.buf, n, kvd, s.ldkv)
				} else if c.name == "dv" {
					got = downloadBF16Rows(t, d, c.buf, n, kvd, s.ldv)
				} else if err := download(d, got, c.buf); err != nil {
					t.Fatal(err)
				}
				var diff, size float64
				for i, w := range c.want {
					g := float64(got[i]) * c.conv
					if math.IsNaN(g) {
						diff = math.Inf(1)
					}
					diff, size = max(diff, math.Abs(g-w)), max(size, math.Abs(w))
				}
				rel := diff / size
				fmt.Printf("flash %s %-3s max|Δ| %.2e, relative %.2e (bound %.0e)\n", t.Name(), c.name, diff, rel, bound)
				if !(rel <= bound) {
					t.Errorf("%s: relative difference %.3g > %.0g", c.name, rel, bound)
				}
			}
		})
	}
}

// downloadBF16Rows widens rows [rows, w] of the bf16 buffer b, ld elements
// apart, to float32.
func downloadBF16Rows(t *testing.T, d *Device, b Buf, rows, w, ld int) []float32 {
	t.Helper()
	words := make([]float32, ((rows-1)*ld+w+1)/2)
	if err := download(d, words, b); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 0, rows*w)
	for r := range rows {
		for c := range w {
			i := r*ld + c
			u := math.Float32bits(words[i/2]) // little-endian: element 2j in the low half
			if i%2 == 0 {
				u <<= 16
			} else {
				u &= 0xffff0000
			}
			out = append(out, math.Float32frombits(u))
		}
	}
	return out
}
