package shapes

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/shards"
)

var update = flag.Bool("update", false, "rewrite testdata/world.sha256 from this generator (only when a world's bytes are meant to change)")

// goldenConfig is the tiny world of testdata/world.sha256: every split,
// the book's chunks among the texts.
func goldenConfig(evalText int) Config {
	c := DefaultConfig()
	c.Size = 24
	c.Scenes, c.Docs, c.Texts = 6, 3, 5
	c.EvalCaption, c.EvalVQA, c.Support = 3, 4, 2
	c.EvalText = evalText
	c.Instructions = 4
	c.TextFiles = []string{"testdata/small-book.txt"}
	return c
}

// worldHashes hashes every shard under out, in sha256sum's format, by
// split in Generate's order.
func worldHashes(t *testing.T, out string, splits []string) []string {
	t.Helper()
	var lines []string
	for _, split := range splits {
		files, err := filepath.Glob(filepath.Join(out, filepath.FromSlash(split), "*.parquet"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no shards (%v)", split, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%x  %s/%s", sha256.Sum256(b), split, filepath.Base(f)))
		}
	}
	return lines
}

// TestWorldBytesGolden pins the bytes of every split of a tiny world.
// testdata/world.sha256's lines for the splits other than eval/text, and
// testdata/world-before-eval-text.synth.json, were written by the
// generator before eval/text existed (commit 7aad04e): adding the split
// must change no byte of the others, with or without it. Images are only
// compared on amd64: architectures that fuse multiply-adds may round edge
// pixels differently (see the package doc).
func TestWorldBytesGolden(t *testing.T) {
	golden := filepath.Join("testdata", "world.sha256")
	withEval := goldenConfig(7)
	if *update {
		out := t.TempDir()
		generateIn(t, out, withEval, Options{Workers: 2})
		lines := worldHashes(t, out, withEval.splits())
		if err := os.WriteFile(golden, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	imageFree := func(line string) bool {
		return runtime.GOARCH == "amd64" || strings.Contains(line, "  text/") || strings.Contains(line, "  eval/text/")
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"without eval/text", goldenConfig(0)}, {"with eval/text", withEval}} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			generateIn(t, out, tc.cfg, Options{Workers: 3})
			got := worldHashes(t, out, tc.cfg.splits())
			wantHere := slices.DeleteFunc(slices.Clone(want), func(l string) bool {
				return tc.cfg.EvalText == 0 && strings.Contains(l, "  "+SplitEvalText+"/")
			})
			if len(got) != len(wantHere) {
				t.Fatalf("shards:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantHere, "\n"))
			}
			for i := range got {
				if imageFree(wantHere[i]) && got[i] != wantHere[i] {
					t.Errorf("shard bytes changed:\n got %s\nwant %s", got[i], wantHere[i])
				}
			}
			if tc.cfg.EvalText > 0 || runtime.GOARCH != "amd64" {
				return
			}
			// Without eval/text synth.json is the older generator's, so
			// a world it made reads as one of EvalText 0.
			old, err := os.ReadFile(filepath.Join("testdata", "world-before-eval-text.synth.json"))
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := os.ReadFile(filepath.Join(out, StampName)); string(st) != string(old) {
				t.Errorf("synth.json differs from the older generator's:\n%s", st)
			}
		})
	}
}

// texts reads a text split's documents and their metas' sources.
func texts(t *testing.T, out, split string) (docs []string, sources map[string]int) {
	t.Helper()
	sources = map[string]int{}
	for i, rec := range readSplit(t, out, split) {
		if rec.ID != recordID(split, i) || rec.Kind != data.KindText || len(rec.Texts) != 1 || rec.Texts[0] == nil || *rec.Texts[0] == "" {
			t.Fatalf("%s row %d: %s, kind %s, want one text", split, i, rec.ID, rec.Kind)
		}
		var meta textMeta
		if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
			t.Fatalf("%s: meta: %v", rec.ID, err)
		}
		if meta.Split != split {
			t.Fatalf("%s: meta split %q", rec.ID, meta.Split)
		}
		sources[meta.Source]++
		docs = append(docs, *rec.Texts[0])
	}
	return docs, sources
}

// TestEvalTextHeldOut: eval/text has Config.EvalText scene descriptions
// and stories, none of them a text of text/. The second case's scene
// space is so small (one object, no tiny ones, no book) that many of its
// first draws repeat a training text: the test checks that they do, so
// that it would catch a missing redraw.
func TestEvalTextHeldOut(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(*Config)
		wantClashes bool
	}{
		{"small world", func(c *Config) { c.EvalText = 40 }, false},
		{"tiny scene space", func(c *Config) {
			c.Size, c.MaxObjects, c.TinyFraction, c.TextFiles = 16, 1, 0, nil
			c.Scenes, c.Docs, c.EvalCaption, c.EvalVQA, c.Support = 0, 0, 0, 0, 0
			c.Texts, c.EvalText = 4000, 300
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig()
			tc.edit(&cfg)
			out := t.TempDir()
			generateIn(t, out, cfg, Options{Workers: 2})
			train, _ := texts(t, out, SplitText)
			held, sources := texts(t, out, SplitEvalText)
			if len(held) != cfg.EvalText {
				t.Fatalf("eval/text has %d rows, want %d", len(held), cfg.EvalText)
			}
			if sources["description"] == 0 || sources["story"] == 0 || sources["description"]+sources["story"] != len(held) {
				t.Errorf("eval/text sources %v, want descriptions and stories only", sources)
			}
			seen := map[string]bool{}
			for _, s := range train {
				seen[s] = true
			}
			for i, s := range held {
				if seen[s] {
					t.Errorf("eval/text row %d is also in text/: %q", i, s)
				}
			}
			clashes := 0
			for row := range cfg.EvalText {
				if seen[syntheticText(recordRNG(cfg.Seed, SplitEvalText, row, 0), cfg.sceneOptions(), &textMeta{})] {
					clashes++
				}
			}
			if tc.wantClashes && clashes == 0 {
				t.Errorf("no first draw of eval/text repeats a text of text/: the case does not test the redraw")
			}
		})
	}
}

// TestEvalTextAdded: a world that differs in eval/text's count alone (one
// made before the split existed reads as EvalText 0, see
// TestWorldBytesGolden) keeps its other splits untouched and gets
// eval/text written, or removed, without Force; any other difference is
// still refused.
func TestEvalTextAdded(t *testing.T) {
	out := t.TempDir()
	cfg := smallConfig()
	cfg.EvalText = 0
	generateIn(t, out, cfg, Options{})
	if _, err := os.Stat(filepath.Join(out, "eval", "text")); !os.IsNotExist(err) {
		t.Fatalf("eval/text written with EvalText 0 (stat: %v)", err)
	}
	before := shardHashes(t, out)
	manifest := filepath.Join(out, SplitCaptions, shards.ManifestName)
	mtime := func() string {
		fi, err := os.Stat(manifest)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime().String()
	}
	written := mtime()
	ctx := context.Background()
	for _, step := range []struct {
		evalText int
		upToDate bool
	}{{9, false}, {9, true}, {4, false}, {0, false}, {0, true}} {
		cfg.EvalText = step.evalText
		res := generateIn(t, out, cfg, Options{})
		if res.UpToDate != step.upToDate {
			t.Fatalf("eval_text %d: up to date %v, want %v", step.evalText, res.UpToDate, step.upToDate)
		}
		if !step.upToDate && !slices.Equal(res.Kept, Splits) {
			t.Errorf("eval_text %d: kept %v, want %v", step.evalText, res.Kept, Splits)
		}
		var names []string
		for _, sp := range res.Splits {
			names = append(names, sp.Name)
		}
		if !slices.Equal(names, cfg.splits()) {
			t.Errorf("eval_text %d: result splits %v, want %v", step.evalText, names, cfg.splits())
		}
		after := shardHashes(t, out)
		for _, split := range Splits {
			if !slices.Equal(after[split], before[split]) {
				t.Errorf("eval_text %d: %s changed", step.evalText, split)
			}
		}
		if got := mtime(); got != written {
			t.Errorf("eval_text %d: %s rewritten", step.evalText, manifest)
		}
		_, err := os.Stat(filepath.Join(out, "eval", "text"))
		if step.evalText > 0 {
			if n := len(readSplit(t, out, SplitEvalText)); n != step.evalText {
				t.Errorf("eval_text %d: eval/text has %d rows", step.evalText, n)
			}
		} else if !os.IsNotExist(err) {
			t.Errorf("eval_text 0: eval/text left behind (stat: %v)", err)
		}
		if st, err := readStamp(out); err != nil || !st.Complete || st.Config.EvalText != step.evalText {
			t.Fatalf("eval_text %d: synth.json %+v %v", step.evalText, st, err)
		}
	}
	other := cfg
	other.Seed, other.EvalText = 5, 9
	if _, err := Generate(ctx, out, other, Options{}); err == nil || !strings.Contains(err.Error(), "eval_text 0, now 9") || !strings.Contains(err.Error(), "seed 1, now 5") {
		t.Fatalf("another seed and eval_text: got %v, want a refusal naming both", err)
	}
}
