package vision

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

// TestResizePosEmbedByHand checks against values worked out on paper from
// PyTorch's align_corners=False rule: output i samples source coordinate
// max((i+0.5)·in/out − 0.5, 0), the upper neighbour clamped to the edge.
func TestResizePosEmbedByHand(t *testing.T) {
	// 2×2 → 4×4, one channel, src = [[0, 1], [2, 3]] (value = 2·row + col).
	// Coordinates per axis: 0 → 0 (clamped), 1 → 0.25, 2 → 0.75, 3 → 1.25 → 1 (edge).
	src := []float64{0, 1, 2, 3}
	axis := []float64{0, 0.25, 0.75, 1}
	want := make([]float64, 16)
	for y := range 4 {
		for x := range 4 {
			want[y*4+x] = 2*axis[y] + axis[x]
		}
	}
	got := make([]float64, 16)
	if err := ResizePosEmbed(got, src, 2, 4, 1); err != nil {
		t.Fatal(err)
	}
	if d := enginetest.MaxDiff(got, want); d > 1e-15 {
		t.Errorf("2→4 upsampling: got %v, want %v", got, want)
	}

	// 4×4 → 2×2 with two channels: coordinates 0.5 and 2.5 per axis, so each
	// output averages a 2×2 block. Channel 0 is 4·row + col, channel 1 is
	// its negative times ten.
	src = make([]float64, 16*2)
	for y := range 4 {
		for x := range 4 {
			src[(y*4+x)*2] = float64(4*y + x)
			src[(y*4+x)*2+1] = -10 * float64(4*y+x)
		}
	}
	want = []float64{2.5, -25, 4.5, -45, 10.5, -105, 12.5, -125}
	got = make([]float64, 8)
	if err := ResizePosEmbed(got, src, 4, 2, 2); err != nil {
		t.Fatal(err)
	}
	if d := enginetest.MaxDiff(got, want); d > 1e-12 {
		t.Errorf("4→2 downsampling: got %v, want %v", got, want)
	}

	// 3 → 2: scale 1.5; coordinates 0.25 and 1.75 on a 1-D ramp per axis.
	src = []float64{0, 1, 2, 10, 11, 12, 20, 21, 22} // 10·row + col
	got = make([]float64, 4)
	if err := ResizePosEmbed(got, src, 3, 2, 1); err != nil {
		t.Fatal(err)
	}
	want = []float64{2.75, 4.25, 17.75, 19.25}
	if d := enginetest.MaxDiff(got, want); d > 1e-12 {
		t.Errorf("3→2: got %v, want %v", got, want)
	}
}

func TestResizePosEmbedIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	src := enginetest.Randn(rng, 5*5*3, 1)
	got := make([]float64, len(src))
	if err := ResizePosEmbed(got, src, 5, 5, 3); err != nil {
		t.Fatal(err)
	}
	for i := range src {
		if got[i] != src[i] {
			t.Fatalf("same-size resize changed element %d: %g → %g", i, src[i], got[i])
		}
	}
}

func TestResizePosEmbedErrors(t *testing.T) {
	for _, tc := range []struct {
		name               string
		dst, src, from, to int
	}{
		{"short source", 16, 3, 2, 4},
		{"long destination", 17, 4, 2, 4},
		{"zero grid", 0, 0, 0, 4},
	} {
		if err := ResizePosEmbed(make([]float32, tc.dst), make([]float32, tc.src), tc.from, tc.to, 1); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestSetPosEmbed loads an embedding from a 1×1 grid into a 2×2 encoder: a
// constant grid stays constant under bilinear resampling.
func TestSetPosEmbed(t *testing.T) {
	v, err := New(engine.NewParams[float32](), tinyConfig(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	if err := v.SetPosEmbed(src, 1); err != nil {
		t.Fatal(err)
	}
	for i, x := range v.PosEmbed.Data() {
		if want := src[i%8]; math.Abs(float64(x-want)) > 1e-6 {
			t.Fatalf("pos_embed[%d] = %g, want %g", i, x, want)
		}
	}
	if err := v.SetPosEmbed(src[:4], 1); err == nil {
		t.Error("SetPosEmbed accepted a source of the wrong width")
	}
}
