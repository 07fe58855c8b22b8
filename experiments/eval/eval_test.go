package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/experiments/scoring"
	"github.com/mmablate/mmablate/models"
)

// fixedCaption and fixedAnswer are what the test model is trained to say
// after any image, whatever the references.
const (
	fixedCaption = "a red circle at the top"
	fixedAnswer  = "red"
)

// trainFixed trains m, a few dozen steps, to continue every 0-shot query
// prompt of both benchmarks with the fixed caption or answer and
// <|endofchunk|>: one packed document per row, targets and loss mask as the
// mixer sets them.
func trainFixed(t *testing.T, m *models.Model, tok *tokenizer.Tokenizer, cb, vb *benchmark) {
	t.Helper()
	sp, _ := specialsOf(tok)
	B, T := m.B, m.T
	b := &models.Batch{B: B, T: T, ImageTokenID: sp.image, Tokens: make([]int32, B*T), Targets: make([]int32, B*T),
		LossMask: make([]float32, B*T), Pos: make([]int32, B*T), DocIDs: make([]int32, B*T)}
	builder := testBuilder(t, tok, T, 1)
	row := 0
	for _, bench := range []*benchmark{cb, vb} {
		target := fixedCaption
		if bench.task == TaskVQA {
			target = fixedAnswer
		}
		for q := range bench.queries {
			if row == B {
				t.Fatalf("more queries than the %d training rows", B)
			}
			p, err := builder.build(bench.task, &bench.queries[q], nil)
			if err != nil {
				t.Fatal(err)
			}
			doc := append(tok.AppendEncode(p.tokens, " "+target), sp.endOfChunk)
			for i, tk := range doc {
				at := row*T + i
				b.Tokens[at], b.Pos[at], b.Targets[at] = tk, int32(i), sp.pad
				if i+1 < len(doc) {
					b.Targets[at] = doc[i+1]
					if tk != sp.image && doc[i+1] != sp.image {
						b.LossMask[at] = 1
					}
				}
			}
			for i := len(doc); i < T; i++ {
				at := row*T + i
				b.Tokens[at], b.Targets[at], b.Pos[at], b.DocIDs[at] = sp.pad, sp.pad, int32(i-len(doc)), 1
			}
			pix, err := bench.queries[q].pixels(testImageOptions())
			if err != nil {
				t.Fatal(err)
			}
			b.Images = append(b.Images, pix...)
			b.NumImages++
			row++
		}
	}
	var st models.StepStats
	for range 60 {
		var err error
		if st, err = m.Step(b, 1e-2); err != nil {
			t.Fatal(err)
		}
	}
	if st.Loss > 0.02 {
		t.Fatalf("training loss %.4f after 60 steps: the fixed texts are not learned", st.Loss)
	}
}

// TestRunFixedCaption trains a tiny model to answer every 0-shot query with
// a fixed text and checks that Run's 0-shot scores are exactly the scorers'
// for that text, that k-shot runs trial by trial, that the perplexity reads
// the last rows, and that a rerun with the same seed gives the same bytes.
func TestRunFixedCaption(t *testing.T) {
	tok := testTokenizer(t)
	capDir, vqaDir, textDir := testWorld(t, t.TempDir(), 3, 6)
	ctx := context.Background()
	cb, err := loadBenchmark(ctx, TaskCaption, capDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := loadBenchmark(ctx, TaskVQA, vqaDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := newTestModel(t, testModelConfig(tok.VocabSize()), 6, 32, 1)
	trainFixed(t, m, tok, cb, vb)

	cfg := Config{Caption: capDir, VQA: vqaDir, Text: textDir, Shots: []int{0, 2}, Trials: 2, Batch: 2,
		MaxNewTokens: MaxNewTokens{Caption: 12, VQA: 5}, PerplexitySamples: 2}
	res, err := Run(ctx, m, tok, cfg, testImageOptions(), 5)
	if err != nil {
		t.Fatal(err)
	}

	var capItems []scoring.CaptionItem
	for _, q := range cb.queries {
		capItems = append(capItems, scoring.CaptionItem{ID: q.id, Prediction: fixedCaption, References: q.refs})
	}
	wantCap, err := scoring.Caption(capItems)
	if err != nil {
		t.Fatal(err)
	}
	var vqaItems []scoring.VQAItem
	for _, q := range vb.queries {
		vqaItems = append(vqaItems, scoring.VQAItem{ID: q.id, Prediction: fixedAnswer, Answers: q.answers})
	}
	wantVQA, err := scoring.VQA(vqaItems)
	if err != nil {
		t.Fatal(err)
	}
	if wantCap.CIDEr <= 0 || wantCap.CIDEr >= 10 || wantVQA.Accuracy <= 0 || wantVQA.Accuracy >= 100 {
		t.Fatalf("test data gives a trivial score: CIDEr %v, VQA %v", wantCap.CIDEr, wantVQA.Accuracy)
	}
	for _, c := range []struct {
		task   Task
		metric string
		want   float64
	}{{TaskCaption, MetricCIDEr, wantCap.CIDEr}, {TaskCaption, MetricBLEU4, wantCap.BLEU[3]}, {TaskVQA, MetricVQAAccuracy, wantVQA.Accuracy}} {
		st, ok := res.Metric(c.task, 0, c.metric)
		if !ok {
			t.Fatalf("no %s %s at 0 shots", c.task, c.metric)
		}
		if st.Mean != c.want || st.Std != 0 || len(st.Trials) != 1 {
			t.Errorf("%s %s 0-shot: %+v, want exactly %v over one trial", c.task, c.metric, st, c.want)
		}
		st, ok = res.Metric(c.task, 2, c.metric)
		if !ok || len(st.Trials) != 2 || math.IsNaN(st.Mean) {
			t.Errorf("%s %s 2-shot: %+v, want two trials", c.task, c.metric, st)
		}
	}
	if len(res.Tasks) != 2 {
		t.Fatalf("%d task results, want 2", len(res.Tasks))
	}
	for _, tr := range res.Tasks {
		if tr.Queries != 3 || tr.Support != 6 || len(tr.Shots) != 2 {
			t.Errorf("%s: %d queries, %d support, %d shot counts", tr.Task, tr.Queries, tr.Support, len(tr.Shots))
		}
		want := fixedCaption
		if tr.Task == TaskVQA {
			want = fixedAnswer
		}
		for _, ex := range tr.Shots[0].Examples {
			if ex.Prediction != want {
				t.Errorf("%s query %s: predicted %q, want %q", tr.Task, ex.ID, ex.Prediction, want)
			}
		}
		if len(tr.Shots[0].Examples) != 3 || tr.Shots[0].DroppedDemos != 0 || tr.Shots[1].DroppedDemos != 0 {
			t.Errorf("%s: %d examples, dropped %d and %d demos", tr.Task, len(tr.Shots[0].Examples), tr.Shots[0].DroppedDemos, tr.Shots[1].DroppedDemos)
		}
	}

	p := res.Perplexity
	if p == nil || p.Documents != 2 {
		t.Fatalf("perplexity %+v, want 2 documents", p)
	}
	wantTokens := 0
	for _, i := range []int{3, 4} { // the last two of five rows, cut to the model's 32 positions
		wantTokens += min(len(tok.Encode(textOf(i)))+1, m.T)
	}
	if p.Tokens != wantTokens || math.Abs(p.Value-math.Exp(p.Loss)) > 1e-12 {
		t.Errorf("perplexity %+v: want %d tokens and perplexity = exp(loss)", p, wantTokens)
	}

	again, err := Run(ctx, m, tok, cfg, testImageOptions(), 5)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(res)
	b, _ := json.Marshal(again)
	if !bytes.Equal(a, b) {
		t.Errorf("a rerun with the same seed differs:\n%s\n%s", a, b)
	}
}

func textOf(i int) string { // as testWorld writes text row i
	return "A story about shapes, number " + string(rune('0'+i)) + ". The circle was " + testColors[i] + "."
}

// TestTextPerplexity compares the batched perplexity with one document
// at a time through a B = 1 model, with rows that cut the documents and
// rows that pad them.
func TestTextPerplexity(t *testing.T) {
	tok := testTokenizer(t)
	_, _, textDir := testWorld(t, t.TempDir(), 1, 1)
	cfg := testModelConfig(tok.VocabSize())
	sp, _ := specialsOf(tok)
	for _, T := range []int{12, 48} {
		m := newTestModel(t, cfg, 2, T, 3)
		got, err := TextPerplexity(context.Background(), m, tok, textDir, 3)
		if err != nil {
			t.Fatal(err)
		}
		one := newTestModel(t, cfg, 1, T, 99)
		if err := one.CopyWeights(m); err != nil {
			t.Fatal(err)
		}
		var sum float64
		n := 0
		for i := 2; i < 5; i++ { // the last three of five rows
			doc := append(append([]int32{sp.bos}, tok.Encode(textOf(i))...), sp.endOfChunk)
			if len(doc) < 14 || len(doc) > 48 {
				t.Fatalf("document %d has %d tokens: the test wants it cut at 12 and whole at 48", i, len(doc))
			}
			b := &models.Batch{B: 1, T: T, Tokens: make([]int32, T), Targets: make([]int32, T), LossMask: make([]float32, T),
				Pos: make([]int32, T), DocIDs: make([]int32, T), ImageTokenID: sp.image}
			k := min(len(doc)-1, T) // predicted tokens
			for j := range T {
				b.Tokens[j], b.Targets[j], b.Pos[j] = sp.pad, sp.pad, int32(j)
				if j < k {
					b.Tokens[j], b.Targets[j], b.LossMask[j] = doc[j], doc[j+1], 1
				}
			}
			loss, err := one.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			sum += float64(k) * loss
			n += k
		}
		if got.Documents != 3 || got.Tokens != n || math.Abs(got.Loss-sum/float64(n)) > 1e-5 {
			t.Errorf("T=%d: perplexity %+v, want 3 documents, %d tokens, loss %v", T, got, n, sum/float64(n))
		}
		if got.Loss < 3 || got.Loss > 8 { // an untrained model is near ln(vocab) ≈ 5.8
			t.Errorf("T=%d: untrained loss %v is not near ln(%d)", T, got.Loss, tok.VocabSize())
		}
	}
}

func TestResultsJSONRoundTrip(t *testing.T) {
	r := &Results{Seed: 3, Config: DefaultConfig(), Tasks: []TaskResult{{
		Task: TaskCaption, Dir: "/d/caption", Queries: 200, Support: 100,
		Shots: []ShotResult{{Shots: 4, Metrics: map[string]Stat{MetricCIDEr: newStat([]float64{0.5, 0.7, 0.6}), MetricBLEU4: newStat([]float64{0.1, 0.2, 0.3})},
			DroppedDemos: 7, ShortenedPrompts: 3, Examples: []Example{{ID: "q1", Prediction: "a red circle", Reference: "a red circle at the top"}}}},
	}}, Perplexity: &Perplexity{Source: "/d/text", Documents: 64, Tokens: 9000, Loss: 2.5, Value: math.Exp(2.5)}}
	if st := r.Tasks[0].Shots[0].Metrics[MetricCIDEr]; math.Abs(st.Mean-0.6) > 1e-15 || math.Abs(st.Std-0.1) > 1e-15 {
		t.Errorf("stat %+v: want mean 0.6, sample std 0.1", st)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "eval.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(path, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", got, r)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after an atomic write, want 1", len(entries))
	}
	for _, bad := range []struct{ body, want string }{
		{`{"seed": 1, "tasks": [], "extra": 2}`, "unknown field"},
		{`{"seed": "x"}`, "cannot unmarshal"},
		{`{"seed": 1} {}`, "after the JSON object"},
		{`{"seed": 1`, "unexpected EOF"},
	} {
		if _, err := parseResults([]byte(bad.body)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("parse %s: err %v, want %q", bad.body, err, bad.want)
		}
	}
	if err := WriteJSON(filepath.Join(dir, "missing", "eval.json"), r); err == nil {
		t.Error("WriteJSON into a missing directory succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no shots", func(c *Config) { c.Shots = nil }, "eval.shots: empty"},
		{"negative shot", func(c *Config) { c.Shots = []int{0, -4} }, "eval.shots[1]: -4 is outside"},
		{"repeated shot", func(c *Config) { c.Shots = []int{0, 4, 4} }, "eval.shots[2]: 4 repeats shots[1]"},
		{"huge shot", func(c *Config) { c.Shots = []int{65} }, "eval.shots[0]: 65 is outside 0..64"},
		{"zero trials", func(c *Config) { c.Trials = 0 }, "eval.trials: 0 is outside"},
		{"negative queries", func(c *Config) { c.MaxQueries = -1 }, "eval.max_queries: -1 is negative"},
		{"zero batch", func(c *Config) { c.Batch = 0 }, "eval.batch: 0 is outside"},
		{"caption tokens", func(c *Config) { c.MaxNewTokens.Caption = 0 }, "eval.max_new_tokens.caption: 0 is outside"},
		{"vqa tokens", func(c *Config) { c.MaxNewTokens.VQA = 5000 }, "eval.max_new_tokens.vqa: 5000 is outside"},
		{"negative samples", func(c *Config) { c.PerplexitySamples = -2 }, "eval.perplexity_samples: -2 is negative"},
		{"nothing", func(c *Config) { c.Caption, c.VQA, c.Text = "", "", "" }, "nothing to evaluate"},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{"shots: [0, 2]\nbogus: 1\n", "field bogus not found"},
		{"trials: many\n", "line 1: cannot unmarshal !!str `many` into int"},
		{"max_new_tokens: {caption: 10, vqa: 3, other: 1}\n", "field other not found"},
		{"shots: [0, 0]\n", "eval.shots[1]: 0 repeats shots[0]"},
	} {
		if _, err := ParseConfig([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse %q: err %v, want %q", tc.body, err, tc.want)
		}
	}
	c, err := ParseConfig([]byte("shots: [0, 2]\ntrials: 1\ncaption: rel/cap\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.ResolvePaths("/runs/x")
	if c.Caption != "/runs/x/rel/cap" || c.Trials != 1 || c.Batch != DefaultConfig().Batch {
		t.Errorf("parsed %+v", c)
	}
}

// TestRunErrors: mismatches between the model, the tokenizer, the config
// and the data fail before decoding, naming what is wrong.
func TestRunErrors(t *testing.T) {
	tok := testTokenizer(t)
	capDir, _, _ := testWorld(t, t.TempDir(), 2, 3)
	ctx := context.Background()
	m := newTestModel(t, testModelConfig(tok.VocabSize()), 1, 32, 1)
	base := Config{Caption: capDir, Shots: []int{0}, Trials: 1, Batch: 2, MaxNewTokens: MaxNewTokens{Caption: 4, VQA: 2}}
	for _, tc := range []struct {
		name string
		edit func(*Config, *models.Model) *models.Model
		res  int
		want string
	}{
		{"too many shots", func(c *Config, m *models.Model) *models.Model { c.Shots = []int{0, 4}; return m }, testRes, "eval.shots[1] = 4: " + capDir + " has only 3 support rows"},
		{"resolution", func(c *Config, m *models.Model) *models.Model { return m }, 32, "decoded at 32 px, model.vision.resolution is 16"},
		{"vocab", func(c *Config, m *models.Model) *models.Model {
			return newTestModel(t, testModelConfig(tok.VocabSize()+1), 1, 32, 1)
		}, testRes, "model.decoder.vocab is"},
		{"no benchmark", func(c *Config, m *models.Model) *models.Model { c.Caption = filepath.Join(capDir, "nope"); return m }, testRes, "nope"},
		{"invalid config", func(c *Config, m *models.Model) *models.Model { c.Trials = 0; return m }, testRes, "eval.trials"},
	} {
		c := base
		mm := tc.edit(&c, m)
		opts := testImageOptions()
		opts.Resolution = tc.res
		if _, err := Run(ctx, mm, tok, c, opts, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadBenchmarkBadRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		task Task
		rec  func(t *testing.T) *data.Record
		want string
	}{
		{"no references", TaskCaption, func(t *testing.T) *data.Record { return captionRecord(t, "c0", 0, nil) }, `row 0, column meta: id "c0": meta "references": missing or empty`},
		{"blank reference", TaskCaption, func(t *testing.T) *data.Record { return captionRecord(t, "c0", 0, []string{"a", " "}) }, `"references"[1] is blank`},
		{"nine answers", TaskVQA, func(t *testing.T) *data.Record {
			return vqaRecord(t, "v0", 0, "What?", "red", tenOf("red")[:9])
		}, `meta "answers" has 9 answers, want 10`},
		{"no image", TaskCaption, func(t *testing.T) *data.Record {
			return &data.Record{ID: "t0", Kind: data.KindText, Texts: []*string{data.Str("hi")}, Images: []*data.ImageRef{nil}, Meta: `{"references":["x"]}`}
		}, "column images: id \"t0\": no image"},
		{"no question", TaskVQA, func(t *testing.T) *data.Record {
			return &data.Record{ID: "v1", Kind: data.KindCaption, Texts: []*string{nil}, Images: []*data.ImageRef{{Bytes: testPNG(t, 0)}}, Meta: metaJSON(t, map[string]any{"answer": "x", "answers": tenOf("x")})}
		}, "no question text"},
	} {
		dir := filepath.Join(t.TempDir(), "bench")
		writeDataset(t, filepath.Join(dir, QueryDir), []*data.Record{tc.rec(t)})
		_, err := loadBenchmark(context.Background(), tc.task, dir, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, QueryDir)) {
			t.Errorf("%s: err %v, want the file and %q", tc.name, err, tc.want)
		}
	}
	// A support row without its true answer cannot be a demonstration; a
	// query row without one is fine (it is scored against the ten).
	dir := filepath.Join(t.TempDir(), "bench")
	writeDataset(t, filepath.Join(dir, QueryDir), []*data.Record{vqaRecord(t, "q", 0, "What?", "", tenOf("red"))})
	writeDataset(t, filepath.Join(dir, SupportDir), []*data.Record{vqaRecord(t, "s", 1, "What?", "", tenOf("red"))})
	if _, err := loadBenchmark(context.Background(), TaskVQA, dir, 0); err == nil || !strings.Contains(err.Error(), "support") || !strings.Contains(err.Error(), `meta "answer"`) {
		t.Errorf("support row without an answer: err %v", err)
	}
	// max_queries takes the first rows in dataset order, across shards.
	capDir, _, _ := testWorld(t, t.TempDir(), 7, 2)
	b, err := loadBenchmark(context.Background(), TaskCaption, capDir, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.queries) != 5 || b.queries[4].id != "eval-caption-query-0000004" || len(b.support) != 2 {
		t.Errorf("limited load: %d queries (last %q), %d support", len(b.queries), b.queries[len(b.queries)-1].id, len(b.support))
	}
}
