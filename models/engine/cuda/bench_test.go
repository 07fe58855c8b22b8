package cuda

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mmablate/mmablate/models"
)

// The benchmarks below measure the GPU; they skip, printing why, where
// there is none. Run them on the device with
//
//	go test -c -o cuda.test ./models/engine/cuda && ./cuda.test -test.run '^$' -test.bench . -test.benchtime 3x
//
// Each reports ns/op for its unit of work (one product, one training step,
// one part of a step) and the rates named by its metrics.

// timeOps runs f b.N times on a warm device and returns the seconds from
// the first call until the device has finished the last (the timer covers
// the same span), for rates per op.
func timeOps(b *testing.B, d *Device, f func() error) float64 {
	b.Helper()
	if err := f(); err != nil { // warm: first-touch, cuBLAS heuristics
		b.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	return b.Elapsed().Seconds()
}

// BenchmarkGemm: cuBLAS throughput per precision on the reference model's
// largest product (tokens × SwiGLU hidden × width) and on 4096³, zero
// data. bf16-native feeds bf16 operands (Device.gemmBF16: the decoder's
// linear products in bf16 precision); bf16 feeds fp32 ones that cuBLAS
// converts (CUBLAS_COMPUTE_32F_FAST_16BF: bf16 precision's other products).
func BenchmarkGemm(b *testing.B) {
	needGPU(b)
	d, err := Open(0)
	if err != nil {
		b.Fatal(err)
	}
	for _, sh := range [][3]int{{16384, 2816, 1024}, {4096, 4096, 4096}} {
		m, n, k := sh[0], sh[1], sh[2]
		exit := d.enter()
		a, errA := d.alloc(m * k)
		w, errW := d.alloc(n * k)
		c, errC := d.alloc(m * n)
		exit()
		if err := errors.Join(errA, errW, errC); err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"fp32", "tf32", "bf16", "bf16-native"} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, n, k, mode), func(b *testing.B) {
				defer d.enter()()
				run := func() error {
					switch mode {
					case "bf16-native":
						return d.gemmBF16(false, true, m, n, k, 1, a.P, k, w.P, k, 0, c.P, n)
					case "fp32":
						return d.gemm(FP32, false, true, m, n, k, 1, a.P, k, w.P, k, 0, c.P, n)
					case "tf32":
						return d.gemm(TF32, false, true, m, n, k, 1, a.P, k, w.P, k, 0, c.P, n)
					}
					return d.gemm(BF16, false, true, m, n, k, 1, a.P, k, w.P, k, 0, c.P, n)
				}
				sec := timeOps(b, d, run)
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/sec/1e12, "TFLOP/s")
			})
		}
		exit = d.enter()
		for _, x := range []Buf{a, w, c} {
			d.drv.call("cuMemFree", d.drv.cuMemFree, x.P)
		}
		exit()
	}
}

// referenceTrainer is the GPU reference decoder (batch 16 × 1024, text
// only) on a bf16 Trainer, closed when b ends, after two steps on its
// synthetic batch (benchTrainer).
func referenceTrainer(b *testing.B) (*Trainer, *models.Batch) {
	needGPU(b)
	const B, T = 16, 1024
	_, tr, batch := benchTrainer(b, models.GPUReferenceConfig(T, false), B, T)
	return tr, batch
}

// benchTrainer builds cfg's model for batches of B × T (B images at most)
// on a bf16 Trainer, its accelerator, and trains it two steps on its
// synthetic batch (with images if cfg has a vision tower), so that parts
// of a step timed alone run on a real step's activations whichever
// sub-benchmarks -test.bench selects. The benchmark's cleanup closes both.
func benchTrainer(b *testing.B, cfg models.Config, B, T int) (*models.Model, *Trainer, *models.Batch) {
	b.Helper()
	images := cfg.Vision != nil
	opts := models.Options{Seed: 1}
	if images {
		opts.MaxImages = B
	}
	m, err := models.New(cfg, B, T, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() }) // closes its accelerator too
	tr, err := NewTrainer(m, Options{Precision: BF16})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.SetAccelerator(tr); err != nil {
		tr.Close()
		b.Fatal(err)
	}
	batch := models.SyntheticBatch(cfg, B, T, images, 1)
	for range 2 {
		if _, err := m.Step(batch, 1e-4); err != nil {
			b.Fatal(err)
		}
	}
	return m, tr, batch
}

// BenchmarkDecoderProducts: each matrix product of a bf16 training step of
// the GPU reference decoder (BenchmarkDecoderStep's) alone, on the step's
// own buffers after two steps: per weight its forward, input-gradient (dx)
// and weight-gradient (dW) product, with the beta the step uses, as
// TFLOP/s and ms a step (× the layers) — where the linear parts' time
// goes.
func BenchmarkDecoderProducts(b *testing.B) {
	tr, _ := referenceTrainer(b)
	dd, n, c := tr.d, tr.n, tr.c
	a, lp := &tr.acts[0], tr.layers[0]
	type product struct {
		name       string
		x          Buf // the input's bf16 copy
		w, in, out int
		bf16Out    bool    // the forward writes bf16 (h1, h3)
		dxBeta     float32 // the step's beta of the dx product
		times      int
	}
	L := c.Layers
	products := []product{
		{"wq", a.anH, lp.wq, c.Width, tr.qd, false, 0, L},
		{"wk", a.anH, lp.wk, c.Width, tr.kvd, false, 1, L},
		{"wv", a.anH, lp.wv, c.Width, tr.kvd, false, 1, L},
		{"wo", a.attH, lp.wo, tr.qd, c.Width, false, 0, L},
		{"w1", a.mnH, lp.w1, c.Width, c.FFNHidden, true, 0, L},
		{"w3", a.mnH, lp.w3, c.Width, c.FFNHidden, true, 1, L},
		{"w2", a.ggH, lp.w2, c.FFNHidden, c.Width, false, 0, L},
		{"head", tr.fnH, tr.embed, c.Width, c.Vocab, false, 0, 1},
		// the fused input- and weight-gradient products of wq|wk|wv
		// (qkvBack; its forward row times the three forward products as one)
		{"wqkv", a.anH, lp.wq, c.Width, tr.qd + 2*tr.kvd, false, 0, L},
	}
	for _, p := range products {
		flop := 2 * float64(n) * float64(p.in) * float64(p.out)
		w := half(tr.wh, p.w)
		runs := []struct {
			kind string
			f    func() error
		}{
			{"forward", func() error {
				if p.bf16Out {
					return dd.gemmBF16Out(false, true, n, p.out, p.in, 1, p.x.P, p.in, w, p.in, 0, tr.doutH.P, p.out)
				}
				return dd.gemmBF16(false, true, n, p.out, p.in, 1, p.x.P, p.in, w, p.in, 0, tr.logits.P, p.out)
			}},
			{"dx", func() error {
				return dd.gemmBF16(false, false, n, p.in, p.out, 1, tr.doutH.P, p.out, w, p.in, p.dxBeta, tr.logits.P, p.in)
			}},
			{"dW", func() error {
				return dd.gemmBF16(true, false, p.out, p.in, n, 1, tr.doutH.P, p.out, p.x.P, p.in, 1, tr.g.At(p.w), p.in)
			}},
		}
		for _, r := range runs {
			b.Run(fmt.Sprintf("%s-%dx%dx%d-%s", p.name, n, p.out, p.in, r.kind), func(b *testing.B) {
				defer dd.enter()()
				sec := timeOps(b, dd, r.f)
				b.ReportMetric(flop*float64(b.N)/sec/1e12, "TFLOP/s")
				b.ReportMetric(1e3*sec/float64(b.N)*float64(p.times), "ms/step")
			})
		}
	}
}

// BenchmarkImageStep: bf16 training steps of the GPU-sized multimodal
// reference, the decoder of BenchmarkDecoderStep (batch 16 × 1024) behind
// a ViT-B/16 at 224 px (width 768, 12 blocks, 196 patches, trained) and
// each connector with 144 image tokens, one image per sequence, then the
// same model's step on a batch without images (BenchmarkImageParts splits
// the image path's time by part). MFU is the model's
// FLOPs (models.Model.FLOPs) per second over the H100/H200 dense bf16 peak.
func BenchmarkImageStep(b *testing.B) {
	needGPU(b)
	const B, T = 16, 1024
	for _, conn := range []models.ConnectorConfig{
		{Type: models.ConnCAbstractor, Tokens: 144, Depth: 1},
		{Type: models.ConnAvgPool, Tokens: 144},
	} {
		b.Run(conn.Type, func(b *testing.B) {
			m, tr, batch := imageTrainer(b, conn, B, T)
			cfg := m.Config
			fwd, bwd := m.FLOPs(B)
			flop := float64(fwd + bwd)
			b.Run("step", func(b *testing.B) {
				// Each step's gap before it (cuda.Trainer.IdleTime) is
				// counted once the step has read its loss back. The gap
				// before the first timed step holds the synchronised
				// warm-up and the timer's reset, which a steady stream of
				// steps does not have, so the idle time counts from the
				// second timed step on: b.N−1 gaps.
				var (
					loss  float64
					idle0 time.Duration
					i     int
				)
				sec := timeOps(b, tr.Device(), func() error {
					st, err := m.Step(batch, 1e-4)
					loss = st.Loss
					if i++; i == 2 { // the first timed step (timeOps warms up with one)
						idle0, _ = tr.IdleTime()
					}
					return err
				})
				b.ReportMetric(float64(B*T*b.N)/sec, "tokens/s")
				b.ReportMetric(float64(B*b.N)/sec, "images/s")
				b.ReportMetric(flop*float64(b.N)/sec/1e12, "TFLOP/s")
				b.ReportMetric(100*flop*float64(b.N)/sec/PeakBF16, "MFU%")
				if idle, ok := tr.IdleTime(); ok && b.N > 1 {
					b.ReportMetric(float64(idle-idle0)/float64(time.Millisecond)/float64(b.N-1), "idle-ms/step")
				}
				b.Logf("%s, %s with %d image tokens: loss %.4f", tr.Device().Name, conn.Type, conn.Tokens, loss)
			})
			text := models.SyntheticBatch(cfg, B, T, false, 1)
			b.Run("step-without-images", func(b *testing.B) {
				sec := timeOps(b, tr.Device(), func() error {
					_, err := m.Step(text, 1e-4)
					return err
				})
				b.ReportMetric(1e3*sec/float64(b.N), "ms/step")
			})
		})
	}
}

// imageTrainer is the multimodal reference (models.GPUReferenceConfig
// with conn, B images of a batch B × T) on benchTrainer.
func imageTrainer(b *testing.B, conn models.ConnectorConfig, B, T int) (*models.Model, *Trainer, *models.Batch) {
	b.Helper()
	cfg := models.GPUReferenceConfig(T, true)
	cfg.Connector = &conn
	return benchTrainer(b, cfg, B, T)
}

// BenchmarkDecoderStep: bf16 training steps of the GPU reference decoder
// (batch 16 × 1024, text only), then each part of the step alone, repeated
// and synchronised, reported as ms/step (a per-layer part times the 12
// layers); the summary it prints adds them up against the step. With
// flash attention the attention is two parts; without it (fp32, tf32, a
// GPU before sm_80) the products' parts include their softmax, which is
// also timed alone and subtracted in the summary.
func BenchmarkDecoderStep(b *testing.B) {
	tr, batch := referenceTrainer(b)
	B, T, m, d := tr.B, tr.T, tr.m, tr.c
	fwd, bwd := m.FLOPs(0)
	flop := float64(fwd + bwd)
	var stepMS float64
	b.Run("step", func(b *testing.B) {
		sec := timeOps(b, tr.Device(), func() error {
			_, err := tr.Step(batch, 1e-4)
			return err
		})
		stepMS = 1e3 * sec / float64(b.N)
		b.ReportMetric(float64(B*T*b.N)/sec, "tokens/s")
		b.ReportMetric(flop*float64(b.N)/sec/1e12, "TFLOP/s")
		b.ReportMetric(100*flop*float64(b.N)/sec/PeakBF16, "MFU%")
	})
	n, D, F, V, L := tr.n, d.Width, d.FFNHidden, d.Vocab, d.Layers
	a, lp, dd := &tr.acts[0], tr.layers[0], tr.d
	type part struct {
		name  string
		times int // per step
		f     func() error
	}
	attn := []part{
		{"attention-products-and-softmax", L, func() error { return tr.attention(a) }},
		{"attention-softmax", L, func() error {
			p := a.probs
			if tr.attnH { // the scores are in scratch, the probabilities go to probsH
				p = tr.scratch
			}
			return dd.attnSoftmax(p, a.probsH, tr.docs, B, d.Heads, T, tr.bs, true)
		}},
		{"attention-backward-products-and-softmax", L, func() error { return tr.attentionBack(a) }},
		{"attention-softmax-backward", L, func() error {
			return dd.attnSoftmaxBackward(tr.scratch, a.probs, a.probsH, tr.scratchH, B*d.Heads, T, tr.bs, true)
		}},
	}
	if tr.flash {
		attn = []part{
			{"attention-flash-forward", L, func() error { return tr.attention(a) }},
			{"attention-flash-backward", L, func() error { return tr.attentionBack(a) }},
		}
	} else {
		attn = append(attn, part{"attention-output-to-bf16", L, func() error { // the one separate cast of the forward
			return tr.toBF16(a.attH, a.att, n*tr.qd)
		}})
	}
	parts := append(attn, []part{
		{"linear-forward-products", L, func() error {
			return errors.Join(tr.qkvForward(a, lp), tr.branchOut(a.att, a.attH, lp.wo, tr.qd),
				tr.linearH(a.h1H, a.mnH, lp.w1, n, D, F), tr.linearH(a.h3H, a.mnH, lp.w3, n, D, F),
				tr.branchOut(a.gg, a.ggH, lp.w2, F))
		}},
		{"linear-backward-products", L, func() error { // dx and dW of the 7 products
			return errors.Join(tr.linearBackH(tr.dGH, tr.dxH, a.ggH, lp.w2, n, F, D, 0),
				tr.toNorm(tr.dG, tr.dGH, a.mn, a.mnH, lp.w1, F, 0), tr.toNorm(tr.dH3, tr.dH3H, a.mn, a.mnH, lp.w3, F, 1),
				tr.woBack(a, lp, tr.dhH),
				tr.qkvBack(a, lp))
		}},
		{"residual-adds-and-norms-forward", L, func() error {
			return errors.Join(tr.addNorm(a.h, a.mn, a.mnH, a.mrstd, tr.xs[0], lp.mlpNorm),
				tr.addNorm(tr.xs[1], a.an, a.anH, a.arstd, a.h, lp.attnNorm))
		}},
		{"qk-norms-and-rope-forward", L, func() error { // the reference decoder has qk-norm
			qIn, kIn := tr.qkIn(a)
			return errors.Join(dd.qkNormRope(a.qRot, a.qRotH, a.qrstd, qIn, tr.w.Off(lp.qNorm), tr.pos, tr.cos, tr.sin, n, d.Heads, tr.hd, normEps),
				dd.qkNormRope(a.kRot, a.kRotH, a.krstd, kIn, tr.w.Off(lp.kNorm), tr.pos, tr.cos, tr.sin, n, d.KVHeads, tr.hd, normEps))
		}},
		{"swiglu-forward", L, func() error { return dd.swigluForwardH(a.ggH, a.h1H, a.h3H, n*F) }},
		{"swiglu-backward", L, func() error { // dg from doutH: in place it would compound over the repeats
			return dd.swigluBackwardH(tr.dGH, tr.dH3H, tr.doutH, a.h1H, a.h3H, n*F)
		}},
		{"norms-backward", L, func() error {
			return errors.Join(tr.normBack(tr.dh, tr.dhH, tr.dx, lp.mlpNorm, a.h, a.mrstd),
				tr.normBack(tr.dx, tr.dxH, tr.dh, lp.attnNorm, tr.xs[0], a.arstd))
		}},
		{"qk-norms-and-rope-backward", L, func() error {
			S := tr.qd + 2*tr.kvd
			qIn, kIn := tr.qkIn(a)
			return errors.Join(dd.qkNormRopeBackward(tr.dq, tr.dqkvH, tr.g.Off(lp.qNorm), tr.dqRot, qIn, tr.w.Off(lp.qNorm), a.qrstd, tr.pos, tr.cos, tr.sin, n, d.Heads, tr.hd, S),
				dd.qkNormRopeBackward(tr.dk, bf16Cols(tr.dqkvH, tr.qd), tr.g.Off(lp.kNorm), tr.dkRot, kIn, tr.w.Off(lp.kNorm), a.krstd, tr.pos, tr.cos, tr.sin, n, d.KVHeads, tr.hd, S))
		}},
		// With ce_fused (the reference's vocabulary) the cross-entropy's
		// gradient is made in the forward, and the backward is the products.
		{"head-logits-and-cross-entropy-forward", 1, func() error { return tr.head(1e-5) }},
		{"head-cross-entropy-and-logits-backward", 1, func() error {
			var err error
			if !tr.fusedCE() {
				err = dd.ceBackward(Buf{}, tr.doutH, tr.logits, tr.ceStats, tr.tgt, tr.mask, n, V, 1e-5)
			}
			return errors.Join(err, tr.toNorm(Buf{}, tr.doutH, tr.fn, tr.fnH, tr.embed, V, 0))
		}},
		{"gradient-norm-and-adamw", 1, func() error {
			_, err := dd.reduce(tr.partials, tr.g, tr.g.N, true)
			return errors.Join(err, dd.launch("adamw", dd.k.adamw, grid1(tr.chunks), block1(ewBlock), 0,
				tr.w, tr.g, tr.mom, tr.vel, tr.chunkLo, tr.chunkHi, tr.chunkFlags, tr.chunkLR, float32(1),
				float32(0.9), float32(0.95), float32(1e-8), float32(0), float32(1), float32(1), float32(0), tr.wh))
		}},
	}...)
	ms := make([]float64, len(parts))
	for i, p := range parts {
		b.Run(p.name, func(b *testing.B) {
			defer dd.enter()()
			sec := timeOps(b, dd, p.f)
			ms[i] = 1e3 * sec / float64(b.N) * float64(p.times)
			b.ReportMetric(ms[i], "ms/step")
		})
	}
	// The summary: the attention parts less their softmax, and their sum
	// against the whole step's time. Printed, not logged: a benchmark
	// that runs sub-benchmarks does not show its own log. Only when every
	// part ran (-test.bench may select some).
	if stepMS == 0 || slices.Contains(ms, 0) {
		return
	}
	if !tr.flash {
		ms[0] -= ms[1]
		ms[2] -= ms[3]
	}
	total := 0.0
	for i, p := range parts {
		total += ms[i]
		fmt.Printf("  %-48s %7.2f ms/step\n", p.name, ms[i])
	}
	fmt.Printf("decoder step %.1f ms (%s, bf16, flash attention %v); the parts above sum to %.1f ms (the attention parts less any softmax timed alone)\n",
		stepMS, dd.Name, tr.flash, total)
}

// BenchmarkImageParts: where the multimodal reference's image path spends
// its time (BenchmarkImageStep's model, cabstractor), each part alone,
// repeated and synchronised, as ms/step (a per-block part times the ViT's
// 12 blocks); the summary adds them up against the image path's passes
// timed whole.
func BenchmarkImageParts(b *testing.B) {
	needGPU(b)
	const B, T = 16, 1024
	_, tr, _ := imageTrainer(b, models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 144, Depth: 1}, B, T)
	ip, d := tr.img, tr.d
	parts := ip.benchParts(B)
	ms := make([]float64, len(parts))
	for i, p := range parts {
		b.Run(p.name, func(b *testing.B) {
			defer d.enter()()
			sec := timeOps(b, d, p.f)
			ms[i] = 1e3 * sec / float64(b.N) * float64(p.times)
			b.ReportMetric(ms[i], "ms/step")
		})
	}
	if slices.Contains(ms, 0) {
		return
	}
	for i, p := range parts {
		fmt.Printf("  %-40s %7.3f ms/step\n", p.name, ms[i])
	}
}

// benchPart is one timed part of a pass: f runs it once; times is how
// often a step runs it.
type benchPart struct {
	name  string
	times int
	f     func() error
}

// benchParts are the image path's parts: the whole passes, then block
// 0's operations in bf16 (each run once per ViT block per step).
func (ip *imagePath) benchParts(K int) []benchPart {
	d, n, dv, F, L, tr := ip.d, K*ip.np, ip.dv, ip.F, ip.depth, ip.tr
	b, a, x, w, g, wh := ip.blocks[0], &ip.acts[0], ip.xs[0], tr.w, tr.g, tr.wh
	if !ip.bf16 {
		panic("benchParts times the bf16 image path")
	}
	return []benchPart{
		{"vit-forward", 1, func() error { return ip.vitForward(K) }},
		{"vit-backward", 1, func() error { return ip.vitBackward(K) }},
		{"connector-forward", 1, func() error { return ip.conn.forward(K) }},
		{"connector-backward", 1, func() error { return ip.conn.backward(K, true) }},
		{"block-layernorms-forward", L, func() error {
			return errors.Join(d.layerNormH(a.a1H, a.mean1, a.rstd1, x, w.Off(b.ln1W), w.Off(b.ln1B), n, dv, normEps),
				d.layerNormH(a.a2H, a.mean2, a.rstd2, a.h, w.Off(b.ln2W), w.Off(b.ln2B), n, dv, normEps))
		}},
		{"block-linear-forward-products", L, func() error { // with their biases and residuals (gemmBF16Bias)
			return errors.Join(
				d.gemmBF16Bias(true, false, true, n, 3*dv, dv, a.a1H.P, dv, half(wh, b.qkvW), dv, w.Off(b.qkvB), half(wh, b.qkvB), Buf{}, a.qkvH),
				d.gemmBF16Bias(false, false, true, n, dv, dv, a.oH.P, dv, half(wh, b.projW), dv, w.Off(b.projB), 0, x, a.h),
				d.gemmBF16Bias(true, false, true, n, F, dv, a.a2H.P, dv, half(wh, b.fc1W), dv, w.Off(b.fc1B), half(wh, b.fc1B), Buf{}, a.hidH),
				d.gemmBF16Bias(false, false, true, n, dv, F, a.actH.P, F, half(wh, b.fc2W), F, w.Off(b.fc2B), 0, a.h, ip.xs[1]))
		}},
		{"block-attention-forward", L, func() error { return ip.attentionH(a, K) }},
		{"block-gelu-forward", L, func() error { return d.geluH(a.actH, a.hidH, n*F) }},
		{"block-linear-backward-products", L, func() error {
			return errors.Join(
				tr.linearBackH(ip.dhidH, ip.dxH, a.actH, b.fc2W, n, F, dv, 0),
				tr.linearBackH(ip.daH, ip.dhidH, a.a2H, b.fc1W, n, dv, F, 0),
				tr.linearBackH(ip.doH, ip.dxH, a.oH, b.projW, n, dv, dv, 0),
				tr.linearBackH(ip.daH, ip.dqkvH, a.a1H, b.qkvW, n, dv, 3*dv, 0))
		}},
		{"block-bias-gradients", L, func() error {
			return errors.Join(d.colsumAdd(g.Off(b.fc2B), ip.dx, n, dv), d.colsumAddH(g.Off(b.fc1B), ip.dhidH, n, F),
				d.colsumAdd(g.Off(b.projB), ip.dx, n, dv), d.colsumAddH(g.Off(b.qkvB), ip.dqkvH, n, 3*dv))
		}},
		{"block-gelu-backward", L, func() error { return d.geluBackwardH(ip.dhidH, a.hidH, n*F) }},
		{"block-layernorms-backward", L, func() error {
			return errors.Join(
				d.layerNormBackwardH(ip.dx, ip.dxH, g.Off(b.ln2W), g.Off(b.ln2B), Buf{}, ip.daH, a.h, w.Off(b.ln2W), a.mean2, a.rstd2, n, dv),
				d.layerNormBackwardH(ip.dx, ip.dxH, g.Off(b.ln1W), g.Off(b.ln1B), Buf{}, ip.daH, x, w.Off(b.ln1W), a.mean1, a.rstd1, n, dv))
		}},
		{"block-attention-backward", L, func() error { return ip.attentionBackH(a, K) }},
	}
}

// BenchmarkStepPhases: a training step of the text reference and of the
// multimodal one (cabstractor, with and without images) split into its
// phases, each repeated alone and synchronised: the forward with its loss
// read-back, the backward, the gradient norm, the AdamW update. "launch"
// is the host's time to issue one backward without waiting for the GPU:
// where it nears the backward's GPU time, kernel launches bound the step.
func BenchmarkStepPhases(b *testing.B) {
	for _, c := range referenceSteps(b, true) {
		tr, d := c.tr, c.tr.d
		phases := []benchPart{
			{"forward", 1, func() error { _, err := tr.forward(c.batch); return err }},
			{"backward", 1, tr.backward},
			{"grad-norm", 1, func() error { _, err := d.reduce(tr.partials, tr.g, tr.g.N, true); return err }},
			{"adamw", 1, func() error { return tr.update(1, 1e-9) }},
		}
		ms := make([]float64, len(phases))
		for i, p := range phases {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				defer d.enter()()
				if i == 1 { // backward needs this batch's forward activations
					if _, err := tr.forward(c.batch); err != nil {
						b.Fatal(err)
					}
				}
				sec := timeOps(b, d, p.f)
				ms[i] = 1e3 * sec / float64(b.N)
				b.ReportMetric(ms[i], "ms/step")
			})
		}
		b.Run(c.name+"/backward-launch", func(b *testing.B) {
			defer d.enter()()
			if _, err := tr.forward(c.batch); err != nil {
				b.Fatal(err)
			}
			var host time.Duration
			for range b.N {
				if err := d.Sync(); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := tr.backward(); err != nil {
					b.Fatal(err)
				}
				host += time.Since(t0)
			}
			if err := d.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(host)/float64(time.Millisecond)/float64(b.N), "host-ms/step")
		})
		if !slices.Contains(ms, 0) {
			fmt.Printf("%s: forward %.2f, backward %.2f, grad norm %.2f, adamw %.2f ms (%d params, %d AdamW chunks)\n",
				c.name, ms[0], ms[1], ms[2], ms[3], tr.m.Params.Len(), tr.chunks)
		}
	}
}

// BenchmarkGemmTuning: training steps of the text and the multimodal
// reference with the bf16 products on cuBLASLt's tuned algorithms
// (Device.lt) and on cublasGemmEx, alternating in rounds on one trainer
// so that the GPU's clock drift falls on both alike.
func BenchmarkGemmTuning(b *testing.B) {
	for _, c := range referenceSteps(b, false) {
		d := c.tr.d
		tuner := d.lt
		if tuner == nil {
			b.Skip("cuBLASLt did not load")
		}
		const rounds, steps = 4, 8
		run := func(lt *ltTuner) time.Duration {
			d.lt = lt
			defer func() { d.lt = tuner }()
			if err := d.Sync(); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			for range steps {
				if _, err := c.tr.Step(c.batch, 1e-4); err != nil {
					b.Fatal(err)
				}
			}
			if err := d.Sync(); err != nil {
				b.Fatal(err)
			}
			return time.Since(t0)
		}
		b.Run(c.name, func(b *testing.B) {
			var tuned, plain time.Duration
			for range b.N {
				for range rounds {
					tuned += run(tuner)
					plain += run(nil)
				}
			}
			per := float64(b.N * rounds * steps)
			b.ReportMetric(float64(tuned)/per/1e6, "tuned-ms/step")
			b.ReportMetric(float64(plain)/per/1e6, "gemmex-ms/step")
			moved := 0
			for _, p := range tuner.plans {
				if p != nil && p.best != 0 {
					moved++
				}
			}
			fmt.Printf("%s: tuned cuBLASLt %.2f ms/step, cublasGemmEx %.2f ms/step (%d shapes tuned, %d off the heuristic's first)\n",
				c.name, float64(tuned)/per/1e6, float64(plain)/per/1e6, len(tuner.plans), moved)
		})
	}
}

// referenceStep is a trainer and the batch a benchmark steps it on.
type referenceStep struct {
	name  string
	tr    *Trainer
	batch *models.Batch
}

// referenceSteps builds the text reference and the multimodal one
// (cabstractor) on benchTrainer, B 16 × T 1024; withTextBatch adds the
// multimodal model on a batch without images.
func referenceSteps(b *testing.B, withTextBatch bool) []referenceStep {
	needGPU(b)
	const B, T = 16, 1024
	_, text, textBatch := benchTrainer(b, models.GPUReferenceConfig(T, false), B, T)
	_, mm, imageBatch := imageTrainer(b, models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 144, Depth: 1}, B, T)
	steps := []referenceStep{{"text", text, textBatch}, {"images", mm, imageBatch}}
	if withTextBatch {
		steps = append(steps, referenceStep{"images-model-text-batch", mm, models.SyntheticBatch(mm.m.Config, B, T, false, 1)})
	}
	return steps
}

// BenchmarkStepProfile: where a training step of the text and the
// multimodal reference spends its GPU time, kernel by kernel and product
// shape by shape (Device's profiler: each call between two events), over
// a few steps after warm-up; it prints the largest parts.
func BenchmarkStepProfile(b *testing.B) {
	for _, c := range referenceSteps(b, false) {
		d := c.tr.d
		b.Run(c.name, func(b *testing.B) {
			step := func() {
				if _, err := c.tr.Step(c.batch, 1e-4); err != nil {
					b.Fatal(err)
				}
			}
			step()
			step()
			if err := d.startProfile(); err != nil {
				b.Skip(err)
			}
			for range b.N {
				step()
			}
			var parts []profileEntry
			var err error
			func() {
				defer d.enter()()
				parts, err = d.stopProfile()
			}()
			if err != nil {
				b.Fatal(err)
			}
			total := 0.0
			for _, p := range parts {
				total += p.MS
			}
			n := float64(b.N)
			fmt.Printf("%s: %d names, %.2f ms/step summed (side stream counted in full)\n", c.name, len(parts), total/n)
			for i, p := range parts {
				if i == 60 {
					break
				}
				fmt.Printf("  %8.3f ms/step %5.1f calls/step  %s\n", p.MS/n, float64(p.Calls)/n, p.Name)
			}
		})
	}
}

// BenchmarkBandwidthKernels: memory-bound kernels alone at the reference
// step's sizes, in GB/s of the bytes each must move: the decoder's RMSNorm
// backward and flash attention's row terms (16384 rows of width 1024; 16
// heads of 64), and the C-Abstractor's columns and pooling backward (16
// grids of 14×14×768, pooled to 12×12).
func BenchmarkBandwidthKernels(b *testing.B) {
	needGPU(b)
	d, err := Open(0)
	if err != nil {
		b.Fatal(err)
	}
	const n, dim = 16384, 1024
	exit := d.enter()
	var bufs [9]Buf
	var errs []error
	for i := range bufs {
		var err error
		bufs[i], err = d.alloc(n * dim)
		errs = append(errs, err)
	}
	exit()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	dx, dxh, res, dw, douth, x, w, rstd := bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5], bufs[6], bufs[7]
	rmsBytes := float64(n*dim) * (2 + 4 + 4 + 4 + 2) // douth, x, res in; dx, dxh out
	report := func(b *testing.B, sec, bytes float64) {
		b.ReportMetric(bytes*float64(b.N)/sec/1e9, "GB/s")
		b.ReportMetric(1e6*sec/float64(b.N), "µs/call")
	}
	b.Run("rmsnorm", func(b *testing.B) {
		defer d.enter()()
		report(b, timeOps(b, d, func() error {
			return d.rmsBackwardH(dx, dxh, res, dw, douth, x, w, rstd, n, dim)
		}), rmsBytes)
	})
	s := flashShape{B: 16, T: 1024, H: 16, KV: 4, hd: 64}
	dotBytes := float64(n*dim) * (2 + 2 + 4)
	b.Run("flash_dot", func(b *testing.B) {
		defer d.enter()()
		report(b, timeOps(b, d, func() error { return d.flashDot(bufs[8], dx, dxh, douth, s) }), dotBytes)
	})
	g := conv{B: 16, H: 14, W: 14, C: 768, K: 3, stride: 1, pad: 1, Ho: 14, Wo: 14}
	pix := g.B * g.H * g.W
	b.Run("im2col", func(b *testing.B) { // x in, bf16 columns out
		defer d.enter()()
		report(b, timeOps(b, d, func() error { return d.im2colH(dxh, x, g) }), float64(pix*g.C)*(4+9*2))
	})
	b.Run("col2im", func(b *testing.B) { // bf16 columns in, dx read and written
		defer d.enter()()
		report(b, timeOps(b, d, func() error { return d.col2imAddH(dx, dxh, g) }), float64(pix*g.C)*(9*2+4+4))
	})
	b.Run("avgpool-backward", func(b *testing.B) { // dout in, dx read and written
		defer d.enter()()
		report(b, timeOps(b, d, func() error { return d.avgPoolBackward(dx, x, g.B, g.H, g.W, g.C, 12, 12) }),
			float64(g.B*g.C)*(12*12*4+float64(g.H*g.W)*8))
	})
}
