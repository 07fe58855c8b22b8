package shapes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/shards"
	"github.com/mmablate/mmablate/internal/atomicfile"
)

// StampName is the file in the output directory that records what made it.
const StampName = "synth.json"

// GeneratorVersion changes whenever the same Config would give different
// bytes, so an output from an older generator is never "up to date".
const GeneratorVersion = 2 // 2: interleaved documents hold 2–5 scenes, not 2–8

// Options control a run without changing its output.
type Options struct {
	// Workers render in parallel; ≤ 0 means GOMAXPROCS. The output is
	// byte-identical for every value.
	Workers int
	// Force replaces an output made with other parameters, or synth's
	// files (split datasets, synth.json) among other files. Files synth
	// does not write are never removed.
	Force bool
	// Progress, if set, is called after each record is written, from the
	// goroutine that called Generate.
	Progress func(Progress)
	// Shards sets the shard writer's limits; CreatedBy is always
	// "mmablate data synth".
	Shards shards.Options
}

// Progress is the state of a run.
type Progress struct {
	Split           string
	SplitDone       int64
	SplitRows       int64
	Done, TotalRows int64
}

// Result says what Generate did.
type Result struct {
	// UpToDate: the directory already held this output; nothing was written.
	UpToDate bool
	// Splits are every split of the output, in synth.json's order.
	Splits []SplitResult
	// Kept names the splits of an earlier output that differed from this
	// one in Config.EvalText alone: they were left as they were and only
	// eval/text was written (or removed).
	Kept []string
}

// SplitResult describes one written split.
type SplitResult struct {
	Name   string
	Rows   int64
	Shards []shards.ShardInfo
}

// stamp is synth.json: the parameters and, once complete, what was written.
type stamp struct {
	Generator int           `json:"generator"`
	Config    Config        `json:"config"`
	Inputs    []*textSource `json:"inputs"`
	Complete  bool          `json:"complete"`
	Splits    []SplitResult `json:"splits,omitempty"`
}

// sameParams compares what decides the bytes.
func (s *stamp) sameParams(o *stamp) bool {
	a, _ := json.Marshal(stamp{Generator: s.Generator, Config: s.Config, Inputs: s.Inputs})
	b, _ := json.Marshal(stamp{Generator: o.Generator, Config: o.Config, Inputs: o.Inputs})
	return bytes.Equal(a, b)
}

// sameBesidesEvalText compares what decides the bytes of every split but
// eval/text, whose rows no other split depends on (nor they on it).
func (s *stamp) sameBesidesEvalText(o *stamp) bool {
	a, b := *s, *o
	a.Config.EvalText, b.Config.EvalText = 0, 0
	return a.sameParams(&b)
}

// recordWriter is what a split is written through: a shards.Writer, or a
// failing one in tests.
type recordWriter interface {
	Write(*data.Record) error
	Close() (*shards.Manifest, error)
	Abort() error
}

func newShardWriter(dir string, opts shards.Options) (recordWriter, error) {
	return shards.NewWriter(dir, opts)
}

// Generate writes the shapes world described by cfg into out: one dataset
// directory per split (see the package doc) and synth.json. An out that
// already holds this very output is left alone (Result.UpToDate); one
// holding an output of other parameters, or other files, is refused
// unless opts.Force. A failure removes the failing split's shards and
// leaves synth.json marked incomplete.
func Generate(ctx context.Context, out string, cfg Config, opts Options) (*Result, error) {
	return generate(ctx, out, cfg, opts, newShardWriter)
}

func generate(ctx context.Context, out string, cfg Config, opts Options,
	newWriter func(string, shards.Options) (recordWriter, error)) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if out == "" {
		return nil, errors.New("shapes: no output directory")
	}
	st := &stamp{Generator: GeneratorVersion, Config: cfg, Inputs: []*textSource{}}
	for _, p := range cfg.TextFiles {
		src, err := loadText(p)
		if err != nil {
			return nil, err
		}
		st.Inputs = append(st.Inputs, src)
	}
	res, kept, err := prepare(out, st, opts.Force)
	if res != nil || err != nil {
		return res, err
	}
	if err := writeStamp(out, st); err != nil {
		return nil, err
	}
	m := &maker{cfg: cfg, textRows: planText(cfg.Texts, st.Inputs)}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	prog := Progress{}
	for _, split := range cfg.splits() {
		if _, ok := kept[split]; !ok {
			prog.TotalRows += int64(m.rows(split))
		}
	}
	shardOpts := opts.Shards
	shardOpts.CreatedBy = "mmablate data synth"
	var keptNames []string
	for _, split := range cfg.splits() {
		if sp, ok := kept[split]; ok {
			st.Splits = append(st.Splits, sp)
			keptNames = append(keptNames, split)
			continue
		}
		m.querySigs, m.trainTexts = nil, nil
		switch split {
		case SplitEvalCaptionSupport:
			m.querySigs = m.querySignatures(SplitEvalCaptionQuery)
		case SplitEvalVQASupport:
			m.querySigs = m.querySignatures(SplitEvalVQAQuery)
		case SplitEvalText:
			m.trainTexts = m.textHashes()
		}
		dir := filepath.Join(out, filepath.FromSlash(split))
		w, err := newWriter(dir, shardOpts)
		if err != nil {
			return nil, fmt.Errorf("shapes: split %s: %w", split, err)
		}
		n := m.rows(split)
		prog.Split, prog.SplitDone, prog.SplitRows = split, 0, int64(n)
		err = ordered(ctx, n, workers, m.newWorker,
			func(wk *worker, i int) (*data.Record, error) { return m.record(wk, split, i) },
			func(i int, rec *data.Record) error {
				if err := w.Write(rec); err != nil {
					return err
				}
				prog.SplitDone++
				prog.Done++
				if opts.Progress != nil {
					opts.Progress(prog)
				}
				return nil
			})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("shapes: split %s: %w", split, err), w.Abort())
		}
		man, err := w.Close()
		if err != nil {
			return nil, fmt.Errorf("shapes: split %s: %w", split, err)
		}
		st.Splits = append(st.Splits, SplitResult{Name: split, Rows: man.Rows, Shards: man.Shards})
	}
	st.Complete = true
	if err := writeStamp(out, st); err != nil {
		return nil, err
	}
	return &Result{Splits: st.Splits, Kept: keptNames}, nil
}

// prepare decides what to do with an existing out: a Result when it is up
// to date, an error when it must be refused, neither when generation may
// proceed (after removing an earlier output's files). When the earlier
// output is complete, intact and differs in eval/text's count alone (a
// world made before that split existed, say), only eval/text's files are
// removed and the other splits are returned in kept, by name, to be left
// as they are: their bytes do not depend on it.
func prepare(out string, want *stamp, force bool) (res *Result, kept map[string]SplitResult, err error) {
	fi, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("shapes: output directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("shapes: output %s exists and is not a directory", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil, nil, fmt.Errorf("shapes: output directory: %w", err)
	}
	if len(entries) == 0 {
		return nil, nil, nil
	}
	old, err := readStamp(out)
	switch {
	case err == nil && old.sameParams(want):
		if old.Complete && intact(out, old) {
			return &Result{UpToDate: true, Splits: old.Splits}, nil, nil
		}
		// The same parameters, interrupted or damaged: ours to redo.
	case err == nil && old.sameBesidesEvalText(want) && old.Complete && intact(out, old):
		kept = map[string]SplitResult{}
		for _, sp := range old.Splits {
			if sp.Name != SplitEvalText {
				kept[sp.Name] = sp
			}
		}
		return nil, kept, cleanSplits(out, []string{SplitEvalText})
	case force:
	case err == nil:
		return nil, nil, fmt.Errorf("shapes: %s holds a synth output made with other parameters (%s): use --force to replace it", out, stampDiff(old, want))
	default:
		names := make([]string, 0, 3)
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		return nil, nil, fmt.Errorf("shapes: %s exists and holds other files (%s): choose a new or empty directory, or use --force to write synth's files there (other files are kept)", out, strings.Join(names, ", "))
	}
	return nil, nil, clean(out)
}

// stampDiff names the first parameters that differ, for the refusal message.
func stampDiff(old, want *stamp) string {
	var a, b map[string]any
	ja, _ := json.Marshal(old.Config)
	jb, _ := json.Marshal(want.Config)
	_ = json.Unmarshal(ja, &a)
	_ = json.Unmarshal(jb, &b)
	var diffs []string
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b { // a key left out when zero (eval_text) may be in one alone
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	val := func(m map[string]any, k string) any {
		if v, ok := m[k]; ok {
			return v
		}
		return 0
	}
	for _, k := range keys {
		if va, vb := val(a, k), val(b, k); fmt.Sprint(va) != fmt.Sprint(vb) {
			diffs = append(diffs, fmt.Sprintf("%s %v, now %v", k, va, vb))
		}
	}
	if old.Generator != want.Generator {
		diffs = append(diffs, fmt.Sprintf("generator version %d, now %d", old.Generator, want.Generator))
	}
	if len(diffs) == 0 {
		diffs = append(diffs, "different text files")
	}
	return strings.Join(diffs, "; ")
}

// intact checks that every shard synth.json lists is in place with its
// size and that each split's manifest lists the same shards. It does not
// hash the shards: `mmablate data verify` does that.
func intact(out string, st *stamp) bool {
	if len(st.Splits) != len(st.Config.splits()) {
		return false
	}
	for _, sp := range st.Splits {
		dir := filepath.Join(out, filepath.FromSlash(sp.Name))
		man, err := shards.LoadManifest(dir)
		if err != nil || len(man.Shards) != len(sp.Shards) {
			return false
		}
		for i, sh := range sp.Shards {
			fi, err := os.Stat(filepath.Join(dir, sh.Name))
			if err != nil || fi.Size() != sh.Bytes || man.Shards[i].SHA256 != sh.SHA256 {
				return false
			}
		}
	}
	return true
}

func readStamp(out string) (*stamp, error) {
	b, err := os.ReadFile(filepath.Join(out, StampName))
	if err != nil {
		return nil, err
	}
	var st stamp
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("shapes: %s: %w", filepath.Join(out, StampName), err)
	}
	return &st, nil
}

// writeStamp writes synth.json atomically (temporary file, fsync, rename).
func writeStamp(out string, st *stamp) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("shapes: encode %s: %w", StampName, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("shapes: create output directory: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(out, StampName), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("shapes: %w", err)
	}
	return nil
}

// clean removes what synth writes, and nothing else: synth.json, and in
// each split directory the manifest, the shards and their temporaries;
// directories left empty go too.
func clean(out string) error {
	if err := os.Remove(filepath.Join(out, StampName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("shapes: replace the earlier output in %s: %w", out, err)
	}
	return cleanSplits(out, append(Splits[:len(Splits):len(Splits)], SplitEvalText, SplitInstructions))
}

// cleanSplits removes synth's files from the directories of splits, and
// the directories of synth's layout left empty.
func cleanSplits(out string, splits []string) error {
	var errs []error
	remove := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, split := range splits {
		dir := filepath.Join(out, filepath.FromSlash(split))
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if isOurs(e.Name()) {
				remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	// Deepest first, so eval/caption/query goes before eval/caption.
	for _, d := range []string{"eval/caption/query", "eval/caption/support", "eval/vqa/query", "eval/vqa/support", "eval/text", "eval/caption", "eval/vqa", "eval", "captions", "interleaved", "text", SplitInstructions} {
		p := filepath.Join(out, filepath.FromSlash(d))
		if entries, err := os.ReadDir(p); err == nil && len(entries) == 0 {
			remove(p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shapes: replace the earlier output in %s: %w", out, err)
	}
	return nil
}

// isOurs matches the files a shards writer leaves in a dataset directory.
func isOurs(name string) bool {
	if name == shards.ManifestName {
		return true
	}
	if strings.HasPrefix(name, "shard-") && strings.HasSuffix(name, ".parquet") {
		return true
	}
	return strings.HasPrefix(name, ".shard-") || strings.HasPrefix(name, "."+shards.ManifestName+".tmp-")
}
