package models

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/internal/allocs"
)

// genLogitTol bounds |cached − uncached| for any logit. The two paths
// multiply the same float32 numbers in other groupings (one query against a
// cache row versus full causal blocks), so they agree to rounding only.
const genLogitTol = 1e-5

// genDecoder is tinyDecoder (GQA: 4 query heads on 2 KV heads) with room
// for prompts of a few images.
func genDecoder() DecoderConfig {
	d := tinyDecoder()
	d.MaxSeq = 64
	return d
}

func genMultimodal(kind string) Config {
	c := tinyMultimodal(kind, 4, false)
	c.Decoder = genDecoder()
	return c
}

// newGenModel builds a model whose weights are perturbed away from their
// init (norm weights off one, larger embeddings), so logits are O(1) and
// the comparisons below are not between near-zero numbers.
func newGenModel(t testing.TB, cfg Config, opts Options) *Model {
	t.Helper()
	m, err := New(cfg, 1, 32, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	rng := rand.New(rand.NewPCG(opts.Seed, 7))
	for _, p := range m.Params.All() {
		for i := range p.Data() {
			p.Data()[i] += float32(0.1 * rng.NormFloat64())
		}
	}
	return m
}

func newGen(t testing.TB, m *Model, batch, ctx int) *Generator {
	t.Helper()
	g, err := NewGenerator(m, batch, ctx, int32(m.Config.Decoder.Vocab-1))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// genPrompt is `(<image>×N text[textLen])×images text[tail]`: the shape of
// a few-shot prompt, with random text ids (never the placeholder V−1).
func genPrompt(rng *rand.Rand, cfg Config, images, textLen, tail int) Prompt {
	V := int32(cfg.Decoder.Vocab)
	var p Prompt
	text := func(n int) {
		for range n {
			p.Tokens = append(p.Tokens, rng.Int32N(V-1))
		}
	}
	for range images {
		for range cfg.Connector.Tokens {
			p.Tokens = append(p.Tokens, V-1)
		}
		text(textLen)
		R := cfg.Vision.Resolution
		for range 3 * R * R {
			p.Images = append(p.Images, float32(rng.NormFloat64()))
		}
	}
	text(tail)
	return p
}

// trace is what one row went through: the logits before each choice.
type trace struct {
	logits [][]float32
	out    []int32
}

// runTraced prefills and steps to the end, recording every row's logits.
func runTraced(t *testing.T, g *Generator, prompts []Prompt, maxNew int, stop []int32) []trace {
	t.Helper()
	if err := g.Prefill(prompts, maxNew, stop); err != nil {
		t.Fatal(err)
	}
	tr := make([]trace, len(prompts))
	for {
		for r := range prompts {
			if l := g.Logits(r); l != nil {
				tr[r].logits = append(tr[r].logits, slices.Clone(l))
			}
		}
		active, err := g.Step()
		if err != nil {
			t.Fatal(err)
		}
		if active == 0 {
			break
		}
	}
	for r := range prompts {
		tr[r].out = slices.Clone(g.Output(r))
	}
	return tr
}

// fullLogits runs the training model's Forward on prompt + generated as
// one document and returns its logits [T, V].
func fullLogits(t *testing.T, src *Model, p Prompt, gen []int32) []float32 {
	t.Helper()
	cfg := src.Config
	seq := append(slices.Clone(p.Tokens), gen...)
	T := len(seq)
	m, err := New(cfg, 1, T, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.CopyWeights(src); err != nil {
		t.Fatal(err)
	}
	b := &Batch{B: 1, T: T, Tokens: seq, Targets: make([]int32, T), LossMask: make([]float32, T),
		Pos: make([]int32, T), DocIDs: make([]int32, T), ImageTokenID: int32(cfg.Decoder.Vocab - 1), Images: p.Images}
	for i := range b.Pos {
		b.Pos[i] = int32(i)
	}
	if cfg.Vision != nil {
		b.NumImages = len(p.Images) / (3 * cfg.Vision.Resolution * cfg.Vision.Resolution)
	}
	if _, err := m.Forward(b); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(m.Logits())
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// TestGenerateMatchesFullForward: the logits behind every generated token
// equal those of the training model's full forward over the prompt plus
// the tokens generated so far, for GQA with and without QK-norm, with
// images (one ViT call per image when the model's image budget is 1).
func TestGenerateMatchesFullForward(t *testing.T) {
	noQK := genDecoder()
	noQK.QKNorm, noQK.KVHeads = false, 4
	cases := []struct {
		name   string
		cfg    Config
		opts   Options
		images []int
	}{
		{"text_gqa_qk_norm", Config{Decoder: genDecoder()}, Options{Seed: 1}, []int{0, 0, 0}},
		{"text_mha_no_qk_norm", Config{Decoder: noQK}, Options{Seed: 2}, []int{0, 0, 0}},
		{"avgpool_one_image_per_call", genMultimodal(ConnAvgPool), Options{Seed: 3, MaxImages: 1}, []int{2, 0, 1}},
		{"cabstractor_pool", genMultimodal(ConnCAbstractor), Options{Seed: 4, Workers: 2}, []int{1, 2, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newGenModel(t, c.cfg, c.opts)
			g := newGen(t, m, len(c.images), 48)
			rng := rand.New(rand.NewPCG(c.opts.Seed, 1))
			prompts := make([]Prompt, len(c.images))
			for i, k := range c.images {
				prompts[i] = genPrompt(rng, c.cfg, k, 3, 2+5*i)
			}
			const maxNew = 10
			worst, scale := 0.0, 0.0
			for r, tr := range runTraced(t, g, prompts, maxNew, nil) {
				if len(tr.out) != maxNew || len(tr.logits) != maxNew {
					t.Fatalf("row %d: %d tokens and %d logit rows, want %d of each", r, len(tr.out), len(tr.logits), maxNew)
				}
				V := c.cfg.Decoder.Vocab
				full := fullLogits(t, m, prompts[r], tr.out[:maxNew-1])
				n := len(prompts[r].Tokens)
				for j, got := range tr.logits {
					d := maxAbsDiff(got, full[(n-1+j)*V:(n+j)*V])
					worst = max(worst, d)
					scale = max(scale, maxAbsDiff(got, make([]float32, V)))
					if d > genLogitTol {
						t.Errorf("row %d, generated token %d: logits differ from the full forward by %.2e", r, j, d)
					}
				}
			}
			t.Logf("largest |cached − full forward| logit difference %.2e (largest |logit| %.2f)", worst, scale)
		})
	}
}

// TestGenerateBatchedEqualsSingle: prompts of different lengths and image
// counts decode to the same tokens and logits together (packed into
// several prefill passes, rows finishing at different steps) as alone, and
// Generate splits more prompts than the batch holds into batches.
func TestGenerateBatchedEqualsSingle(t *testing.T) {
	cfg := genMultimodal(ConnAttnPool)
	m := newGenModel(t, cfg, Options{Seed: 5, Workers: 2})
	rng := rand.New(rand.NewPCG(5, 1))
	prompts := []Prompt{
		genPrompt(rng, cfg, 1, 4, 2),
		genPrompt(rng, cfg, 0, 0, 9),
		genPrompt(rng, cfg, 3, 2, 1),
		genPrompt(rng, cfg, 2, 5, 3),
		genPrompt(rng, cfg, 0, 0, 1),
	}
	const maxNew = 8
	single := newGen(t, m, 1, 32)
	var want []trace
	for _, p := range prompts {
		want = append(want, runTraced(t, single, []Prompt{p}, maxNew, nil)[0])
	}
	// A stop id that some rows emit and others do not, so rows finish at
	// different steps while the rest keep decoding.
	stop := []int32{want[0].out[2]}
	var wantStopped [][]int32
	for r, p := range prompts {
		tr := runTraced(t, single, []Prompt{p}, maxNew, stop)[0]
		wantStopped = append(wantStopped, tr.out)
		if r == 0 && len(tr.out) > 2 {
			t.Fatalf("row 0 ran past its stop id: %v", tr.out)
		}
	}

	batched := newGen(t, m, len(prompts), 32)
	for r, got := range runTraced(t, batched, prompts, maxNew, nil) {
		if !slices.Equal(got.out, want[r].out) {
			t.Errorf("row %d: batched %v, alone %v", r, got.out, want[r].out)
		}
		for j := range min(len(got.logits), len(want[r].logits)) {
			if d := maxAbsDiff(got.logits[j], want[r].logits[j]); d > genLogitTol {
				t.Errorf("row %d, token %d: batched logits differ from alone by %.2e", r, j, d)
			}
		}
	}
	for r, got := range runTraced(t, batched, prompts, maxNew, stop) {
		if !slices.Equal(got.out, wantStopped[r]) {
			t.Errorf("row %d with stop %v: batched %v, alone %v", r, stop, got.out, wantStopped[r])
		}
	}

	res, err := newGen(t, m, 2, 32).Generate(context.Background(), prompts, maxNew, nil)
	if err != nil {
		t.Fatal(err)
	}
	for r := range prompts {
		if !slices.Equal(res[r], want[r].out) {
			t.Errorf("Generate in batches of 2, prompt %d: %v, alone %v", r, res[r], want[r].out)
		}
	}
}

// TestGenerateStopAndMaxNew: a row ends at the first of any stop id (not
// included) or after maxNew tokens, whichever comes first.
func TestGenerateStopAndMaxNew(t *testing.T) {
	cfg := Config{Decoder: genDecoder()}
	m := newGenModel(t, cfg, Options{Seed: 6})
	g := newGen(t, m, 3, 40)
	rng := rand.New(rand.NewPCG(6, 1))
	var prompts []Prompt
	for _, n := range []int{5, 11, 2} {
		p := Prompt{}
		for range n {
			p.Tokens = append(p.Tokens, rng.Int32N(int32(cfg.Decoder.Vocab)))
		}
		prompts = append(prompts, p)
	}
	ctx := context.Background()
	free, err := g.Generate(ctx, prompts, 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	for r, out := range free {
		if len(out) != 12 {
			t.Fatalf("prompt %d: %d tokens without stop ids, want maxNew = 12", r, len(out))
		}
	}
	for _, c := range []struct {
		maxNew int
		stop   []int32
	}{
		{12, []int32{free[0][0]}},               // row 0 stops at once
		{12, []int32{free[1][5], free[2][3]}},   // two stop ids
		{4, []int32{free[0][7]}},                // maxNew first for some rows
		{1, nil},                                // one token each
		{12, []int32{free[2][11], free[2][11]}}, // a repeated id
	} {
		got, err := g.Generate(ctx, prompts, c.maxNew, c.stop)
		if err != nil {
			t.Fatal(err)
		}
		for r := range prompts {
			want := free[r][:c.maxNew]
			if i := slices.IndexFunc(want, func(tok int32) bool { return slices.Contains(c.stop, tok) }); i >= 0 {
				want = want[:i]
			}
			if !slices.Equal(got[r], want) {
				t.Errorf("maxNew %d, stop %v, prompt %d: %v, want %v", c.maxNew, c.stop, r, got[r], want)
			}
		}
	}
	if g.Logits(0) != nil {
		t.Error("Logits of a finished row are not nil")
	}
	if n, err := g.Step(); n != 0 || err != nil {
		t.Errorf("Step after the batch finished: %d, %v; want 0, nil", n, err)
	}
}

func TestGreedyTiesAndPlaceholder(t *testing.T) {
	m := newGenModel(t, genMultimodal(ConnAvgPool), Options{Seed: 1})
	g := newGen(t, m, 1, 16)
	V := m.Config.Decoder.Vocab
	logits := make([]float32, V)
	for _, c := range []struct {
		set  map[int]float32
		want int32
	}{
		{map[int]float32{3: 2, 7: 2, 9: 1}, 3},                  // tie: lowest id
		{map[int]float32{V - 1: 9, 5: 1}, 5},                    // never the placeholder
		{map[int]float32{0: -1, 1: -1, 2: -1}, 3},               // the rest are 0 > −1
		{map[int]float32{40: float32(math.Inf(-1)), 41: 0}, -2}, // non-finite: an error
	} {
		clear(logits)
		for i, v := range c.set {
			logits[i] = v
		}
		got, ok := g.greedy(logits)
		if c.want == -2 {
			if ok {
				t.Errorf("greedy accepted logits holding %v", c.set)
			}
			continue
		}
		if !ok || got != c.want {
			t.Errorf("greedy over %v = %d, %v; want %d", c.set, got, ok, c.want)
		}
	}
	logits[1] = float32(math.NaN())
	if _, ok := g.greedy(logits); ok {
		t.Error("greedy accepted a NaN logit")
	}
}

// TestGenerateMemorised: a model trained on one image + caption sequence
// continues any prefix of it (the image included) with the rest, exactly.
func TestGenerateMemorised(t *testing.T) {
	cfg := genMultimodal(ConnCAbstractor)
	const T = 24
	m := newTiny(t, cfg, 1, T, 9)
	rng := rand.New(rand.NewPCG(9, 1))
	seq := genPrompt(rng, cfg, 1, T-cfg.Connector.Tokens, 0)
	V := int32(cfg.Decoder.Vocab)
	b := &Batch{B: 1, T: T, Tokens: seq.Tokens, Targets: make([]int32, T), LossMask: make([]float32, T),
		Pos: make([]int32, T), DocIDs: make([]int32, T), Images: seq.Images, NumImages: 1, ImageTokenID: V - 1}
	for i := range T - 1 {
		b.Pos[i] = int32(i)
		if next := seq.Tokens[i+1]; next != V-1 {
			b.Targets[i], b.LossMask[i] = next, 1
		}
	}
	b.Pos[T-1] = T - 1
	var st StepStats
	for range 60 {
		var err error
		if st, err = m.Step(b, 1e-2); err != nil {
			t.Fatal(err)
		}
	}
	if st.Loss > 0.05 {
		t.Fatalf("training loss %.4f after 60 steps, the sequence is not memorised", st.Loss)
	}
	// Prefixes ending after the image, inside and near the end of the
	// caption; each row runs past the memorised end (the check stops there).
	N := cfg.Connector.Tokens
	cuts := []int{N, N + 3, T - 3}
	var prompts []Prompt
	for _, cut := range cuts {
		prompts = append(prompts, Prompt{Tokens: seq.Tokens[:cut], Images: seq.Images})
	}
	g := newGen(t, m, len(prompts), 2*T)
	got, err := g.Generate(context.Background(), prompts, T-N, nil)
	if err != nil {
		t.Fatal(err)
	}
	for r, cut := range cuts {
		if want := seq.Tokens[cut:]; !slices.Equal(got[r][:len(want)], want) {
			t.Errorf("prefix of %d tokens: generated %v, memorised %v", cut, got[r][:len(want)], want)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	cfg := genMultimodal(ConnAvgPool)
	m := newGenModel(t, cfg, Options{Seed: 1})
	g := newGen(t, m, 2, 16)
	rng := rand.New(rand.NewPCG(1, 1))
	good := genPrompt(rng, cfg, 1, 2, 1) // 7 tokens
	img := good.Images
	ph := int32(cfg.Decoder.Vocab - 1)
	text := func(n int) []int32 { return make([]int32, n) }
	cases := []struct {
		name    string
		prompts []Prompt
		maxNew  int
		stop    []int32
		want    string
	}{
		{"longer than the context", []Prompt{good, {Tokens: text(17)}}, 1, nil, "prompt 1: 17 tokens, longer than the generator's context of 16"},
		{"no room for the new tokens", []Prompt{{Tokens: text(14)}}, 4, nil, "prompt 0: 14 tokens + 4 new tokens need a context of 17"},
		{"placeholders without image", []Prompt{{Tokens: good.Tokens}}, 2, nil, "4 image placeholders (id 63), want 0 images × 4 tokens = 0"},
		{"image without placeholders", []Prompt{{Tokens: text(3), Images: img}}, 2, nil, "0 image placeholders (id 63), want 1 images × 4 tokens = 4"},
		{"two images, one run", []Prompt{{Tokens: good.Tokens, Images: append(slices.Clone(img), img...)}}, 2, nil, "4 image placeholders (id 63), want 2 images × 4 tokens = 8"},
		{"split run", []Prompt{{Tokens: []int32{ph, ph, 1, ph, ph}, Images: img}}, 2, nil, "positions 0..1: a run of 2 is not a whole number of images"},
		{"run at the end", []Prompt{{Tokens: []int32{1, ph, ph, ph, ph, ph}, Images: img}}, 2, nil, "positions 1..5: a run of 5"},
		{"partial image", []Prompt{{Tokens: good.Tokens, Images: img[1:]}}, 2, nil, "Images has 767 values, not a whole number of 3×16×16 images"},
		{"token outside the vocabulary", []Prompt{{Tokens: []int32{1, 64}}}, 2, nil, "token 64 at position 1 outside the vocabulary [0, 64)"},
		{"negative token", []Prompt{{Tokens: []int32{-3}}}, 2, nil, "token -3 at position 0 outside"},
		{"empty prompt", []Prompt{good, {}}, 2, nil, "prompt 1: no tokens"},
		{"no new tokens", []Prompt{good}, 0, nil, "max new tokens 0: must be positive"},
		{"stop outside the vocabulary", []Prompt{good}, 2, []int32{5, 99}, "stop id 99 (index 1) outside the vocabulary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := g.Generate(context.Background(), c.prompts, c.maxNew, c.stop)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Generate: %v, want an error containing %q", err, c.want)
			}
			if len(c.prompts) <= g.Batch {
				if err := g.Prefill(c.prompts, c.maxNew, c.stop); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Prefill: %v, want an error containing %q", err, c.want)
				}
				if _, err := g.Step(); err == nil {
					t.Error("Step ran after a failed Prefill")
				}
			}
		})
	}

	if err := g.Prefill([]Prompt{good, good, good}, 2, nil); err == nil || !strings.Contains(err.Error(), "3 prompts, the generator takes 1 to 2") {
		t.Errorf("Prefill of 3 prompts into a batch of 2: %v", err)
	}
	if _, err := newGen(t, m, 1, 16).Step(); err == nil || !strings.Contains(err.Error(), "call Prefill first") {
		t.Errorf("Step before Prefill: %v", err)
	}
	for _, bc := range [][2]int{{0, 16}, {1, 0}, {1, 65}} {
		if _, err := NewGenerator(m, bc[0], bc[1], ph); err == nil || !strings.Contains(err.Error(), "max_seq (64)") {
			t.Errorf("NewGenerator(batch %d, context %d): %v", bc[0], bc[1], err)
		}
	}
	textOnly := newGen(t, newGenModel(t, Config{Decoder: genDecoder()}, Options{Seed: 1}), 1, 16)
	if _, err := textOnly.Generate(context.Background(), []Prompt{good}, 2, nil); err == nil || !strings.Contains(err.Error(), "768 image values, but the model is text-only") {
		t.Errorf("images to a text-only model: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Generate(ctx, []Prompt{good}, 2, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate with a cancelled context: %v", err)
	}
}

// TestGenerateStepDoesNotAllocate: decoding reuses the buffers sized by
// NewGenerator, with a worker pool too.
func TestGenerateStepDoesNotAllocate(t *testing.T) {
	cfg := genMultimodal(ConnAvgPool)
	for _, workers := range []int{0, 2} {
		m := newGenModel(t, cfg, Options{Seed: 1, Workers: workers})
		g := newGen(t, m, 2, 48)
		rng := rand.New(rand.NewPCG(1, 1))
		if err := g.Prefill([]Prompt{genPrompt(rng, cfg, 1, 2, 1), genPrompt(rng, cfg, 0, 0, 5)}, 40, nil); err != nil {
			t.Fatal(err)
		}
		c := allocs.PerRun(20, func() {
			if n, err := g.Step(); n != 2 || err != nil {
				t.Fatalf("Step: %d rows, %v", n, err)
			}
		})
		if c.PerRun != 0 {
			t.Errorf("workers %d: Step allocates %v times per token; most at:%s", workers, c.PerRun, c.Site)
		}
	}
}

func benchGenerator(b *testing.B) (*Generator, []Prompt) {
	return newBenchGenerator(b, Config{Decoder: DefaultDecoderConfig()}, 8)
}

// newBenchGenerator is a generator for cfg with 2 workers, room for batch
// seeded random prompts of 64 tokens and 64 new tokens each, and the
// prompts.
func newBenchGenerator(b *testing.B, cfg Config, batch int) (*Generator, []Prompt) {
	const promptLen, maxNew = 64, 64
	m, err := New(cfg, 1, 128, Options{Seed: 1, Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	g, err := NewGenerator(m, batch, promptLen+maxNew, -1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	prompts := make([]Prompt, batch)
	for i := range prompts {
		for range promptLen {
			prompts[i].Tokens = append(prompts[i].Tokens, rng.Int32N(int32(cfg.Decoder.Vocab)))
		}
	}
	return g, prompts
}

// BenchmarkDecode measures greedy decoding with the cache on engine.md's
// reference text decoder (vocab 512, width 256, 4 layers, 2 workers):
// 8 prompts of 64 tokens, 64 new tokens each; the Steps are timed, not the
// Prefill. BenchmarkPrefill times the Prefill alone. Run with
//
//	go test -run '^$' -bench 'Decode|Prefill' -benchtime 5x ./models/
func BenchmarkDecode(b *testing.B) {
	g, prompts := benchGenerator(b)
	benchDecode(b, g, prompts)
}

// benchDecode times greedy decoding of prompts to the end, the Steps but
// not the Prefill, and reports decoded tokens/s.
func benchDecode(b *testing.B, g *Generator, prompts []Prompt) {
	tokens := 0
	for b.Loop() {
		b.StopTimer()
		if err := g.Prefill(prompts, 64, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for {
			n, err := g.Step()
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		for r := range prompts {
			tokens += len(g.Output(r))
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "decode-tok/s")
}

func BenchmarkPrefill(b *testing.B) {
	g, prompts := benchGenerator(b)
	for b.Loop() {
		if err := g.Prefill(prompts, 64, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(prompts)*len(prompts[0].Tokens))/b.Elapsed().Seconds(), "prompt-tok/s")
}
