package tokenizer

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/shards"
)

// TestAddDataset: training from a canonical dataset sees exactly its texts,
// so it learns what training on the same texts directly learns.
func TestAddDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := shards.NewWriter(dir, shards.Options{RowGroupRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := NewTrainer(TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	jpeg := &data.ImageRef{Bytes: []byte{0xff, 0xd8, 0xff}}
	for i := range 40 {
		caption := fmt.Sprintf("a red circle number %d at the top left's corner", i)
		story := strings.Repeat("the blue square is next to the circle. ", i%5+1)
		rec := &data.Record{ID: fmt.Sprint(i), Kind: data.KindInterleaved,
			Texts: []*string{&caption, nil, &story}, Images: []*data.ImageRef{nil, jpeg, nil}}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		direct.AddText(caption)
		direct.AddText(story)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fromData, err := NewTrainer(TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	skipped, err := fromData.AddDataset(context.Background(), dir, layouts.Options{}, data.OnErrorFail)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 0 {
		t.Errorf("skipped %v, want none", skipped)
	}
	a, err := direct.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := fromData.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Marshal(), b.Marshal()) {
		t.Error("training from the dataset differs from training on its texts")
	}
	if got := b.Encode(" circle"); len(got) != 1 {
		t.Errorf("Encode(\" circle\") = %v, want one learned token", got)
	}
	if _, err := fromData.AddDataset(context.Background(), filepath.Join(dir, "missing"), layouts.Options{}, data.OnErrorSkip); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("AddDataset(missing) = %v, want an error naming the path", err)
	}
}
