package shapes

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// opticksPath is $(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt,
// found independently of BookPath; the test skips, saying why, when this
// Go installation lacks the file.
func opticksPath(t *testing.T) string {
	t.Helper()
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("skipped: `go env GOROOT` failed (%v), so Go's Opticks text cannot be located", err)
	}
	p := filepath.Join(strings.TrimSpace(string(root)), "src", "testdata", "Isaac.Newton-Opticks.txt")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipped: this Go installation has no Opticks text: %v", err)
	}
	return p
}

// TestBookPath: BookPath finds the Opticks text from $GOROOT when it is
// set and from `go env GOROOT` when it is not, and a GOROOT without the
// file is an error that says how to do without it.
func TestBookPath(t *testing.T) {
	want := opticksPath(t)
	t.Setenv("GOROOT", "")
	if got, err := BookPath(); err != nil || got != want {
		t.Fatalf("without $GOROOT: %q, %v; want %q", got, err, want)
	}
	fake := t.TempDir()
	fakeBook := filepath.Join(fake, "src", "testdata", "Isaac.Newton-Opticks.txt")
	if err := os.MkdirAll(filepath.Dir(fakeBook), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fakeBook, []byte("OPTICKS"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOROOT", fake)
	if got, err := BookPath(); err != nil || got != fakeBook {
		t.Fatalf("with $GOROOT: %q, %v; want %q", got, err, fakeBook)
	}
	t.Setenv("GOROOT", t.TempDir())
	if _, err := BookPath(); err == nil || !strings.Contains(err.Error(), "--no-book") {
		t.Fatalf("GOROOT without the book: %v, want an error suggesting --no-book", err)
	}
}

// TestTextSplitWithBook: the default second text source lands in text/
// whole and in order: every chunk of the book is one row, with source
// "book", the file's base name and consecutive chunk numbers, its text
// the chunk's; the chunks are spread evenly among the synthetic texts
// (each fifth of the split holds at least half its share of them); the
// opening chunk is the book's title page; and synth.json records the
// book's sha256.
func TestTextSplitWithBook(t *testing.T) {
	book := opticksPath(t)
	src, err := loadText(book)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.chunks) < 100 {
		t.Fatalf("the Opticks text gives %d chunks; a whole book should give hundreds", len(src.chunks))
	}
	cfg := DefaultConfig()
	cfg.Size = MinSize
	cfg.Scenes, cfg.Docs, cfg.EvalCaption, cfg.EvalVQA, cfg.Support = 0, 0, 0, 0, 0
	cfg.Texts = 50
	cfg.TextFiles = []string{book}
	out := t.TempDir()
	generateIn(t, out, cfg, Options{})
	recs := readSplit(t, out, SplitText)
	if len(recs) != cfg.Texts+len(src.chunks) {
		t.Fatalf("text/ has %d rows, want %d synthetic + %d book chunks", len(recs), cfg.Texts, len(src.chunks))
	}
	next := 0
	var fifths [5]int // synthetic rows in each fifth of the split
	for i, rec := range recs {
		var meta textMeta
		if err := json.Unmarshal([]byte(rec.Meta), &meta); err != nil {
			t.Fatalf("%s: %v", rec.ID, err)
		}
		if meta.Source != "book" {
			fifths[i*5/len(recs)]++
			continue
		}
		if meta.File != "Isaac.Newton-Opticks.txt" || meta.Chunk == nil || *meta.Chunk != next {
			t.Fatalf("%s: book row file %q chunk %v, want chunk %d of Isaac.Newton-Opticks.txt", rec.ID, meta.File, meta.Chunk, next)
		}
		if *rec.Texts[0] != src.chunks[next] {
			t.Fatalf("%s: text differs from chunk %d", rec.ID, next)
		}
		next++
	}
	if next != len(src.chunks) {
		t.Fatalf("%d book rows, want %d", next, len(src.chunks))
	}
	for f, k := range fifths {
		if k < cfg.Texts/10 {
			t.Errorf("fifth %d of text/ holds %d of the %d synthetic rows (by fifth: %v): the book is not spread evenly among them", f, k, cfg.Texts, fifths)
		}
	}
	if first := src.chunks[0]; !strings.Contains(strings.ToUpper(first), "OPTICKS") {
		t.Errorf("first chunk is not the title page: %.120q", first)
	}
	st, err := readStamp(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Inputs) != 1 || st.Inputs[0].Name != "Isaac.Newton-Opticks.txt" || st.Inputs[0].SHA256 != src.SHA256 {
		t.Fatalf("synth.json inputs %+v, want the book with sha256 %s", st.Inputs, src.SHA256)
	}
}
