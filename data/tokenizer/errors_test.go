package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalJSON = `{"version": "1.0", "truncation": null, "padding": null,
 "added_tokens": [{"id": 5, "content": "<|eos|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
 "normalizer": null,
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
 "post_processor": null,
 "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
 "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
  "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4},
  "merges": ["a b", ["ab", "c"]]}}`

func TestLoadErrors(t *testing.T) {
	if _, err := Load([]byte(minimalJSON)); err != nil {
		t.Fatalf("minimal file: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"not json", `{"version"`, `{"version`, "not a tokenizer.json"},
		{"unknown model type", `"type": "BPE"`, `"type": "WordPiece"`, `model.type: unknown model type "WordPiece"`},
		{"no model type", `"type": "BPE", `, ``, "model.type: missing"},
		{"no model", `"model": {`, `"nomodel": {`, "model: missing"},
		{"no vocab", `"vocab"`, `"vocabulary"`, "model.vocab: missing"},
		{"bad id", `"b": 1`, `"b": -1`, `model.vocab["b"]`},
		{"fractional id", `"b": 1`, `"b": 1.5`, `model.vocab["b"]`},
		{"sparse ids", `"c": 3`, `"c": 9000000`, "unused ids"},
		{"duplicate id", `"c": 3`, `"c": 1`, "share id 1"},
		{"merge not in vocab", `"a b"`, `"a z"`, `model.merges[0]: token "z"`},
		{"merged token missing", `"abc": 4`, `"abd": 4`, `model.merges[1]: merged token "abc"`},
		{"merge without space", `"a b"`, `"ab"`, "model.merges[0]"},
		{"merge triple", `["ab", "c"]`, `["ab", "c", "d"]`, "model.merges[1]"},
		{"normalizer", `"normalizer": null`, `"normalizer": {"type": "NFC"}`, `normalizer: type "NFC"`},
		{"truncation", `"truncation": null`, `"truncation": {"max_length": 5}`, "truncation"},
		{"other pre-tokenizer", `"pre_tokenizer": {"type": "ByteLevel"`, `"pre_tokenizer": {"type": "Metaspace"`, `pre_tokenizer: type "Metaspace"`},
		{"no add_prefix_space", `"add_prefix_space": false, `, ``, "pre_tokenizer.add_prefix_space"},
		{"no decoder", `"decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}`, `"decoder": null`, "decoder: missing"},
		{"template post-processor", `"post_processor": null`, `"post_processor": {"type": "TemplateProcessing"}`, `post_processor: type "TemplateProcessing"`},
		{"dropout", `"dropout": null`, `"dropout": 0.1`, "model.dropout"},
		{"byte fallback", `"byte_fallback": false`, `"byte_fallback": true`, "model.byte_fallback"},
		{"subword prefix", `"continuing_subword_prefix": null`, `"continuing_subword_prefix": "##"`, "model.continuing_subword_prefix"},
		{"unk not in vocab", `"unk_token": null`, `"unk_token": "<unk>"`, "model.unk_token"},
		{"added without id", `"id": 5, `, ``, "added_tokens[0]: no id"},
		{"added id huge", `"id": 5,`, `"id": 99999999999,`, "added_tokens[0]: id"},
		{"added id clash", `"id": 5,`, `"id": 2,`, `added_tokens[0] ("<|eos|>"): id 2, but Hugging Face assigns it id 5`},
		{"added id gap", `"id": 5,`, `"id": 9,`, "Hugging Face assigns it id 5"},
		{"added twice", `"special": true}]`, `"special": true}, {"id": 5, "content": "<|eos|>", "special": true}]`, "listed twice"},
		{"single word", `"single_word": false`, `"single_word": true`, "single_word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Replace(minimalJSON, tt.old, tt.new, 1)
			if in == minimalJSON {
				t.Fatalf("test edit %q did not apply", tt.old)
			}
			_, err := Load([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadFileErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if _, err := LoadFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadFile(missing) = %v; want an error naming the file", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(strings.Replace(minimalJSON, `"BPE"`, `"Unigram"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "model.type") {
		t.Errorf("LoadFile(bad) = %v; want an error naming the file and model.type", err)
	}
	if err := smallTrained(t).Save(filepath.Join(dir, "no", "such", "dir.json")); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

func TestNewTrainerErrors(t *testing.T) {
	tests := []struct {
		opts TrainOptions
		want string
	}{
		{TrainOptions{VocabSize: 260}, "smaller than 256 byte tokens + 5 specials = 261"},
		{TrainOptions{VocabSize: 300, Specials: []string{"<a>", "<a>"}}, `"<a>" given twice`},
		{TrainOptions{VocabSize: 300, Specials: []string{"x"}}, "at least 2 bytes"},
		{TrainOptions{VocabSize: maxID + 1}, "more than"},
		{TrainOptions{VocabSize: 300, MinFrequency: -1}, "min frequency -1 is negative"},
		{TrainOptions{VocabSize: 300, Specials: []string{"<\xff>"}}, "not valid UTF-8"},
	}
	for _, tt := range tests {
		if _, err := NewTrainer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewTrainer(%+v) = %v; want an error containing %q", tt.opts, err, tt.want)
		}
	}
	if _, err := NewTrainer(TrainOptions{VocabSize: 261}); err != nil {
		t.Errorf("NewTrainer(261) = %v", err)
	}
}

func TestDecodeUnknownID(t *testing.T) {
	tok := smallTrained(t)
	for _, id := range []int32{-1, int32(tok.VocabSize()), 1 << 30} {
		if _, err := tok.Decode([]int32{3, id}); err == nil || !strings.Contains(err.Error(), "position 1") {
			t.Errorf("Decode with id %d: %v; want an error naming position 1", id, err)
		}
	}
}
