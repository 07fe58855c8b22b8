package mixer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mmablate/mmablate/data"
)

// doc is one sample laid out as sequence tokens: BOS, its segments (text
// tokens; N placeholders per image), EndOfChunk. off and img say how much
// is already packed; a doc with off > 0 is the packer's carried-over part.
type doc struct {
	id      string
	tokens  []int32
	images  []*data.Image
	imageAt []int  // index in tokens of each image's first placeholder
	instr   []bool // per token: part of the sample's instruction segments
	off     int
	img     int
}

func (d *doc) done() bool { return d.off == len(d.tokens) }

// packer lays documents into a Batch.
type packer struct {
	sp        Specials
	seqLen    int
	maxImages int
	n         int // placeholders per image
	res       int
	carry     bool // overflow: carry
}

func newPacker(p Packing, sp Specials) packer {
	return packer{sp: sp, seqLen: p.SeqLen, maxImages: p.MaxImages, n: p.ImageTokens, res: p.Resolution,
		carry: p.Overflow == OverflowCarry}
}

// layout fills d from s, reusing d's buffers, and fails for a sample that
// no sequence can ever hold, naming the sample and the config key.
func (p *packer) layout(d *doc, s data.Sample, source string) error {
	d.id, d.off, d.img = s.ID, 0, 0
	d.tokens = append(d.tokens[:0], p.sp.BOS)
	d.images, d.imageAt = d.images[:0], d.imageAt[:0]
	d.instr = append(d.instr[:0], false)
	instr, err := instructionSegments(s)
	if err != nil {
		return fmt.Errorf("source %s, sample %q: %w", source, s.ID, err)
	}
	for i, seg := range s.Segments {
		if seg.IsImage() {
			im := seg.Image
			switch {
			case p.n == 0:
				return fmt.Errorf("source %s, sample %q, segment %d: an image, but %s.packing.image_tokens is 0 (a text-only run)", source, s.ID, i, KeyPrefix)
			case p.n > p.seqLen:
				return fmt.Errorf("source %s, sample %q, segment %d: one image takes %s.packing.image_tokens = %d tokens, more than %s.packing.seq_len = %d: it can never fit",
					source, s.ID, i, KeyPrefix, p.n, KeyPrefix, p.seqLen)
			case im.C != 3 || im.H != p.res || im.W != p.res || len(im.Pix) != 3*p.res*p.res:
				return fmt.Errorf("source %s, sample %q, segment %d: image is %d×%d×%d (%d values), %s.packing.resolution wants 3×%d×%d",
					source, s.ID, i, im.C, im.H, im.W, len(im.Pix), KeyPrefix, p.res, p.res)
			}
			d.imageAt = append(d.imageAt, len(d.tokens))
			d.images = append(d.images, im)
			for range p.n {
				d.tokens = append(d.tokens, p.sp.Image)
				d.instr = append(d.instr, false)
			}
			continue
		}
		if seg.Text != "" && len(seg.Tokens) == 0 {
			return fmt.Errorf("source %s, sample %q, segment %d: text without tokens: open the stream with a Tokenizer", source, s.ID, i)
		}
		d.tokens = append(d.tokens, seg.Tokens...)
		mark := slices.Contains(instr, i)
		for range seg.Tokens {
			d.instr = append(d.instr, mark)
		}
	}
	d.tokens = append(d.tokens, p.sp.EndOfChunk)
	d.instr = append(d.instr, false)
	if !p.carry {
		return nil // split fits any length: max_images is at least 1 and image_tokens at most seq_len (checked above)
	}
	switch {
	case len(d.tokens) > p.seqLen:
		return fmt.Errorf("source %s, sample %q: %d tokens do not fit %s.packing.seq_len = %d and %s.packing.overflow is carry (split would cut it)",
			source, s.ID, len(d.tokens), KeyPrefix, p.seqLen, KeyPrefix)
	case len(d.images) > p.maxImages:
		return fmt.Errorf("source %s, sample %q: %d images exceed %s.packing.max_images = %d and %s.packing.overflow is carry (split would cut it)",
			source, s.ID, len(d.images), KeyPrefix, p.maxImages, KeyPrefix)
	}
	return nil
}

// row is the sequence being filled.
type row struct {
	r      int // row index in the batch
	pos    int // tokens written
	docs   int32
	images int
}

// place writes as much of d as fits at the end of w's row: all of it, or
// (overflow split) the longest prefix that ends outside every image's
// placeholders and holds no more images than the row may still take. It
// returns the number of tokens written; 0 means the row is full for d.
func (p *packer) place(b *Batch, w *row, d *doc) int {
	end := min(len(d.tokens), d.off+p.seqLen-w.pos)
	imagesLeft := p.maxImages - w.images
	k := d.img
	for ; k < len(d.imageAt); k++ {
		at := d.imageAt[k]
		if at >= end {
			break
		}
		if at+p.n > end || imagesLeft == 0 {
			end = at
			break
		}
		imagesLeft--
	}
	if end == d.off || (p.carry && end < len(d.tokens)) {
		return 0
	}
	base := w.r*p.seqLen + w.pos
	for j := d.off; j < end; j++ {
		i := base + j - d.off
		tok := d.tokens[j]
		target, mask := p.sp.Pad, float32(0)
		if j+1 < len(d.tokens) {
			target = d.tokens[j+1]
			if tok != p.sp.Image && target != p.sp.Image {
				mask = 1
			}
		}
		b.Tokens[i], b.Targets[i], b.LossMask[i] = tok, target, mask
		b.Pos[i], b.DocIDs[i] = int32(j-d.off), w.docs
		b.Instruction[i] = d.instr[j]
	}
	for _, im := range d.images[d.img:k] {
		b.Images = append(b.Images, im.Pix...)
	}
	b.NumImages += k - d.img
	w.images += k - d.img
	n := end - d.off
	d.off, d.img = end, k
	w.pos += n
	w.docs++
	return n
}

// pad fills the rest of w's row and returns the padding written.
func (p *packer) pad(b *Batch, w *row) int {
	base := w.r * p.seqLen
	for t := w.pos; t < p.seqLen; t++ {
		i := base + t
		b.Tokens[i], b.Targets[i], b.LossMask[i] = p.sp.Pad, p.sp.Pad, 0
		b.Pos[i], b.DocIDs[i] = int32(t-w.pos), w.docs
		b.Instruction[i] = false
	}
	n := p.seqLen - w.pos
	w.pos = p.seqLen
	return n
}

// instructionSegments reads the segment indices a sample's meta names as
// its instruction, {"instruction": [1]}; none when the key is absent. Each
// must be a text segment of the sample.
func instructionSegments(s data.Sample) ([]int, error) {
	if !strings.Contains(s.Meta, `"instruction"`) { // most samples: skip the JSON decode
		return nil, nil
	}
	var m struct {
		Instruction []int `json:"instruction"`
	}
	if err := json.Unmarshal([]byte(s.Meta), &m); err != nil {
		return nil, fmt.Errorf("meta key instruction: %w", err)
	}
	for _, i := range m.Instruction {
		if i < 0 || i >= len(s.Segments) || s.Segments[i].IsImage() {
			return nil, fmt.Errorf("meta key instruction: segment %d is not a text segment of the sample's %d", i, len(s.Segments))
		}
	}
	return m.Instruction, nil
}
