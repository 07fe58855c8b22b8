package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmablate/mmablate/data/shapes"
)

// TestDataSynthDefaultBook: without --no-book, text/ holds Go's Opticks
// text beside the synthetic texts, and synth.json names it. Skipped, with
// the reason, when this Go installation lacks the file.
func TestDataSynthDefaultBook(t *testing.T) {
	// The command finds the book through shapes.BookPath (tested in
	// data/shapes); where it cannot, there is nothing to check here.
	if _, err := shapes.BookPath(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	out := filepath.Join(t.TempDir(), "shapes")
	got, err := runCLI("data", "synth", "--out", out, "--scenes", "1", "--docs", "0", "--texts", "3",
		"--eval-caption", "0", "--eval-vqa", "0", "--support", "0", "--size", "16")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	b, err := os.ReadFile(filepath.Join(out, "synth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Inputs []struct{ Name string }
		Splits []struct {
			Name string
			Rows int64
		}
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Inputs) != 1 || st.Inputs[0].Name != "Isaac.Newton-Opticks.txt" {
		t.Fatalf("synth.json inputs %+v, want Go's Opticks text", st.Inputs)
	}
	text := int64(-1)
	for _, s := range st.Splits {
		if s.Name == "text" {
			text = s.Rows
		}
	}
	if text < 3+100 { // the book gives hundreds of chunks besides the 3 synthetic texts
		t.Fatalf("text/ has %d rows: the book is missing (synth.json splits %+v)", text, st.Splits)
	}
}
