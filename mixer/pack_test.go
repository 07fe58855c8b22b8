package mixer

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// oneSource is a valid config over a single source "s" that stops after
// one epoch.
func oneSource(b, t, n, res int) Config {
	return Config{Sources: map[string]Source{"s": {Paths: []string{"fake"}, Weight: 1, Exhausted: ExhaustedStop}},
		Packing: Packing{BatchSize: b, SeqLen: t, ImageTokens: n, Resolution: res}}
}

// packOrdered packs samples in the given order to the end.
func packOrdered(t *testing.T, cfg Config, samples []data.Sample) ([]Batch, error) {
	t.Helper()
	m, err := New(cfg, map[string]data.Stream{"s": &fakeStream{samples: samples, ordered: true}}, testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	var out []Batch
	for {
		b, err := m.Next(context.Background())
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		checkBatch(t, b, testSpecials, cfg.Packing.ImageTokens, cfg.Packing.Resolution, max(cfg.Packing.MaxImages, 1))
		out = append(out, cloneBatch(b))
	}
}

func rows(b Batch, f func(Batch) []int32) [][]int32 {
	v := f(b)
	var out [][]int32
	for r := range b.B {
		out = append(out, v[r*b.T:(r+1)*b.T])
	}
	return out
}

func TestPackByHand(t *testing.T) {
	caption := data.Sample{ID: "cap", Segments: []data.Segment{{Image: testImage(1, 7)}, {Text: "a b", Tokens: []int32{10, 11}}}}
	text := data.Sample{ID: "txt", Segments: []data.Segment{{Text: "c", Tokens: []int32{12}}}}
	text2 := data.Sample{ID: "txt2", Segments: []data.Segment{{Text: "cc", Tokens: []int32{12, 12}}}}
	interleaved := data.Sample{ID: "doc", Segments: []data.Segment{{Image: testImage(1, 5)}, {Text: "x", Tokens: []int32{13}},
		{Image: testImage(1, 6)}, {Text: "y", Tokens: []int32{14}}}}
	tok := func(b Batch) []int32 { return b.Tokens }
	tgt := func(b Batch) []int32 { return b.Targets }
	pos := func(b Batch) []int32 { return b.Pos }
	doc := func(b Batch) []int32 { return b.DocIDs }
	mask := func(b Batch) []int32 {
		out := make([]int32, len(b.LossMask))
		for i, v := range b.LossMask {
			out[i] = int32(v)
		}
		return out
	}
	// Specials: pad 0, image 1, end of chunk 2, bos 3.
	for _, tc := range []struct {
		name     string
		cfg      func(*Config)
		samples  []data.Sample
		n        int
		tokens   [][]int32
		targets  [][]int32
		mask     [][]int32
		pos      [][]int32
		docs     [][]int32
		images   []float32
		overflow string
	}{
		{
			name: "split carries the target across the cut", n: 2, samples: []data.Sample{caption, text},
			tokens:  [][]int32{{3, 1, 1, 10, 11, 2, 3, 12}, {2, 0, 0, 0, 0, 0, 0, 0}},
			targets: [][]int32{{1, 1, 10, 11, 2, 0, 12, 2}, {0, 0, 0, 0, 0, 0, 0, 0}},
			mask:    [][]int32{{0, 0, 0, 1, 1, 0, 1, 1}, {0, 0, 0, 0, 0, 0, 0, 0}},
			pos:     [][]int32{{0, 1, 2, 3, 4, 5, 0, 1}, {0, 0, 1, 2, 3, 4, 5, 6}},
			docs:    [][]int32{{0, 0, 0, 0, 0, 0, 1, 1}, {0, 1, 1, 1, 1, 1, 1, 1}},
			images:  []float32{7, 7, 7},
		},
		{
			name: "carry moves the whole document", n: 2, samples: []data.Sample{caption, text}, overflow: OverflowCarry,
			tokens:  [][]int32{{3, 1, 1, 10, 11, 2, 0, 0}, {3, 12, 2, 0, 0, 0, 0, 0}},
			targets: [][]int32{{1, 1, 10, 11, 2, 0, 0, 0}, {12, 2, 0, 0, 0, 0, 0, 0}},
			mask:    [][]int32{{0, 0, 0, 1, 1, 0, 0, 0}, {1, 1, 0, 0, 0, 0, 0, 0}},
			pos:     [][]int32{{0, 1, 2, 3, 4, 5, 0, 1}, {0, 1, 2, 0, 1, 2, 3, 4}},
			docs:    [][]int32{{0, 0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 1, 1, 1, 1, 1}},
			images:  []float32{7, 7, 7},
		},
		{
			name: "an image's placeholders are never cut", n: 4, samples: []data.Sample{text2, caption},
			// text2 takes 4; bos of the caption fits, its 4 placeholders do not.
			tokens:  [][]int32{{3, 12, 12, 2, 3, 0, 0, 0}, {1, 1, 1, 1, 10, 11, 2, 0}},
			targets: [][]int32{{12, 12, 2, 0, 1, 0, 0, 0}, {1, 1, 1, 10, 11, 2, 0, 0}},
			mask:    [][]int32{{1, 1, 1, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 1, 0, 0}},
			pos:     [][]int32{{0, 1, 2, 3, 0, 0, 1, 2}, {0, 1, 2, 3, 4, 5, 6, 0}},
			docs:    [][]int32{{0, 0, 0, 0, 1, 2, 2, 2}, {0, 0, 0, 0, 0, 0, 0, 1}},
			images:  []float32{7, 7, 7},
		},
		{
			name: "max_images cuts before the image over the cap", n: 1, samples: []data.Sample{interleaved},
			cfg:     func(c *Config) { c.Packing.MaxImages = 1 },
			tokens:  [][]int32{{3, 1, 13, 0, 0, 0, 0, 0}, {1, 14, 2, 0, 0, 0, 0, 0}},
			targets: [][]int32{{1, 13, 1, 0, 0, 0, 0, 0}, {14, 2, 0, 0, 0, 0, 0, 0}},
			mask:    [][]int32{{0, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0, 0}},
			pos:     [][]int32{{0, 1, 2, 0, 1, 2, 3, 4}, {0, 1, 2, 0, 1, 2, 3, 4}},
			docs:    [][]int32{{0, 0, 0, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1, 1}},
			images:  []float32{5, 5, 5, 6, 6, 6},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneSource(2, 8, tc.n, 1)
			cfg.Packing.Overflow = tc.overflow
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			batches, err := packOrdered(t, cfg, tc.samples)
			if err != nil {
				t.Fatal(err)
			}
			if len(batches) != 1 {
				t.Fatalf("%d batches, want 1", len(batches))
			}
			b := batches[0]
			for _, f := range []struct {
				name string
				got  [][]int32
				want [][]int32
			}{{"tokens", rows(b, tok), tc.tokens}, {"targets", rows(b, tgt), tc.targets}, {"mask", rows(b, mask), tc.mask},
				{"pos", rows(b, pos), tc.pos}, {"docs", rows(b, doc), tc.docs}} {
				if !slices.EqualFunc(f.got, f.want, slices.Equal) {
					t.Errorf("%s:\n got %v\nwant %v", f.name, f.got, f.want)
				}
			}
			if !slices.Equal(b.Images, tc.images) {
				t.Errorf("images %v, want %v", b.Images, tc.images)
			}
		})
	}
}

// TestPackGolden packs a mixed batch of captions, interleaved documents
// and texts and compares it with testdata/packed_batch.json.
func TestPackGolden(t *testing.T) {
	cfg := Config{Sources: map[string]Source{
		"caption":     {Paths: []string{"fake"}, Weight: 45},
		"interleaved": {Paths: []string{"fake"}, Weight: 45},
		"text":        {Paths: []string{"fake"}, Weight: 10},
	}, Seed: 3, Packing: Packing{BatchSize: 2, SeqLen: 48, ImageTokens: 3, Resolution: 1, MaxImages: 3}}
	streams := map[string]data.Stream{
		"caption":     newFake(fakeSamples("c", data.KindCaption, 5, 1, 1), 1),
		"interleaved": newFake(fakeSamples("i", data.KindInterleaved, 5, 1, 2), 2),
		"text":        newFake(fakeSamples("t", data.KindText, 5, 1, 3), 3),
	}
	m, err := New(cfg, streams, testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, b, testSpecials, 3, 1, 3)
	got := goldenJSON(t, b, m.Stats())
	path := filepath.Join("testdata", "packed_batch.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("packed batch differs from %s (rerun with -update after checking the change):\n%s", path, got)
	}
}

// goldenJSON writes a batch one row of one field per line, so a diff of
// the golden file reads like the batch.
func goldenJSON(t *testing.T, b *Batch, st Stats) []byte {
	t.Helper()
	line := func(v any) string {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "{\n \"B\": %d, \"T\": %d, \"NumImages\": %d, \"ImageTokenID\": %d,\n", b.B, b.T, b.NumImages, b.ImageTokenID)
	for _, f := range []struct {
		name string
		v    func(lo, hi int) any
	}{
		{"Tokens", func(lo, hi int) any { return b.Tokens[lo:hi] }},
		{"Targets", func(lo, hi int) any { return b.Targets[lo:hi] }},
		{"LossMask", func(lo, hi int) any { return b.LossMask[lo:hi] }},
		{"Pos", func(lo, hi int) any { return b.Pos[lo:hi] }},
		{"DocIDs", func(lo, hi int) any { return b.DocIDs[lo:hi] }},
	} {
		fmt.Fprintf(&sb, " %q: [\n", f.name)
		for r := range b.B {
			sep := ","
			if r == b.B-1 {
				sep = ""
			}
			fmt.Fprintf(&sb, "  %s%s\n", line(f.v(r*b.T, (r+1)*b.T)), sep)
		}
		sb.WriteString(" ],\n")
	}
	fmt.Fprintf(&sb, " \"Images\": %s,\n \"Stats\": %s\n}\n", line(b.Images), line(st))
	return []byte(sb.String())
}

// TestPackRejectsSamplesThatCanNeverFit: each error names the sample and
// the config key to change.
func TestPackRejectsSamplesThatCanNeverFit(t *testing.T) {
	long := data.Sample{ID: "long", Segments: []data.Segment{textSeg(strings.Repeat("x", 20))}}
	img := data.Sample{ID: "pic", Segments: []data.Segment{{Image: testImage(2, 1)}, textSeg("y")}}
	for _, tc := range []struct {
		name   string
		cfg    Config
		sample data.Sample
		want   []string
	}{
		{"image tokens beyond seq_len", oneSource(1, 8, 9, 2), img, []string{`"pic"`, "data.packing.image_tokens = 9", "data.packing.seq_len = 8"}},
		{"text-only run given an image", oneSource(1, 8, 0, 0), img, []string{`"pic"`, "data.packing.image_tokens is 0"}},
		{"wrong resolution", oneSource(1, 8, 2, 4), img, []string{`"pic"`, "data.packing.resolution"}},
		{"too long to carry", func() Config { c := oneSource(1, 8, 0, 0); c.Packing.Overflow = OverflowCarry; return c }(), long,
			[]string{`"long"`, "data.packing.seq_len = 8", "data.packing.overflow"}},
		{"more images than max_images without split", func() Config {
			c := oneSource(1, 64, 2, 2)
			c.Packing.Overflow, c.Packing.MaxImages = OverflowCarry, 1
			return c
		}(), data.Sample{ID: "two", Segments: []data.Segment{{Image: testImage(2, 1)}, {Image: testImage(2, 1)}}},
			[]string{`"two"`, "data.packing.max_images = 1"}},
		{"text without tokens", oneSource(1, 8, 0, 0), data.Sample{ID: "raw", Segments: []data.Segment{{Text: "no tokens"}}},
			[]string{`"raw"`, "Tokenizer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := packOrdered(t, tc.cfg, []data.Sample{tc.sample})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// A long text is split, not refused, by default.
	batches, err := packOrdered(t, oneSource(1, 8, 0, 0), []data.Sample{long})
	if err != nil || len(batches) != 3 {
		t.Fatalf("split of a 22-token document into rows of 8: %d batches, %v", len(batches), err)
	}
	if !errors.Is(err, nil) {
		t.Fatal(err)
	}
}

// TestDefaultMaxImagesIsSixteen: with max_images unset a sequence holds
// MM1's 16 images; the 17th document's image goes to the next sequence
// (split: after the document's <|bos|>; carry: the whole document).
func TestDefaultMaxImagesIsSixteen(t *testing.T) {
	var samples []data.Sample
	for i := range 17 {
		samples = append(samples, data.Sample{ID: fmt.Sprint("cap", i), Segments: []data.Segment{{Image: testImage(1, float32(i))}, textSeg("x")}})
	}
	for _, tc := range []struct {
		overflow string
		filled   int // tokens of the first sequence: 16 documents of 4, and a <|bos|> when split
	}{{OverflowSplit, 65}, {OverflowCarry, 64}} {
		t.Run(tc.overflow, func(t *testing.T) {
			cfg := oneSource(1, 100, 1, 1)
			cfg.Packing.Overflow = tc.overflow
			m, err := New(cfg, map[string]data.Stream{"s": &fakeStream{samples: samples, ordered: true}}, testSpecials)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range []int{16, 1} {
				b, err := m.Next(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				checkBatch(t, b, testSpecials, 1, 1, 16)
				if b.NumImages != want {
					t.Fatalf("batch %d holds %d images, want %d", i, b.NumImages, want)
				}
				if i == 0 {
					if got := slices.Index(b.Tokens, testSpecials.Pad); got != tc.filled {
						t.Fatalf("first sequence: padding from %d, want %d", got, tc.filled)
					}
					for j := range 16 {
						if b.Images[3*j] != float32(j) {
							t.Fatalf("image %d of the batch is sample %v's", j, b.Images[3*j])
						}
					}
				}
			}
		})
	}
}
