package shapes

import (
	"math/rand/v2"
	"strings"
)

// Segment is one part of an interleaved document: text, or the scene at
// Image (an index into the document's scenes).
type Segment struct {
	Text  string
	Image int // -1 for text
}

// The few-shot prompt phrasing of experiments/eval: a caption follows
// "Caption: ", a question "Question: " and its answer " Answer: ". Training
// text written this way is what lets a model trained on the shapes world be
// prompted with it; the data package cannot import eval, so the strings are
// repeated here and must stay equal to eval's.
const (
	CaptionPrefix  = "Caption: "
	QuestionPrefix = "Question: "
	AnswerPrefix   = " Answer: "
)

// QAText is a question and its true answer as the few-shot VQA prompts
// write a demonstration: "Question: What color is the star? Answer: red".
func QAText(q VQA) string { return QuestionPrefix + q.Question + AnswerPrefix + q.Answer }

// Document styles, drawn per document. Web documents (MM1's interleaved
// data) hold many image–text layouts; here a third are image lists in the
// caption format and a third image quizzes in the question format, so that
// interleaved data is where a model learns to continue a run of solved
// examples, which is what few-shot prompting asks of it.
const (
	styleNarrative = iota
	styleCaptions
	styleQuiz
	numStyles
)

// Document writes an interleaved document about scenes (2–5 of them, MaxDocScenes) in
// one of three styles. Narrative: each image is followed by text about it,
// later images are compared with earlier ones by ordinal ("the first
// image"), and the document may open with an introduction and close with a
// summary. Captions: each image is followed by "Caption: " and a caption.
// Quiz: each image is followed by a question about it and its answer
// (QAText). Every statement is true of the scenes.
func Document(rng *rand.Rand, scenes []*Scene) []Segment {
	var segs []Segment
	switch rng.IntN(numStyles) {
	case styleCaptions:
		for j, s := range scenes {
			c, _ := Caption(rng, s)
			segs = append(segs, Segment{Image: j}, Segment{Text: CaptionPrefix + c, Image: -1})
		}
		return segs
	case styleQuiz:
		for j, s := range scenes {
			segs = append(segs, Segment{Image: j}, Segment{Text: QAText(Question(rng, s)), Image: -1})
		}
		return segs
	}
	text := func(parts ...string) {
		var kept []string
		for _, p := range parts {
			if p != "" {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			return
		}
		joined := strings.Join(kept, " ")
		// Text right after text continues the same segment, so segments
		// alternate between text and images.
		if n := len(segs); n > 0 && segs[n-1].Image < 0 {
			segs[n-1].Text += " " + joined
			return
		}
		segs = append(segs, Segment{Text: joined, Image: -1})
	}
	k := len(scenes)
	if rng.IntN(2) == 0 {
		text(pick(rng,
			"Here are "+numberWord(k)+" pictures of shapes.",
			"The following "+numberWord(k)+" images show coloured shapes.",
			"A set of "+numberWord(k)+" scenes, each with a few shapes."))
	}
	for j, s := range scenes {
		if rng.IntN(3) == 0 {
			text(pick(rng, "The "+ordinal(j)+" image:", "Image "+numberWord(j+1)+".", "Next, another scene."))
		}
		segs = append(segs, Segment{Image: j})
		var desc string
		switch rng.IntN(4) {
		case 0:
			desc, _ = Caption(rng, s)
		case 1:
			desc = "This image shows " + joinAnd(phrases(s, true, rng.IntN(2) == 0)) + "."
		case 2:
			desc = "Here we see " + joinAnd(groups(s)) + "."
		default:
			desc = "In the " + ordinal(j) + " image we see " + joinAnd(groups(s)) + "."
		}
		var cmp string
		if j > 0 {
			cmp = compare(rng, scenes, j, rng.IntN(j))
		}
		text(desc, cmp)
	}
	text(summary(rng, scenes))
	return segs
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// compare relates scene j to the earlier scene i: counts, a shared object
// or a missing colour.
func compare(rng *rand.Rand, scenes []*Scene, j, i int) string {
	a, b := scenes[j], scenes[i]
	ref := "the " + ordinal(i) + " image"
	switch rng.IntN(3) {
	case 0:
		d := len(a.Objects) - len(b.Objects)
		switch {
		case d > 0:
			return "It has " + countNoun(d, "more shape") + " than " + ref + "."
		case d < 0:
			return "It has " + countNoun(-d, "fewer shape") + " than " + ref + "."
		default:
			return "It has as many shapes as " + ref + ": " + numberWord(len(a.Objects)) + "."
		}
	case 1:
		for _, o := range a.Objects {
			for _, p := range b.Objects {
				if o.Color == p.Color && o.Shape == p.Shape {
					np := o.Color.String() + " " + o.Shape.String()
					return "Like " + ref + ", it contains " + article(np) + " " + np + "."
				}
			}
		}
		return "It shares no shape of the same colour with " + ref + "."
	default:
		for _, p := range b.Objects {
			if a.count(func(o *Object) bool { return o.Color == p.Color }) == 0 {
				return "Unlike " + ref + ", it has no " + p.Color.String() + " shapes."
			}
		}
		return "Every colour in " + ref + " appears here too."
	}
}

// summary closes a document: a total, the most crowded image, or nothing.
func summary(rng *rand.Rand, scenes []*Scene) string {
	switch rng.IntN(3) {
	case 0:
		total := 0
		for _, s := range scenes {
			total += len(s.Objects)
		}
		return "Together the " + numberWord(len(scenes)) + " images show " + countNoun(total, "shape") + "."
	case 1:
		best, tie := 0, false
		for j, s := range scenes[1:] {
			switch n, m := len(s.Objects), len(scenes[best].Objects); {
			case n > m:
				best, tie = j+1, false
			case n == m:
				tie = true
			}
		}
		if tie {
			return "No single image has more shapes than all the others."
		}
		return "The " + ordinal(best) + " image has the most shapes."
	}
	return ""
}

// Description is a text-only account of a scene, as if read aloud to
// someone who cannot see it.
func Description(rng *rand.Rand, s *Scene) string {
	var b strings.Builder
	bg := s.Background.String()
	b.WriteString(pick(rng, "Imagine "+article(bg)+" "+bg+" canvas.", "Picture "+article(bg)+" "+bg+" background.", "Think of a square "+bg+" card."))
	for i := range s.Objects {
		o := &s.Objects[i]
		np := nounPhrase(o, true, false)
		b.WriteString(" " + capitalize(o.Position.Phrase()) + " there is " + article(np) + " " + np + ".")
	}
	b.WriteString(" Altogether there " + isAre(len(s.Objects)) + " " + countNoun(len(s.Objects), "shape") + ".")
	return b.String()
}

// Story is a short tale in the scene vocabulary.
func Story(rng *rand.Rand, s *Scene) string {
	var b strings.Builder
	hero := &s.Objects[rng.IntN(len(s.Objects))]
	np := nounPhrase(hero, true, false)
	bg := s.Background.String()
	b.WriteString(pick(rng, "Once upon a time, ", "Long ago, ", "One morning, "))
	b.WriteString(article(np) + " " + np + " lived " + hero.Position.Phrase() + " of " + article(bg) + " " + bg + " picture.")
	others := 0
	for i := range s.Objects {
		o := &s.Objects[i]
		if o == hero {
			continue
		}
		others++
		onp := nounPhrase(o, true, false)
		a := article(onp) + " " + onp
		b.WriteString(" " + pick(rng,
			"Its neighbour, "+a+", stayed "+o.Position.Phrase()+".",
			capitalize(a)+" lived "+o.Position.Phrase()+".",
			"Nearby, "+a+" rested "+o.Position.Phrase()+"."))
	}
	if others == 0 {
		b.WriteString(" It was alone, and the picture was quiet.")
	} else {
		b.WriteString(" One day the " + hero.Shape.String() + " counted its friends and found " + countNoun(others, "friend") + ".")
	}
	b.WriteString(pick(rng, " The end.", " And they all stayed where they were.", " Then the picture was finished."))
	return b.String()
}
