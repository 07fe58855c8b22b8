package mixer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
)

// testSpecials are ids below every byte token of byteTokenizer.
var testSpecials = Specials{Image: 1, EndOfChunk: 2, BOS: 3, Pad: 0}

// byteTokenizer encodes each byte b as b+8, so tests can decode ids.
type byteTokenizer struct{}

func (byteTokenizer) Encode(s string) []int32 {
	out := make([]int32, len(s))
	for i := range len(s) {
		out[i] = int32(s[i]) + 8
	}
	return out
}

func textSeg(s string) data.Segment {
	return data.Segment{Text: s, Tokens: byteTokenizer{}.Encode(s)}
}

// testImage is a 3×r×r image whose every value is v, so a batch's image
// buffer shows which image went where.
func testImage(r int, v float32) *data.Image {
	pix := make([]float32, 3*r*r)
	for i := range pix {
		pix[i] = v
	}
	return &data.Image{C: 3, H: r, W: r, Pix: pix}
}

// fakeSamples makes n samples for source name whose texts start with
// their id and a space; kind caption has one image, interleaved two, text
// none. Lengths vary with a seeded generator.
func fakeSamples(name string, kind data.Kind, n, res int, seed uint64) []data.Sample {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]data.Sample, n)
	for i := range out {
		id := fmt.Sprintf("%s-%03d", name, i)
		words := strings.Repeat("w", 1+rng.IntN(30))
		s := data.Sample{ID: id, Kind: kind}
		switch kind {
		case data.KindCaption:
			s.Segments = []data.Segment{textSeg(id + " "), {Image: testImage(res, float32(i))}, textSeg(words)}
		case data.KindInterleaved:
			s.Segments = []data.Segment{textSeg(id + " " + words), {Image: testImage(res, float32(i))},
				textSeg(words), {Image: testImage(res, float32(-i))}, textSeg("end")}
		default:
			s.Segments = []data.Segment{textSeg(id + " " + words + words)}
		}
		out[i] = s
	}
	return out
}

// fakeStream serves samples in a seeded per-epoch permutation, like
// data/stream's Reader, without files.
type fakeStream struct {
	samples  []data.Sample
	seed     int64
	epoch    int
	consumed int64
	order    []int
	ordered  bool // every epoch in the given order
}

func newFake(samples []data.Sample, seed int64) *fakeStream {
	return &fakeStream{samples: samples, seed: seed}
}

func (f *fakeStream) Next(ctx context.Context) (data.Sample, error) {
	if f.order == nil {
		f.order = rand.New(rand.NewPCG(uint64(f.seed), uint64(f.epoch))).Perm(len(f.samples))
		if f.ordered {
			slices.Sort(f.order)
		}
	}
	if f.consumed == int64(len(f.order)) {
		f.epoch, f.consumed, f.order = f.epoch+1, 0, nil
		return data.Sample{}, io.EOF
	}
	s := f.samples[f.order[f.consumed]]
	f.consumed++
	return s, nil
}

func (f *fakeStream) State() data.State {
	return data.State{Seed: f.seed, Epoch: f.epoch, Consumed: f.consumed, Position: f.consumed, WorldSize: 1}
}

func (f *fakeStream) Restore(s data.State) error {
	if s.Seed != f.seed || s.Consumed > int64(len(f.samples)) {
		return fmt.Errorf("fake: bad state %+v", s)
	}
	f.epoch, f.consumed, f.order = s.Epoch, s.Consumed, nil
	return nil
}

func (f *fakeStream) Close() error { return nil }

// checkBatch verifies the packing invariants every batch must hold.
func checkBatch(t *testing.T, b *Batch, sp Specials, n, res, maxImages int) {
	t.Helper()
	if len(b.Tokens) != b.B*b.T || len(b.Targets) != b.B*b.T || len(b.LossMask) != b.B*b.T || len(b.Pos) != b.B*b.T || len(b.DocIDs) != b.B*b.T {
		t.Fatalf("slice lengths differ from B·T = %d", b.B*b.T)
	}
	if len(b.Images) != b.NumImages*3*res*res {
		t.Fatalf("%d image values for %d images", len(b.Images), b.NumImages)
	}
	runs := 0
	for r := range b.B {
		rowImages := 0
		for t0 := 0; t0 < b.T; t0++ {
			i := r*b.T + t0
			tok := b.Tokens[i]
			newDoc := t0 == 0 || b.DocIDs[i] != b.DocIDs[i-1]
			switch {
			case newDoc && b.Pos[i] != 0:
				t.Fatalf("row %d pos %d: a document piece starts at position id %d", r, t0, b.Pos[i])
			case newDoc && t0 > 0 && b.DocIDs[i] != b.DocIDs[i-1]+1:
				t.Fatalf("row %d pos %d: doc id jumps from %d to %d", r, t0, b.DocIDs[i-1], b.DocIDs[i])
			case !newDoc && b.Pos[i] != b.Pos[i-1]+1:
				t.Fatalf("row %d pos %d: position id %d after %d in one document", r, t0, b.Pos[i], b.Pos[i-1])
			}
			if (tok == sp.Image || tok == sp.Pad) && b.LossMask[i] != 0 {
				t.Fatalf("row %d pos %d: loss mask %v on token %d", r, t0, b.LossMask[i], tok)
			}
			if b.LossMask[i] != 0 && (b.Targets[i] == sp.Image || b.Targets[i] == sp.Pad) {
				t.Fatalf("row %d pos %d: loss on target %d", r, t0, b.Targets[i])
			}
			if t0+1 < b.T && b.DocIDs[i+1] == b.DocIDs[i] && tok != sp.Pad && b.Targets[i] != b.Tokens[i+1] {
				t.Fatalf("row %d pos %d: target %d is not the next token %d", r, t0, b.Targets[i], b.Tokens[i+1])
			}
			if tok == sp.Image {
				// Runs are skipped whole, so this starts one: n placeholders of one piece.
				if t0+n > b.T || slices.ContainsFunc(b.Tokens[i:i+n], func(x int32) bool { return x != sp.Image }) ||
					b.DocIDs[i+n-1] != b.DocIDs[i] {
					t.Fatalf("row %d pos %d: image placeholders are not a run of exactly %d", r, t0, n)
				}
				runs++
				rowImages++
				t0 += n - 1
			}
		}
		if rowImages > maxImages {
			t.Fatalf("row %d holds %d images, the cap is %d", r, rowImages, maxImages)
		}
	}
	if runs != b.NumImages {
		t.Fatalf("%d placeholder runs for %d images", runs, b.NumImages)
	}
}

// cloneBatch deep-copies b, whose slices the mixer reuses.
func cloneBatch(b *Batch) Batch {
	c := *b
	c.Tokens, c.Targets, c.LossMask = slices.Clone(b.Tokens), slices.Clone(b.Targets), slices.Clone(b.LossMask)
	c.Pos, c.DocIDs, c.Images = slices.Clone(b.Pos), slices.Clone(b.DocIDs), slices.Clone(b.Images)
	c.Instruction = slices.Clone(b.Instruction)
	return c
}

func equalBatch(a, b Batch) bool {
	return a.B == b.B && a.T == b.T && a.NumImages == b.NumImages && slices.Equal(a.Tokens, b.Tokens) &&
		slices.Equal(a.Targets, b.Targets) && slices.Equal(a.LossMask, b.LossMask) && slices.Equal(a.Pos, b.Pos) &&
		slices.Equal(a.DocIDs, b.DocIDs) && slices.Equal(a.Images, b.Images) && slices.Equal(a.Instruction, b.Instruction)
}

// docIDs reads the sample ids out of random-mode batches: with one
// document packed at a time, the non-padding tokens in row-major order
// are the documents end to end, each <|bos|> … <|endofchunk|>, and each
// text starts with its id and a space.
func docIDs(t *testing.T, batches []Batch, sp Specials) []string {
	t.Helper()
	var ids []string
	var cur []byte
	in := false
	for _, b := range batches {
		for _, tok := range b.Tokens {
			switch {
			case tok == sp.Pad || tok == sp.Image:
			case tok == sp.BOS:
				if in {
					t.Fatalf("document %q has no end", cur)
				}
				in, cur = true, cur[:0]
			case tok == sp.EndOfChunk:
				id, _, ok := strings.Cut(string(cur), " ")
				if !in || !ok {
					t.Fatalf("document end without a start or id: %q", cur)
				}
				ids = append(ids, id)
				in = false
			default:
				cur = append(cur, byte(tok-8))
			}
		}
	}
	return ids
}
