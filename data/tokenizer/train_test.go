package tokenizer

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func trainFile(t testing.TB, path string, opts TrainOptions) *Tokenizer {
	t.Helper()
	tr, err := NewTrainer(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tr.AddReader(context.Background(), path, f); err != nil {
		t.Fatal(err)
	}
	tok, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTrainMatchesHF trains on the corpus Hugging Face's BpeTrainer was
// trained on (testdata/gen_hf_golden.js) and expects the same merges in the
// same order: same counting, same tie-breaking.
func TestTrainMatchesHF(t *testing.T) {
	b, err := os.ReadFile("testdata/hf_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var hf struct {
		Model struct {
			Merges [][2]string `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(b, &hf); err != nil {
		t.Fatal(err)
	}
	tok := trainFile(t, "testdata/hf_corpus.txt", TrainOptions{VocabSize: maxID})
	var got [][2]string
	for _, m := range tok.order {
		got = append(got, [2]string{tok.tokens[m[0]], tok.tokens[m[1]]})
	}
	for i := range min(len(got), len(hf.Model.Merges)) {
		if got[i] != hf.Model.Merges[i] {
			t.Fatalf("merge %d: Go learned %q, HF learned %q", i, got[i], hf.Model.Merges[i])
		}
	}
	if len(got) != len(hf.Model.Merges) {
		t.Fatalf("Go learned %d merges, HF %d", len(got), len(hf.Model.Merges))
	}
}
