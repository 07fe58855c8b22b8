package mixer

// Batch is B packed sequences of T tokens. Its fields are those of
// models.Batch, in the same order, so the trainer converts with
// models.Batch(*b) and shares the slices. Every per-token slice has B·T
// entries, row-major (sequence b, position t at b·T+t).
//
// A Batch returned by Mixer.Next is reused by the next call: its slices,
// Images included, are overwritten in place.
type Batch struct {
	B, T     int
	Tokens   []int32   // input ids; ImageTokenID marks image placeholders, N per image, consecutive
	Targets  []int32   // the document's next token (Pad where it has none)
	LossMask []float32 // 1 where Targets is a text token of the same document and Tokens is text, else 0
	Pos      []int32   // position ids, restarting at 0 for every document piece and for padding
	DocIDs   []int32   // 0, 1, … per row for its document pieces; padding is a document of its own
	// Instruction is true on the tokens of the segments a sample's meta
	// names as its instruction ({"instruction": [segment indices]}), the
	// input of instruction-following pruning (models/ifprune).
	Instruction []bool

	// Images holds NumImages normalised 3×R×R images, contiguous, in the
	// order their placeholder runs appear in Tokens.
	Images    []float32
	NumImages int
	// ImageTokenID is the placeholder id.
	ImageTokenID int32
}

func newBatch(b, t, maxImages, resolution int, imageID int32) Batch {
	n := b * t
	return Batch{B: b, T: t, Tokens: make([]int32, n), Targets: make([]int32, n), LossMask: make([]float32, n),
		Pos: make([]int32, n), DocIDs: make([]int32, n), Instruction: make([]bool, n),
		Images: make([]float32, 0, b*maxImages*3*resolution*resolution), ImageTokenID: imageID}
}

// CopyFrom makes b a copy of src in b's own buffers, grown as needed and
// reused across calls: how a caller keeps a batch past the next Next (the
// trainer's feeder draws one batch ahead) without allocating per step.
func (b *Batch) CopyFrom(src *Batch) {
	tokens, targets, mask := b.Tokens[:0], b.Targets[:0], b.LossMask[:0]
	pos, docs, instr, imgs := b.Pos[:0], b.DocIDs[:0], b.Instruction[:0], b.Images[:0]
	*b = *src // the scalars, so that a field added to Batch is not missed
	b.Tokens, b.Targets, b.LossMask = append(tokens, src.Tokens...), append(targets, src.Targets...), append(mask, src.LossMask...)
	b.Pos, b.DocIDs, b.Instruction = append(pos, src.Pos...), append(docs, src.DocIDs...), append(instr, src.Instruction...)
	b.Images = append(imgs, src.Images...)
}
