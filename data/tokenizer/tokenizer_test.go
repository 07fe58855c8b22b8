package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestSplitPieces(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"I'm you're they've we'll he'd it's don't", []string{"I", "'m", " you", "'re", " they", "'ve", " we", "'ll", " he", "'d", " it", "'s", " don", "'t"}},
		{"DON'T 'sand ''s", []string{"DON", "'", "T", " '", "sand", " ''", "s"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a \t b", []string{"a", " \t", " b"}},
		{"tab\tsep", []string{"tab", "\t", "sep"}},
		{"\n\nword", []string{"\n", "\n", "word"}},
		{"end  ", []string{"end", "  "}},
		{" ", []string{" "}},
		{"x=1;y=22", []string{"x", "=", "1", ";", "y", "=", "22"}},
		{"3.14 2026", []string{"3", ".", "14", " 2026"}},
		{" !!?? ok", []string{" !!??", " ok"}},
		{"café naïve", []string{"café", " naïve"}},
		{"cafe\u0301!", []string{"cafe", "\u0301!"}},
		{"日本語。中文", []string{"日本語", "。", "中文"}},
		{"I ❤️ Go 😀😀", []string{"I", " ❤️", " Go", " 😀😀"}},
		{"a\u00a0b a\u3000b", []string{"a", "\u00a0", "b", " a", "\u3000", "b"}},
		{"\xff\xfeab\x80 c", []string{"\xff\xfe", "ab", "\x80", " c"}},
	}
	for _, tt := range tests {
		var got []string
		splitPieces(tt.in, func(p string) { got = append(got, p) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var (
	trainedOnce sync.Once
	trained     *Tokenizer
)

// smallTrained is a Go-trained 1000-token vocabulary on the test corpus.
func smallTrained(t testing.TB) *Tokenizer {
	t.Helper()
	trainedOnce.Do(func() { trained = trainFile(t, "testdata/hf_corpus.txt", TrainOptions{VocabSize: 1000}) })
	return trained
}

// randomText mixes ASCII, whitespace, multi-byte runes, invalid UTF-8 and
// special-token text, so round trips see every kind of input.
func randomText(r *rand.Rand) string {
	parts := []string{"a", "the", " ", "  ", "\t", "\n", "'s", "'ll", "é", "e\u0301", "日本", "😀", "👍🏽", "\u00a0",
		"\xff", "\xc3", "\x80", "\x00", "<|image|>", "<|eos|>", "<|", "|>", "42", "!?", "Newton", "Light"}
	var b strings.Builder
	for range r.IntN(30) {
		if r.IntN(5) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		} else {
			b.WriteString(parts[r.IntN(len(parts))])
		}
	}
	return b.String()
}

func checkRoundTrip(t testing.TB, tok *Tokenizer, s string) {
	t.Helper()
	for name, ids := range map[string][]int32{"Encode": tok.Encode(s), "EncodeWithSpecials": tok.EncodeWithSpecials(s)} {
		got, err := tok.Decode(ids)
		if err != nil || got != s {
			t.Fatalf("Decode(%s(%q)) = %q, %v", name, s, got, err)
		}
	}
}

func TestRoundTripProperty(t *testing.T) {
	toks := map[string]*Tokenizer{"go-trained": smallTrained(t), "hf": loadHF(t, nil)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		s := randomText(r)
		for _, tok := range toks {
			checkRoundTrip(t, tok, s)
		}
	}
	var all []byte
	for b := range 256 {
		all = append(all, byte(b))
	}
	for _, tok := range toks {
		checkRoundTrip(t, tok, string(all))
	}
}

func TestSpecialsAtomic(t *testing.T) {
	tok := smallTrained(t)
	if m := tok.MissingSpecials(); m != nil {
		t.Fatalf("MissingSpecials = %q", m)
	}
	want := map[string]int32{Image: tok.ImageID(), EndOfChunk: tok.EndOfChunkID(), BOS: tok.BOSID(), EOS: tok.EOSID(), Pad: tok.PadID()}
	for i, s := range DefaultSpecials {
		if want[s] != int32(i) {
			t.Errorf("id of %s = %d, want %d (specials come first)", s, want[s], i)
		}
		if got := tok.EncodeWithSpecials(s); !slices.Equal(got, []int32{int32(i)}) {
			t.Errorf("EncodeWithSpecials(%q) = %v, want [%d]", s, got, i)
		}
		for _, id := range tok.Encode("x" + s + " " + s) {
			if id < int32(len(DefaultSpecials)) {
				t.Errorf("Encode(%q) produced special id %d", s, id)
			}
		}
	}
	got := tok.EncodeWithSpecials("A <|image|>cat<|endofchunk|>")
	if n := slices.Index(got, tok.ImageID()); n < 0 || !slices.Contains(got, tok.EndOfChunkID()) {
		t.Errorf("EncodeWithSpecials gave %v, want the image and end-of-chunk ids", got)
	}
	hf := loadHF(t, nil)
	if hf.ImageID() != 2302 || hf.PadID() != 2306 {
		t.Errorf("HF file: image id %d, pad id %d; want 2302, 2306", hf.ImageID(), hf.PadID())
	}
	noSpecials := loadHF(t, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"content": "<|pad|>"`), []byte(`"content": "<|other|>"`), 1)
	})
	if m := noSpecials.MissingSpecials(); !slices.Equal(m, []string{Pad}) || noSpecials.PadID() != -1 {
		t.Errorf("MissingSpecials = %q, PadID = %d; want [<|pad|>], -1", m, noSpecials.PadID())
	}
}

// TestLoadedSpecialInVocab: a loaded special whose content is also a model
// token ("abc", id 4, reachable by merges or, with ignore_merges, as a whole
// word) keeps its id for EncodeWithSpecials only.
func TestLoadedSpecialInVocab(t *testing.T) {
	for _, ignoreMerges := range []string{"false", "true"} {
		in := strings.Replace(minimalJSON, `"ignore_merges": false`, `"ignore_merges": `+ignoreMerges, 1)
		in = strings.Replace(in, `{"id": 5, "content": "<|eos|>"`, `{"id": 4, "content": "abc"`, 1)
		tok, err := Load([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("abc"); slices.Contains(got, 4) {
			t.Errorf("ignore_merges %s: Encode(abc) = %v, has the special id 4", ignoreMerges, got)
		}
		if got := tok.EncodeWithSpecials("abc"); !slices.Equal(got, []int32{4}) {
			t.Errorf("ignore_merges %s: EncodeWithSpecials(abc) = %v, want [4]", ignoreMerges, got)
		}
	}
}

// TestTrainNeverSpellsSpecial: text full of special-token text must not
// teach a merge that spells a special (it would be an ordinary-text path to
// its id).
func TestTrainNeverSpellsSpecial(t *testing.T) {
	tr, err := NewTrainer(TrainOptions{VocabSize: 400})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		tr.AddText("<|image|><|image|> <|eos|>")
	}
	tok, err := tr.Train(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range tok.Encode("<|image|><|eos|>") {
		if id < int32(len(DefaultSpecials)) {
			t.Fatalf("Encode produced special id %d", id)
		}
	}
	if got := tok.Encode("<|image|>"); len(got) < 2 {
		t.Errorf("Encode(<|image|>) = %v; the trainer learned no merges", got)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, tok := range map[string]*Tokenizer{"go-trained": smallTrained(t), "hf": loadHF(t, nil)} {
		path := filepath.Join(dir, name+".json")
		if err := tok.Save(path); err != nil {
			t.Fatal(err)
		}
		back, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Marshal(), tok.Marshal()) {
			t.Errorf("%s: Marshal differs after Save and LoadFile", name)
		}
		for _, g := range readGoldens(t) {
			if a, b := tok.EncodeWithSpecials(g.Text), back.EncodeWithSpecials(g.Text); !slices.Equal(a, b) {
				t.Errorf("%s: %q: %v before saving, %v after", name, g.Text, a, b)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want the 2 saved files and no temporaries", len(entries))
	}
}

// TestMergesStringForm: the older "left right" merges load to the same model
// as the pair form.
func TestMergesStringForm(t *testing.T) {
	pairs := loadHF(t, nil)
	lines := loadHF(t, func(b []byte) []byte {
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		model := f["model"].(map[string]any)
		merges := model["merges"].([]any)
		for i, m := range merges {
			p := m.([]any)
			merges[i] = p[0].(string) + " " + p[1].(string)
		}
		out, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
	if !bytes.Equal(pairs.Marshal(), lines.Marshal()) {
		t.Fatal("string-form merges load differently from pair-form merges")
	}
}

// TestConcurrentEncode: the tokenizer is shared by the stream's decode
// workers; concurrent calls give the sequential ids.
func TestConcurrentEncode(t *testing.T) {
	tok := smallTrained(t)
	goldens := readGoldens(t)
	want := make([][]int32, len(goldens))
	for i, g := range goldens {
		want[i] = tok.EncodeWithSpecials(g.Text)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for rep := range 20 {
				for i, g := range goldens {
					if got := tok.EncodeWithSpecials(g.Text); !slices.Equal(got, want[i]) {
						t.Errorf("worker %d, rep %d: %q = %v, want %v", w, rep, g.Text, got, want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// splitPieces calls fn with each piece of s in order.
func splitPieces(s string, fn func(piece string)) {
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		fn(s[i:j])
		i = j
	}
}
