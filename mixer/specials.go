package mixer

import "fmt"

// Specials are the token ids the packer writes. data/tokenizer's
// Tokenizer provides them (see SpecialsOf); tests build them directly.
type Specials struct {
	Image      int32 // one image placeholder position
	EndOfChunk int32 // ends every document
	BOS        int32 // starts every document
	Pad        int32 // fills the rest of a sequence
}

// SpecialIDs is the part of data/tokenizer.Tokenizer that SpecialsOf
// reads; a missing special is a negative id.
type SpecialIDs interface {
	ImageID() int32
	EndOfChunkID() int32
	BOSID() int32
	PadID() int32
}

// SpecialsOf reads the special ids of a tokenizer, failing when one is
// missing from its vocabulary.
func SpecialsOf(t SpecialIDs) (Specials, error) {
	s := Specials{Image: t.ImageID(), EndOfChunk: t.EndOfChunkID(), BOS: t.BOSID(), Pad: t.PadID()}
	if err := s.check(); err != nil {
		return Specials{}, fmt.Errorf("tokenizer: %w", err)
	}
	return s, nil
}

func (s Specials) check() error {
	for _, f := range []struct {
		name string
		id   int32
	}{{"<|image|>", s.Image}, {"<|endofchunk|>", s.EndOfChunk}, {"<|bos|>", s.BOS}, {"<|pad|>", s.Pad}} {
		if f.id < 0 {
			return fmt.Errorf("special token %s is missing (id %d)", f.name, f.id)
		}
	}
	seen := map[int32]bool{}
	for _, id := range []int32{s.Image, s.EndOfChunk, s.BOS, s.Pad} {
		if seen[id] {
			return fmt.Errorf("special token ids %+v are not distinct", s)
		}
		seen[id] = true
	}
	return nil
}
