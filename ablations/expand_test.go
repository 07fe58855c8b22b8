package ablations

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/experiments"
)

func loadTestSweep(t *testing.T, path string) *Sweep {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cellNames(s *Sweep) []string {
	var names []string
	for _, c := range s.Cells {
		names = append(names, c.Name)
	}
	return names
}

func TestExpandProductExcludeSeedsBaseline(t *testing.T) {
	s := loadTestSweep(t, "testdata/grid.yaml")
	want := []string{
		"res=32,tokens=4,seed=0", "res=32,tokens=4,seed=1",
		"res=64,tokens=4,seed=0", "res=64,tokens=4,seed=1",
		"res=64,tokens=16,seed=0", "res=64,tokens=16,seed=1",
	}
	if got := cellNames(s); !slices.Equal(got, want) {
		t.Fatalf("cells %q, want %q", got, want)
	}
	for i, c := range s.Cells {
		if c.Index != i || c.Dir != "cells/"+c.ID || len(c.ID) != 12 {
			t.Errorf("cell %d: index %d, dir %q, id %q", i, c.Index, c.Dir, c.ID)
		}
		res, tokens := c.Axes["res"].(int), c.Axes["tokens"].(int)
		cfg := c.Config
		if cfg.Model.Vision.Resolution != res || cfg.Data.Packing.Resolution != res ||
			cfg.Model.Connector.Tokens != tokens || cfg.Data.Packing.ImageTokens != tokens {
			t.Errorf("cell %s: vision %d, packing %d, connector %d, packing %d", c.Name,
				cfg.Model.Vision.Resolution, cfg.Data.Packing.Resolution, cfg.Model.Connector.Tokens, cfg.Data.Packing.ImageTokens)
		}
		if cfg.Seed != uint64(c.Seed) || cfg.Data.Seed != uint64(c.Seed) || cfg.Train.Steps != 20 || cfg.Train.Warmup != 2 {
			t.Errorf("cell %s: seed %d, data.seed %d, steps %d, warmup %d", c.Name, cfg.Seed, cfg.Data.Seed, cfg.Train.Steps, cfg.Train.Warmup)
		}
		if c.Baseline != (res == 64 && tokens == 16) {
			t.Errorf("cell %s: baseline %v", c.Name, c.Baseline)
		}
		if !filepath.IsAbs(cfg.Tokenizer.Path) {
			t.Errorf("cell %s: tokenizer.path %q is not absolute", c.Name, cfg.Tokenizer.Path)
		}
	}
	if len(s.Axes) != 2 || s.Axes[0].Name != "res" || !slices.Equal(s.Axes[1].Keys, []string{"model.connector.tokens"}) {
		t.Errorf("axes %+v", s.Axes)
	}
	if s.Slurm != (SlurmResources{Partition: "debug", Time: "00:10:00", Mem: "2G", CPUsPerTask: 2, MaxParallel: 2, RequeueExit: DefaultRequeueExit}) {
		t.Errorf("slurm %+v", s.Slurm)
	}
	var ids strings.Builder
	for _, c := range s.Cells {
		fmt.Fprintf(&ids, "%s %s\n", c.ID, c.Name)
	}
	golden(t, "grid.ids.golden", ids.String())
}

func TestExpandZip(t *testing.T) {
	s := loadTestSweep(t, "testdata/mixture.yaml")
	want := []string{
		"steps=10,mixture=100/1/1,lr=0.003/0.0003,seed=3", "steps=10,mixture=100/1/1,lr=0.001/0.0001,seed=3",
		"steps=10,mixture=50/50/1,lr=0.003/0.0003,seed=3", "steps=10,mixture=50/50/1,lr=0.001/0.0001,seed=3",
		"steps=10,mixture=45/45/10,lr=0.003/0.0003,seed=3", "steps=10,mixture=45/45/10,lr=0.001/0.0001,seed=3",
	}
	if got := cellNames(s); !slices.Equal(got, want) {
		t.Fatalf("cells %q, want %q", got, want)
	}
	c := s.Cells[2]
	src := c.Config.Data.Sources
	if src["caption"].Weight != 50 || src["interleaved"].Weight != 50 || src["text"].Weight != 1 || c.Config.Train.LR != 0.003 || c.Config.Train.MinLR != 0.0003 {
		t.Errorf("cell %s: sources %+v, lr %v/%v", c.Name, src, c.Config.Train.LR, c.Config.Train.MinLR)
	}
	for _, c := range s.Cells {
		if c.Baseline != (c.Axes["mixture"] == "45/45/10") {
			t.Errorf("cell %s: baseline %v", c.Name, c.Baseline)
		}
	}
	if got := s.Axes[1].Values; !slices.Equal(got, []any{"100/1/1", "50/50/1", "45/45/10"}) {
		t.Errorf("mixture display values %v", got)
	}
}

// Ids depend on the resolved config only: not on train.threads, not on
// where the checkout is, not on how the sweep file spells a value.
func TestCellIDsStable(t *testing.T) {
	dir := testdataDir(t)
	ref := loadTestSweep(t, "testdata/grid.yaml")
	ids := func(s *Sweep) []string {
		var out []string
		for _, c := range s.Cells {
			out = append(out, c.ID)
		}
		return out
	}
	grid, err := os.ReadFile("testdata/grid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  string
		same bool
	}{
		{"threads", strings.Replace(string(grid), "set: {", "set: {train.threads: {blas: 2, workers: 2}, ", 1), true},
		{"spelling", strings.Replace(string(grid), "[32, 64]", "[3.2e1, 0x40]", 1), true},
		{"another lr", strings.Replace(string(grid), "set: {", "set: {train.lr: 0.001, ", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.src), "grid.yaml", dir)
			if err != nil {
				t.Fatal(err)
			}
			got := ids(s)
			if slices.Equal(got, ids(ref)) != tc.same {
				t.Errorf("ids %v vs %v: want same=%v", got, ids(ref), tc.same)
			}
		})
	}
	// A copy of the sweep and its base elsewhere gives the same ids.
	moved := t.TempDir()
	for _, f := range []string{"grid.yaml", "base.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(moved, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(loadTestSweep(t, filepath.Join(moved, "grid.yaml"))); !slices.Equal(got, ids(ref)) {
		t.Errorf("ids after moving the sweep %v, want %v", got, ids(ref))
	}
}

func TestInlineBase(t *testing.T) {
	src := `name: inline
base:
  shapes: {dir: data/s, scenes: 100, docs: 10, texts: 10, eval_caption: 10, eval_vqa: 10, support: 10}
  tokenizer: {path: data/s/tok.json, vocab: 300}
  data:
    sources: {caption: {paths: [data/s/captions], weight: 1}}
    packing: {batch_size: 2, seq_len: 64}
  model:
    decoder: {width: 32, layers: 1, heads: 2, kv_heads: 1, ffn_hidden: 64, max_seq: 64}
    vision: {resolution: 16, patch: 8, width: 16, depth: 1, heads: 1}
    connector: {type: avgpool, tokens: 4}
axes:
  data.sources.caption.weight: [1, 2]
`
	dir := t.TempDir()
	s, err := Parse([]byte(src), "inline.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cells) != 2 || s.Base != "" {
		t.Fatalf("%d cells, base %q", len(s.Cells), s.Base)
	}
	cfg := s.Cells[1].Config
	if cfg.Data.Sources["caption"].Weight != 2 || cfg.Tokenizer.Path != filepath.Join(dir, "data/s/tok.json") || cfg.Model.Decoder.Width != 32 {
		t.Errorf("cell %s: weight %v, tokenizer %q, width %d", s.Cells[1].Name, cfg.Data.Sources["caption"].Weight, cfg.Tokenizer.Path, cfg.Model.Decoder.Width)
	}
	// The resolved config reads back as the same run config.
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, s.Cells[1].ConfigYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := experiments.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := cellID(back, dir); err != nil || id != s.Cells[1].ID {
		t.Errorf("config.yaml reads back with id %s (%v), want %s", id, err, s.Cells[1].ID)
	}
}

// An alias in an axis stands for what its anchor names.
func TestAliasValues(t *testing.T) {
	s, err := Parse([]byte("name: t\nbase: base.yaml\nset: {train.steps: &n 30}\naxes:\n  train.log_every: [*n, 5]\n"), "alias.yaml", testdataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cells[0].Config.Train.LogEvery; got != 30 || s.Cells[0].Name != "train.log_every=30,seed=0" {
		t.Errorf("cell %s: log_every %d, want 30", s.Cells[0].Name, got)
	}
}

// BenchmarkParse100 parses and expands a 100-cell grid: resolving and
// checking every cell's run config is what a sweep file's size costs.
func BenchmarkParse100(b *testing.B) {
	src := []byte("name: t\nbase: base.yaml\naxes:\n  train.checkpoint_every: " + seq(10) + "\n  train.log_every: " + seq(10) + "\n")
	dir := testdataDir(b)
	for b.Loop() {
		s, err := Parse(src, "bench.yaml", dir)
		if err != nil || len(s.Cells) != 100 {
			b.Fatal(err)
		}
	}
}
