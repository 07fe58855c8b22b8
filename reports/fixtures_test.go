package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The sweep directories under testdata/ are written by writeFixture from
// the known effects below; -regen rewrites them, and TestFixturesUpToDate
// keeps the committed copies equal to what the code makes.
var regen = flag.Bool("regen", false, "rewrite the sweep-directory fixtures under testdata/")

// fixtureAxis is an axis of a fixture with the score each value adds.
type fixtureAxis struct {
	name   string
	keys   []string
	values []any     // display values as sweep.json holds them
	effect []float64 // added to both tasks' score (in printed points)
}

// fixtureCell overrides what a fixture cell's directory holds.
type fixtureCell struct {
	failed        string // FAILED reason
	running       bool
	pending       bool
	noEval        bool
	corruptEval   bool
	corruptMetric bool // line 3 of metrics.jsonl is broken
}

// fixture is a synthetic sweep: score(cell, task, k, trial) = base[task] +
// k/4 + Σ axis effects + seedNoise[seed] + trialNoise[trial], so every
// marginal and delta has a known value.
type fixture struct {
	name      string
	axes      []fixtureAxis
	seeds     []int64
	baseline  map[string]any
	special   map[string]fixtureCell // by cell name
	yaml      string
	seedNoise map[int64]float64
}

var trialNoise = []float64{-0.5, 0.5}

func fixtures() []fixture {
	res := fixtureAxis{"res", []string{"model.vision.resolution"}, []any{32, 64}, []float64{0, 10}}
	tokens := fixtureAxis{"tokens", []string{"model.connector.tokens"}, []any{4, 16}, []float64{0, 0.1}}
	return []fixture{
		{
			name: "full", axes: []fixtureAxis{res, tokens}, seeds: []int64{0, 1},
			baseline:  map[string]any{"res": 64, "tokens": 16},
			seedNoise: map[int64]float64{0: -1, 1: 1},
			yaml: "name: resolution\nbase: ../../experiments/examples/tiny.yaml\nset: {train.steps: 200}\naxes:\n" +
				"  model.vision.resolution: [32, 64]\n  model.connector.tokens: [4, 16]\n" +
				"labels: {model.vision.resolution: res, model.connector.tokens: tokens}\nseeds: [0, 1]\nbaseline: {res: 64, tokens: 16}\n",
		},
		{
			name: "partial",
			axes: []fixtureAxis{
				{"connector", []string{"model.connector.type"}, []any{"avgpool", "<script>alert(1)</script>"}, []float64{0, 3}},
				res,
			},
			seeds:     []int64{0},
			baseline:  map[string]any{"connector": "avgpool", "res": 64},
			seedNoise: map[int64]float64{0: 0},
			special: map[string]fixtureCell{
				"connector=avgpool,res=32,seed=0":                   {corruptMetric: true},
				"connector=<script>alert(1)</script>,res=32,seed=0": {failed: "train: loss is NaN at step 120 <b>"},
				"connector=<script>alert(1)</script>,res=64,seed=0": {running: true},
			},
			yaml: "name: partial <i>\nbase: {seed: 0}\naxes:\n  model.connector.type: [avgpool, \"<script>alert(1)</script>\"]\n" +
				"  model.vision.resolution: [32, 64]\nlabels: {model.connector.type: connector, model.vision.resolution: res}\nseeds: [0]\n",
		},
		{
			name:  "damaged",
			axes:  []fixtureAxis{res},
			seeds: []int64{0, 1}, baseline: map[string]any{"res": 64},
			seedNoise: map[int64]float64{0: -1, 1: 1},
			special: map[string]fixtureCell{
				"res=32,seed=0": {noEval: true},
				"res=32,seed=1": {corruptEval: true},
				"res=64,seed=1": {pending: true},
			},
			yaml: "name: damaged\nbase: tiny.yaml\naxes: {model.vision.resolution: [32, 64]}\nlabels: {model.vision.resolution: res}\nseeds: [0, 1]\n",
		},
		{
			name: "mixture",
			axes: []fixtureAxis{{
				"mixture",
				[]string{"data.sources.caption.weight", "data.sources.interleaved.weight", "data.sources.text.weight"},
				[]any{"100/0/0", "50/50/0", "45/45/10", "0/100/0"}, []float64{4, 2, 3, -6},
			}},
			seeds: []int64{0, 1}, baseline: map[string]any{"mixture": "45/45/10"},
			seedNoise: map[int64]float64{0: -0.5, 1: 0.5},
			yaml: "name: mixture\nbase: ../../experiments/examples/tiny.yaml\nzip:\n  - name: mixture\n" +
				"    keys: [data.sources.caption.weight, data.sources.interleaved.weight, data.sources.text.weight]\n" +
				"    values: [[100,0,0],[50,50,0],[45,45,10],[0,100,0]]\n    labels: [\"100/0/0\",\"50/50/0\",\"45/45/10\",\"0/100/0\"]\n" +
				"seeds: [0, 1]\nbaseline: {mixture: 45/45/10}\n",
		},
	}
}

// writeFixture writes the fixture's sweep directory under dir.
func writeFixture(t testing.TB, dir string, f fixture) {
	t.Helper()
	put := func(rel string, b []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js := func(v any) []byte {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	type cell struct {
		ID       string         `json:"id"`
		Name     string         `json:"name"`
		Index    int            `json:"index"`
		Dir      string         `json:"dir"`
		Axes     map[string]any `json:"axes"`
		Seed     int64          `json:"seed"`
		Baseline bool           `json:"baseline"`
	}
	var axes []map[string]any
	for _, a := range f.axes {
		axes = append(axes, map[string]any{"name": a.name, "keys": a.keys, "values": a.values})
	}
	// Cells in the cartesian product's order, the last axis fastest, seeds
	// innermost.
	var cells []cell
	var walk func(ai int, picked []int)
	walk = func(ai int, picked []int) {
		if ai < len(f.axes) {
			for vi := range f.axes[ai].values {
				walk(ai+1, append(picked, vi))
			}
			return
		}
		for _, seed := range f.seeds {
			c := cell{Axes: map[string]any{}, Seed: seed, Index: len(cells), Baseline: true}
			var parts []string
			for i, a := range f.axes {
				v := a.values[picked[i]]
				c.Axes[a.name] = v
				parts = append(parts, fmt.Sprintf("%s=%v", a.name, v))
				if fmt.Sprint(f.baseline[a.name]) != fmt.Sprint(v) {
					c.Baseline = false
				}
			}
			c.Name = strings.Join(append(parts, fmt.Sprintf("seed=%d", seed)), ",")
			sum := sha256.Sum256([]byte(c.Name))
			c.ID = hex.EncodeToString(sum[:])[:12]
			c.Dir = "cells/" + c.ID
			cells = append(cells, c)
			writeCell(t, put, f, c.Dir, c.Name, picked, seed)
		}
	}
	walk(0, nil)
	put("sweep.yaml", []byte(f.yaml))
	put("sweep.json", js(map[string]any{
		"version": 1, "name": strings.SplitN(strings.TrimPrefix(f.yaml, "name: "), "\n", 2)[0],
		"file": "/src/sweeps/" + f.name + ".yaml", "file_sha256": strings.Repeat("ab", 32),
		"created": "2026-12-01T12:00:00Z", "code_version": "0123456789abcdef0123456789abcdef01234567+dirty",
		"axes": axes, "seeds": f.seeds, "baseline": f.baseline, "cells": cells,
		"datasets": []map[string]string{{"path": "/data/shapes-tiny/captions", "manifest_sha256": strings.Repeat("cd", 32)}},
		"slurm":    map[string]any{"partition": "debug", "max_parallel": 4},
	}))
	for _, c := range cells {
		put(filepath.Join(c.Dir, "cell.json"), js(c))
		put(filepath.Join(c.Dir, "config.yaml"), []byte(fmt.Sprintf("name: %s\nseed: %d\n", f.name, c.Seed)))
	}
	put("executor.json", js(map[string]any{"executor": "local", "started": "2026-12-01T12:00:01Z", "local": map[string]any{"pid": 4242, "host": "laptop"}}))
}

// writeCell writes one cell's directory per its fixtureCell.
func writeCell(t testing.TB, put func(string, []byte), f fixture, dir, name string, picked []int, seed int64) {
	sp := f.special[name]
	switch {
	case sp.pending:
		return
	case sp.failed != "":
		put(dir+"/cell.log", []byte("time=2026-12-01T12:04:00Z level=INFO msg=train step=100\n"+strings.Repeat("x", 3000)+"\n"+
			"time=2026-12-01T12:04:59Z level=INFO msg=train step=110\n\nmmablate: train: loss is NaN at step 120 <b>\n"))
		put(dir+"/FAILED", []byte(fmt.Sprintf(`{"reason":%q,"exit_code":1,"signal":"","time":"2026-12-01T12:05:00Z","attempts":2,"executor":"local"}`+"\n", sp.failed)))
	case sp.running:
		put(dir+"/RUNNING", []byte(`{"pid":777,"host":"node-7","started":"2026-12-01T12:06:00Z","executor":"slurm","slurm_job":"123_5"}`+"\n"))
	}
	effect := f.seedNoise[seed]
	for i, vi := range picked {
		effect += f.axes[i].effect[vi]
	}
	var metrics strings.Builder
	steps := 5
	if sp.failed != "" || sp.running {
		steps = 3
	}
	for s := 1; s <= steps; s++ {
		if s == 3 && sp.corruptMetric {
			metrics.WriteString(`{"step":30,"loss":` + "\n")
			continue
		}
		fmt.Fprintf(&metrics, `{"step":%d,"loss":%.4f,"lr":0.001,"grad_norm":1,"tokens_per_s":1000,"samples":{},"tokens":{},"images":{},"time":"2026-12-01T12:00:00Z"}`+"\n",
			s*10, 6/float64(s)+2-effect/100)
	}
	put(dir+"/run/metrics.jsonl", []byte(metrics.String()))
	if sp.failed != "" || sp.running {
		return
	}
	put(dir+"/run/DONE", []byte("2026-12-01T12:10:00Z\n"))
	switch {
	case sp.noEval:
		return
	case sp.corruptEval:
		put(dir+"/run/eval.json", []byte(`{"seed": 0, "tasks": [{"task": "caption", "shots": [`))
		return
	}
	type stat struct {
		Mean   float64   `json:"mean"`
		Std    float64   `json:"std"`
		Trials []float64 `json:"trials"`
	}
	mk := func(v, scale float64, k int) stat {
		if k == 0 {
			return stat{Mean: v / scale, Trials: []float64{v / scale}}
		}
		tr := make([]float64, len(trialNoise))
		for i, n := range trialNoise {
			tr[i] = (v + n) / scale
		}
		return stat{Mean: v / scale, Std: stddev(tr), Trials: tr}
	}
	var capShots, vqaShots []map[string]any
	for _, k := range []int{0, 4, 8} {
		c := 20 + float64(k)/4 + effect
		q := 30 + float64(k)/4 + effect
		capShots = append(capShots, map[string]any{"shots": k, "metrics": map[string]stat{"cider": mk(c, 100, k), "bleu4": mk(c/2, 100, k)}})
		vqaShots = append(vqaShots, map[string]any{"shots": k, "metrics": map[string]stat{"accuracy": mk(q, 1, k)}})
	}
	b, err := json.MarshalIndent(map[string]any{
		"seed": seed, "config": map[string]any{"shots": []int{0, 4, 8}, "trials": 2},
		"tasks": []map[string]any{
			{"task": "caption", "dir": "eval/caption", "queries": 50, "support": 50, "shots": capShots},
			{"task": "vqa", "dir": "eval/vqa", "queries": 50, "support": 50, "shots": vqaShots},
		},
		"perplexity": map[string]any{"source": "text", "documents": 32, "tokens": 2000, "loss": 3, "perplexity": 20 - effect},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	put(dir+"/run/eval.json", append(b, '\n'))
}

// fixtureDir is the committed fixture's path.
func fixtureDir(name string) string { return filepath.Join("testdata", "sweeps", name) }

func TestFixturesUpToDate(t *testing.T) {
	for _, f := range fixtures() {
		if *regen {
			if err := os.RemoveAll(fixtureDir(f.name)); err != nil {
				t.Fatal(err)
			}
			writeFixture(t, fixtureDir(f.name), f)
			continue
		}
		tmp := t.TempDir()
		writeFixture(t, tmp, f)
		want, got := tree(t, tmp), tree(t, fixtureDir(f.name))
		for p, b := range want {
			if got[p] != b {
				t.Errorf("%s/%s differs from what the fixture code writes (go test ./reports -run TestFixturesUpToDate -regen)", f.name, p)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s/%s is not written by the fixture code (-regen removes it)", f.name, p)
			}
		}
	}
}

// tree maps a directory's file paths to their contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
