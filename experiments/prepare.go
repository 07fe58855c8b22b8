package experiments

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/mmablate/mmablate/data/shapes"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/internal/boundedfile"
)

// prepareShapes generates the shapes world into shapes.dir when it is set
// and that directory holds no complete output of these parameters yet
// (shapes.Generate leaves an up-to-date one alone).
func prepareShapes(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Shapes.Dir == "" {
		return nil
	}
	unlock, err := lockBeside(cfg.Shapes.Dir)
	if err != nil {
		return fmt.Errorf("shapes.dir: %w", err)
	}
	defer unlock()
	sc := cfg.Shapes.shapesConfig()
	if cfg.Shapes.Book {
		book, err := shapes.BookPath()
		if err != nil {
			return fmt.Errorf("shapes.book: %w", err)
		}
		sc.TextFiles = append([]string{book}, sc.TextFiles...)
	}
	res, err := shapes.Generate(ctx, cfg.Shapes.Dir, sc, shapes.Options{})
	if err != nil {
		return fmt.Errorf("shapes.dir: %w", err)
	}
	if !res.UpToDate {
		log.Info("generated the shapes world", "dir", cfg.Shapes.Dir)
	}
	return nil
}

// prepareEncoder makes sure model.vision.init exists when it is set:
// pretrained first (PretrainEncoder's training) when the config has an
// encoder: section, an error before anything is written otherwise; an
// existing file must suit the config (checkEncoder). Cells
// of a sweep that share the file wait on its lock; the first makes it.
// The shapes world is the caller's to prepare (Train runs prepareShapes
// first), so it is checked and generated once per run.
func prepareEncoder(ctx context.Context, cfg Config, log *slog.Logger) error {
	v := cfg.Model.Vision
	if v == nil || v.Init == "" {
		return nil
	}
	unlock, err := lockBeside(v.Init)
	if err != nil {
		return fmt.Errorf("model.vision.init: %w", err)
	}
	defer unlock()
	_, err = os.Stat(v.Init)
	if err == nil {
		return checkEncoder(v.Init, cfg, log)
	}
	if cfg.Encoder == nil || !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("model.vision.init: %w (an encoder: section pretrains it on first use; or run mmablate encoder pretrain)", err)
	}
	e := cfg.Encoder
	log.Info("pretraining the image encoder", "out", v.Init, "resolution", v.Resolution)
	var res *EncoderResult
	opts, vc, err := encoderSetup(cfg, EncoderOptions{Steps: e.Steps, Batch: e.Batch, LR: e.LR, Seed: e.Seed, Log: log})
	if err == nil {
		res, err = pretrainEncoder(ctx, cfg, v.Init, opts, vc)
	}
	if err != nil {
		return fmt.Errorf("encoder: pretraining %s: %w", v.Init, err)
	}
	for _, a := range res.Attributes {
		log.Info("encoder held-out accuracy", "attribute", a.Name, "accuracy", a.Accuracy, "chance", a.Chance)
	}
	return nil
}

// maxTokenizerBytes bounds a tokenizer.json read (a 256k vocabulary is
// about 10 MB).
const maxTokenizerBytes = 256 << 20

// prepareTokenizer returns the bytes of tokenizer.path, training it first
// from the text of every data source when the file does not exist.
func prepareTokenizer(ctx context.Context, cfg Config, log *slog.Logger) ([]byte, error) {
	path := cfg.Tokenizer.Path
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("tokenizer.path: %w", err)
	}
	unlock, err := lockBeside(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.path: %w", err)
	}
	defer unlock()
	b, err := boundedfile.Read(path, maxTokenizerBytes)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer.path: %w", err)
	}
	tr, err := tokenizer.NewTrainer(tokenizer.TrainOptions{VocabSize: cfg.Tokenizer.Vocab, MinFrequency: cfg.Tokenizer.MinFrequency})
	if err != nil {
		return nil, fmt.Errorf("tokenizer.vocab: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Data.Sources)) {
		src := cfg.Data.Sources[name]
		layout, onError := src.ReadOptions()
		for _, p := range src.Paths {
			if _, err := tr.AddDataset(ctx, p, layout, onError); err != nil {
				return nil, fmt.Errorf("training tokenizer.path %s from data.sources.%s: %w", path, name, err)
			}
		}
	}
	tok, err := tr.Train(ctx)
	if err != nil {
		return nil, fmt.Errorf("training tokenizer.path %s: %w", path, err)
	}
	if err := tok.Save(path); err != nil {
		return nil, err
	}
	log.Info("trained the tokenizer", "path", path, "vocab", tok.VocabSize())
	return tok.Marshal(), nil
}

// lockBeside takes an exclusive lock on the file .<base>.lock next to path,
// so that cells of a sweep started together make a shared dataset or
// tokenizer once: the others wait, then find it made.
func lockBeside(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
