package scoring

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestPTBTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want string // tokens joined by single spaces
	}{
		{"A red circle.", "a red circle"},
		{"", ""},
		{"  \t ", ""},
		{"Two squares, one circle; and: a dot!", "two squares one circle and a dot"},
		{"Is it red?", "is it red"},
		{"What?! no", "what ?! no"}, // a ?/! run is one token, not in the list
		{"The dog's ball", "the dog 's ball"},
		{"dogs' toys", "dogs toys"},
		{"It isn't here, don't go", "it is n't here do n't go"},
		{"can't won't cannot", "ca n't wo n't can not"},
		{"it’s they’re we’ve I’ll she’d I'm", "it 's they 're we 've i 'll she 'd i 'm"},
		{"o'clock", "o'clock"},
		{`He said "hi" and 'bye'`, "he said hi and bye"},
		{"“curly” ‘quotes’", "curly quotes"},
		{"a circle (small) [left] {top}", "a circle -lrb- small -rrb- -lsb- left -rsb- -lcb- top -rcb-"},
		{"well-known x-ray", "well-known x-ray"},
		{"a - b -- c — d – e", "a b c d e"},
		{"wait... then…", "wait then"},
		{"wait.. then", "wait then"},
		{"3.5 cm, 1,000 dots, 2.", "3.5 cm 1,000 dots 2"},
		{"the U.S. flag, e.g. this", "the u.s. flag e.g. this"},
		{"Mr. Smith and Dr. Who etc.", "mr. smith and dr. who etc."},
		{"J. Doe", "j. doe"},
		{"a. b", "a b"}, // lower-case single letter: not an initial
		{"red,blue", "red blue"},
		{"5% off $3 & #1", "5 % off $ 3 & # 1"},
		{"x/y", "x / y"},
		{"Line\none", "line one"},
		{"İSTANBUL ΟΔΟΣ", "i\u0307stanbul οδος"},
	}
	for _, tt := range tests {
		got := strings.Join(PTBTokenize(tt.in), " ")
		if got != tt.want {
			t.Errorf("PTBTokenize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzPTBTokenize: never panics; every token is non-empty, has no
// whitespace, is already lower-case and is not one of the dropped
// punctuation tokens; and tokenising a caption built from plain word tokens
// gives them back.
func FuzzPTBTokenize(f *testing.F) {
	for _, s := range []string{"A red circle.", "don't (x) \"y\"", "U.S. e.g. 3.5 1,000", "it’s…", "\xff'\xfe", "İΣ", "a-b--c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := PTBTokenize(s)
		var plain []string
		for _, tok := range toks {
			if tok == "" || strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
				t.Fatalf("PTBTokenize(%q) has token %q", s, tok)
			}
			if slices.Contains(cocoPunctuation, tok) {
				t.Errorf("PTBTokenize(%q) kept punctuation token %q", s, tok)
			}
			if lowerFull(tok) != tok {
				t.Errorf("PTBTokenize(%q) has token %q that is not lower-case", s, tok)
			}
			if strings.IndexFunc(tok, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) < 0 {
				plain = append(plain, tok)
			}
		}
		joined := strings.Join(plain, " ")
		if again := PTBTokenize(joined); !slices.Equal(again, plain) {
			t.Errorf("PTBTokenize(%q) = %q, want the words back", joined, again)
		}
	})
}

func BenchmarkPTBTokenize(b *testing.B) {
	const caption = `A small red circle (left) isn't next to the "large" blue square, is it? Two triangles... e.g. three.`
	b.SetBytes(int64(len(caption)))
	for b.Loop() {
		PTBTokenize(caption)
	}
}
