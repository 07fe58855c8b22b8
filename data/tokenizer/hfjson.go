package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mmablate/mmablate/internal/atomicfile"
)

// maxFileBytes bounds a tokenizer.json before it is read (GPT-4-sized
// vocabularies are under 20 MB).
const maxFileBytes = 512 << 20

// hfFile is the part of Hugging Face's tokenizer.json that matters here.
type hfFile struct {
	Truncation    json.RawMessage `json:"truncation"`
	AddedTokens   []hfAdded       `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type hfAdded struct {
	ID         *int64  `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized *bool   `json:"normalized"`
	Special    bool    `json:"special"`
}

// hfByteLevel is the ByteLevel pre-tokenizer, decoder and post-processor.
type hfByteLevel struct {
	Type           string `json:"type"`
	AddPrefixSpace *bool  `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
}

type hfModel struct {
	Type                    *string                    `json:"type"`
	Dropout                 *float64                   `json:"dropout"`
	UnkToken                *string                    `json:"unk_token"`
	ContinuingSubwordPrefix *string                    `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string                    `json:"end_of_word_suffix"`
	FuseUnk                 bool                       `json:"fuse_unk"`
	ByteFallback            bool                       `json:"byte_fallback"`
	IgnoreMerges            bool                       `json:"ignore_merges"`
	Vocab                   map[string]json.RawMessage `json:"vocab"`
	Merges                  []json.RawMessage          `json:"merges"`
}

func isNull(m json.RawMessage) bool {
	return len(bytes.TrimSpace(m)) == 0 || string(bytes.TrimSpace(m)) == "null"
}

// LoadFile reads a Hugging Face tokenizer.json; errors name the file and key.
func LoadFile(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if fi.Size() > maxFileBytes {
		return nil, fmt.Errorf("tokenizer: %s: %d bytes is more than the %d a tokenizer.json may have", path, fi.Size(), maxFileBytes)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	t, err := load(b)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// Load parses the bytes of a Hugging Face tokenizer.json for a BPE model with
// the ByteLevel pre-tokenizer and decoder. The pre-tokenizer's use_regex
// defaults to true when absent, as in Hugging Face. Settings that
// would change the ids and are not implemented (a normalizer, truncation,
// dropout, byte_fallback, subword prefixes, single_word tokens, another
// pre-tokenizer or post-processor) are errors naming the key. Padding only
// matters for batches and is ignored.
func Load(b []byte) (*Tokenizer, error) {
	t, err := load(b)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

func load(b []byte) (*Tokenizer, error) {
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%d bytes is more than the %d a tokenizer.json may have", len(b), maxFileBytes)
	}
	var f hfFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	var s spec
	if err := loadModel(f.Model, &s); err != nil {
		return nil, err
	}
	if !isNull(f.Truncation) {
		return nil, errors.New("truncation: set, but this tokenizer never truncates (make it null)")
	}
	if !isNull(f.Normalizer) {
		return nil, fmt.Errorf("normalizer: %s is not supported (only null)", typeOf(f.Normalizer))
	}
	pre, err := byteLevel("pre_tokenizer", f.PreTokenizer, false)
	if err != nil {
		return nil, err
	}
	if pre.AddPrefixSpace == nil {
		return nil, errors.New("pre_tokenizer.add_prefix_space: missing (Hugging Face requires it too)")
	}
	s.addPrefixSpace = *pre.AddPrefixSpace
	s.useRegex = pre.UseRegex == nil || *pre.UseRegex
	if _, err := byteLevel("decoder", f.Decoder, false); err != nil {
		return nil, err
	}
	if _, err := byteLevel("post_processor", f.PostProcessor, true); err != nil {
		return nil, err
	}
	for i, a := range f.AddedTokens {
		switch {
		case a.ID == nil:
			return nil, fmt.Errorf("added_tokens[%d]: no id", i)
		case a.Content == nil:
			return nil, fmt.Errorf("added_tokens[%d]: no content", i)
		case *a.ID < 0 || *a.ID >= maxID:
			return nil, fmt.Errorf("added_tokens[%d]: id %d out of range [0, %d)", i, *a.ID, maxID)
		case a.SingleWord:
			return nil, fmt.Errorf("added_tokens[%d] (%q): single_word is not supported", i, *a.Content)
		}
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		s.added = append(s.added, AddedToken{ID: int32(*a.ID), Content: *a.Content, Special: a.Special,
			LStrip: a.LStrip, RStrip: a.RStrip, Normalized: normalized})
	}
	return build(s)
}

func typeOf(m json.RawMessage) string {
	var v struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(m, &v) != nil || v.Type == "" {
		return "a component without a type"
	}
	return "type " + strconv.Quote(v.Type)
}

func byteLevel(key string, m json.RawMessage, nullOK bool) (hfByteLevel, error) {
	var v hfByteLevel
	if isNull(m) {
		if nullOK {
			return v, nil
		}
		return v, fmt.Errorf("%s: missing (want type \"ByteLevel\")", key)
	}
	if err := json.Unmarshal(m, &v); err != nil {
		return v, fmt.Errorf("%s: %w", key, err)
	}
	if v.Type != "ByteLevel" {
		return v, fmt.Errorf("%s: %s is not supported (want \"ByteLevel\")", key, typeOf(m))
	}
	return v, nil
}

func loadModel(m json.RawMessage, s *spec) error {
	if isNull(m) {
		return errors.New("model: missing")
	}
	var md hfModel
	if err := json.Unmarshal(m, &md); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	switch {
	case md.Type == nil:
		return errors.New("model.type: missing (want \"BPE\")")
	case *md.Type != "BPE":
		return fmt.Errorf("model.type: unknown model type %q (want \"BPE\")", *md.Type)
	case md.Dropout != nil && *md.Dropout != 0:
		return fmt.Errorf("model.dropout: %g is not supported (only null)", *md.Dropout)
	case md.ContinuingSubwordPrefix != nil && *md.ContinuingSubwordPrefix != "":
		return errors.New("model.continuing_subword_prefix: not supported (only null)")
	case md.EndOfWordSuffix != nil && *md.EndOfWordSuffix != "":
		return errors.New("model.end_of_word_suffix: not supported (only null)")
	case md.ByteFallback:
		return errors.New("model.byte_fallback: not supported (only false)")
	case md.Vocab == nil:
		return errors.New("model.vocab: missing")
	case md.Merges == nil:
		return errors.New("model.merges: missing")
	}
	s.vocab = make(map[string]int32, len(md.Vocab))
	for tok, raw := range md.Vocab {
		id, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil || id < 0 || id >= maxID {
			return fmt.Errorf("model.vocab[%q]: %s is not an id in [0, %d)", tok, raw, maxID)
		}
		s.vocab[tok] = int32(id)
	}
	s.merges = make([][2]string, len(md.Merges))
	for i, raw := range md.Merges {
		var line string
		var pair []string
		switch {
		case json.Unmarshal(raw, &line) == nil:
			a, b, ok := strings.Cut(line, " ")
			if !ok {
				return fmt.Errorf("model.merges[%d]: %q is not \"left right\"", i, line)
			}
			s.merges[i] = [2]string{a, b}
		case json.Unmarshal(raw, &pair) == nil && len(pair) == 2:
			s.merges[i] = [2]string{pair[0], pair[1]}
		default:
			return fmt.Errorf("model.merges[%d]: want \"left right\" or [\"left\", \"right\"], got %.40s", i, raw)
		}
	}
	if md.UnkToken != nil {
		s.unkToken = *md.UnkToken
	}
	s.ignoreMerges, s.fuseUnk = md.IgnoreMerges, md.FuseUnk
	return nil
}

// Marshal returns t as a Hugging Face tokenizer.json (merges in the pair
// form written by tokenizers ≥ 0.20), vocabulary in id order.
func (t *Tokenizer) Marshal() []byte {
	var b, q bytes.Buffer
	enc := json.NewEncoder(&q)
	enc.SetEscapeHTML(false) // "<|image|>", as Hugging Face writes it, not "\u003c|image|\u003e"
	str := func(s string) {
		q.Reset()
		_ = enc.Encode(s) // a string always encodes
		b.Write(bytes.TrimSuffix(q.Bytes(), []byte("\n")))
	}
	b.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, a := range t.added {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n    {\"id\": %d, \"content\": ", a.ID)
		str(a.Content)
		fmt.Fprintf(&b, ", \"single_word\": false, \"lstrip\": %t, \"rstrip\": %t, \"normalized\": %t, \"special\": %t}",
			a.LStrip, a.RStrip, a.Normalized, a.Special)
	}
	fmt.Fprintf(&b, "\n  ],\n  \"normalizer\": null,\n"+
		"  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": %t, \"trim_offsets\": true, \"use_regex\": %t},\n"+
		"  \"post_processor\": null,\n"+
		"  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n"+
		"  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ",
		t.addPrefixSpace, t.useRegex)
	if t.unkID >= 0 {
		str(t.tokens[t.unkID])
	} else {
		b.WriteString("null")
	}
	fmt.Fprintf(&b, ",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"+
		"    \"fuse_unk\": %t,\n    \"byte_fallback\": false,\n    \"ignore_merges\": %t,\n    \"vocab\": {",
		t.fuseUnk, t.ignoreMerges)
	first := true
	for id, tok := range t.tokens {
		if !t.model[id] {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString("\n      ")
		str(tok)
		fmt.Fprintf(&b, ": %d", id)
	}
	b.WriteString("\n    },\n    \"merges\": [")
	for i, m := range t.order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n      [")
		str(t.tokens[m[0]])
		b.WriteString(", ")
		str(t.tokens[m[1]])
		b.WriteByte(']')
	}
	b.WriteString("\n    ]\n  }\n}\n")
	return b.Bytes()
}

// Save writes t to path as a tokenizer.json, atomically (internal/atomicfile).
func (t *Tokenizer) Save(path string) error {
	if err := atomicfile.WriteFile(path, t.Marshal(), 0o644); err != nil {
		return fmt.Errorf("tokenizer: save: %w", err)
	}
	return nil
}
