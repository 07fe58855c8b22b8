package scoring

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestVQAClosedForms: k of the ten answers equal the prediction and the
// other 10−k agree on something else. Leaving out a matching answer leaves
// k−1 matches, leaving out another leaves k, so
//
//	acc = (k·min(1, (k−1)/3) + (10−k)·min(1, k/3)) / 10
//
// = 0, 0.3, 0.6, 0.9, 1 for k = 0, 1, 2, 3, ≥ 4.
func TestVQAClosedForms(t *testing.T) {
	want := []float64{0, 30, 60, 90, 100, 100, 100, 100, 100, 100, 100}
	for k, w := range want {
		answers := append(repeat("blue", k), repeat("green", 10-k)...)
		s, err := VQA([]VQAItem{{ID: "q", Prediction: "blue", Answers: answers}})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(s.Accuracy-w) > 1e-12 {
			t.Errorf("k=%d: accuracy %.15g, want %g", k, s.Accuracy, w)
		}
	}
}

// TestVQAQuirks: normalisation runs only when the human answers differ.
func TestVQAQuirks(t *testing.T) {
	mixed := append(repeat("yes", 9), "no")
	tests := []struct {
		name    string
		pred    string
		answers []string
		want    float64
	}{
		{"Yes vs ten yes: no normalisation, no match", "Yes", repeat("yes", 10), 0},
		{"2 vs ten two: no normalisation", "2", repeat("two", 10), 0},
		{"whitespace is still stripped", " yes\n", repeat("yes", 10), 100},
		{"Yes vs mixed answers: normalised", "Yes", mixed, 100},
		{"Two vs mixed number words", "Two", append(repeat("2", 5), repeat("two", 5)...), 100},
		{"articles and punctuation", "The dog!", append(repeat("dog", 3), repeat("cat", 7)...), 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := VQA([]VQAItem{{ID: "q", Prediction: tt.pred, Answers: tt.answers}})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(s.Accuracy-tt.want) > 1e-12 {
				t.Errorf("accuracy %.15g, want %g", s.Accuracy, tt.want)
			}
		})
	}
}

func TestNormalizeVQAAnswer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Yes", "yes"},
		{"  yes\t", "yes"},
		{"yes.", "yes"},
		{"Two dogs!", "2 dogs"}, // '!' not next to a space → space; number word
		{"none", "0"},           // manualMap maps "none" too
		{"the dont", "don't"},   // article dropped, contraction restored
		{"an apple", "apple"},
		{"1,000", "1000"}, // digit,digit: every punctuation mark deleted
		{"3,4 and 5", "34 and 5"},
		{"x,y", "x y"},   // no digit,digit, no adjacent space: comma → space
		{"x , y", "x y"}, // comma next to a space: deleted
		{"up/down", "up down"},
		{"A/B", "b"},     // "a" then counts as an article
		{"3.5", "3.5"},   // period before a digit stays
		{"5 . 6", "5 6"}, // period before a space goes
		{"1.5.", "1.5"},
		{"e.g. cat", "eg cat"},           // periods before letters go (broken lookbehind)
		{"it's", "it's"},                 // apostrophe is not in the punctuation list
		{"Im", "im"},                     // capitalised table keys never match
		{"Somebody'd", "somebodyd"},      // the table's own oddity
		{"blue & white", "blue & white"}, // '&' is not in the list
		{"(left)", "left"},
		{"\"quoted\"", "quoted"},
		{"what? ", "what"},
		{"İ", "i\u0307"}, // Python's str.lower
		// 40 × "a.": only the first 32 periods go (re.UNICODE passed as count).
		{strings.Repeat("a.", 40), strings.Repeat("a", 33) + strings.Repeat(".a", 7) + "."},
	}
	for _, tt := range tests {
		if got := NormalizeVQAAnswer(tt.in); got != tt.want {
			t.Errorf("NormalizeVQAAnswer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type goldenVQA struct {
	Items []struct {
		ID         string   `json:"id"`
		Prediction string   `json:"prediction"`
		Answers    []string `json:"answers"`
		Accuracy   float64  `json:"accuracy"`
	} `json:"items"`
	Accuracy   float64 `json:"accuracy"`
	Normalized []struct {
		Input  string `json:"input"`
		Output string `json:"output"`
	} `json:"normalized"`
}

// TestVQAGolden compares with testdata/gen_golden.py, a literal Python
// re-implementation of vqaEval.py's accuracy, whose numbers
// testdata/check_reference.py checks against the official vqaEval.py
// itself (no difference); its normalisation cases include every key of the
// contractions table.
func TestVQAGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden_vqa.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenVQA
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Items) == 0 || len(g.Normalized) < len(vqaContractions) {
		t.Fatalf("golden file has %d items and %d normalisation cases", len(g.Items), len(g.Normalized))
	}
	items := make([]VQAItem, len(g.Items))
	for i, it := range g.Items {
		items[i] = VQAItem{ID: it.ID, Prediction: it.Prediction, Answers: it.Answers}
	}
	s, err := VQA(items)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.Accuracy-g.Accuracy) > 1e-9 {
		t.Errorf("accuracy %.15g, want %.15g", s.Accuracy, g.Accuracy)
	}
	for i, it := range g.Items {
		if math.Abs(s.PerItem[i].Accuracy-it.Accuracy) > 1e-9 {
			t.Errorf("%s: pred %q answers %q: accuracy %g, want %g", it.ID, it.Prediction, it.Answers, s.PerItem[i].Accuracy, it.Accuracy)
		}
	}
	for _, n := range g.Normalized {
		if got := NormalizeVQAAnswer(n.Input); got != n.Output {
			t.Errorf("NormalizeVQAAnswer(%q) = %q, Python gives %q", n.Input, got, n.Output)
		}
	}
}

func TestVQAErrors(t *testing.T) {
	if _, err := VQA(nil); err != ErrNoItems {
		t.Errorf("empty set: err = %v, want ErrNoItems", err)
	}
	_, err := VQA([]VQAItem{{ID: "q1", Answers: repeat("x", 10)}, {ID: "q2", Answers: repeat("x", 9)}})
	if err == nil || !strings.Contains(err.Error(), `item 1 (id "q2"): 9 human answers, want 10`) {
		t.Errorf("nine answers: err = %v", err)
	}
	_, err = VQA([]VQAItem{{ID: "q1", Answers: repeat("x", 10)}, {ID: "q1", Answers: repeat("x", 10)}})
	if err == nil || !strings.Contains(err.Error(), `id "q1" already used`) {
		t.Errorf("duplicate id: err = %v", err)
	}
}

// FuzzNormalizeVQAAnswer: never panics, never leaves outer or doubled
// whitespace, and is idempotent when no more than 32 periods could be
// stripped (beyond that the official count limit makes a second pass strip
// more).
func FuzzNormalizeVQAAnswer(f *testing.F) {
	for _, s := range []string{"Two dogs!", "1,000", "the dont", "e.g. cat", "A/B", " yes\n", "İΣ", "\xff.", "..1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeVQAAnswer(s)
		if got != strings.TrimFunc(got, isPySpace) || strings.Contains(got, "  ") {
			t.Errorf("NormalizeVQAAnswer(%q) = %q has stray whitespace", s, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("NormalizeVQAAnswer(%q) = %q is not UTF-8", s, got)
		}
		if strings.Count(s, ".") > 32 {
			// The first pass may have hit the 32-period limit and left
			// periods a second pass strips (33 periods → "." → "").
			return
		}
		if again := NormalizeVQAAnswer(got); again != got {
			t.Errorf("not idempotent: %q → %q → %q", s, got, again)
		}
	})
}

func BenchmarkVQA(b *testing.B) {
	raw, err := os.ReadFile("testdata/golden_vqa.json")
	if err != nil {
		b.Fatal(err)
	}
	var g goldenVQA
	if err := json.Unmarshal(raw, &g); err != nil {
		b.Fatal(err)
	}
	items := make([]VQAItem, len(g.Items))
	for i, it := range g.Items {
		items[i] = VQAItem{ID: it.ID, Prediction: it.Prediction, Answers: it.Answers}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VQA(items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(items))*float64(b.N)/b.Elapsed().Seconds(), "questions/s")
}
