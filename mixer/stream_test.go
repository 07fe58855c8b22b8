package mixer

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/shards"
	"github.com/mmablate/mmablate/data/stream"
)

// pngBytes is a w×h PNG with a seed-dependent gradient.
func pngBytes(t testing.TB, w, h int, seed int) []byte {
	t.Helper()
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.Set(x, y, color.RGBA{uint8(x*7 + seed), uint8(y*5 + 3*seed), uint8(seed * 11), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// encodeFunc makes a px×px encoded image from a seed.
type encodeFunc func(t testing.TB, px, seed int) []byte

func encodePNG(t testing.TB, px, seed int) []byte { return pngBytes(t, px, px, seed) }

func encodeJPEG(_ testing.TB, px, seed int) []byte {
	return images.SyntheticJPEG(px, px, uint64(seed), 85)
}

// encodeJPEG640x480 ignores px: a VGA photo, decoded and centre-cropped.
func encodeJPEG640x480(_ testing.TB, _, seed int) []byte {
	return images.SyntheticJPEG(640, 480, uint64(seed), 85)
}

// writeSource writes n records of kind to dir with shards.Writer: texts
// begin with the record id, images are px×px.
func writeSource(t testing.TB, dir, prefix string, kind data.Kind, n, px, rowGroupRows int, enc encodeFunc) {
	t.Helper()
	w, err := shards.NewWriter(dir, shards.Options{RowGroupRows: rowGroupRows, MaxRowsPerShard: 2 * rowGroupRows})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		words := strings.Repeat("a shape ", 1+i%5)
		rec := &data.Record{ID: id, Kind: kind, Meta: "{}"}
		switch kind {
		case data.KindCaption:
			rec.Texts = []*string{nil, data.Str(id + " " + words)}
			rec.Images = []*data.ImageRef{{Bytes: enc(t, px, i)}, nil}
		case data.KindInterleaved:
			rec.Texts = []*string{data.Str(id + " " + words), nil, data.Str(words), nil}
			rec.Images = []*data.ImageRef{nil, {Bytes: enc(t, px, i)}, nil, {Bytes: enc(t, px, i+50)}}
		default:
			rec.Texts = []*string{data.Str(id + " " + words + words)}
			rec.Images = []*data.ImageRef{nil}
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// testStreamOptions are the data/stream options of every test over real
// shards; a resumed process must open its streams with the same ones.
var testStreamOptions = stream.Options{Tokenizer: byteTokenizer{}, Seed: 1, ShuffleBuffer: 5, Workers: 2}

// realSources writes three small datasets (images from enc) and returns cfg's sources
// pointed at them and a function opening fresh Readers with OpenStreams.
func realSources(t testing.TB, cfg Config, sizes map[string]int, px int, enc encodeFunc) (Config, func() map[string]data.Stream) {
	root := t.TempDir()
	kinds := map[string]data.Kind{"caption": data.KindCaption, "interleaved": data.KindInterleaved, "text": data.KindText}
	sources := map[string]Source{}
	for name, src := range cfg.Sources {
		dir := filepath.Join(root, name)
		writeSource(t, dir, name[:1], kinds[name], sizes[name], px, 4, enc)
		src.Paths = []string{dir}
		sources[name] = src
	}
	cfg.Sources = sources
	return cfg, func() map[string]data.Stream {
		streams, err := OpenStreams(context.Background(), cfg, testStreamOptions)
		if err != nil {
			t.Fatal(err)
		}
		return streams
	}
}

func TestOpenStreamsChecksTheResolution(t *testing.T) {
	cfg := oneSource(1, 8, 2, 8)
	_, err := OpenStreams(context.Background(), cfg, stream.Options{Image: images.DefaultOptions(16)})
	if err == nil || !strings.Contains(err.Error(), "data.packing.resolution is 8") {
		t.Fatalf("error %v, want one naming data.packing.resolution", err)
	}
	cfg.Sources["s"] = Source{Paths: []string{filepath.Join(t.TempDir(), "missing")}, Weight: 1}
	_, err = OpenStreams(context.Background(), cfg, stream.Options{})
	if err == nil || !strings.Contains(err.Error(), "data.sources.s.paths") {
		t.Fatalf("error %v, want one naming data.sources.s.paths", err)
	}
}

// TestResumeWithStreamReaders: the same as TestResumeIsExact over real
// data/stream Readers of Parquet shards with PNG images, restored from
// their States in new Readers.
func TestResumeWithStreamReaders(t *testing.T) {
	const res, total = 8, 14
	cfg := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedRepeat)
	cfg.Packing.Resolution, cfg.Packing.SeqLen = res, 48
	cfg.Schedule[0].Step = 5
	cfg, open := realSources(t, cfg, map[string]int{"caption": 10, "interleaved": 7, "text": 9}, 12, encodePNG)
	ref, err := New(cfg, open(), testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want := run(t, ref, total, cfg)
	if st := ref.Stats(); st.Sources["caption"].Epochs == 0 || st.Sources["interleaved"].Epochs == 0 {
		t.Fatalf("no epoch end in %d batches: %+v", total, st.Sources)
	}
	pending, epochsAfter := 0, 0
	for _, k := range []int{3, 6, 9} {
		m, err := New(cfg, open(), testSpecials)
		if err != nil {
			t.Fatal(err)
		}
		run(t, m, k, cfg)
		m2, st := resume(t, m, cfg, open())
		m.Close()
		for name, s := range st.Sources {
			if s.Pending != nil {
				pending++
			}
			if s.Counters.Epochs < ref.Stats().Sources[name].Epochs {
				epochsAfter++
			}
		}
		got := run(t, m2, total-k, cfg)
		m2.Close()
		for i := range got {
			if !equalBatch(got[i], want[k+i]) {
				t.Fatalf("resumed after %d batches: batch %d differs", k, k+i)
			}
		}
		if len(got) != total-k {
			t.Fatalf("resumed after %d: %d batches", k, len(got))
		}
	}
	if pending == 0 || epochsAfter == 0 {
		t.Fatalf("%d snapshots with a partly packed sample, %d epoch ends after a snapshot: the test misses a case", pending, epochsAfter)
	}
}

// TestRepeatStartsANewShuffledEpoch: a source with exhausted: repeat gives
// every sample again in its next epoch, in a new order (data/stream's
// per-epoch permutation), and counts its epochs.
func TestRepeatStartsANewShuffledEpoch(t *testing.T) {
	const n = 12
	cfg := Config{Sources: map[string]Source{"text": {Weight: 1, Exhausted: ExhaustedRepeat}}, Packing: Packing{BatchSize: 2, SeqLen: 48}}
	cfg, open := realSources(t, cfg, map[string]int{"text": n}, 8, encodePNG)
	m, err := New(cfg, open(), testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var batches []Batch
	for m.Stats().Sources["text"].Epochs < 2 {
		batches = append(batches, run(t, m, 1, cfg)...)
	}
	ids := docIDs(t, batches, testSpecials)
	if len(ids) < 2*n {
		t.Fatalf("%d documents after two epochs of %d", len(ids), n)
	}
	first, second := ids[:n], ids[n:2*n]
	sorted := slices.Sorted(slices.Values(first))
	for i, id := range sorted {
		if want := fmt.Sprintf("t-%03d", i); id != want {
			t.Fatalf("epoch 0 holds %v, want each of t-000…t-%03d once", sorted, n-1)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(second)), sorted) {
		t.Fatalf("epoch 1 holds %v, epoch 0 %v", second, first)
	}
	if slices.Equal(first, second) {
		t.Fatalf("epoch 1 repeats epoch 0's order %v", first)
	}
}

// TestEmptyDatasetIsAnError: a source whose shards hold no rows opens
// (its manifest is valid) but fails the first draw from it with an error
// naming its config key.
func TestEmptyDatasetIsAnError(t *testing.T) {
	cfg := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedRepeat)
	cfg.Packing.Resolution = 8
	cfg, open := realSources(t, cfg, map[string]int{"caption": 4, "interleaved": 4, "text": 0}, 8, encodePNG)
	m, err := New(cfg, open(), testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for range 20 {
		if _, err = m.Next(context.Background()); err != nil {
			break
		}
	}
	if want := "data.sources.text: the stream gave no samples in epoch 0: the source is empty"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// TestSourceReadOptions: a source's on_error, layout and column keys reach
// its stream: skip drops corrupt images and counts them in Stats.Skipped,
// fail (the default) stops naming the row, and a forced layout is used.
func TestSourceReadOptions(t *testing.T) {
	corruptEveryThird := func(t testing.TB, px, seed int) []byte {
		b := encodePNG(t, px, seed)
		if seed%3 == 0 {
			return b[:len(b)/2]
		}
		return b
	}
	draw := func(cfg Config, open func() map[string]data.Stream) (*Mixer, error) {
		m, err := New(cfg, open(), testSpecials)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if _, err := m.Next(context.Background()); err != nil {
				return m, err
			}
		}
		return m, nil
	}
	base := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedRepeat)
	base.Packing.Resolution = 8
	sizes := map[string]int{"caption": 12, "interleaved": 6, "text": 6}

	t.Run("skip", func(t *testing.T) {
		cfg := base
		cfg.Sources = maps.Clone(base.Sources)
		for _, name := range []string{"caption", "interleaved"} {
			src := cfg.Sources[name]
			src.OnError = "skip"
			cfg.Sources[name] = src
		}
		cfg, open := realSources(t, cfg, sizes, 8, corruptEveryThird)
		m, err := draw(cfg, open)
		defer m.Close()
		if err != nil {
			t.Fatalf("on_error skip: %v", err)
		}
		var n int64
		for _, c := range m.Stats().Skipped["caption"] {
			n += c
		}
		if n == 0 {
			t.Fatalf("Stats.Skipped = %v, want the corrupt caption images counted", m.Stats().Skipped)
		}
	})
	t.Run("fail", func(t *testing.T) {
		cfg, open := realSources(t, base, sizes, 8, corruptEveryThird)
		m, err := draw(cfg, open)
		defer m.Close()
		if err == nil || !strings.Contains(err.Error(), "row") || !strings.Contains(err.Error(), ".parquet") {
			t.Fatalf("on_error fail: %v, want an error naming the shard and row", err)
		}
	})
	t.Run("layout", func(t *testing.T) {
		cfg := base
		cfg.Sources = maps.Clone(base.Sources)
		src := cfg.Sources["text"]
		src.Layout, src.TextColumn = "text", "body"
		cfg.Sources["text"] = src
		root := t.TempDir()
		for name, s := range cfg.Sources {
			writeSource(t, filepath.Join(root, name), name[:1], map[string]data.Kind{"caption": data.KindCaption, "interleaved": data.KindInterleaved, "text": data.KindText}[name], 6, 8, 4, encodePNG)
			s.Paths = []string{filepath.Join(root, name)}
			cfg.Sources[name] = s
		}
		_, err := OpenStreams(context.Background(), cfg, testStreamOptions)
		if err == nil || !strings.Contains(err.Error(), "data.sources.text.paths") || !strings.Contains(err.Error(), "body") {
			t.Fatalf("forced text layout with column body on canonical shards: %v, want an error naming the source and the column", err)
		}
	})
}
