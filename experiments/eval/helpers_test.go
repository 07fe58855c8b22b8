package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/shards"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/models"
)

// Test sizes: 16 px images, 4 tokens per image.
const (
	testRes    = 16
	testTokens = 4
)

var testColors = []string{"red", "blue", "green", "yellow", "purple", "orange", "black", "gray"}

// testTokenizer is a small byte-level BPE trained on the prompt texts, so
// that words are a few tokens each.
func testTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tr, err := tokenizer.NewTrainer(tokenizer.TrainOptions{VocabSize: 320})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		for _, c := range testColors {
			tr.AddText(fmt.Sprintf("Caption: a %s circle at the top. Caption: two %s squares", c, c))
			tr.AddText(fmt.Sprintf("Question: What color is the circle? Answer: %s", c))
		}
		tr.AddText("A story about shapes. The circle was red and the square was blue.")
	}
	tok, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testPNG is a 16×16 image filled with a colour derived from i.
func testPNG(t testing.TB, i int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, testRes, testRes))
	c := color.RGBA{uint8(40 * i), uint8(255 - 30*i), uint8(90 + 17*i), 255}
	for y := range testRes {
		for x := range testRes {
			if (x+y+i)%5 == 0 {
				img.Set(x, y, color.RGBA{255, 255, 255, 255})
			} else {
				img.Set(x, y, c)
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeDataset writes records as a dataset in dir, two rows per row group
// so that reads cross row groups.
func writeDataset(t testing.TB, dir string, recs []*data.Record) {
	t.Helper()
	w, err := shards.NewWriter(dir, shards.Options{RowGroupRows: 2, MaxRowsPerShard: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func metaJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// captionRecord is a data/shapes eval/caption row: [image], meta references.
func captionRecord(t testing.TB, id string, img int, refs []string) *data.Record {
	return &data.Record{ID: id, Kind: data.KindCaption,
		Images: []*data.ImageRef{{Bytes: testPNG(t, img), Path: id + ".png"}}, Texts: []*string{nil},
		Meta: metaJSON(t, map[string]any{"split": "eval/caption", "task": "caption", "references": refs})}
}

// vqaRecord is a data/shapes eval/vqa row: [image, question], meta answer(s).
func vqaRecord(t testing.TB, id string, img int, question, answer string, answers []string) *data.Record {
	return &data.Record{ID: id, Kind: data.KindCaption,
		Images: []*data.ImageRef{{Bytes: testPNG(t, img), Path: id + ".png"}, nil}, Texts: []*string{nil, data.Str(question)},
		Meta: metaJSON(t, map[string]any{"split": "eval/vqa", "task": "color", "question": question, "answer": answer, "answers": answers})}
}

// tenOf repeats answers cyclically to ten.
func tenOf(answers ...string) []string {
	out := make([]string, 10)
	for i := range out {
		out[i] = answers[i%len(answers)]
	}
	return out
}

// testWorld writes a caption and a VQA benchmark (queries and support
// rows) and a text dataset under root and returns their directories.
func testWorld(t testing.TB, root string, queries, support int) (captionDir, vqaDir, textDir string) {
	t.Helper()
	captionDir, vqaDir, textDir = filepath.Join(root, "caption"), filepath.Join(root, "vqa"), filepath.Join(root, "text")
	var q, s []*data.Record
	for i := range queries {
		c := testColors[i%len(testColors)]
		q = append(q, captionRecord(t, fmt.Sprintf("eval-caption-query-%07d", i), i,
			[]string{"a " + c + " circle at the top", "one " + c + " circle", "a circle"}))
	}
	for i := range support {
		c := testColors[(i+3)%len(testColors)]
		s = append(s, captionRecord(t, fmt.Sprintf("eval-caption-support-%07d", i), 10+i,
			[]string{"two " + c + " squares", "a pair of " + c + " squares"}))
	}
	writeDataset(t, filepath.Join(captionDir, QueryDir), q)
	writeDataset(t, filepath.Join(captionDir, SupportDir), s)
	q, s = nil, nil
	for i := range queries {
		c := testColors[i%len(testColors)]
		q = append(q, vqaRecord(t, fmt.Sprintf("eval-vqa-query-%07d", i), i, "What color is the circle?", c, tenOf(c, c, "red", "grey")))
	}
	for i := range support {
		c := testColors[(i+5)%len(testColors)]
		s = append(s, vqaRecord(t, fmt.Sprintf("eval-vqa-support-%07d", i), 20+i, "What color is the square?", c, tenOf(c)))
	}
	writeDataset(t, filepath.Join(vqaDir, QueryDir), q)
	writeDataset(t, filepath.Join(vqaDir, SupportDir), s)
	var texts []*data.Record
	for i := range 5 {
		texts = append(texts, &data.Record{ID: fmt.Sprintf("text-%07d", i), Kind: data.KindText,
			Texts:  []*string{data.Str(fmt.Sprintf("A story about shapes, number %d. The circle was %s.", i, testColors[i]))},
			Images: []*data.ImageRef{nil}, Meta: `{"split":"text","source":"story"}`})
	}
	writeDataset(t, textDir, texts)
	return captionDir, vqaDir, textDir
}

// testModelConfig is a tiny multimodal model for vocab tokens.
func testModelConfig(vocab int) models.Config {
	return models.Config{
		Decoder: models.DecoderConfig{Vocab: vocab, Width: 32, Layers: 2, Heads: 4, KVHeads: 2, FFNHidden: 64,
			RopeBase: 10000, QKNorm: true, MaxSeq: 64},
		Vision:    &models.VisionConfig{Resolution: testRes, Patch: 4, Width: 16, Depth: 1, Heads: 2},
		Connector: &models.ConnectorConfig{Type: models.ConnAvgPool, Tokens: testTokens},
	}
}

func newTestModel(t testing.TB, cfg models.Config, B, T int, seed uint64) *models.Model {
	t.Helper()
	m, err := models.New(cfg, B, T, models.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func testImageOptions() images.Options { return images.DefaultOptions(testRes) }

// testBuilder is the prompt builder Run makes for a task.
func testBuilder(t testing.TB, tok *tokenizer.Tokenizer, maxSeq, maxNew int) promptBuilder {
	t.Helper()
	sp, err := specialsOf(tok)
	if err != nil {
		t.Fatal(err)
	}
	return promptBuilder{tok: tok, sp: sp, n: testTokens, budget: maxSeq - maxNew + 1}
}
