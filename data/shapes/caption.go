package shapes

import (
	"math/rand/v2"
	"strings"
)

// Every caption template names every object's colour and shape (one by
// one or grouped as "two red circles"), and those that state a total state
// the true one, so a caption never contradicts its image.

// captionTemplate writes one caption of a scene.
type captionTemplate struct {
	name  string
	write func(rng *rand.Rand, s *Scene) string
}

var captionTemplates = []captionTemplate{
	{"list", func(_ *rand.Rand, s *Scene) string {
		return sentence(joinAnd(phrases(s, true, true)))
	}},
	{"count-list", func(_ *rand.Rand, s *Scene) string {
		return sentence(countNoun(len(s.Objects), "shape") + " on " + article(s.Background.String()) + " " + s.Background.String() + " background: " + joinAnd(phrases(s, false, false)))
	}},
	{"there-are", func(_ *rand.Rand, s *Scene) string {
		n := len(s.Objects)
		verb := "There are "
		if n == 1 {
			verb = "There is "
		}
		return verb + countNoun(n, "object") + ": " + joinAnd(groups(s)) + "."
	}},
	{"groups-background", func(_ *rand.Rand, s *Scene) string {
		return sentence(joinAnd(groups(s)) + " on " + article(s.Background.String()) + " " + s.Background.String() + " background")
	}},
	{"positions", func(_ *rand.Rand, s *Scene) string {
		parts := make([]string, len(s.Objects))
		for i := range s.Objects {
			o := &s.Objects[i]
			np := nounPhrase(o, true, false)
			parts[i] = o.Position.Phrase() + " is " + article(np) + " " + np
		}
		return sentence(strings.Join(parts, "; "))
	}},
	{"picture", func(rng *rand.Rand, s *Scene) string {
		opener := [...]string{"A picture of ", "An image of ", "A drawing of "}[rng.IntN(3)]
		return opener + joinAnd(phrases(s, true, false)) + "."
	}},
	{"shows-total", func(_ *rand.Rand, s *Scene) string {
		return "The image shows " + joinAnd(groups(s)) + ", " + countNoun(len(s.Objects), "shape") + " in total."
	}},
	{"colors", func(_ *rand.Rand, s *Scene) string {
		var parts []string
		for c := range numColors {
			if k := s.count(func(o *Object) bool { return o.Color == c }); k > 0 {
				parts = append(parts, numberWord(k)+" "+c.String())
			}
		}
		return sentence(countNoun(len(s.Objects), "shape") + " in all, " + joinAnd(parts) + ": " + joinAnd(groups(s)))
	}},
}

// sentence capitalises s and ends it with a full stop.
func sentence(s string) string { return capitalize(s) + "." }

// countNoun is "three shapes" or "one shape".
func countNoun(n int, noun string) string {
	if n == 1 {
		return "one " + noun
	}
	return numberWord(n) + " " + noun + "s"
}

// nounPhrase names an object without an article: "small red circle at the
// top left".
func nounPhrase(o *Object, size, pos bool) string {
	var b strings.Builder
	if size {
		b.WriteString(o.Size.String())
		b.WriteByte(' ')
	}
	b.WriteString(o.Color.String())
	b.WriteByte(' ')
	b.WriteString(o.Shape.String())
	if pos {
		b.WriteByte(' ')
		b.WriteString(o.Position.Phrase())
	}
	return b.String()
}

// phrases names each object with its article, in reading order.
func phrases(s *Scene, size, pos bool) []string {
	out := make([]string, len(s.Objects))
	for i := range s.Objects {
		np := nounPhrase(&s.Objects[i], size, pos)
		out[i] = article(np) + " " + np
	}
	return out
}

// groups names the objects grouped by colour and shape, in order of first
// appearance: "two red circles", "a blue star".
func groups(s *Scene) []string {
	type key struct {
		c  Color
		sh Shape
	}
	var order []key
	counts := map[key]int{}
	for _, o := range s.Objects {
		k := key{o.Color, o.Shape}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	out := make([]string, len(order))
	for i, k := range order {
		if n := counts[k]; n == 1 {
			out[i] = article(k.c.String()) + " " + k.c.String() + " " + k.sh.String()
		} else {
			out[i] = numberWord(n) + " " + k.c.String() + " " + k.sh.Plural()
		}
	}
	return out
}

// Caption writes a caption of s with a randomly chosen template and
// returns it with the template's name.
func Caption(rng *rand.Rand, s *Scene) (caption, template string) {
	t := captionTemplates[rng.IntN(len(captionTemplates))]
	return t.write(rng, s), t.name
}

// References writes n ≥ 1 distinct captions of s from distinct templates
// (at most len(captionTemplates)), as a captioning benchmark's several
// annotators would.
func References(rng *rand.Rand, s *Scene, n int) []string {
	n = min(n, len(captionTemplates))
	refs := make([]string, 0, n)
	seen := map[string]bool{}
	for _, i := range rng.Perm(len(captionTemplates)) {
		c := captionTemplates[i].write(rng, s)
		if !seen[c] {
			seen[c] = true
			refs = append(refs, c)
		}
		if len(refs) == n {
			break
		}
	}
	return refs
}
