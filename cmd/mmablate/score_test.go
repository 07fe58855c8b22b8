package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/experiments/scoring"
)

// runScore runs "mmablate score KIND FILE" on a file holding content and
// returns standard output and the error.
func runScore(t *testing.T, kind, content string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "preds.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"score", kind, path})
	err := root.Execute()
	return out.String(), err
}

func TestScoreCaption(t *testing.T) {
	content := `{"id": "1", "prediction": "A red circle.", "references": ["a red circle", "a small red circle"]}

{"id": 2, "prediction": "two squares", "references": ["two blue squares"], "image": "ignored.png"}
`
	out, err := runScore(t, "caption", content)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q is not a JSON object of numbers: %v", out, err)
	}
	want, err := scoring.Caption([]scoring.CaptionItem{
		{ID: "1", Prediction: "A red circle.", References: []string{"a red circle", "a small red circle"}},
		{ID: "2", Prediction: "two squares", References: []string{"two blue squares"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOut := map[string]float64{"CIDEr": want.CIDEr, "BLEU-1": want.BLEU[0], "BLEU-2": want.BLEU[1], "BLEU-3": want.BLEU[2], "BLEU-4": want.BLEU[3]}
	if len(got) != len(wantOut) {
		t.Errorf("output keys %v, want %v", got, wantOut)
	}
	for k, w := range wantOut {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
	// Brevity penalty exp(1 − 6/5) on every order: 5 words against closest references of 3 + 3.
	if bp := math.Exp(1 - 6.0/5); math.Abs(got["BLEU-1"]-bp) > 1e-9 {
		t.Errorf("BLEU-1 = %v, want %v (all unigrams match)", got["BLEU-1"], bp)
	}
}

func TestScoreVQA(t *testing.T) {
	line := func(id, pred string, answers ...string) string {
		b, _ := json.Marshal(map[string]any{"id": id, "prediction": pred, "answers": answers})
		return string(b) + "\n"
	}
	ten := func(s string) []string {
		out := make([]string, 10)
		for i := range out {
			out[i] = s
		}
		return out
	}
	content := line("q1", "Two", "2", "2", "2", "two", "2", "2", "2", "2", "2", "3") + // 100
		line("q2", "Yes", ten("yes")...) + // 0: the official quirk
		line("q3", "red", append(ten("blue")[:8], "red", "red")...) // 2 of 10 → 60
	out, err := runScore(t, "vqa", content)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("output %q (%v): want exactly {\"accuracy\": x}", out, err)
	}
	if acc, want := got["accuracy"], (100+0+60)/3.0; math.Abs(acc-want) > 1e-9 {
		t.Errorf("accuracy %v, want %v", acc, want)
	}
}

// scoreKeys are the keys each score command prints, and nothing else.
var scoreKeys = map[string][]string{
	"caption": {"CIDEr", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"},
	"vqa":     {"accuracy"},
}

// FuzzScore feeds arbitrary bytes as the JSONL file of both score
// commands: each either fails with an error that names the file, or
// prints exactly its keys with finite values in range (CIDEr ≥ 0, BLEU in
// [0, 1], accuracy in [0, 100]).
func FuzzScore(f *testing.F) {
	f.Add([]byte(`{"id": "1", "prediction": "A red circle.", "references": ["a red circle", "a small red circle"]}` + "\n" +
		`{"id": 2, "prediction": "two squares", "references": ["two blue squares"]}`))
	f.Add([]byte(`{"id": "q", "prediction": "Two", "answers": ["2","2","2","two","2","2","2","2","2","3"]}` + "\n\n"))
	f.Add([]byte(`{"id": "a", "prediction": "x", "references": [], "answers": []}` + "\n" + `[1]`))
	f.Add([]byte("{\"id\": 1e400, \"prediction\": \"\\ud800\"}\n{\"id\": \"1e400\"}"))
	f.Fuzz(func(t *testing.T, content []byte) {
		for kind, keys := range scoreKeys {
			out, err := runScore(t, kind, string(content))
			if err != nil {
				if !strings.Contains(err.Error(), "preds.jsonl") {
					t.Errorf("score %s: error %q does not name the file", kind, err)
				}
				continue
			}
			var got map[string]float64
			if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != len(keys) {
				t.Fatalf("score %s printed %q (%v), want exactly the keys %v", kind, out, err, keys)
			}
			for _, k := range keys {
				v, ok := got[k]
				hi := 1.0
				switch k {
				case "CIDEr":
					hi = math.Inf(1)
				case "accuracy":
					hi = 100
				}
				if !ok || math.IsNaN(v) || v < 0 || v > hi {
					t.Errorf("score %s: %s = %v (present %v), want a number in [0, %v]", kind, k, v, ok, hi)
				}
			}
		}
	})
}

func TestScoreErrors(t *testing.T) {
	okCaption := `{"id": "a", "prediction": "x", "references": ["x"]}` + "\n"
	okVQA := `{"id": "a", "prediction": "x", "answers": ["x","x","x","x","x","x","x","x","x","x"]}` + "\n"
	tests := []struct {
		name, kind, content, wantErr string
	}{
		{"malformed JSON", "caption", okCaption + "{\"id\": \"b\", \"prediction\": \n", "preds.jsonl:2: not a JSON object"},
		{"not an object", "vqa", okVQA + "[1, 2]\n", "preds.jsonl:2: not a JSON object"},
		{"trailing garbage", "caption", okCaption + `{"id": "b", "prediction": "x", "references": ["x"]} junk` + "\n", "preds.jsonl:2:"},
		{"missing id", "caption", `{"prediction": "x", "references": ["x"]}`, `preds.jsonl:1: missing "id"`},
		{"bad id", "caption", `{"id": true, "prediction": "x", "references": ["x"]}`, `preds.jsonl:1: "id" must be a string or a number`},
		{"duplicate id", "caption", okCaption + "\n" + okCaption, `preds.jsonl:3: id "a" already used on line 1`},
		{"missing prediction", "caption", `{"id": "a", "references": ["x"]}`, `preds.jsonl:1: missing "prediction"`},
		{"missing references", "caption", `{"id": "a", "prediction": "x"}`, `preds.jsonl:1: missing "references"`},
		{"empty references", "caption", okCaption + `{"id": "b", "prediction": "x", "references": []}`, `preds.jsonl:2: "references" is empty`},
		{"references not strings", "caption", `{"id": "a", "prediction": "x", "references": [1]}`, "preds.jsonl:1:"},
		{"nine answers", "vqa", okVQA + `{"id": "b", "prediction": "x", "answers": ["x","x","x","x","x","x","x","x","x"]}`, `preds.jsonl:2: "answers" has 9 entries, want 10`},
		{"missing answers", "vqa", `{"id": "b", "prediction": "x"}`, `preds.jsonl:1: missing "answers"`},
		{"empty file", "vqa", "\n\n", "preds.jsonl: no items"},
		{"line too long", "caption", okCaption + `{"id": "b", "prediction": "` + strings.Repeat("x", maxScoreLine) + `"}`, "preds.jsonl:2: line longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runScore(t, tt.kind, tt.content)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if out != "" {
				t.Errorf("printed %q on error", out)
			}
		})
	}
}

func TestScoreUsage(t *testing.T) {
	root := newRootCmd()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"score", "caption"})
	err := root.Execute()
	var ue *usageError
	if err == nil || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a usage error (exit 2)", err)
	}
}
