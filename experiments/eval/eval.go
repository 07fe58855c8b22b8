package eval

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/experiments/scoring"
	"github.com/mmablate/mmablate/models"
)

// numExamples is how many predictions per shot count the results keep.
const numExamples = 3

// Run evaluates m: each configured benchmark at each demonstration count
// and trial, then the text perplexity. tok must be the tokenizer m was
// trained with; imgOpts decode the benchmark images as training did (the
// resolution must be model.vision.resolution). seed draws the
// demonstrations. A text-only model (no model.vision) gets the perplexity
// only. Run leaves m's weights unchanged but overwrites its activations.
func Run(ctx context.Context, m *models.Model, tok *tokenizer.Tokenizer, cfg Config, imgOpts images.Options, seed uint64) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if v := m.Config.Decoder.Vocab; tok.VocabSize() != v {
		return nil, fmt.Errorf("eval: the tokenizer has %d tokens, model.decoder.vocab is %d", tok.VocabSize(), v)
	}
	sp, err := specialsOf(tok)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	res := &Results{Seed: seed, Config: cfg, Tasks: []TaskResult{}}
	tasks := []struct {
		task   Task
		dir    string
		maxNew int
	}{{TaskCaption, cfg.Caption, cfg.MaxNewTokens.Caption}, {TaskVQA, cfg.VQA, cfg.MaxNewTokens.VQA}}
	var gen *models.Generator
	for _, t := range tasks {
		if t.dir == "" {
			continue
		}
		if m.Config.Vision == nil {
			slog.Warn("eval: text-only model, skipping an image benchmark", "task", t.task, "dir", t.dir)
			continue
		}
		if gen == nil {
			if r := m.Config.Vision.Resolution; imgOpts.Resolution != r {
				return nil, fmt.Errorf("eval: images are decoded at %d px, model.vision.resolution is %d", imgOpts.Resolution, r)
			}
			if gen, err = models.NewGenerator(m, cfg.Batch, m.Config.Decoder.MaxSeq, sp.image); err != nil {
				return nil, fmt.Errorf("eval: %w", err)
			}
		}
		bench, err := loadBenchmark(ctx, t.task, t.dir, cfg.MaxQueries)
		if err != nil {
			return nil, err
		}
		r := &runner{gen: gen, tok: tok, sp: sp, imgOpts: imgOpts, seed: seed, maxNew: t.maxNew,
			build: promptBuilder{tok: tok, sp: sp, n: m.Config.Connector.Tokens, budget: m.Config.Decoder.MaxSeq - t.maxNew + 1}}
		tr, err := r.task(ctx, bench, cfg)
		if err != nil {
			return nil, err
		}
		res.Tasks = append(res.Tasks, tr)
	}
	if cfg.Text != "" && cfg.PerplexitySamples > 0 {
		if res.Perplexity, err = TextPerplexity(ctx, m, tok, cfg.Text, cfg.PerplexitySamples); err != nil {
			return nil, err
		}
		slog.Info("eval", "perplexity", res.Perplexity.Value, "documents", res.Perplexity.Documents, "tokens", res.Perplexity.Tokens)
	}
	return res, nil
}

// runner evaluates the benchmarks of one Run.
type runner struct {
	gen     *models.Generator
	tok     *tokenizer.Tokenizer
	sp      specials
	imgOpts images.Options
	seed    uint64
	maxNew  int
	build   promptBuilder
}

// task runs one benchmark at every shot count.
func (r *runner) task(ctx context.Context, b *benchmark, cfg Config) (TaskResult, error) {
	tr := TaskResult{Task: b.task, Dir: b.dir, Queries: len(b.queries), Support: len(b.support)}
	for i, k := range cfg.Shots {
		if k > len(b.support) {
			return tr, fmt.Errorf("eval.shots[%d] = %d: %s has only %d support rows to draw demonstrations from",
				i, k, b.dir, len(b.support))
		}
	}
	for _, k := range cfg.Shots {
		sr := ShotResult{Shots: k, Metrics: map[string]Stat{}}
		trials := cfg.Trials
		if k == 0 {
			trials = 1
		}
		values := map[string][]float64{}
		for trial := range trials {
			preds, err := r.predict(ctx, b, k, trial, &sr)
			if err != nil {
				return tr, fmt.Errorf("eval %s, %d shots, trial %d: %w", b.task, k, trial, err)
			}
			scores, err := score(b, preds)
			if err != nil {
				return tr, fmt.Errorf("eval %s, %d shots, trial %d: %w", b.task, k, trial, err)
			}
			for name, v := range scores {
				values[name] = append(values[name], v)
			}
			if trial == 0 {
				sr.Examples = examples(b, preds)
			}
			slog.Info("eval", "task", b.task, "shots", k, "trial", trial, "scores", scores, "dropped_demos", sr.DroppedDemos)
		}
		for name, v := range values {
			sr.Metrics[name] = newStat(v)
		}
		tr.Shots = append(tr.Shots, sr)
	}
	return tr, nil
}

// predict generates an answer for every query of b at k shots in one
// trial, cfg.Batch prompts at a time, counting dropped demonstrations.
func (r *runner) predict(ctx context.Context, b *benchmark, k, trial int, sr *ShotResult) ([]string, error) {
	preds := make([]string, 0, len(b.queries))
	stop := []int32{r.sp.endOfChunk, r.sp.eos}
	per := 3 * r.imgOpts.Resolution * r.imgOpts.Resolution
	var prompts []models.Prompt
	for start := 0; start < len(b.queries); start += r.gen.Batch {
		end := min(start+r.gen.Batch, len(b.queries))
		prompts = prompts[:0]
		for q := start; q < end; q++ {
			demos := drawDemos(r.seed, b.task, trial, q, b.support, k)
			p, err := r.build.build(b.task, &b.queries[q], demos)
			if err != nil {
				return nil, err
			}
			if p.dropped > 0 {
				sr.DroppedDemos += p.dropped
				sr.ShortenedPrompts++
			}
			pix := make([]float32, 0, len(p.images)*per)
			for _, ex := range p.images {
				im, err := ex.pixels(r.imgOpts)
				if err != nil {
					return nil, err
				}
				pix = append(pix, im...)
			}
			prompts = append(prompts, models.Prompt{Tokens: p.tokens, Images: pix, Instruction: p.instruction})
		}
		out, err := r.gen.Generate(ctx, prompts, r.maxNew, stop)
		if err != nil {
			return nil, err
		}
		for i, ids := range out {
			text, err := r.tok.Decode(ids)
			if err != nil {
				return nil, fmt.Errorf("query id %q: %w", b.queries[start+i].id, err)
			}
			preds = append(preds, strings.TrimSpace(text))
		}
	}
	return preds, nil
}

// score computes the task's metrics of one trial's predictions.
func score(b *benchmark, preds []string) (map[string]float64, error) {
	switch b.task {
	case TaskCaption:
		items := make([]scoring.CaptionItem, len(preds))
		for i, p := range preds {
			items[i] = scoring.CaptionItem{ID: b.queries[i].id, Prediction: p, References: b.queries[i].refs}
		}
		s, err := scoring.Caption(items)
		if err != nil {
			return nil, err
		}
		return map[string]float64{MetricCIDEr: s.CIDEr, MetricBLEU4: s.BLEU[3]}, nil
	default:
		items := make([]scoring.VQAItem, len(preds))
		for i, p := range preds {
			items[i] = scoring.VQAItem{ID: b.queries[i].id, Prediction: p, Answers: b.queries[i].answers}
		}
		s, err := scoring.VQA(items)
		if err != nil {
			return nil, err
		}
		return map[string]float64{MetricVQAAccuracy: s.Accuracy}, nil
	}
}

func examples(b *benchmark, preds []string) []Example {
	out := make([]Example, 0, numExamples)
	for i := range min(numExamples, len(preds)) {
		q := &b.queries[i]
		ex := Example{ID: q.id, Prediction: preds[i], Question: q.question, Reference: q.answer}
		if b.task == TaskCaption {
			ex.Reference = q.refs[0]
		}
		out = append(out, ex)
	}
	return out
}
