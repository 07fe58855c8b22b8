package experiments

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/experiments/eval"
	"github.com/mmablate/mmablate/internal/boundedfile"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
)

// Run-directory file names.
const (
	ResolvedConfigFile = "config.resolved.yaml"
	TokenizerFile      = "tokenizer.json"
	MetricsFile        = "metrics.jsonl"
	FinalWeightsFile   = "final.safetensors"
	EvalFile           = "eval.json"
	DoneFile           = "DONE"
)

// ErrInterrupted is returned (wrapped, with the step and how to resume)
// when ctx was cancelled and the job stopped after writing a checkpoint.
var ErrInterrupted = errors.New("training interrupted")

// Options are a job's settings that are not part of the run config.
type Options struct {
	// Log receives progress and warnings; nil means slog.Default().
	Log *slog.Logger
	// Bar, when set, gets a one-line progress bar (ETA, loss, tokens/s)
	// redrawn in place: pass stderr when it is a terminal. When nil,
	// progress goes to Log every train.log_every steps.
	Bar io.Writer
	// Device and Precision, when set, replace the config's device and
	// precision (cpu or cuda; fp32, tf32 or bf16). Resume continues the run
	// there without changing its config.resolved.yaml: checkpoints are the
	// same files whichever device wrote them (device.go).
	Device, Precision string
}

// Train runs cfg (from Load, or built in Go and then valid) into dir,
// which must not exist or be empty: a run directory is continued only by
// Resume. An interrupted run (ctx cancelled) writes a checkpoint and
// returns an error wrapping ErrInterrupted that says how to resume.
func Train(ctx context.Context, cfg Config, dir string, opts Options) error {
	log := opts.logger()
	cfg, err := opts.onDevice(cfg)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil { // a Config built in Go skipped Load's checks
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("run directory: %w", err)
	}
	// A lone tokenizer.json is a start killed before config.resolved.yaml
	// was written: nothing to resume, so start again.
	if len(entries) > 1 || len(entries) == 1 && entries[0].Name() != TokenizerFile {
		return fmt.Errorf("run directory %s is not empty: continue it with `mmablate train --resume %s`, or choose another --out", dir, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := prepareShapes(ctx, cfg, log); err != nil {
		return err
	}
	if err := checkDataPaths(cfg); err != nil {
		return err
	}
	if err := checkEvalPaths(cfg); err != nil {
		return err
	}
	if err := prepareEncoder(ctx, cfg, log); err != nil {
		return err
	}
	tokBytes, err := prepareTokenizer(ctx, cfg, log)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(tokBytes)
	if err != nil {
		return fmt.Errorf("tokenizer.path %s: %w", cfg.Tokenizer.Path, err)
	}
	if err := cfg.withVocab(tok.VocabSize()); err != nil {
		return err
	}
	resolved, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, TokenizerFile), tokBytes, nil); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	// The resolved config is what marks dir as a run: written after the
	// tokenizer copy, so a resumable directory always has both.
	if err := writeFileAtomic(filepath.Join(dir, ResolvedConfigFile), resolved, nil); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	j := &job{cfg: cfg, dir: dir, opts: opts, log: log, tok: tok, hash: runHash(resolved, tokBytes)}
	return j.run(ctx, nil)
}

// Resume continues the run in dir from its newest complete checkpoint (or
// from the start when it has none), giving the same final weights as an
// uninterrupted run. A finished run (DONE present) is left alone.
func Resume(ctx context.Context, dir string, opts Options) error {
	log := opts.logger()
	if _, err := os.Stat(filepath.Join(dir, DoneFile)); err == nil {
		log.Info("run already finished", "dir", dir)
		return nil
	}
	path := filepath.Join(dir, ResolvedConfigFile)
	resolved, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("resume: %w (is %s a run directory?)", err, dir)
	}
	cfg, err := loadResolved(path)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if cfg, err = opts.onDevice(cfg); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := checkEvalPaths(cfg); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	tokPath := filepath.Join(dir, TokenizerFile)
	tokBytes, err := boundedfile.Read(tokPath, maxTokenizerBytes)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	tok, err := tokenizer.Load(tokBytes)
	if err != nil {
		return fmt.Errorf("resume: %s: %w", tokPath, err)
	}
	if v := tok.VocabSize(); v != cfg.Model.Decoder.Vocab {
		return fmt.Errorf("resume: %s has %d ids, %s model.decoder.vocab is %d", tokPath, v, path, cfg.Model.Decoder.Vocab)
	}
	j := &job{cfg: cfg, dir: dir, opts: opts, log: log, tok: tok, hash: runHash(resolved, tokBytes)}
	st, err := latestCheckpoint(dir, j.hash, log)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := cleanCheckpoints(dir); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if v := cfg.Model.Vision; v != nil && v.Init != "" && st == nil { // a start from step 0 loads it, as Train's did
		if err := checkEncoder(v.Init, cfg, log); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	return j.run(ctx, st)
}

func (o Options) logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// runHash identifies what a checkpoint continues: the resolved config and
// the tokenizer.
func runHash(resolved, tokenizerJSON []byte) string {
	h := sha256.New()
	h.Write(resolved)
	h.Write(tokenizerJSON)
	return hex.EncodeToString(h.Sum(nil))
}

type job struct {
	cfg  Config
	dir  string
	opts Options
	log  *slog.Logger
	tok  *tokenizer.Tokenizer
	hash string // runHash
}

// metricsLine is one line of metrics.jsonl.
type metricsLine struct {
	Step       int              `json:"step"`
	Loss       float64          `json:"loss"`
	LR         float64          `json:"lr"`
	GradNorm   float64          `json:"grad_norm"`
	TokensPerS float64          `json:"tokens_per_s"`
	Samples    map[string]int64 `json:"samples"`
	Tokens     map[string]int64 `json:"tokens"`
	Images     map[string]int64 `json:"images"`
	// Padding is the share of all sequence positions so far that are
	// padding (the packer's loss of throughput).
	Padding float64 `json:"padding"`
	// Skipped counts the rows each source dropped with on_error: skip,
	// by reason; absent when none was.
	Skipped map[string]data.SkipCounts `json:"skipped,omitempty"`
	Time    time.Time                  `json:"time"`
	deviceLine
}

// run trains from checkpoint st (nil: from the start) to train.steps,
// then writes final.safetensors, evaluates and writes DONE.
func (j *job) run(ctx context.Context, st *checkpointState) error {
	c, t := j.cfg, j.cfg.Train
	engine.SetBLASThreads(t.Threads.BLAS)
	// The streams and the mixer see no cancellation: a signal is handled
	// between steps, where the mixer's State is whole.
	dataCtx, stopData := context.WithCancel(context.WithoutCancel(ctx))
	defer stopData()
	mix, err := openMixer(dataCtx, c, j.tok, t.ShuffleBuffer)
	if err != nil {
		return err
	}
	defer mix.Close()
	p := c.Data.Packing
	clip := t.Clip
	if clip == 0 {
		clip = -1 // models: < 0 is off
	}
	model, err := models.New(c.Model, p.BatchSize, p.SeqLen, models.Options{Seed: c.Seed, Workers: t.Threads.Workers,
		MaxImages: c.MaxImages(), ClipNorm: clip,
		AdamW: engine.AdamWConfig{Beta1: t.Beta1, Beta2: t.Beta2, Eps: t.Eps, WeightDecay: t.WeightDecay}})
	if err != nil {
		return err
	}
	defer model.Close()
	scaleLR(model.Params, t.LRScale, j.log)
	if v := c.Model.Vision; v != nil && v.Init != "" && st == nil {
		if err := model.LoadEncoder(v.Init); err != nil {
			return fmt.Errorf("model.vision.init: %w", err)
		}
		// The run's config names the file, not its bytes: the log keeps
		// which encoder this run started from.
		sum, err := fileSHA256(v.Init)
		if err != nil {
			return fmt.Errorf("model.vision.init: %w", err)
		}
		j.log.Info("encoder loaded", "from", v.Init, "sha256", sum)
	}
	dev, err := j.useDevice(model)
	if err != nil {
		return err
	}
	start := 0
	if st != nil {
		if err := loadCheckpoint(j.dir, st, model); err != nil {
			return err
		}
		if err := mix.Restore(st.Mixer); err != nil {
			return fmt.Errorf("resume: %s: %w", stateFile(st.Step), err)
		}
		start = st.Step
		j.log.Info("resuming", "dir", j.dir, "step", start, "of", t.Steps)
	}
	metrics, err := j.openMetrics(start)
	if err != nil {
		return err
	}
	defer metrics.Close()
	feed := newFeeder(dataCtx, mix, t.Steps-start)
	defer feed.close() // before mix.Close
	timer := newStepTimer(dev, feed, start)
	tokensPerStep := float64(p.BatchSize * p.SeqLen)
	bar := newProgress(j.opts.Bar, j.log, start, t.Steps, tokensPerStep)
	lastLog, lastStep := time.Now(), start
	checkpoint := func(step int) error {
		if err := metrics.Sync(); err != nil {
			return fmt.Errorf("%s: %w", MetricsFile, err)
		}
		return writeCheckpoint(j.dir, step, t.KeepCheckpoints, model, feed.state(), j.hash, j.log)
	}
	saved := -1 // the step of the newest committed checkpoint
	if st != nil {
		saved = st.Step
	}
	for step := start; step < t.Steps; step++ {
		if ctx.Err() != nil {
			bar.clear()
			if step == saved {
				return j.interrupted(step)
			}
			if err := checkpoint(step); err != nil {
				return fmt.Errorf("interrupted at step %d, and the checkpoint failed: %w", step, err)
			}
			return j.interrupted(step)
		}
		b, err := feed.next()
		if err == io.EOF {
			return fmt.Errorf("step %d: the data ran out: every source of data.sources stopped (exhausted: stop) before train.steps %d", step, t.Steps)
		}
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		batch := models.Batch(*b)
		lr := t.RateAt(step)
		ss, err := model.Step(&batch, lr)
		if err != nil {
			return err
		}
		done := step + 1
		if done%t.LogEvery == 0 || done == t.Steps {
			now := time.Now()
			tps := tokensPerStep * float64(done-lastStep) / now.Sub(lastLog).Seconds()
			lastLog, lastStep = now, done
			if err := writeMetrics(metrics, done, ss, lr, tps, feed.stats(), timer.line(done), now); err != nil {
				return err
			}
			bar.logged(done, ss.Loss, tps)
		}
		bar.update(done, ss.Loss)
		if done%t.CheckpointEvery == 0 || done == t.Steps {
			if err := checkpoint(done); err != nil {
				return err
			}
			saved = done
		}
	}
	bar.clear()
	if err := model.SaveWeights(filepath.Join(j.dir, FinalWeightsFile), map[string]string{"step": fmt.Sprint(t.Steps)}); err != nil {
		return err
	}
	j.log.Info("training finished", "dir", j.dir, "steps", t.Steps)
	var imgOpts images.Options
	if v := c.Model.Vision; v != nil {
		imgOpts = images.DefaultOptions(v.Resolution) // as OpenStreams decodes for training
	}
	res, err := eval.Run(ctx, model, j.tok, c.Eval, imgOpts, c.Seed)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w during evaluation (training finished); resume with: mmablate train --resume %s", ErrInterrupted, j.dir)
	}
	if err != nil {
		return err
	}
	if err := eval.WriteJSON(filepath.Join(j.dir, EvalFile), res); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(j.dir, DoneFile), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), nil)
}

// checkDataPaths fails before the run directory is written when a
// training dataset is missing: a directory holding the config of a run
// that cannot start would refuse a corrected rerun (it is not empty).
func checkDataPaths(c Config) error {
	for _, name := range slices.Sorted(maps.Keys(c.Data.Sources)) {
		for i, p := range c.Data.Sources[name].Paths {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("data.sources.%s.paths[%d]: %w", name, i, err)
			}
		}
	}
	return nil
}

// checkEvalPaths fails before training, not after it, when an evaluation
// dataset is missing.
func checkEvalPaths(c Config) error {
	for _, p := range []struct{ key, path string }{{"eval.caption", c.Eval.Caption}, {"eval.vqa", c.Eval.VQA}, {"eval.text", c.Eval.Text}} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("%s: %w (\"\" skips it)", p.key, err)
		}
	}
	return nil
}

func (j *job) interrupted(step int) error {
	return fmt.Errorf("%w at step %d of %d; checkpoint written; resume with: mmablate train --resume %s", ErrInterrupted, step, j.cfg.Train.Steps, j.dir)
}

// openMetrics opens metrics.jsonl for appending after dropping the lines
// past step (logged after the checkpoint resumed from, or cut by a kill).
func (j *job) openMetrics(step int) (*os.File, error) {
	path := filepath.Join(j.dir, MetricsFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var keep []byte
	for line := range bytes.Lines(old) {
		var m struct {
			Step *int `json:"step"`
		}
		if !bytes.HasSuffix(line, []byte("\n")) || json.Unmarshal(line, &m) != nil || m.Step == nil || *m.Step > step {
			break
		}
		keep = append(keep, line...)
	}
	if !bytes.Equal(keep, old) {
		if err := writeFileAtomic(path, keep, nil); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	return f, nil
}

func writeMetrics(w io.Writer, step int, ss models.StepStats, lr, tps float64, st mixer.Stats, dl deviceLine, now time.Time) error {
	m := metricsLine{Step: step, Loss: ss.Loss, LR: lr, GradNorm: ss.GradNorm, TokensPerS: tps,
		Samples: map[string]int64{}, Tokens: map[string]int64{}, Images: map[string]int64{},
		Padding: st.PaddingFraction(), Skipped: st.Skipped, Time: now.UTC(), deviceLine: dl}
	for name, c := range st.Sources {
		m.Samples[name], m.Tokens[name], m.Images[name] = c.Samples, c.Tokens, c.Images
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: %w", MetricsFile, err)
	}
	return nil
}

// scaleLR applies train.lr_scale to ps: shorter keys first, so that the
// longest key matching a tensor is the one that holds. A key that matches no
// tensor is logged, not refused: one sweep file serves cells whose models
// differ (average pooling has no connector.blocks).
func scaleLR(ps *engine.Params[float32], scales map[string]float64, log *slog.Logger) {
	keys := slices.SortedFunc(maps.Keys(scales), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	for _, k := range keys {
		n := ps.ScaleLR(k, scales[k])
		if n == 0 {
			log.Warn("train.lr_scale: no tensor of this model has this name or prefix", "key", k)
			continue
		}
		log.Info("train.lr_scale", "key", k, "scale", scales[k], "tensors", n)
	}
}
