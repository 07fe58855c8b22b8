package experiments

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/mmablate/mmablate/data/stream"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
)

// Cost is what a run config costs before it runs: the model's size, a
// training step's FLOPs and, when calibrated, measured times.
type Cost struct {
	Params, Trainable int
	// Vocab is the model.decoder.vocab sized: the tokenizer's when
	// tokenizer.path exists, else tokenizer.vocab (the size it is trained to).
	Vocab int
	// ImageTokens is the placeholders per image (model.connector.tokens);
	// 0 for a text-only model.
	ImageTokens int
	// ImagesPerStep is the batch's image slots as the trainer sizes them,
	// data.packing.batch_size × min(max_images, seq_len / image_tokens):
	// what a caption-heavy mixture fills.
	ImagesPerStep int
	// FLOPsPerStep is one training step's forward and backward FLOPs
	// (models' convention) with every image slot filled.
	FLOPsPerStep int64
	// StepSeconds is the median time of the timed training steps, and
	// EvalSeconds the estimated time of the eval section; both 0 when not
	// calibrated.
	StepSeconds float64
	EvalSeconds float64
	// Batches is what the timed steps trained on: BatchesData or
	// BatchesSynthetic; "" when not calibrated.
	Batches string
}

// Cost.Batches values.
const (
	// BatchesData: the config's own mixture, read and packed as in
	// training (data loading included), because its tokenizer and
	// datasets exist.
	BatchesData = "data"
	// BatchesSynthetic: random batches with every image slot filled,
	// because the data is not there yet (it is made on a cell's first run).
	BatchesSynthetic = "synthetic"
)

// Seconds is the estimated wall time of the run: train.steps steps and the
// evaluation (data preparation and checkpoints not included).
func (c Cost) Seconds(steps int) float64 {
	return float64(steps)*c.StepSeconds + c.EvalSeconds
}

// Estimated text tokens per few-shot example in an evaluation prompt (the
// shapes world's captions, and questions with their short answers, plus
// separators): they size the calibration's synthetic prompts.
const (
	captionExampleTokens = 16
	vqaExampleTokens     = 10
)

// Calibrate sizes cfg's model and, when steps > 0, times it: one untimed
// step (first-touch allocation, filling the streams' shuffle buffers),
// then steps timed training steps; one greedy generation of eval.batch
// synthetic prompts per task and shot count, scaled by the number of
// prompts the evaluation decodes; and one forward per batch of perplexity
// documents. The training steps run on the config's data when its
// tokenizer and every source path exist, else on synthetic batches with
// every image slot filled (an estimate for a caption-heavy mixture).
// Nothing is written.
func Calibrate(ctx context.Context, cfg Config, steps int) (Cost, error) {
	if err := cfg.Validate(); err != nil {
		return Cost{}, err
	}
	vocab := cfg.Tokenizer.Vocab
	tok, err := tokenizer.LoadFile(cfg.Tokenizer.Path)
	switch {
	case err == nil:
		vocab = tok.VocabSize()
	case errors.Is(err, fs.ErrNotExist):
		tok = nil
	default:
		return Cost{}, fmt.Errorf("tokenizer.path %s: %w", cfg.Tokenizer.Path, err)
	}
	if err := cfg.withVocab(vocab); err != nil {
		return Cost{}, err
	}
	c, t, p := cfg.Model, cfg.Train, cfg.Data.Packing
	cost := Cost{Vocab: vocab}
	perSeq := 0
	if c.Connector != nil && p.ImageTokens > 0 {
		cost.ImageTokens = c.Connector.Tokens
		perSeq = p.ImagesPerSeq()
		cost.ImagesPerStep = p.BatchSize * perSeq
	}
	engine.SetBLASThreads(t.Threads.BLAS)
	model, err := models.New(c, p.BatchSize, p.SeqLen, models.Options{Seed: cfg.Seed, Workers: t.Threads.Workers,
		MaxImages: cost.ImagesPerStep,
		AdamW:     engine.AdamWConfig{Beta1: t.Beta1, Beta2: t.Beta2, Eps: t.Eps, WeightDecay: t.WeightDecay}})
	if err != nil {
		return Cost{}, err
	}
	defer model.Close()
	cost.Params, cost.Trainable = model.NumParams()
	fwd, bwd := model.FLOPs(cost.ImagesPerStep)
	cost.FLOPsPerStep = fwd + bwd
	if steps <= 0 {
		return cost, nil
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	synth := fillBatch(c, p.BatchSize, p.SeqLen, perSeq, rng)
	next := func() (*models.Batch, error) { return synth, nil }
	cost.Batches = BatchesSynthetic
	if tok != nil && DataReady(cfg) {
		// No shuffle buffer: filling one decodes train.shuffle_buffer rows
		// per source before the first batch, which a few timed steps cannot
		// amortise (and the batches' make-up does not depend on it).
		mix, err := openMixer(ctx, cfg, tok, 0)
		if err != nil {
			return Cost{}, fmt.Errorf("calibrating on data.sources: %w", err)
		}
		defer mix.Close()
		next = func() (*models.Batch, error) {
			mb, err := mix.Next(ctx)
			if err != nil {
				return nil, err
			}
			b := models.Batch(*mb)
			return &b, nil
		}
		cost.Batches = BatchesData
	}
	b := synth
	times := make([]float64, 0, steps)
	for i := range steps + 1 {
		if err := ctx.Err(); err != nil {
			return Cost{}, err
		}
		start := time.Now()
		if b, err = next(); err != nil {
			return Cost{}, fmt.Errorf("calibration step %d: %w", i, err)
		}
		if _, err := model.Step(b, t.LR); err != nil {
			return Cost{}, fmt.Errorf("calibration step %d: %w", i, err)
		}
		if i > 0 {
			times = append(times, time.Since(start).Seconds())
		}
	}
	// The median, not the mean: on a shared machine one step can stall.
	slices.Sort(times)
	cost.StepSeconds = (times[(steps-1)/2] + times[steps/2]) / 2
	if cost.EvalSeconds, err = evalSeconds(ctx, cfg, model, b, rng); err != nil {
		return Cost{}, err
	}
	return cost, nil
}

// DataReady reports whether cfg's tokenizer and every path of its
// data.sources exist, so that Calibrate times the config's own mixture.
func DataReady(cfg Config) bool {
	if _, err := os.Stat(cfg.Tokenizer.Path); err != nil {
		return false
	}
	for _, src := range cfg.Data.Sources {
		for _, p := range src.Paths {
			if _, err := os.Stat(p); err != nil {
				return false
			}
		}
	}
	return len(cfg.Data.Sources) > 0
}

// openMixer opens cfg's streams and the mixer over them, for training and
// for calibration.
func openMixer(ctx context.Context, cfg Config, tok *tokenizer.Tokenizer, shuffleBuffer int) (*mixer.Mixer, error) {
	streams, err := mixer.OpenStreams(ctx, cfg.Data, stream.Options{Tokenizer: tok, Seed: int64(cfg.Seed),
		ShuffleBuffer: shuffleBuffer, Workers: cfg.Train.Threads.Workers})
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, s := range streams {
			s.Close()
		}
	}
	sp, err := mixer.SpecialsOf(tok)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("%s: %w", cfg.Tokenizer.Path, err)
	}
	mix, err := mixer.New(cfg.Data, streams, sp)
	if err != nil {
		closeAll()
		return nil, err
	}
	return mix, nil
}

// fillBatch is B sequences of T tokens, each holding perSeq images (runs
// of connector.tokens placeholders, evenly spaced) and random text.
func fillBatch(c models.Config, B, T, perSeq int, rng *rand.Rand) *models.Batch {
	V := int32(c.Decoder.Vocab)
	b := &models.Batch{B: B, T: T, ImageTokenID: V - 1,
		Tokens: make([]int32, B*T), Targets: make([]int32, B*T), LossMask: make([]float32, B*T),
		Pos: make([]int32, B*T), DocIDs: make([]int32, B*T)}
	for i := range b.Tokens {
		b.Tokens[i] = rng.Int32N(V - 1)
		b.Targets[i] = rng.Int32N(V - 1)
		b.Pos[i] = int32(i % T)
		b.LossMask[i] = 1
	}
	if perSeq > 0 {
		N, R := c.Connector.Tokens, c.Vision.Resolution
		for s := range B {
			for k := range perSeq {
				at := s*T + k*(T/perSeq)
				for j := range N {
					b.Tokens[at+j], b.LossMask[at+j] = b.ImageTokenID, 0
				}
			}
		}
		b.NumImages = B * perSeq
		b.Images = make([]float32, b.NumImages*3*R*R)
		for i := range b.Images {
			b.Images[i] = float32(rng.NormFloat64())
		}
	}
	return b
}

// evalSeconds estimates the eval section's time on model (weights as
// initialised: greedy decoding without a stop id runs every new token, as
// the slowest trained model would).
func evalSeconds(ctx context.Context, cfg Config, model *models.Model, b *models.Batch, rng *rand.Rand) (float64, error) {
	e, m := cfg.Eval, cfg.Model
	var total float64
	if m.Vision != nil && (e.Caption != "" || e.VQA != "") {
		gen, err := models.NewGenerator(model, e.Batch, m.Decoder.MaxSeq, b.ImageTokenID)
		if err != nil {
			return 0, fmt.Errorf("calibrating eval: %w", err)
		}
		for _, task := range []struct {
			dir              string
			maxNew, example  int
			queries, support int
		}{
			{e.Caption, e.MaxNewTokens.Caption, captionExampleTokens, cfg.Shapes.EvalCaption, cfg.Shapes.Support},
			{e.VQA, e.MaxNewTokens.VQA, vqaExampleTokens, cfg.Shapes.EvalVQA, cfg.Shapes.Support},
		} {
			if task.dir == "" {
				continue
			}
			queries := task.queries // the shapes world's split size when every query is evaluated
			if e.MaxQueries > 0 && (queries == 0 || e.MaxQueries < queries) {
				queries = e.MaxQueries
			}
			for _, k := range e.Shots {
				trials := e.Trials
				if k == 0 {
					trials = 1
				}
				prompts := synthPrompts(m, min(e.Batch, queries*trials), k, task.example, m.Decoder.MaxSeq-task.maxNew+1, b.ImageTokenID, rng)
				start := time.Now()
				if _, err := gen.Generate(ctx, prompts, task.maxNew, nil); err != nil {
					return 0, fmt.Errorf("calibrating eval, %d shots: %w", k, err)
				}
				batches := (queries*trials + e.Batch - 1) / e.Batch
				total += time.Since(start).Seconds() * float64(batches)
			}
		}
	}
	if e.Text != "" && e.PerplexitySamples > 0 {
		start := time.Now()
		if _, err := model.Forward(b); err != nil {
			return 0, fmt.Errorf("calibrating eval perplexity: %w", err)
		}
		total += time.Since(start).Seconds() * float64((e.PerplexitySamples+b.B-1)/b.B)
	}
	return total, nil
}

// synthPrompts is n prompts of k demonstrations and a query, each an image
// followed by example text tokens, cut to budget tokens as the evaluation
// drops demonstrations that do not fit.
func synthPrompts(m models.Config, n, k, example, budget int, imageID int32, rng *rand.Rand) []models.Prompt {
	N, R := m.Connector.Tokens, m.Vision.Resolution
	per := N + example
	examples := max(1, min(k+1, budget/per))
	out := make([]models.Prompt, n)
	for i := range out {
		var p models.Prompt
		for range examples {
			for range N {
				p.Tokens = append(p.Tokens, imageID)
			}
			for range example {
				tok := rng.Int32N(int32(m.Decoder.Vocab) - 1) // any id but the placeholder
				if tok >= imageID {
					tok++
				}
				p.Tokens = append(p.Tokens, tok)
			}
			img := make([]float32, 3*R*R)
			for j := range img {
				img[j] = float32(rng.NormFloat64())
			}
			p.Images = append(p.Images, img...)
		}
		out[i] = p
	}
	return out
}
