package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type golden struct {
	Text      string  `json:"text"`
	IDs       []int32 `json:"ids"`
	IDsPlain  []int32 `json:"ids_plain"`
	IDsPrefix []int32 `json:"ids_prefix"`
	Decoded   string  `json:"decoded"`
}

func readGoldens(t testing.TB) []golden { return readGoldenFile(t, "testdata/hf_golden.jsonl", 50) }

// readGoldenFile reads rows of golden ids; fewer than least rows means a
// truncated fixture.
func readGoldenFile(t testing.TB, path string, least int) []golden {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s: row %d: %v", path, len(out)+1, err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(out) < least {
		t.Fatalf("%s has %d rows, want at least %d", path, len(out), least)
	}
	return out
}

func loadHF(t testing.TB, edit func([]byte) []byte) *Tokenizer {
	t.Helper()
	b, err := os.ReadFile("testdata/hf_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		b = edit(b)
	}
	tok, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestHFGolden checks every id Hugging Face tokenizers gave (see
// testdata/gen_hf_golden.js) for a tokenizer.json it trained: hand-picked
// texts in hf_golden.jsonl, seeded random ones (every whitespace kind,
// contractions, scripts, emoji, random code points, corpus slices) in
// hf_random.jsonl.
func TestHFGolden(t *testing.T) {
	for _, file := range []struct {
		path  string
		least int
	}{{"testdata/hf_golden.jsonl", 50}, {"testdata/hf_random.jsonl", 600}} {
		t.Run(filepath.Base(file.path), func(t *testing.T) { checkGoldens(t, readGoldenFile(t, file.path, file.least)) })
	}
}

func checkGoldens(t *testing.T, goldens []golden) {
	tok := loadHF(t, nil)
	prefixed := loadHF(t, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"add_prefix_space": false`), []byte(`"add_prefix_space": true`), 1)
	})
	for _, g := range goldens {
		if got := tok.EncodeWithSpecials(g.Text); !slices.Equal(got, g.IDs) {
			t.Errorf("EncodeWithSpecials(%q) = %v, HF gives %v", g.Text, got, g.IDs)
		}
		if got := tok.Encode(g.Text); !slices.Equal(got, g.IDsPlain) {
			t.Errorf("Encode(%q) = %v, HF without added tokens gives %v", g.Text, got, g.IDsPlain)
		}
		if got := prefixed.EncodeWithSpecials(g.Text); !slices.Equal(got, g.IDsPrefix) {
			t.Errorf("add_prefix_space: EncodeWithSpecials(%q) = %v, HF gives %v", g.Text, got, g.IDsPrefix)
		}
		if got, err := tok.Decode(g.IDs); err != nil || got != g.Decoded {
			t.Errorf("Decode(%v) = %q, %v; HF gives %q", g.IDs, got, err, g.Decoded)
		}
	}
}

// TestHFTiny covers hand-made files against Hugging Face's ids: bytes
// missing from the vocabulary (dropped, unk, fused unk), ignore_merges,
// use_regex off and its default, and added tokens with lstrip/rstrip.
func TestHFTiny(t *testing.T) {
	f, err := os.Open("testdata/hf_tiny.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	configs := map[string]bool{}
	for sc.Scan() {
		var row struct {
			Config    string          `json:"config"`
			Tokenizer json.RawMessage `json:"tokenizer"`
			Text      string          `json:"text"`
			IDs       []int32         `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		configs[row.Config] = true
		tok, err := Load(row.Tokenizer)
		if err != nil {
			t.Fatalf("%s: %v", row.Config, err)
		}
		if got := tok.EncodeWithSpecials(row.Text); !slices.Equal(got, row.IDs) {
			t.Errorf("%s: EncodeWithSpecials(%q) = %v, HF gives %v", row.Config, row.Text, got, row.IDs)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(configs) != 7 {
		t.Fatalf("hf_tiny.jsonl has configs %v, want 7", configs)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/go_trained.json (then rerun testdata/gen_hf_golden.js)")

// TestGoTrainedInHF: what Save writes is a tokenizer.json Hugging Face
// tokenizers loads and encodes to the ids Go gives. testdata/go_trained.json
// is the Marshal of smallTrained (a golden file: training and Marshal must
// not drift), and go_trained_golden.jsonl holds the ids HF gave for it
// (gen_hf_golden.js), for the hand-picked and the random texts.
func TestGoTrainedInHF(t *testing.T) {
	const path = "testdata/go_trained.json"
	got := smallTrained(t).Marshal()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal of the Go-trained tokenizer differs from %s (rerun with -update, then gen_hf_golden.js, if the change is meant)", path)
	}
	tok, err := Load(want)
	if err != nil {
		t.Fatal(err)
	}
	rows := readGoldenFile(t, "testdata/go_trained_golden.jsonl", 650)
	for _, g := range rows {
		if ids := tok.EncodeWithSpecials(g.Text); !slices.Equal(ids, g.IDs) {
			t.Errorf("EncodeWithSpecials(%q) = %v, HF on the saved file gives %v", g.Text, ids, g.IDs)
		}
		if text, err := tok.Decode(g.IDs); err != nil || text != g.Decoded {
			t.Errorf("Decode(%v) = %q, %v; HF gives %q", g.IDs, text, err, g.Decoded)
		}
	}
}
