package data

import (
	"encoding/json"
	"fmt"
)

// SchemaVersion is the version of the canonical shard schema written into
// every manifest. Bump it when the schema changes incompatibly.
const SchemaVersion = 1

// Kind says which of the three training kinds a record is.
type Kind string

const (
	KindCaption     Kind = "caption"
	KindInterleaved Kind = "interleaved"
	KindText        Kind = "text"
)

// ParseKind validates a kind string read from a file or a flag.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindCaption, KindInterleaved, KindText:
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q (want caption, interleaved or text)", s)
}

// ImageRef is an encoded image as stored in a shard: the Hugging Face
// datasets Image struct {bytes, path}. Bytes holds the encoded file (JPEG,
// PNG, WebP or GIF); Path is informational and never fetched.
type ImageRef struct {
	Bytes []byte `parquet:"bytes,optional"`
	Path  string `parquet:"path,optional"`
}

// Record is one row of the canonical schema: aligned Texts and Images where
// exactly one of Texts[i], Images[i] is non-nil.
type Record struct {
	ID     string
	Kind   Kind
	Texts  []*string
	Images []*ImageRef
	Meta   string // JSON object
}

// Validate checks the aligned-list invariant and the meta JSON.
func (r *Record) Validate() error {
	if r.ID == "" {
		return fmt.Errorf("record has an empty id")
	}
	if _, err := ParseKind(string(r.Kind)); err != nil {
		return fmt.Errorf("record %q: %w", r.ID, err)
	}
	if len(r.Texts) != len(r.Images) {
		return fmt.Errorf("record %q: texts has %d entries, images %d: the lists must be aligned", r.ID, len(r.Texts), len(r.Images))
	}
	if len(r.Texts) == 0 {
		return fmt.Errorf("record %q: no segments", r.ID)
	}
	for i := range r.Texts {
		hasText, hasImage := r.Texts[i] != nil, r.Images[i] != nil
		if hasText == hasImage {
			return fmt.Errorf("record %q: segment %d must have exactly one of text or image", r.ID, i)
		}
	}
	if r.Meta != "" && !json.Valid([]byte(r.Meta)) {
		return fmt.Errorf("record %q: meta is not valid JSON", r.ID)
	}
	return nil
}

// NumImages counts the image segments.
func (r *Record) NumImages() int {
	n := 0
	for _, im := range r.Images {
		if im != nil {
			n++
		}
	}
	return n
}

// Str returns a pointer to s, for building Texts.
func Str(s string) *string { return &s }
