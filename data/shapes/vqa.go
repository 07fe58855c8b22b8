package shapes

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// Question types, also the task names carried in record meta.
const (
	TaskCaption  = "caption"
	TaskColor    = "color"
	TaskShape    = "shape"
	TaskCount    = "count"
	TaskPosition = "position"
	TaskSize     = "size"
)

// QuestionTypes lists the VQA question types in the order Question draws
// them from.
var QuestionTypes = []string{TaskColor, TaskShape, TaskCount, TaskPosition, TaskSize}

// Annotators is the number of human-style answers per question, as in VQAv2.
const Annotators = 10

// VQA is one question about a scene with its true answer and ten
// annotators' answers.
type VQA struct {
	Type     string
	Question string
	Answer   string   // the truth, in canonical form (counts as digits)
	Answers  []string // Annotators answers: mostly Answer, some synonyms, a little noise
}

// attribute sets for referring expressions
type attrs uint8

const (
	withShape attrs = 1 << iota
	withColor
	withSize
	withPosition
)

// candidates are the attribute sets tried for a referring expression,
// shortest first.
var candidates = []attrs{
	withShape, withColor, withColor | withShape, withSize | withShape, withSize | withColor,
	withSize | withColor | withShape, withPosition, withColor | withPosition, withShape | withPosition,
}

func matches(a, b *Object, set attrs) bool {
	return (set&withShape == 0 || a.Shape == b.Shape) &&
		(set&withColor == 0 || a.Color == b.Color) &&
		(set&withSize == 0 || a.Size == b.Size) &&
		(set&withPosition == 0 || a.Position == b.Position)
}

// refer names object i uniquely without the attributes in exclude, as a
// noun phrase after "the" ("red object at the top left"); ok is false
// when no allowed attribute set singles it out.
func refer(rng *rand.Rand, s *Scene, i int, exclude attrs) (string, bool) {
	var unique []attrs
	for _, set := range candidates {
		if set&exclude != 0 {
			continue
		}
		n := s.count(func(o *Object) bool { return matches(o, &s.Objects[i], set) })
		if n == 1 {
			unique = append(unique, set)
		}
	}
	if len(unique) == 0 {
		return "", false
	}
	set := unique[rng.IntN(len(unique))]
	o := &s.Objects[i]
	var words []string
	if set&withSize != 0 {
		words = append(words, o.Size.String())
	}
	if set&withColor != 0 {
		words = append(words, o.Color.String())
	}
	if set&withShape != 0 {
		words = append(words, o.Shape.String())
	} else if exclude&withShape != 0 {
		words = append(words, "object") // not "what shape is the red shape?"
	} else {
		words = append(words, [...]string{"object", "shape"}[rng.IntN(2)])
	}
	if set&withPosition != 0 {
		words = append(words, o.Position.Phrase())
	}
	return strings.Join(words, " "), true
}

// Question draws a question of a random type about s with its answers.
func Question(rng *rand.Rand, s *Scene) VQA {
	for {
		t := QuestionTypes[rng.IntN(len(QuestionTypes))]
		if q, ok := questionOf(rng, s, t); ok {
			return q
		}
	}
}

// questionOf asks a question of type t; ok is false when the scene has no
// object that can be named without the asked attribute (two identical
// objects for a position question). Count questions always succeed, so
// Question ends.
func questionOf(rng *rand.Rand, s *Scene, t string) (VQA, bool) {
	q := VQA{Type: t}
	if t == TaskCount {
		q.Question, q.Answer = countQuestion(rng, s)
	} else {
		exclude := map[string]attrs{TaskColor: withColor, TaskShape: withShape, TaskSize: withSize, TaskPosition: withPosition}[t]
		i := rng.IntN(len(s.Objects))
		ref, ok := refer(rng, s, i, exclude)
		if !ok {
			return q, false
		}
		o := &s.Objects[i]
		switch t {
		case TaskColor:
			q.Question = pick(rng, "What color is the %s?", "What colour is the %s?", "Which color is the %s?", "What is the color of the %s?")
			q.Answer = o.Color.String()
		case TaskShape:
			q.Question = pick(rng, "What shape is the %s?", "What kind of shape is the %s?", "Which shape is the %s?")
			q.Answer = o.Shape.String()
		case TaskSize:
			q.Question = pick(rng, "What size is the %s?", "How big is the %s?", "Is the %s tiny, small, medium or large?")
			q.Answer = o.Size.String()
		case TaskPosition:
			q.Question = pick(rng, "Where is the %s?", "In which part of the image is the %s?", "Where in the picture is the %s?")
			q.Answer = o.Position.String()
		}
		q.Question = strings.Replace(q.Question, "%s", ref, 1)
	}
	q.Answers = annotate(rng, t, q.Answer)
	return q, true
}

func pick(rng *rand.Rand, options ...string) string { return options[rng.IntN(len(options))] }

// countQuestion asks for the objects of a colour, a shape, both, a size,
// or all of them; colours and shapes absent from the scene are asked about
// too, so "0" is a possible answer.
func countQuestion(rng *rand.Rand, s *Scene) (question, answer string) {
	ref := &s.Objects[rng.IntN(len(s.Objects))]
	c, sh, sz := ref.Color, ref.Shape, ref.Size
	if rng.IntN(4) == 0 {
		c, sh = Color(rng.IntN(int(numColors))), Shape(rng.IntN(int(numShapes)))
	}
	var noun string
	var keep func(o *Object) bool
	switch rng.IntN(5) {
	case 0:
		noun = pick(rng, "objects", "shapes")
		keep = func(*Object) bool { return true }
	case 1:
		noun = c.String() + " " + pick(rng, "objects", "shapes")
		keep = func(o *Object) bool { return o.Color == c }
	case 2:
		noun = sh.Plural()
		keep = func(o *Object) bool { return o.Shape == sh }
	case 3:
		noun = c.String() + " " + sh.Plural()
		keep = func(o *Object) bool { return o.Color == c && o.Shape == sh }
	default:
		noun = sz.String() + " " + pick(rng, "objects", "shapes")
		keep = func(o *Object) bool { return o.Size == sz }
	}
	question = pick(rng, "How many %s are there?", "How many %s are in the image?", "How many %s can you see?", "Count the %s.")
	return strings.Replace(question, "%s", noun, 1), strconv.Itoa(s.count(keep))
}

// Synonyms and spellings people give for the canonical answers. Some
// survive the VQA answer normalisation ("grey", "big"), some do not
// ("two" becomes "2", "top-left" becomes "top left").
var answerVariants = map[string][]string{
	"red": {"Red", "dark red"}, "orange": {"Orange", "dark orange"}, "yellow": {"Yellow", "gold"},
	"green": {"Green", "dark green"}, "blue": {"Blue", "dark blue"}, "purple": {"violet", "Purple"},
	"pink": {"Pink", "magenta"}, "brown": {"Brown", "dark brown"}, "gray": {"grey", "Gray"},
	"black": {"Black", "dark"},

	"circle": {"a circle", "round"}, "square": {"a square", "rectangle"}, "triangle": {"a triangle", "Triangle"},
	"star": {"a star", "Star"}, "cross": {"plus", "plus sign"}, "diamond": {"rhombus", "a diamond"},
	"ring": {"donut", "a ring"}, "hexagon": {"a hexagon", "Hexagon"},

	"tiny": {"very small", "Tiny"}, "small": {"little", "Small"}, "medium": {"medium-sized", "average"},
	"large": {"big", "Large"},

	"top left": {"top-left", "upper left", "top left corner"}, "top": {"top center", "top middle", "upper middle"},
	"top right": {"top-right", "upper right", "top right corner"}, "left": {"middle left", "left side"},
	"center": {"centre", "middle", "in the middle"}, "right": {"middle right", "right side"},
	"bottom left": {"bottom-left", "lower left", "bottom left corner"}, "bottom": {"bottom center", "bottom middle"},
	"bottom right": {"bottom-right", "lower right", "bottom right corner"},
}

// Per-answer probabilities: a synonym or spelling variant, or a wrong
// answer (a slip or a misreading).
const (
	pVariant = 0.25
	pNoise   = 0.05
)

func annotate(rng *rand.Rand, t, truth string) []string {
	answers := make([]string, Annotators)
	for k := range answers {
		p := rng.Float64()
		switch {
		case p < pNoise:
			answers[k] = wrongAnswer(rng, t, truth)
		case p < pNoise+pVariant:
			answers[k] = variant(rng, t, truth)
		default:
			answers[k] = truth
		}
	}
	return answers
}

func variant(rng *rand.Rand, t, truth string) string {
	if t == TaskCount {
		n, _ := strconv.Atoi(truth)
		if n == 0 && rng.IntN(2) == 0 {
			return "none"
		}
		w := numberWord(n)
		if rng.IntN(3) == 0 {
			w = capitalize(w)
		}
		return w
	}
	v := answerVariants[truth]
	return v[rng.IntN(len(v))]
}

func wrongAnswer(rng *rand.Rand, t, truth string) string {
	var names []string
	switch t {
	case TaskCount:
		n, _ := strconv.Atoi(truth)
		if n == 0 || rng.IntN(2) == 0 {
			return strconv.Itoa(n + 1)
		}
		return strconv.Itoa(n - 1)
	case TaskColor:
		names = colorNames[:]
	case TaskShape:
		names = shapeNames[:]
	case TaskSize:
		names = sizeNames[:]
	case TaskPosition:
		names = positionNames[:]
	}
	for {
		if a := names[rng.IntN(len(names))]; a != truth {
			return a
		}
	}
}
