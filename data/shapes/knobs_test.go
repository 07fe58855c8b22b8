package shapes

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

// sceneStats draws n scenes from the records' own random sources and
// returns the share of tiny objects, and how many scenes had each object
// count (index = count).
func sceneStats(n int, o SceneOptions) (tiny float64, counts []int) {
	counts = make([]int, MaxObjects+1)
	objects, tinies := 0, 0
	for row := range n {
		s := NewScene(recordRNG(11, "knobs", row, 0), o)
		counts[len(s.Objects)]++
		objects += len(s.Objects)
		tinies += s.count(func(o *Object) bool { return o.Size == Tiny })
	}
	return float64(tinies) / float64(objects), counts
}

// TestTinyFraction: TinyFraction is the share of tiny objects NewScene
// draws. 4000 scenes hold about 18000 objects, so the binomial standard
// deviation of the share at 0.15 is 0.0027; the bound 0.01 is 3.7 of them
// (the seed is fixed, so the test is deterministic all the same). 0 and 1
// are exact.
func TestTinyFraction(t *testing.T) {
	for _, tc := range []struct {
		frac, bound float64
	}{{0, 0}, {0.15, 0.01}, {0.5, 0.015}, {1, 0}} {
		t.Run(fmt.Sprint(tc.frac), func(t *testing.T) {
			got, _ := sceneStats(4000, SceneOptions{MaxObjects: 8, TinyFraction: tc.frac, CrowdedFraction: 0.25})
			if math.Abs(got-tc.frac) > tc.bound {
				t.Errorf("tiny share %.4f, want %.2f ± %.3f", got, tc.frac, tc.bound)
			}
		})
	}
}

// TestCrowdedFraction: a crowded scene's count is uniform on the
// documented range [⌈¾·MaxObjects⌉, MaxObjects], any other scene's on
// [1, MaxObjects]. With CrowdedFraction 1 every count lies in the crowded
// range and each of its counts occurs (share within 0.03 of uniform);
// with 0 every count 1..MaxObjects occurs with share within 0.03 of
// 1/MaxObjects; in between, the share of scenes in the crowded range is
// f + (1−f)·|range|/MaxObjects within 0.025. 4000 scenes: the standard
// deviation of a share near ½ is 0.008.
func TestCrowdedFraction(t *testing.T) {
	const n = 4000
	for _, maxObj := range []int{1, 4, 8, 9} {
		lo := int(math.Ceil(0.75 * float64(maxObj)))
		width := maxObj - lo + 1
		for _, frac := range []float64{0, 0.25, 1} {
			t.Run(fmt.Sprintf("max%d/crowded%v", maxObj, frac), func(t *testing.T) {
				_, counts := sceneStats(n, SceneOptions{MaxObjects: maxObj, TinyFraction: 0.15, CrowdedFraction: frac})
				if counts[0] != 0 {
					t.Fatalf("%d empty scenes", counts[0])
				}
				for k := maxObj + 1; k < len(counts); k++ {
					if counts[k] != 0 {
						t.Fatalf("%d scenes with %d > MaxObjects objects", counts[k], k)
					}
				}
				switch frac {
				case 1:
					for k := 1; k <= maxObj; k++ {
						share := float64(counts[k]) / n
						if k < lo && counts[k] != 0 {
							t.Errorf("%d crowded scenes have %d objects, below the crowded range %d..%d", counts[k], k, lo, maxObj)
						}
						if k >= lo && math.Abs(share-1/float64(width)) > 0.03 {
							t.Errorf("%d objects: share %.3f, want uniform %.3f over %d..%d", k, share, 1/float64(width), lo, maxObj)
						}
					}
				case 0:
					for k := 1; k <= maxObj; k++ {
						if share := float64(counts[k]) / n; math.Abs(share-1/float64(maxObj)) > 0.03 {
							t.Errorf("%d objects: share %.3f, want uniform %.3f over 1..%d", k, share, 1/float64(maxObj), maxObj)
						}
					}
				default:
					inRange := 0
					for k := lo; k <= maxObj; k++ {
						inRange += counts[k]
					}
					want := frac + (1-frac)*float64(width)/float64(maxObj)
					if got := float64(inRange) / n; math.Abs(got-want) > 0.025 {
						t.Errorf("share of scenes with %d..%d objects %.3f, want %.3f", lo, maxObj, got, want)
					}
				}
			})
		}
	}
}

// TestKnobsReachRecords: the Config fields reach the scenes of written
// records (the caption split's meta), not only NewScene: all-tiny, all
// crowded scenes of 6..8 objects, and none tiny when TinyFraction is 0.
func TestKnobsReachRecords(t *testing.T) {
	for _, tc := range []struct {
		tiny, crowded float64
		wantTiny      bool
		minObjects    int
	}{{1, 1, true, 6}, {0, 1, false, 6}} {
		cfg := DefaultConfig()
		cfg.Size = MinSize
		cfg.TinyFraction, cfg.CrowdedFraction = tc.tiny, tc.crowded
		m := &maker{cfg: cfg}
		w := m.newWorker()
		for row := range 50 {
			rec, err := m.record(w, SplitCaptions, row)
			if err != nil {
				t.Fatal(err)
			}
			var meta captionMeta
			if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
				t.Fatalf("%s: %v", rec.ID, err)
			}
			objs := meta.Scene.Objects
			if len(objs) < tc.minObjects || len(objs) > cfg.MaxObjects {
				t.Fatalf("tiny %v crowded %v: %s has %d objects, want %d..%d", tc.tiny, tc.crowded, rec.ID, len(objs), tc.minObjects, cfg.MaxObjects)
			}
			for _, o := range objs {
				if (o.Size == "tiny") != tc.wantTiny {
					t.Fatalf("tiny %v: %s has a %s object", tc.tiny, rec.ID, o.Size)
				}
			}
		}
	}
}
