// Package mixer samples training data from several sources in a controlled
// ratio and packs it into fixed-shape batches for the model: it owns the
// mixture (weights, their schedule over steps, what an exhausted source
// does), the packing of documents into sequences, and the resumable state
// of both.
//
// # Sampling
//
// Weights are relative; at every step they are normalised over the sources
// still active into p_i (a schedule may change them, stepwise or linearly).
// The sampler keeps one credit per source, c_i = Σ_draws p_i − count_i,
// the target count minus the realised count. Credits start at 0 and, while
// the set of sources does not change, sum to 0: each draw adds Σ p_i = 1
// and takes 1 away.
//
// random (per sample): every draw first adds p_i to each credit, then picks
// a source with positive credit, with probability proportional to its
// credit, using the seeded PCG; the picked credit drops by 1. This is a
// deficit scheduler with seeded jitter, not independent coin flips, and for
// k active sources at every prefix of the draws
//
//	−1 < target_i − count_i < k−1,   target_i = Σ_draws p_i,
//
// so a source is never a whole draw ahead of its target nor k−1 behind.
//
// Proof sketch. After the additions the credits sum to 1, so at least one is
// positive and the pick is defined. Only a picked credit decreases, and it
// was positive, so it stays above −1; hence every credit exceeds −1 at all
// times: count_i < target_i + 1. As the credits sum to 0 and the other k−1
// each exceed −1, c_i < k−1: count_i > target_i − (k−1). The bound holds
// across schedule changes (p changes, the sum argument does not) but is
// restarted when a source stops (its credit is spread over the others).
// In practice it stays well inside (the tests log at most 2.4 for five
// sources over 10 000 draws).
//
// stratified (per sequence): every batch of B sequences is split exactly
// between the sources, each row packing one source's documents. The row
// counts are the largest-remainder apportionment of the quotas
// q_i = B·p_i + c_i (the B largest of {q_i − j : j ≥ 0}, ties to the
// lower source); c_i = q_i − count_i carries to the next batch. The same
// argument bounds every carry by −1 < c_i < k−1 (and by |c_i| < 1 while all
// quotas are ≥ 0), so over any number of batches each source's rows are
// within that bound of B·Σ p_i: long-run ratios are exact. With 45:45:10 and
// B = 20, every batch holds 9, 9 and 2 rows.
//
// Sources are ordered by name wherever an order matters, never by map
// order.
//
// # Packing
//
// A sample becomes a document: <|bos|>, then its segments in order (a text
// segment's tokens; an image as N = packing.image_tokens consecutive
// <|image|> placeholders), then <|endofchunk|>. Documents are laid end to
// end in sequences of T = packing.seq_len tokens holding at most
// packing.max_images images. One that does not fit the space left is
// split (overflow: split), at a token boundary outside every image's
// placeholders, the rest starting the next sequence; or moved whole to the
// next sequence (overflow: carry). Never is anything truncated. Per
// position:
//
//	Tokens    the document's token, or <|pad|> after the last document
//	Targets   the document's next token (also across a split), <|pad|> after its last
//	LossMask  1 when both the token and its target are text of the same document; 0 on
//	          placeholders, on the position before an image, on <|endofchunk|> and padding
//	Pos       0, 1, … restarting at each document piece (and for the padding)
//	DocIDs    0, 1, … per sequence, one per piece; padding is one more document
//
// Example (T = 8, N = 2, a caption [image, "a b"] then a text "c"):
//
//	Tokens    bos img img a   b   eoc bos c      then, next row:  eoc pad …
//	Targets   img img a   b   eoc pad c   eoc                     pad pad …
//	LossMask  0   0   0   1   1   0   1   1                       0   0 …
//	Pos       0   1   2   3   4   5   0   1                       0   0 1 …
//	DocIDs    0   0   0   0   0   0   1   1                       0   1 1 …
//
// Images go, in placeholder order, into one float32 buffer per batch
// (NumImages×3×R×R), reused by the next batch.
//
// # State
//
// State (JSON) holds the step, the PCG state, and per source its stream's
// data.State, credit, epoch bookkeeping, counters and the partly packed
// sample if any (as the stream state before it plus how much was packed, so
// no tensor is stored). A Mixer over freshly opened streams, after Restore,
// produces exactly the batches the original would have.
package mixer
