package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/tokenizer"
)

// runCLIIn is runCLI with stdin, the source of encode and decode without arguments.
func runCLIIn(stdin string, args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

const tokenizerProse = "The Light of the Sun consists of Rays differently Refrangible.\n" +
	"A red circle at the top left; two blue squares don't move.\n"

// TestTokenizerTrainInputs: train reads text files and datasets in a
// non-canonical layout alike, and learns what the library learns from the
// same inputs.
func TestTokenizerTrainInputs(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "prose.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat(tokenizerProse, 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	ds := writeImg2Dataset(t, dir)
	out := filepath.Join(dir, "tok.json")
	got, err := runCLI("tokenizer", "train", "--vocab", "300", "--min-frequency", "1", "--layout", "img2dataset", "--out", out, text, ds)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	for _, want := range []string{"wrote " + out + ": 300 tokens", "skipped 2 dataset rows (img2dataset status is not success: 1, null text: 1)"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q lacks %q", got, want)
		}
	}
	tr, err := tokenizer.NewTrainer(tokenizer.TrainOptions{VocabSize: 300, MinFrequency: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr.AddText(strings.Repeat(tokenizerProse, 20)) // AddReader's line split gives the same words
	skipped, err := tr.AddDataset(context.Background(), ds, layouts.Options{Layout: layouts.Img2Dataset}, data.OnErrorSkip)
	if err != nil || len(skipped) == 0 {
		t.Fatalf("AddDataset: skipped %v, %v; want the two bad rows skipped", skipped, err)
	}
	want, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, want.Marshal()) {
		t.Error("the CLI's tokenizer.json differs from the library's on the same inputs")
	}
	tok, err := tokenizer.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ImageID() != 0 || tok.PadID() != 4 {
		t.Errorf("image id %d, pad id %d; want 0 and 4", tok.ImageID(), tok.PadID())
	}
	// "blue square" is in the dataset's captions only.
	if without := trainText(t, dir); len(tok.Encode(" blue square")) >= len(without.Encode(" blue square")) {
		t.Error("the dataset's captions did not shape the vocabulary")
	}
}

// trainText trains on the prose file alone, for comparison.
func trainText(t *testing.T, dir string) *tokenizer.Tokenizer {
	t.Helper()
	out := filepath.Join(dir, "text-only.json")
	if got, err := runCLI("tokenizer", "train", "--vocab", "300", "--min-frequency", "1", "--out", out, filepath.Join(dir, "prose.txt")); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	tok, err := tokenizer.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenizerEncodeDecode: bytes survive encode | decode, invalid UTF-8
// and special-token text included; specials are parsed only with --specials.
func TestTokenizerEncodeDecode(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "prose.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat(tokenizerProse, 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "tok.json")
	if got, err := runCLI("tokenizer", "train", "--vocab", "320", "--out", tok, text); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	in := "A red <|image|> circle\xff\xfe\n\tdon't 42 café 😀"
	ids, err := runCLIIn(in, "tokenizer", "encode", "-t", tok)
	if err != nil {
		t.Fatal(err)
	}
	for f := range strings.FieldsSeq(ids) {
		if id, err := strconv.Atoi(f); err != nil || id < len(tokenizer.DefaultSpecials) {
			t.Fatalf("encode printed %q (in %q); want ids of ordinary tokens", f, ids)
		}
	}
	back, err := runCLIIn(ids, "tokenizer", "decode", "-t", tok)
	if err != nil || back != in {
		t.Fatalf("decode(encode(%q)) = %q, %v", in, back, err)
	}
	ids, err = runCLI("tokenizer", "encode", "-t", tok, "--specials", "A", "<|image|>")
	if err != nil || !strings.HasSuffix(ids, " 0\n") {
		t.Fatalf("encode --specials: %q, %v; want the image id 0 last", ids, err)
	}
	fields := strings.Fields(ids)
	back, err = runCLI(append([]string{"tokenizer", "decode", "-t", tok}, fields...)...)
	if err != nil || back != "A <|image|>" {
		t.Fatalf("decode %v = %q, %v", fields, back, err)
	}
	lines, err := runCLI("tokenizer", "encode", "-t", tok, "--specials", "--tokens", "A <|eos|>")
	if err != nil || !strings.HasSuffix(lines, "\t\"Ġ\"\n3\t\"<|eos|>\"\n") {
		t.Fatalf("encode --tokens: %q, %v", lines, err)
	}
}

func TestTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "prose.txt")
	if err := os.WriteFile(text, []byte(tokenizerProse), 0o644); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "tok.json")
	if got, err := runCLI("tokenizer", "train", "--vocab", "270", "--out", tok, text); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"model": {"type": "WordPiece"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ds := writeImg2Dataset(t, dir)
	missing := filepath.Join(dir, "missing.txt")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		usage bool // misuse (exit 2) rather than failure (exit 1)
		want  []string
	}{
		{[]string{"train", "--out", tok, text}, true, []string{"needs --vocab and --out"}},
		{[]string{"train", "--vocab", "300", text}, true, []string{"needs --vocab and --out"}},
		{[]string{"train", "--vocab", "300", "--out", tok}, true, []string{"at least 1 argument"}},
		{[]string{"train", "--vocab", "100", "--out", tok, text}, true, []string{"vocab size 100", "= 261"}},
		{[]string{"train", "--vocab", "-5", "--out", tok, text}, true, []string{"vocab size -5"}},
		{[]string{"train", "--vocab", "300", "--min-frequency", "-2", "--out", tok, text}, true, []string{"min frequency -2"}},
		{[]string{"train", "--vocab", "300", "--specials", "<a>,<a>", "--out", tok, text}, true, []string{`"<a>" given twice`}},
		{[]string{"train", "--vocab", "300", "--layout", "csv", "--out", tok, text}, true, []string{"--layout", `"csv"`}},
		{[]string{"train", "--vocab", "300", "--on-error", "ignore", "--out", tok, text}, true, []string{"--on-error", `"ignore"`}},
		{[]string{"train", "--vocab", "300", "--out", tok, missing}, false, []string{missing}},
		{[]string{"train", "--vocab", "300", "--out", filepath.Join(dir, "no", "t.json"), text}, false, []string{"--out", filepath.Join(dir, "no")}},
		{[]string{"train", "--vocab", "300", "--out", dir, text}, false, []string{"--out " + dir + " is a directory"}},
		{[]string{"train", "--vocab", "300", "--layout", "img2dataset", "--on-error", "fail", "--out", tok, ds}, false, []string{"part-00000.parquet", "row 1"}},
		{[]string{"train", "--vocab", "300", "--out", tok, empty}, false, []string{empty, "no manifest.json"}},
		{[]string{"encode", "x"}, true, []string{"needs --tokenizer"}},
		{[]string{"decode", "1"}, true, []string{"needs --tokenizer"}},
		{[]string{"encode", "-t", missing, "x"}, false, []string{missing}},
		{[]string{"encode", "-t", bad, "x"}, false, []string{bad, "model.type", "WordPiece"}},
		{[]string{"decode", "-t", tok, "7", "270"}, false, []string{"id 270 at position 1"}},
		{[]string{"decode", "-t", tok, "--", "7", "-1"}, false, []string{"id -1 at position 1"}},
		{[]string{"decode", "-t", tok, "7", "x1"}, true, []string{`id 1: "x1"`}},
	} {
		_, err := runCLI(append([]string{"tokenizer"}, tc.args...)...)
		var ue *usageError
		if err == nil || errors.As(err, &ue) != tc.usage {
			t.Errorf("%q: error %v; want usage error %t", tc.args, err, tc.usage)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.args, err, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !os.IsNotExist(err) {
		t.Errorf("a failed train created %s: %v", filepath.Join(dir, "no"), err)
	}
}
