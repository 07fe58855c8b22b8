package mixer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/tokenizer"
)

// fakeMixture is three fake sources; fresh returns new streams over the
// same samples, as a new process would open them.
type fakeMixture struct {
	samples map[string][]data.Sample
}

func newFakeMixture(res int) fakeMixture {
	return fakeMixture{samples: map[string][]data.Sample{
		"caption":     fakeSamples("c", data.KindCaption, 12, res, 1),
		"interleaved": fakeSamples("i", data.KindInterleaved, 9, res, 2),
		"text":        fakeSamples("t", data.KindText, 15, res, 3),
	}}
}

func (f fakeMixture) fresh() map[string]data.Stream {
	out := map[string]data.Stream{}
	for i, name := range []string{"caption", "interleaved", "text"} {
		out[name] = newFake(f.samples[name], int64(i+10))
	}
	return out
}

func mixtureConfig(sampling, overflow, textPolicy string) Config {
	seqLen := 40 // shorter than the longest fake documents, so split cuts them
	if overflow == OverflowCarry {
		seqLen = 80
	}
	return Config{
		Sources: map[string]Source{
			"caption":     {Paths: []string{"fake"}, Weight: 45},
			"interleaved": {Paths: []string{"fake"}, Weight: 45},
			"text":        {Paths: []string{"fake"}, Weight: 10, Exhausted: textPolicy},
		},
		Sampling: sampling, Seed: 5, Schedule: []Phase{{Step: 6, Weights: map[string]float64{"caption": 50, "interleaved": 10, "text": 40}}},
		Packing: Packing{BatchSize: 4, SeqLen: seqLen, ImageTokens: 3, Resolution: 2, MaxImages: 4, Overflow: overflow},
	}
}

// run takes n batches (fewer at io.EOF), checking each.
func run(t *testing.T, m *Mixer, n int, cfg Config) []Batch {
	t.Helper()
	var out []Batch
	for range n {
		b, err := m.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		checkBatch(t, b, testSpecials, cfg.Packing.ImageTokens, cfg.Packing.Resolution, cfg.Packing.MaxImages)
		out = append(out, cloneBatch(b))
	}
	return out
}

// resume serialises m's state to JSON and restores it into a new Mixer
// over fresh streams.
func resume(t *testing.T, m *Mixer, cfg Config, streams map[string]data.Stream) (*Mixer, State) {
	t.Helper()
	st, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	m2, err := New(cfg, streams, testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Restore(back); err != nil {
		t.Fatal(err)
	}
	return m2, st
}

// TestResumeIsExact stops after k batches, resumes from the JSON state in
// a new Mixer over new streams, and compares every later batch with an
// uninterrupted run, across the schedule change at step 6 (constant, or
// linear from step 0 to 6) and epoch ends.
func TestResumeIsExact(t *testing.T) {
	const total = 30
	for _, tc := range []struct{ sampling, overflow, textPolicy, interp string }{
		{SamplingRandom, OverflowSplit, ExhaustedRepeat, InterpConstant},
		{SamplingRandom, OverflowCarry, ExhaustedStop, InterpConstant},
		{SamplingRandom, OverflowSplit, ExhaustedStop, InterpLinear},
		{SamplingStratified, OverflowSplit, ExhaustedStop, InterpConstant},
		{SamplingStratified, OverflowCarry, ExhaustedRepeat, InterpConstant},
		{SamplingStratified, OverflowSplit, ExhaustedRepeat, InterpLinear},
	} {
		t.Run(tc.sampling+"/"+tc.overflow+"/"+tc.textPolicy+"/"+tc.interp, func(t *testing.T) {
			mix := newFakeMixture(2)
			cfg := mixtureConfig(tc.sampling, tc.overflow, tc.textPolicy)
			cfg.Interpolation = tc.interp
			ref, err := New(cfg, mix.fresh(), testSpecials)
			if err != nil {
				t.Fatal(err)
			}
			want := run(t, ref, total, cfg)
			if len(want) != total {
				t.Fatalf("%d batches, want %d", len(want), total)
			}
			if st := ref.Stats(); st.Sources["caption"].Epochs == 0 || st.Sources["text"].Epochs == 0 {
				t.Fatalf("the run never crossed an epoch end: %+v", st.Sources)
			}
			pending, epochsAfter := 0, 0
			for _, k := range []int{1, 4, 6, 7, 11, 17, 23} {
				m, err := New(cfg, mix.fresh(), testSpecials)
				if err != nil {
					t.Fatal(err)
				}
				run(t, m, k, cfg)
				m2, st := resume(t, m, cfg, mix.fresh())
				for name, s := range st.Sources {
					if s.Pending != nil {
						pending++
					}
					if s.Counters.Epochs < ref.Stats().Sources[name].Epochs {
						epochsAfter++
					}
				}
				got := run(t, m2, total-k, cfg)
				for i := range got {
					if !equalBatch(got[i], want[k+i]) {
						t.Fatalf("resumed after %d batches: batch %d differs", k, k+i)
					}
				}
				if a, b := m2.Stats(), ref.Stats(); a.Step != b.Step || a.PadTokens != b.PadTokens || !equalCounters(a.Sources, b.Sources) {
					t.Fatalf("resumed after %d: stats %+v, uninterrupted %+v", k, a, b)
				}
			}
			if pending == 0 || epochsAfter == 0 {
				t.Fatalf("%d snapshots with a partly packed sample, %d epoch ends after a snapshot: the test misses a case", pending, epochsAfter)
			}
		})
	}
}

func equalCounters(a, b map[string]Counters) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestNoSampleLostOrDuplicated runs every source once (exhausted: stop) to
// io.EOF with a resume in the middle: every sample id comes exactly once,
// in the order of the uninterrupted run, and the per-source counters add
// up to what the batches hold. Stratified runs use overflow carry, so that
// every document lies whole in one row and its id can be read back.
func TestNoSampleLostOrDuplicated(t *testing.T) {
	for _, tc := range []struct{ sampling, overflow string }{
		{SamplingRandom, OverflowSplit},
		{SamplingRandom, OverflowCarry},
		{SamplingStratified, OverflowCarry},
	} {
		t.Run(tc.sampling+"/"+tc.overflow, func(t *testing.T) {
			mix := newFakeMixture(2)
			cfg := mixtureConfig(tc.sampling, tc.overflow, ExhaustedStop)
			for name, s := range cfg.Sources {
				s.Exhausted = ExhaustedStop
				cfg.Sources[name] = s
			}
			ref, err := New(cfg, mix.fresh(), testSpecials)
			if err != nil {
				t.Fatal(err)
			}
			batches := run(t, ref, 1000, cfg)
			want := docIDs(t, batches, testSpecials)
			var all []string
			for _, s := range mix.samples {
				for _, x := range s {
					all = append(all, x.ID)
				}
			}
			slices.Sort(all)
			if got := slices.Sorted(slices.Values(want)); !slices.Equal(got, all) {
				t.Fatalf("uninterrupted run gave %d ids, want the %d samples once each", len(got), len(all))
			}
			if _, err := ref.Next(context.Background()); err != io.EOF {
				t.Fatalf("after every source stopped: %v, want io.EOF", err)
			}
			// Every sample was packed whole, so the counters are exactly
			// the batches' documents, non-padding positions and images.
			st := ref.Stats()
			var samples, tokens, images, filled, numImages int64
			for _, c := range st.Sources {
				samples, tokens, images = samples+c.Samples, tokens+c.Tokens, images+c.Images
			}
			for _, b := range batches {
				numImages += int64(b.NumImages)
				for _, tok := range b.Tokens {
					if tok != testSpecials.Pad {
						filled++
					}
				}
			}
			if samples != int64(len(all)) || tokens != filled || images != numImages {
				t.Fatalf("counters: %d samples, %d tokens, %d images; the batches hold %d, %d, %d", samples, tokens, images, len(all), filled, numImages)
			}
			if len(st.Stopped) != len(cfg.Sources) {
				t.Fatalf("stopped sources %v, want all of them", st.Stopped)
			}
			for _, k := range []int{3, 9} {
				m, err := New(cfg, mix.fresh(), testSpecials)
				if err != nil {
					t.Fatal(err)
				}
				first := run(t, m, k, cfg)
				m2, _ := resume(t, m, cfg, mix.fresh())
				got := docIDs(t, append(first, run(t, m2, 1000, cfg)...), testSpecials)
				if !slices.Equal(got, want) {
					t.Fatalf("resumed after %d batches: ids\n%v\nwant\n%v", k, got, want)
				}
			}
		})
	}
}

// TestPaddingFraction: Stats counts exactly the padding positions of the
// batches, overall and for the last batch.
func TestPaddingFraction(t *testing.T) {
	for _, sampling := range []string{SamplingRandom, SamplingStratified} {
		t.Run(sampling, func(t *testing.T) {
			mix := newFakeMixture(2)
			cfg := mixtureConfig(sampling, OverflowCarry, ExhaustedRepeat)
			m, err := New(cfg, mix.fresh(), testSpecials)
			if err != nil {
				t.Fatal(err)
			}
			pad, all, last := 0, 0, 0.0
			for _, b := range run(t, m, 12, cfg) {
				n := 0
				for _, tok := range b.Tokens {
					if tok == testSpecials.Pad {
						n++
					}
				}
				pad, all, last = pad+n, all+len(b.Tokens), float64(n)/float64(len(b.Tokens))
			}
			st := m.Stats()
			if pad == 0 || st.PadTokens != int64(pad) || st.Tokens != int64(all) || st.PaddingFraction() != float64(pad)/float64(all) {
				t.Fatalf("stats %d of %d padding (%v), the batches hold %d of %d", st.PadTokens, st.Tokens, st.PaddingFraction(), pad, all)
			}
			if st.LastPadding != last {
				t.Fatalf("last padding %v, the last batch's is %v", st.LastPadding, last)
			}
		})
	}
}

// TestStratifiedRowsPerBatch: with B = 20 and 45:45:10 every batch has
// 9 caption, 9 interleaved and 2 text rows, each row from one source.
func TestStratifiedRowsPerBatch(t *testing.T) {
	mix := newFakeMixture(2)
	cfg := mixtureConfig(SamplingStratified, OverflowSplit, ExhaustedRepeat)
	cfg.Schedule = nil
	cfg.Packing.BatchSize, cfg.Packing.SeqLen = 20, 128
	m, err := New(cfg, mix.fresh(), testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	for step, b := range run(t, m, 10, cfg) {
		perSource := map[byte]int{}
		for r := range b.B {
			var src byte
			for i := r * b.T; i < (r+1)*b.T-1; i++ {
				if b.Tokens[i] != testSpecials.BOS {
					continue
				}
				j := i + 1
				for b.Tokens[j] == testSpecials.Image {
					j++
				}
				c := byte(b.Tokens[j] - 8)
				if src != 0 && c != src {
					t.Fatalf("batch %d row %d mixes sources %c and %c", step, r, src, c)
				}
				src = c
			}
			perSource[src]++
		}
		if perSource['c'] != 9 || perSource['i'] != 9 || perSource['t'] != 2 {
			t.Fatalf("batch %d rows per source %v, want c:9 i:9 t:2", step, perSource)
		}
	}
}

// TestEmptySourceIsAnError: a stream with no samples names its source
// instead of spinning on empty epochs.
func TestEmptySourceIsAnError(t *testing.T) {
	mix := newFakeMixture(2)
	cfg := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedRepeat)
	streams := mix.fresh()
	streams["text"] = newFake(nil, 1)
	m, err := New(cfg, streams, testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err = m.Next(context.Background()); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "data.sources.text") || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("error %v, want one naming data.sources.text as empty", err)
	}
	if _, err2 := m.Next(context.Background()); !errors.Is(err2, err) && err2.Error() != err.Error() {
		t.Fatalf("error is not sticky: %v then %v", err, err2)
	}
}

// TestRestoreRejectsAChangedDataset: a pending sample that the restored
// stream does not give back is an error, not a silent skip.
func TestRestoreRejectsAChangedDataset(t *testing.T) {
	mix := newFakeMixture(2)
	cfg := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedRepeat)
	for k := 1; k < 10; k++ {
		m, err := New(cfg, mix.fresh(), testSpecials)
		if err != nil {
			t.Fatal(err)
		}
		run(t, m, k, cfg)
		st, err := m.State()
		if err != nil {
			t.Fatal(err)
		}
		var name string
		for n, s := range st.Sources {
			if s.Pending != nil {
				name = n
			}
		}
		if name == "" {
			continue
		}
		streams := mix.fresh()
		streams[name] = newFake(mix.samples[name], 99) // another order
		st.Sources[name] = SourceState{Stream: data.State{Seed: 99, Epoch: st.Sources[name].Stream.Epoch,
			Consumed: st.Sources[name].Stream.Consumed}, Pending: st.Sources[name].Pending, Credit: st.Sources[name].Credit}
		m2, err := New(cfg, streams, testSpecials)
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Restore(st); err != nil {
			t.Fatal(err)
		}
		_, err = m2.Next(context.Background())
		if err == nil || !strings.Contains(err.Error(), "pending") {
			t.Fatalf("error %v, want one about the pending sample", err)
		}
		return
	}
	t.Fatal("no snapshot had a pending sample")
}

// TestImageBufferIsReused: the batch's image buffer keeps its backing
// array from batch to batch.
func TestImageBufferIsReused(t *testing.T) {
	mix := newFakeMixture(2)
	cfg := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedRepeat)
	m, err := New(cfg, mix.fresh(), testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	var first *float32
	for range 20 {
		b, err := m.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if b.NumImages == 0 {
			continue
		}
		if first == nil {
			first = &b.Images[0]
		} else if &b.Images[0] != first {
			t.Fatal("the image buffer was reallocated")
		}
	}
	if first == nil {
		t.Fatal("no batch had images")
	}
}

// FuzzRestore feeds arbitrary JSON as a checkpoint's mixer state: Restore
// and the next batches either fail with an error or produce valid batches.
func FuzzRestore(f *testing.F) {
	mix := newFakeMixture(2)
	cfg := mixtureConfig(SamplingRandom, OverflowSplit, ExhaustedStop)
	m, err := New(cfg, mix.fresh(), testSpecials)
	if err != nil {
		f.Fatal(err)
	}
	for range 7 {
		if _, err := m.Next(context.Background()); err != nil {
			f.Fatal(err)
		}
	}
	st, err := m.State()
	if err != nil {
		f.Fatal(err)
	}
	js, err := json.Marshal(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"version":1,"sampling":"random","sources":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var st State
		if json.Unmarshal(b, &st) != nil {
			return
		}
		m, err := New(cfg, mix.fresh(), testSpecials)
		if err != nil {
			t.Fatal(err)
		}
		if m.Restore(st) != nil {
			return
		}
		for range 3 {
			b, err := m.Next(context.Background())
			if err != nil {
				return
			}
			checkBatch(t, b, testSpecials, cfg.Packing.ImageTokens, cfg.Packing.Resolution, cfg.Packing.MaxImages)
		}
	})
}

// TestStratifiedStopReassignsRows: when a source stops mid-batch its row
// ends and its later rows go to the sources left; no row is left empty.
func TestStratifiedStopReassignsRows(t *testing.T) {
	cfg := Config{Sources: map[string]Source{
		"a": {Paths: []string{"fake"}, Weight: 1, Exhausted: ExhaustedStop},
		"b": {Paths: []string{"fake"}, Weight: 1},
	}, Sampling: SamplingStratified, Packing: Packing{BatchSize: 8, SeqLen: 64}}
	streams := map[string]data.Stream{
		"a": newFake(fakeSamples("a", data.KindText, 3, 0, 1), 1),
		"b": newFake(fakeSamples("b", data.KindText, 50, 0, 2), 2),
	}
	m, err := New(cfg, streams, testSpecials)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 3 {
		b, err := m.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		checkBatch(t, b, testSpecials, 0, 0, 16)
		for r := range b.B {
			if b.Tokens[r*b.T] == testSpecials.Pad {
				t.Fatalf("batch %d row %d is empty", step, r)
			}
		}
	}
	if st := m.Stats(); !slices.Equal(st.Stopped, []string{"a"}) || st.Sources["a"].Samples != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSpecialsOf(t *testing.T) {
	if _, err := SpecialsOf(stubSpecials{img: 1, eoc: 2, bos: 3, pad: -1}); err == nil || !strings.Contains(err.Error(), "<|pad|>") {
		t.Fatalf("missing pad: %v", err)
	}
	sp, err := SpecialsOf(stubSpecials{img: 4, eoc: 5, bos: 6, pad: 7})
	if err != nil || sp != (Specials{Image: 4, EndOfChunk: 5, BOS: 6, Pad: 7}) {
		t.Fatalf("%+v, %v", sp, err)
	}
}

// data/tokenizer's Tokenizer is what SpecialsOf reads in production.
var _ SpecialIDs = (*tokenizer.Tokenizer)(nil)

type stubSpecials struct{ img, eoc, bos, pad int32 }

func (s stubSpecials) ImageID() int32      { return s.img }
func (s stubSpecials) EndOfChunkID() int32 { return s.eoc }
func (s stubSpecials) BOSID() int32        { return s.bos }
func (s stubSpecials) PadID() int32        { return s.pad }
