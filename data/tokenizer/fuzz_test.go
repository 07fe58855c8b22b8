package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// FuzzEncodeDecode: any byte string round-trips, and Encode never yields a
// special id however the bytes spell one.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "Hello world's", "\xff\xfe<|image|>", "  \t\n x", "e\u0301😀日本", "<|eos|><|pad|>"} {
		f.Add(s)
	}
	tok := smallTrained(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkRoundTrip(t, tok, s)
		for _, id := range tok.Encode(s) {
			if id < int32(len(DefaultSpecials)) {
				t.Fatalf("Encode(%q) produced special id %d", s, id)
			}
		}
		var joined strings.Builder
		splitPieces(s, func(p string) {
			if p == "" {
				t.Fatalf("split(%q) produced an empty piece", s)
			}
			joined.WriteString(p)
		})
		if joined.String() != s {
			t.Fatalf("split(%q) pieces join to %q", s, joined.String())
		}
	})
}

// FuzzLoad: Load never panics on outside bytes; what it accepts encodes,
// decodes and survives Marshal and Load again.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimalJSON))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {}, "merges": []}}`))
	if file, err := os.Open("testdata/hf_tiny.jsonl"); err == nil {
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var row struct {
				Tokenizer json.RawMessage `json:"tokenizer"`
			}
			if json.Unmarshal(sc.Bytes(), &row) == nil {
				f.Add([]byte(row.Tokenizer))
			}
		}
		file.Close()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Load(b)
		if err != nil {
			return
		}
		ids := tok.EncodeWithSpecials("abc <|eos|> xyz\xff")
		if _, err := tok.Decode(ids); err != nil {
			t.Fatalf("Decode of its own ids: %v", err)
		}
		back, err := Load(tok.Marshal())
		if err != nil {
			t.Fatalf("Load(Marshal()) = %v", err)
		}
		if string(back.Marshal()) != string(tok.Marshal()) {
			t.Fatal("Marshal differs after a round trip")
		}
	})
}
