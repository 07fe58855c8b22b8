package reports

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseMetrics: any metrics.jsonl bytes give points and bad lines with
// valid line numbers, never a panic; each good point has a step ≥ 0.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(`{"step":10,"loss":4.3,"lr":0.002}` + "\n" + `{"step":20,"loss":3.6}` + "\n"))
	f.Add([]byte("{\"step\":1,\"loss\":\n\n{\"step\":2,\"loss\":1e308}\r\n[]\n"))
	f.Add([]byte(`{"step":-1,"loss":1}{"step":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, bad, _ := parseMetrics(bytes.NewReader(b))
		lines := bytes.Count(b, []byte("\n")) + 1
		for _, l := range bad {
			if l.line < 1 || l.line > lines {
				t.Fatalf("bad line %d of %d", l.line, lines)
			}
		}
		for _, p := range pts {
			if p.Step < 0 {
				t.Fatalf("point %+v", p)
			}
		}
	})
}

// FuzzSweepJSON: any sweep.json either is refused with an error or gives a
// report (loaded, analysed and rendered) without a panic.
func FuzzSweepJSON(f *testing.F) {
	for _, name := range []string{"full", "partial", "mixture", "damaged"} {
		b, err := os.ReadFile(filepath.Join(fixtureDir(name), sweepJSONFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"axes":[{"name":"a","values":[]}],"cells":[{"id":"x","dir":".","axes":{"a":[1,{"b":null}]}}],"baseline":{"a":1.5e400}}`))
	f.Add([]byte(`{"version":1,"axes":[{"name":"a","keys":["data.sources.x.weight"],"values":["1",1,1.0]}],"cells":[{"id":"x","axes":{"a":"1"}},{"id":"y","axes":{"a":1},"baseline":true}]}`))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseSweepJSON(b); err != nil {
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, sweepJSONFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		sw, err := Load(context.Background(), dir, log)
		if err != nil {
			t.Fatalf("parsed sweep.json failed to load: %v", err)
		}
		v := newView(Analyse(sw), log)
		if _, err := renderHTML(v); err != nil {
			t.Fatal(err)
		}
		renderMarkdown(v)
	})
}

// FuzzParseEval: any eval.json either is refused with an error or gives
// scores that each name a task and hold at least one trial, never a panic.
func FuzzParseEval(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "realrun", evalFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"tasks":[{"task":"vqa","shots":[{"shots":0,"metrics":{"accuracy":{"mean":1}}}]}],"perplexity":{"perplexity":1e308}}`))
	f.Add([]byte(`{"tasks":[{"task":"","shots":null}],"perplexity":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		scores, _, err := parseEval(b)
		if err != nil {
			return
		}
		for _, s := range scores {
			if s.Task == "" || len(s.Trials) == 0 {
				t.Fatalf("score %+v", s)
			}
		}
	})
}
