package shapes

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The parsers below read the generated English back into facts,
// independently of the code that wrote it, so that a caption or answer
// that contradicts its scene fails the tests.

var (
	colorIndex = indexOf(colorNames[:])
	shapeIndex = indexOf(shapeNames[:])
	sizeIndex  = indexOf(sizeNames[:])
	numberOf   = func() map[string]int {
		m := map[string]int{"a": 1, "an": 1}
		for i, w := range numberWords {
			m[w] = i
		}
		return m
	}()
)

func indexOf(names []string) map[string]int {
	m := map[string]int{}
	for i, n := range names {
		m[n] = i
	}
	return m
}

// shapeWord recognises a shape noun, singular or plural.
func shapeWord(w string) (Shape, bool) {
	for s := range numShapes {
		if w == s.String() || w == s.Plural() {
			return s, true
		}
	}
	return 0, false
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// captionFacts is what a caption claims.
type captionFacts struct {
	total      int             // a stated total ("three shapes"), -1 if none
	pairs      map[string]int  // "red circle" → count
	colorCount map[string]int  // counts stated for a colour alone ("two red")
	colors     map[string]bool // colours mentioned for objects
}

func parseCaption(c string) captionFacts {
	f := captionFacts{total: -1, pairs: map[string]int{}, colorCount: map[string]int{}, colors: map[string]bool{}}
	w := words(c)
	for i, t := range w {
		if n, ok := numberOf[t]; ok && i+1 < len(w) && (w[i+1] == "shapes" || w[i+1] == "objects" || w[i+1] == "shape" || w[i+1] == "object") {
			f.total = n
		}
		if _, ok := colorIndex[t]; !ok {
			continue
		}
		next := ""
		if i+1 < len(w) {
			next = w[i+1]
		}
		if next == "background" || next == "canvas" || next == "card" || next == "picture" {
			continue // the background's name ("light gray background")
		}
		if next == "gray" && t == "light" {
			continue
		}
		f.colors[t] = true
		count, j := 1, i-1
		if j >= 0 {
			if _, isSize := sizeIndex[w[j]]; isSize {
				j--
			}
		}
		if j >= 0 {
			if n, ok := numberOf[w[j]]; ok {
				count = n
			}
		}
		if sh, ok := shapeWord(next); ok {
			f.pairs[t+" "+sh.String()] += count
		} else {
			f.colorCount[t] += count
		}
	}
	return f
}

func scenePairs(s *Scene) map[string]int {
	m := map[string]int{}
	for _, o := range s.Objects {
		m[o.Color.String()+" "+o.Shape.String()]++
	}
	return m
}

func testScenes(n int) []*Scene {
	opts := SceneOptions{MaxObjects: 9, TinyFraction: 0.3, CrowdedFraction: 0.3}
	scenes := make([]*Scene, n)
	for i := range scenes {
		scenes[i] = NewScene(recordRNG(7, "test", i, 0), opts)
	}
	return scenes
}

// checkCaption reports how caption c contradicts scene s, or "".
func checkCaption(c string, s *Scene) string {
	f := parseCaption(c)
	if f.total >= 0 && f.total != len(s.Objects) {
		return fmt.Sprintf("states %d shapes, scene has %d", f.total, len(s.Objects))
	}
	if want := scenePairs(s); !maps.Equal(f.pairs, want) {
		return fmt.Sprintf("names %v, scene has %v", f.pairs, want)
	}
	for c, n := range f.colorCount {
		if got := s.count(func(o *Object) bool { return o.Color.String() == c }); got != n {
			return fmt.Sprintf("states %d %s, scene has %d", n, c, got)
		}
	}
	for _, o := range s.Objects {
		if !f.colors[o.Color.String()] {
			return "omits colour " + o.Color.String()
		}
	}
	return ""
}

func TestCaptionsTruthful(t *testing.T) {
	for i, s := range testScenes(400) {
		for _, tmpl := range captionTemplates {
			c := tmpl.write(recordRNG(1, "caption", i, 0), s)
			if bad := checkCaption(c, s); bad != "" {
				t.Fatalf("template %s, scene %s:\n%q\n%s", tmpl.name, s.Signature(), c, bad)
			}
		}
	}
}

// TestCaptionParserCatchesLies makes sure the checks above can fail.
func TestCaptionParserCatchesLies(t *testing.T) {
	s := &Scene{Objects: []Object{{Shape: Circle, Color: Red, Size: Small}, {Shape: Star, Color: Blue, Size: Large, Position: Center}}}
	for _, c := range []string{
		"Three shapes on a white background: a red circle and a blue star.",
		"A red circle and a blue square.",
		"Two red circles and a blue star.",
		"A red circle.",
		"Two shapes in all, two red and one blue: a red circle and a blue star.",
	} {
		if checkCaption(c, s) == "" {
			t.Errorf("%q passed as a caption of %s", c, s.Signature())
		}
	}
	if bad := checkCaption("Two shapes on a light gray background: a small red circle and a large blue star.", s); bad != "" {
		t.Errorf("a true caption failed: %s", bad)
	}
}

func TestReferencesDistinct(t *testing.T) {
	for i, s := range testScenes(200) {
		refs := References(recordRNG(1, "refs", i, 0), s, NumReferences)
		if len(refs) != NumReferences {
			t.Fatalf("scene %s: %d references, want %d", s.Signature(), len(refs), NumReferences)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(refs)))) != len(refs) {
			t.Fatalf("duplicate references: %q", refs)
		}
	}
}

var (
	countQ = regexp.MustCompile(`^(?:How many|Count the) (.+?)(?: are there\?| are in the image\?| can you see\?|\.)$`)
	refQ   = regexp.MustCompile(`^(?:What color is|What colour is|Which color is|What is the color of|What shape is|What kind of shape is|Which shape is|What size is|How big is|Is|Where is|In which part of the image is|Where in the picture is) the (.+?)(?: tiny, small, medium or large)?\?$`)
)

// resolve finds the objects an English noun phrase of the generator's
// vocabulary describes: [size] [colour] (shape | object | shape-noun) [position].
func resolve(s *Scene, phrase string) ([]int, error) {
	w := words(phrase)
	var keep []func(o *Object) bool
	for i := 0; i < len(w); i++ {
		t := w[i]
		if v, ok := sizeIndex[t]; ok {
			keep = append(keep, func(o *Object) bool { return int(o.Size) == v })
			continue
		}
		if v, ok := colorIndex[t]; ok {
			keep = append(keep, func(o *Object) bool { return int(o.Color) == v })
			continue
		}
		if sh, ok := shapeWord(t); ok {
			keep = append(keep, func(o *Object) bool { return o.Shape == sh })
			continue
		}
		if t == "object" || t == "objects" || t == "shape" || t == "shapes" {
			continue
		}
		if t == "at" || t == "on" || t == "in" {
			rest := strings.Join(w[i:], " ")
			for p := range numPositions {
				if rest == p.Phrase() {
					keep = append(keep, func(o *Object) bool { return o.Position == p })
				}
			}
			if len(keep) == 0 || rest == "" {
				return nil, fmt.Errorf("unknown position %q", rest)
			}
			break
		}
		return nil, fmt.Errorf("unknown word %q in %q", t, phrase)
	}
	var out []int
	for i := range s.Objects {
		if !slices.ContainsFunc(keep, func(k func(*Object) bool) bool { return !k(&s.Objects[i]) }) {
			out = append(out, i)
		}
	}
	return out, nil
}

// checkVQA recomputes the answer to q from the scene.
func checkVQA(q VQA, s *Scene) error {
	if len(q.Answers) != Annotators {
		return fmt.Errorf("%d answers", len(q.Answers))
	}
	if m := countQ.FindStringSubmatch(q.Question); m != nil {
		idx, err := resolve(s, m[1])
		if err != nil {
			return err
		}
		if q.Type != TaskCount || q.Answer != strconv.Itoa(len(idx)) {
			return fmt.Errorf("type %s answer %q, scene has %d", q.Type, q.Answer, len(idx))
		}
		return nil
	}
	m := refQ.FindStringSubmatch(q.Question)
	if m == nil {
		return fmt.Errorf("question not understood")
	}
	idx, err := resolve(s, m[1])
	if err != nil {
		return err
	}
	if len(idx) != 1 {
		return fmt.Errorf("%q names %d objects", m[1], len(idx))
	}
	o := s.Objects[idx[0]]
	truth := map[string]string{TaskColor: o.Color.String(), TaskShape: o.Shape.String(), TaskSize: o.Size.String(), TaskPosition: o.Position.String()}[q.Type]
	if q.Answer != truth {
		return fmt.Errorf("answer %q, scene says %q", q.Answer, truth)
	}
	return nil
}

func TestVQATruthful(t *testing.T) {
	types := map[string]int{}
	truthful, total := 0, 0
	for i, s := range testScenes(1000) {
		q := Question(recordRNG(1, "vqa", i, 0), s)
		if err := checkVQA(q, s); err != nil {
			t.Fatalf("scene %s, %s question %q: %v", s.Signature(), q.Type, q.Question, err)
		}
		types[q.Type]++
		for _, a := range q.Answers {
			total++
			if a == q.Answer {
				truthful++
			}
		}
	}
	for _, typ := range QuestionTypes {
		if types[typ] < 100 {
			t.Errorf("only %d %s questions in 1000", types[typ], typ)
		}
	}
	// Annotators: mostly the truth, but not always (1 − pVariant − pNoise ≈ 0.7).
	if frac := float64(truthful) / float64(total); frac < 0.6 || frac > 0.8 {
		t.Errorf("%.2f of answers are the canonical truth, want about 0.7", frac)
	}
}

func TestVQACheckerCatchesLies(t *testing.T) {
	s := &Scene{Objects: []Object{{Shape: Circle, Color: Red, Size: Small}, {Shape: Circle, Color: Blue, Size: Large, Position: Center}}}
	ten := slices.Repeat([]string{"x"}, Annotators)
	for _, q := range []VQA{
		{Type: TaskColor, Question: "What color is the large circle?", Answer: "red", Answers: ten},
		{Type: TaskCount, Question: "How many circles are there?", Answer: "1", Answers: ten},
		{Type: TaskShape, Question: "What shape is the object?", Answer: "circle", Answers: ten},
		{Type: TaskPosition, Question: "Where is the blue circle?", Answer: "top left", Answers: ten},
	} {
		if checkVQA(q, s) == nil {
			t.Errorf("%q → %q passed", q.Question, q.Answer)
		}
	}
}

var (
	moreRe    = regexp.MustCompile(`It has (\w+) (more|fewer) shapes? than the (\w+) image\.`)
	sameRe    = regexp.MustCompile(`It has as many shapes as the (\w+) image: (\w+)\.`)
	likeRe    = regexp.MustCompile(`Like the (\w+) image, it contains an? (\w+) (\w+)\.`)
	unlikeRe  = regexp.MustCompile(`Unlike the (\w+) image, it has no (\w+) shapes\.`)
	totalRe   = regexp.MustCompile(`Together the (\w+) images show (\w+) shapes?\.`)
	mostRe    = regexp.MustCompile(`The (\w+) image has the most shapes\.`)
	ordinalOf = indexOf(ordinals[:])
)

// quizRe reads a quiz document's text: QAText of a question.
var quizRe = regexp.MustCompile(`^Question: (.+\?|Count the .+\.) Answer: (\S+(?: \S+)?)$`)

// quizType is the question type a quiz question asks, from its wording.
func quizType(q string) string {
	switch {
	case countQ.MatchString(q):
		return TaskCount
	case strings.Contains(q, "colo"):
		return TaskColor
	case strings.Contains(q, "shape is"):
		return TaskShape
	case strings.Contains(q, "size") || strings.Contains(q, "big") || strings.Contains(q, "tiny, small"):
		return TaskSize
	}
	return TaskPosition
}

func TestDocumentsTruthful(t *testing.T) {
	all := testScenes(600)
	checked := 0
	styles := map[string]int{}
	for d := 0; d+5 <= len(all); d += 5 {
		rng := recordRNG(1, "doc", d, 0)
		scenes := all[d : d+2+rng.IntN(4)]
		segs := Document(rng, scenes)
		seen := -1
		for _, seg := range segs {
			if seg.Image >= 0 {
				if seg.Image != seen+1 {
					t.Fatalf("image %d after image %d", seg.Image, seen)
				}
				seen = seg.Image
				continue
			}
			cur := scenes[max(seen, 0)]
			fail := func(m []string, why string) {
				t.Fatalf("doc %d, after image %d: %q: %s", d, seen, m[0], why)
			}
			if c, ok := strings.CutPrefix(seg.Text, CaptionPrefix); ok {
				if bad := checkCaption(c, cur); bad != "" {
					fail([]string{seg.Text}, bad)
				}
				styles["captions"]++
				checked++
				continue
			}
			if m := quizRe.FindStringSubmatch(seg.Text); m != nil {
				q := VQA{Question: m[1], Answer: m[2], Type: quizType(m[1]), Answers: make([]string, Annotators)}
				if err := checkVQA(q, cur); err != nil {
					fail(m, err.Error())
				}
				styles["quiz"]++
				checked++
				continue
			}
			styles["narrative"]++
			for _, m := range moreRe.FindAllStringSubmatch(seg.Text, -1) {
				ref := scenes[ordinalOf[m[3]]]
				diff := len(cur.Objects) - len(ref.Objects)
				if m[2] == "fewer" {
					diff = -diff
				}
				if diff != numberOf[m[1]] {
					fail(m, "wrong difference")
				}
				checked++
			}
			for _, m := range sameRe.FindAllStringSubmatch(seg.Text, -1) {
				if ref := scenes[ordinalOf[m[1]]]; len(ref.Objects) != len(cur.Objects) || numberOf[m[2]] != len(cur.Objects) {
					fail(m, "counts differ")
				}
				checked++
			}
			for _, m := range likeRe.FindAllStringSubmatch(seg.Text, -1) {
				pair := m[2] + " " + m[3]
				if scenePairs(scenes[ordinalOf[m[1]]])[pair] == 0 || scenePairs(cur)[pair] == 0 {
					fail(m, "not in both")
				}
				checked++
			}
			for _, m := range unlikeRe.FindAllStringSubmatch(seg.Text, -1) {
				has := func(s *Scene) bool { return s.count(func(o *Object) bool { return o.Color.String() == m[2] }) > 0 }
				if !has(scenes[ordinalOf[m[1]]]) || has(cur) {
					fail(m, "colour check fails")
				}
				checked++
			}
			for _, m := range totalRe.FindAllStringSubmatch(seg.Text, -1) {
				n := 0
				for _, s := range scenes {
					n += len(s.Objects)
				}
				if numberOf[m[1]] != len(scenes) || strconv.Itoa(n) != m[2] && numberOf[m[2]] != n {
					fail(m, "wrong total")
				}
				checked++
			}
			for _, m := range mostRe.FindAllStringSubmatch(seg.Text, -1) {
				best := scenes[ordinalOf[m[1]]]
				for _, s := range scenes {
					if s != best && len(s.Objects) >= len(best.Objects) {
						fail(m, "not the most")
					}
				}
				checked++
			}
		}
		if seen != len(scenes)-1 {
			t.Fatalf("doc %d shows %d of %d images", d, seen+1, len(scenes))
		}
	}
	if checked < 100 {
		t.Fatalf("only %d statements checked", checked)
	}
	for _, style := range []string{"narrative", "captions", "quiz"} {
		if styles[style] < 20 {
			t.Errorf("only %d text segments in the %s style: %v", styles[style], style, styles)
		}
	}
}
