package scoring

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestCIDErByHand checks a two-image set worked out by hand.
//
// N = 2 images, so log N = log 2 =: L. Every n-gram of either image's
// references appears in exactly one image (df = 1), so its weight is
// tf·(L − log 1) = L; a hypothesis n-gram found in no reference has df = 0,
// weight tf·(L − log max(1, 0)) = L too.
//
// Image A, "a b" against "a b": unigrams a, b and bigram "a b" all weigh L
// on both sides. Order 1: (L·L + L·L) / (√2L · √2L) = 1. Order 2: L²/L² = 1.
// Orders 3, 4: no n-grams, norm 0, so 0. Both have one bigram, Δ = 0.
// CIDEr = 10 · (1 + 1 + 0 + 0)/4 = 5.
//
// Image B, "c d" against "c e": order 1: only c matches,
// min(L, L)·L / (√2L · √2L) = 1/2; d's reference weight is 0. Order 2:
// "c d" is not in the reference, 0. CIDEr = 10 · (1/2)/4 = 1.25.
//
// Corpus CIDEr = (5 + 1.25)/2 = 3.125.
func TestCIDErByHand(t *testing.T) {
	s, err := Caption([]CaptionItem{
		{ID: "A", Prediction: "a b", References: []string{"a b"}},
		{ID: "B", Prediction: "c d", References: []string{"c e"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"A", s.PerItem[0].CIDEr, 5}, {"B", s.PerItem[1].CIDEr, 1.25}, {"corpus", s.CIDEr, 3.125},
	} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("CIDEr %s = %.15g, want %g", c.name, c.got, c.want)
		}
	}
}

// TestCIDErLengthPenalty: the Gaussian penalty uses bigram counts, as
// pycocoevalcap does. Hypothesis "x y z" against reference "x y z w v" in a
// set where image 2 makes df = 1: the hypothesis vector and the reference
// vector share x, y, z, "x y", "y z", "x y z"; Δ = 2 − 4 = −2 bigrams, so
// every order's similarity is scaled by exp(−4/72).
//
// Order 1: hyp weights L,L,L (norm √3L); ref L×5 (norm √5L); dot 3L², so
// 3/√15. Order 2: hyp 2 bigrams, ref 4: 2/√8. Order 3: 1 trigram vs 3: 1/√3.
// Order 4: hyp has none: 0. Image 1 = 10/4 · e^(−4/72) · (3/√15 + 2/√8 + 1/√3).
func TestCIDErLengthPenalty(t *testing.T) {
	s, err := Caption([]CaptionItem{
		{ID: "1", Prediction: "x y z", References: []string{"x y z w v"}},
		{ID: "2", Prediction: "p", References: []string{"q"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 10.0 / 4 * math.Exp(-4.0/72) * (3/math.Sqrt(15) + 2/math.Sqrt(8) + 1/math.Sqrt(3))
	if got := s.PerItem[0].CIDEr; math.Abs(got-want) > 1e-12 {
		t.Errorf("CIDEr = %.15g, want %.15g", got, want)
	}
}

// TestBLEUByHand: the textbook example, worked out by hand.
//
// hyp  "the cat sat on the mat" (6 words)
// refs "the cat is on the mat" (6), "there is a cat on the mat" (7)
//
// Clipped matches over max reference counts: unigrams the×2, cat, on, mat
// = 5 of 6; bigrams "the cat", "on the", "the mat" = 3 of 5; trigram
// "on the mat" = 1 of 4; 4-grams 0 of 3. Closest reference length 6, so
// ratio = (6 + 1e-15)/(6 + 1e-9), just under 1: the brevity penalty
// exp(1 − 1/ratio) ≈ 1 − 1.7e-10 is pycocoevalcap's and kept.
//
//	BLEU-1 = 5/6, BLEU-2 = √(5/6·3/5) = √½, BLEU-3 = (1/8)^(1/3) = ½,
//	BLEU-4 = (1/8 · 1e-15/3)^(1/4) ≈ 8.03e-5 (the tiny constant).
func TestBLEUByHand(t *testing.T) {
	s, err := Caption([]CaptionItem{{ID: "x", Prediction: "The cat sat on the mat.",
		References: []string{"The cat is on the mat.", "There is a cat on the mat."}}})
	if err != nil {
		t.Fatal(err)
	}
	bp := math.Exp(1 - (6+1e-9)/(6+1e-15))
	want := [4]float64{5.0 / 6 * bp, math.Sqrt(0.5) * bp, 0.5 * bp, math.Pow(0.125*1e-15/3, 0.25) * bp}
	for n := range 4 {
		if math.Abs(s.BLEU[n]-want[n]) > 1e-9*want[n] {
			t.Errorf("BLEU-%d = %.15g, want %.15g", n+1, s.BLEU[n], want[n])
		}
	}
	if s.PerItem[0].BLEU4 != s.BLEU[3] {
		t.Errorf("one-item BLEU4 %g differs from corpus BLEU-4 %g", s.PerItem[0].BLEU4, s.BLEU[3])
	}
	// A single image gives log N = 0, so every CIDEr weight is 0.
	if s.CIDEr != 0 {
		t.Errorf("one-image CIDEr = %g, want 0", s.CIDEr)
	}
}

// TestBLEUClosestTie: references of 4 and 6 words are equally close to a
// 5-word hypothesis; the shorter one counts, so there is no brevity penalty
// and BLEU-1 is the plain precision.
func TestBLEUClosestTie(t *testing.T) {
	s, err := Caption([]CaptionItem{{ID: "x", Prediction: "a b c d e",
		References: []string{"a b c d e f", "a b c x"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := (5 + 1e-15) / (5 + 1e-9) // ratio > 1: no penalty
	if math.Abs(s.BLEU[0]-want) > 1e-15 {
		t.Errorf("BLEU-1 = %.17g, want %.17g", s.BLEU[0], want)
	}
}

type goldenCaption struct {
	Cases []struct {
		Name  string `json:"name"`
		Items []struct {
			ID         string   `json:"id"`
			Prediction string   `json:"prediction"`
			References []string `json:"references"`
		} `json:"items"`
		CIDEr        float64    `json:"cider"`
		CIDErPerItem []float64  `json:"cider_per_item"`
		BLEU         [4]float64 `json:"bleu"`
	} `json:"cases"`
}

// TestCaptionGolden compares with testdata/gen_golden.py, a literal Python
// re-implementation of pycocoevalcap's CiderScorer and BleuScorer, whose
// numbers testdata/check_reference.py checks against pycocoevalcap's own
// scorer code (coco-caption's Python 3 cider_scorer.py and bleu_scorer.py:
// largest difference 1.3e-15).
func TestCaptionGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden_caption.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenCaption
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	const tol = 1e-9
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			items := make([]CaptionItem, len(c.Items))
			for i, it := range c.Items {
				items[i] = CaptionItem{ID: it.ID, Prediction: it.Prediction, References: it.References}
				// The goldens are pre-tokenised; tokenising again must not change them.
				if got := PTBTokenize(it.Prediction); !slices.Equal(got, strings.Fields(it.Prediction)) {
					t.Fatalf("PTBTokenize(%q) = %q changes a tokenised caption", it.Prediction, got)
				}
			}
			s, err := Caption(items)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(s.CIDEr-c.CIDEr) > tol {
				t.Errorf("CIDEr = %.15g, want %.15g", s.CIDEr, c.CIDEr)
			}
			for i, want := range c.CIDErPerItem {
				if math.Abs(s.PerItem[i].CIDEr-want) > tol {
					t.Errorf("item %s CIDEr = %.15g, want %.15g", c.Items[i].ID, s.PerItem[i].CIDEr, want)
				}
			}
			for n := range 4 {
				if math.Abs(s.BLEU[n]-c.BLEU[n]) > tol {
					t.Errorf("BLEU-%d = %.15g, want %.15g", n+1, s.BLEU[n], c.BLEU[n])
				}
			}
		})
	}
}

func TestCaptionErrors(t *testing.T) {
	tests := []struct {
		name    string
		items   []CaptionItem
		wantErr string
	}{
		{"empty set", nil, ErrNoItems.Error()},
		{"no references", []CaptionItem{{ID: "a", References: []string{"x"}}, {ID: "b", Prediction: "x"}}, `item 1 (id "b"): no references`},
		{"duplicate id", []CaptionItem{{ID: "a", References: []string{"x"}}, {ID: "a", References: []string{"x"}}}, `item 1: id "a" already used by item 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Caption(tt.items)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.items == nil && !errors.Is(err, ErrNoItems) {
				t.Errorf("err = %v, want ErrNoItems", err)
			}
		})
	}
}

func BenchmarkCaption(b *testing.B) {
	raw, err := os.ReadFile("testdata/golden_caption.json")
	if err != nil {
		b.Fatal(err)
	}
	var g goldenCaption
	if err := json.Unmarshal(raw, &g); err != nil {
		b.Fatal(err)
	}
	c := g.Cases[len(g.Cases)-1]
	items := make([]CaptionItem, len(c.Items))
	for i, it := range c.Items {
		items[i] = CaptionItem{ID: it.ID, Prediction: it.Prediction, References: it.References}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Caption(items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(items))*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}
