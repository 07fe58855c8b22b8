package shapes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/shards"
)

func smallConfig() Config {
	c := DefaultConfig()
	c.Scenes, c.Docs, c.Texts = 30, 8, 10
	c.EvalCaption, c.EvalVQA, c.Support, c.EvalText = 12, 25, 6, 15
	c.TextFiles = []string{"testdata/small-book.txt"}
	return c
}

func generateIn(t *testing.T, dir string, cfg Config, opts Options) *Result {
	t.Helper()
	res, err := Generate(context.Background(), dir, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// shardHashes lists each split's shard sha256s as recorded in its manifest.
func shardHashes(t *testing.T, out string) map[string][]string {
	t.Helper()
	st, err := readStamp(out)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{}
	for _, sp := range st.Splits {
		split := sp.Name
		m, err := shards.LoadManifest(filepath.Join(out, split))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.Shards {
			h[split] = append(h[split], s.SHA256)
		}
	}
	return h
}

func TestDeterministic(t *testing.T) {
	base := t.TempDir()
	cfg := smallConfig()
	var runs []map[string][]string
	for i, workers := range []int{1, 4, 1} {
		out := filepath.Join(base, fmt.Sprint(i))
		generateIn(t, out, cfg, Options{Workers: workers, Shards: shards.Options{MaxRowsPerShard: 7}})
		if errs, err := shards.Verify(filepath.Join(out, SplitCaptions)); err != nil || len(errs) > 0 {
			t.Fatalf("verify: %v %v", errs, err)
		}
		runs = append(runs, shardHashes(t, out))
	}
	for i := 1; i < len(runs); i++ {
		for _, split := range cfg.splits() {
			if !slices.Equal(runs[0][split], runs[i][split]) {
				t.Errorf("%s: run %d differs from run 0:\n%v\n%v", split, i, runs[i][split], runs[0][split])
			}
		}
	}
	if len(runs[0][SplitCaptions]) < 2 {
		t.Errorf("want several caption shards to check their order, got %d", len(runs[0][SplitCaptions]))
	}
	// Another seed must change every split with scenes.
	cfg.Seed++
	out := filepath.Join(base, "other-seed")
	generateIn(t, out, cfg, Options{})
	other := shardHashes(t, out)
	for _, split := range cfg.splits() {
		if slices.Equal(other[split], runs[0][split]) {
			t.Errorf("%s: seeds %d and %d give the same shards", split, cfg.Seed-1, cfg.Seed)
		}
	}
}

// readSplit reads a split back through data/layouts, as the trainer will.
func readSplit(t *testing.T, out, split string) []*data.Record {
	t.Helper()
	files, err := layouts.ListFiles(filepath.Join(out, split))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*data.Record
	for _, p := range files {
		f, err := layouts.Open(p, layouts.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Layout() != layouts.Mmablate {
			t.Fatalf("%s: layout %s, want mmablate", p, f.Layout())
		}
		for g := range f.NumRowGroups() {
			err := f.ReadRowGroup(context.Background(), g, func(_ int64, rec *data.Record, err error) error {
				if err != nil {
					return err
				}
				recs = append(recs, rec)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	return recs
}

// sceneOf rebuilds the facts of a scene from its meta form.
func sceneOf(t *testing.T, j SceneJSON) *Scene {
	t.Helper()
	s := &Scene{}
	for _, o := range j.Objects {
		obj := Object{Shape: Shape(shapeIndex[o.Shape]), Color: Color(colorIndex[o.Color]), Size: Size(sizeIndex[o.Size])}
		p := slices.Index(positionNames[:], o.Position)
		if p < 0 {
			t.Fatalf("position %q", o.Position)
		}
		obj.Position = Position(p)
		s.Objects = append(s.Objects, obj)
	}
	return s
}

func imagesOf(t *testing.T, rec *data.Record) int {
	t.Helper()
	n := 0
	for _, im := range rec.Images {
		if im == nil {
			continue
		}
		n++
		img, err := images.Decode(im.Bytes, images.DefaultOptions(64))
		if err != nil {
			t.Fatalf("%s: %s: %v", rec.ID, im.Path, err)
		}
		if img.C != 3 || img.H != 64 || img.W != 64 {
			t.Fatalf("%s: decoded %d×%d×%d", rec.ID, img.C, img.H, img.W)
		}
		isJPEG := bytes.HasPrefix(im.Bytes, []byte{0xFF, 0xD8})
		if isJPEG != strings.HasSuffix(im.Path, ".jpg") {
			t.Fatalf("%s: path %s does not match the format", rec.ID, im.Path)
		}
	}
	return n
}

func TestSplitsReadBack(t *testing.T) {
	out := t.TempDir()
	cfg := smallConfig()
	res := generateIn(t, out, cfg, Options{})
	book, err := loadText("testdata/small-book.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		SplitCaptions: cfg.Scenes, SplitInterleaved: cfg.Docs, SplitText: cfg.Texts + len(book.chunks),
		SplitEvalCaptionQuery: cfg.EvalCaption, SplitEvalCaptionSupport: cfg.Support,
		SplitEvalVQAQuery: cfg.EvalVQA, SplitEvalVQASupport: cfg.Support, SplitEvalText: cfg.EvalText,
	}
	if len(res.Splits) != len(cfg.splits()) {
		t.Fatalf("%d splits in the result", len(res.Splits))
	}
	formats := map[bool]int{}
	for _, split := range cfg.splits() {
		recs := readSplit(t, out, split)
		if len(recs) != want[split] {
			t.Fatalf("%s: %d rows, want %d", split, len(recs), want[split])
		}
		sources := map[string]int{}
		for i, rec := range recs {
			if rec.ID != recordID(split, i) {
				t.Fatalf("%s row %d: id %s", split, i, rec.ID)
			}
			var meta struct {
				Split, Task, Question, Answer, Source, File string
				QuestionType                                string `json:"question_type"`
				Answers, References                         []string
				Scene                                       *SceneJSON
				Scenes                                      []SceneJSON
			}
			if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
				t.Fatalf("%s: meta: %v", rec.ID, err)
			}
			if meta.Split != split {
				t.Fatalf("%s: meta split %q", rec.ID, meta.Split)
			}
			for _, im := range rec.Images {
				if im != nil {
					formats[bytes.HasPrefix(im.Bytes, []byte{0xFF, 0xD8})]++
				}
			}
			nImg := imagesOf(t, rec)
			switch split {
			case SplitCaptions:
				if rec.Kind != data.KindCaption || nImg != 1 || rec.Images[0] == nil || rec.Texts[1] == nil || meta.Task != TaskCaption {
					t.Fatalf("%s: not [image, caption]", rec.ID)
				}
				caption, ok := strings.CutPrefix(*rec.Texts[1], CaptionPrefix)
				if !ok {
					t.Fatalf("%s: %q lacks the prompt prefix %q", rec.ID, *rec.Texts[1], CaptionPrefix)
				}
				if bad := checkCaption(caption, sceneOf(t, *meta.Scene)); bad != "" {
					t.Fatalf("%s: %q: %s", rec.ID, *rec.Texts[1], bad)
				}
			case SplitInterleaved:
				if rec.Kind != data.KindInterleaved || nImg < 2 || nImg > MaxDocScenes || nImg != len(meta.Scenes) || rec.Texts[len(rec.Texts)-1] == nil {
					t.Fatalf("%s: %d images for %d scenes", rec.ID, nImg, len(meta.Scenes))
				}
			case SplitText, SplitEvalText:
				if rec.Kind != data.KindText || len(rec.Texts) != 1 || *rec.Texts[0] == "" {
					t.Fatalf("%s: not [text]", rec.ID)
				}
				sources[meta.Source]++
				if meta.Source == "book" && meta.File != "small-book.txt" {
					t.Fatalf("%s: book file %q", rec.ID, meta.File)
				}
			case SplitEvalCaptionQuery, SplitEvalCaptionSupport:
				if rec.Kind != data.KindCaption || len(rec.Images) != 1 || nImg != 1 || meta.Task != TaskCaption {
					t.Fatalf("%s: not [image]", rec.ID)
				}
				if len(meta.References) < 5 {
					t.Fatalf("%s: %d references", rec.ID, len(meta.References))
				}
				for _, ref := range meta.References {
					if bad := checkCaption(ref, sceneOf(t, *meta.Scene)); bad != "" {
						t.Fatalf("%s: %q: %s", rec.ID, ref, bad)
					}
				}
			default:
				if len(rec.Images) != 2 || nImg != 1 || rec.Texts[1] == nil || *rec.Texts[1] != meta.Question || meta.Task != meta.QuestionType {
					t.Fatalf("%s: not [image, question]", rec.ID)
				}
				q := VQA{Type: meta.QuestionType, Question: meta.Question, Answer: meta.Answer, Answers: meta.Answers}
				if err := checkVQA(q, sceneOf(t, *meta.Scene)); err != nil {
					t.Fatalf("%s: %q: %v", rec.ID, meta.Question, err)
				}
			}
		}
		if split == SplitText && (sources["book"] != len(book.chunks) || sources["story"] == 0 || sources["description"] == 0) {
			t.Fatalf("text sources %v", sources)
		}
	}
	if formats[true] == 0 || formats[false] == 0 {
		t.Errorf("images by format (JPEG?): %v, want both", formats)
	}
}

func signatures(t *testing.T, recs []*data.Record) (map[string]bool, map[string]bool) {
	sigs, imgs := map[string]bool{}, map[string]bool{}
	for _, rec := range recs {
		var meta struct{ Scene SceneJSON }
		if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
			t.Fatal(err)
		}
		sigs[sceneOf(t, meta.Scene).Signature()] = true
		imgs[string(rec.Images[0].Bytes)] = true
	}
	return sigs, imgs
}

// TestEvalSupportDisjoint uses a scene space so small (one object, no tiny
// ones: 2160 scenes) that support scenes would often repeat query scenes
// without the redraw.
func TestEvalSupportDisjoint(t *testing.T) {
	cfg := smallConfig()
	cfg.Size, cfg.MaxObjects, cfg.TinyFraction = 16, 1, 0
	cfg.Scenes, cfg.Docs, cfg.Texts = 0, 0, 0
	cfg.EvalCaption, cfg.EvalVQA, cfg.Support = 1500, 1500, 300
	out := t.TempDir()
	generateIn(t, out, cfg, Options{})
	for _, bench := range []string{"eval/caption", "eval/vqa"} {
		qs, qi := signatures(t, readSplit(t, out, bench+"/query"))
		ss, si := signatures(t, readSplit(t, out, bench+"/support"))
		for s := range ss {
			if qs[s] {
				t.Errorf("%s: scene %q is in support and query", bench, s)
			}
		}
		for b := range si {
			if qi[b] {
				t.Errorf("%s: an image is in support and query", bench)
			}
		}
	}
	// With every one-object tiny scene among the queries no support scene
	// is left: a clear error, not an endless loop.
	cfg.TinyFraction = 1
	m := &maker{cfg: cfg, querySigs: map[string]struct{}{}}
	for sh := range numShapes {
		for c := range numColors {
			for p := range numPositions {
				s := Scene{Objects: []Object{{Shape: sh, Color: c, Size: Tiny, Position: p}}}
				m.querySigs[s.Signature()] = struct{}{}
			}
		}
	}
	_, err := m.record(m.newWorker(), SplitEvalVQASupport, 0)
	if err == nil || !strings.Contains(err.Error(), "scene space is too small") {
		t.Fatalf("exhausted scene space: got %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"size too small", func(c *Config) { c.Size = 15 }, "size 15"},
		{"size too large", func(c *Config) { c.Size = 50000 }, "size 50000"},
		{"negative scenes", func(c *Config) { c.Scenes = -1 }, "scenes = -1"},
		{"absurd docs", func(c *Config) { c.Docs = MaxCount + 1 }, "docs = 10000001"},
		{"negative texts", func(c *Config) { c.Texts = -5 }, "texts"},
		{"absurd eval-vqa", func(c *Config) { c.EvalVQA = 1 << 40 }, "eval-vqa"},
		{"negative support", func(c *Config) { c.Support = -1 }, "support"},
		{"negative eval-text", func(c *Config) { c.EvalText = -1 }, "eval-text = -1"},
		{"absurd eval-text", func(c *Config) { c.EvalText = MaxCount + 1 }, "eval-text = 10000001"},
		{"no objects", func(c *Config) { c.MaxObjects = 0 }, "max-objects = 0"},
		{"too many objects", func(c *Config) { c.MaxObjects = 10 }, "max-objects = 10"},
		{"tiny fraction", func(c *Config) { c.TinyFraction = 1.5 }, "tiny-fraction"},
		{"crowded NaN", func(c *Config) { c.CrowdedFraction = math.NaN() }, "crowded-fraction"},
		{"jpeg fraction", func(c *Config) { c.JPEGFraction = -0.1 }, "jpeg-fraction"},
		{"missing text file", func(c *Config) { c.TextFiles = []string{"testdata/no-such.txt"} }, "no-such.txt"},
		{"empty text file", func(c *Config) { c.TextFiles = []string{os.DevNull} }, "holds no text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig()
			tc.edit(&cfg)
			out := filepath.Join(t.TempDir(), "out")
			_, err := Generate(context.Background(), out, cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused run created %s", out)
			}
		})
	}
}

func TestOutputDirectory(t *testing.T) {
	cfg := smallConfig()
	cfg.Scenes, cfg.Docs, cfg.EvalCaption, cfg.EvalVQA = 5, 2, 3, 3
	ctx := context.Background()

	t.Run("not a directory", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "file")
		os.WriteFile(out, []byte("x"), 0o644)
		if _, err := Generate(ctx, out, cfg, Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other files", func(t *testing.T) {
		out := t.TempDir()
		notes := filepath.Join(out, "notes.txt")
		os.WriteFile(notes, []byte("mine"), 0o644)
		if _, err := Generate(ctx, out, cfg, Options{}); err == nil || !strings.Contains(err.Error(), "notes.txt") {
			t.Fatalf("got %v", err)
		}
		generateIn(t, out, cfg, Options{Force: true})
		if b, err := os.ReadFile(notes); err != nil || string(b) != "mine" {
			t.Fatalf("--force touched an unrelated file: %q %v", b, err)
		}
	})
	t.Run("rerun", func(t *testing.T) {
		out := t.TempDir()
		first := generateIn(t, out, cfg, Options{})
		before := shardHashes(t, out)
		manifest := filepath.Join(out, SplitCaptions, shards.ManifestName)
		st, _ := os.Stat(manifest)
		res := generateIn(t, out, cfg, Options{Workers: 3})
		if !res.UpToDate || len(res.Splits) != len(first.Splits) {
			t.Fatalf("same parameters: up to date %v", res.UpToDate)
		}
		if st2, _ := os.Stat(manifest); !st2.ModTime().Equal(st.ModTime()) {
			t.Errorf("an up-to-date run rewrote %s", manifest)
		}

		other := cfg
		other.Seed = 99
		_, err := Generate(ctx, out, other, Options{})
		if err == nil || !strings.Contains(err.Error(), "seed 1, now 99") || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("other seed without --force: %v", err)
		}
		extra := filepath.Join(out, SplitCaptions, "README")
		os.WriteFile(extra, []byte("kept"), 0o644)
		if res := generateIn(t, out, other, Options{Force: true}); res.UpToDate {
			t.Fatal("a forced run with a new seed says up to date")
		}
		if _, err := os.Stat(extra); err != nil {
			t.Errorf("--force removed an unrelated file: %v", err)
		}
		if after := shardHashes(t, out); slices.Equal(after[SplitCaptions], before[SplitCaptions]) {
			t.Error("the forced run left the old shards")
		}

		// A damaged output with the same parameters is regenerated.
		os.Remove(filepath.Join(out, SplitText, "shard-00000.parquet"))
		if res := generateIn(t, out, other, Options{}); res.UpToDate {
			t.Fatal("a damaged output says up to date")
		}
		if errs, err := shards.Verify(filepath.Join(out, SplitText)); err != nil || len(errs) > 0 {
			t.Fatalf("verify after regeneration: %v %v", errs, err)
		}
	})
}

// failingWriter passes records to a real shard writer until failAt, then
// fails as a full disk would.
type failingWriter struct {
	recordWriter
	n, failAt int
}

func (w *failingWriter) Write(r *data.Record) error {
	if w.n == w.failAt {
		return fmt.Errorf("write shard: %w", syscall.ENOSPC)
	}
	w.n++
	return w.recordWriter.Write(r)
}

func TestWriteFailureLeavesNoShard(t *testing.T) {
	out := t.TempDir()
	cfg := smallConfig()
	opts := Options{Shards: shards.Options{MaxRowsPerShard: 3}}
	_, err := generate(context.Background(), out, cfg, opts, func(dir string, o shards.Options) (recordWriter, error) {
		w, err := shards.NewWriter(dir, o)
		if err != nil || !strings.HasSuffix(dir, SplitInterleaved) {
			return w, err
		}
		return &failingWriter{recordWriter: w, failAt: 5}, nil
	})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "split interleaved") {
		t.Fatalf("got %v, want a disk-full error naming the split", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(out, SplitInterleaved)); len(entries) > 0 {
		t.Fatalf("the failed split left %v", entries)
	}
	st, err := readStamp(out)
	if err != nil || st.Complete {
		t.Fatalf("synth.json after a failure: %+v %v", st, err)
	}
	// The interrupted output is ours with the same parameters: a plain
	// rerun finishes it.
	if res := generateIn(t, out, cfg, opts); res.UpToDate {
		t.Fatal("an interrupted output says up to date")
	}
	if st, err := readStamp(out); err != nil || !st.Complete {
		t.Fatalf("synth.json after the rerun: %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := smallConfig()
	n := 0
	_, err := Generate(ctx, t.TempDir(), cfg, Options{Workers: 2, Progress: func(Progress) {
		if n++; n == 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
