package eval

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/models"
)

// TextPerplexity is exp(mean masked cross-entropy) of m over the last n
// rows of the text dataset dir (fewer when it has fewer), in dataset order.
// Each document is laid out as the mixer packs it, <|bos|> text
// <|endofchunk|>, alone in a row of m.T tokens (cut after m.T + 1, so that
// a long document scores its first m.T predictions), and every next token
// of the document counts once.
//
// The number is a validation perplexity only when training never read
// dir: the shapes world's eval/text (data/shapes.SplitEvalText, the
// default eval.text of a config with shapes.dir) is such a split, its
// documents drawn like text/'s and none equal to one. On a training split
// (text/, say) the same number measures fit, not generalisation; the
// Source of the result names dir so that readers can tell which.
func TextPerplexity(ctx context.Context, m *models.Model, tok *tokenizer.Tokenizer, dir string, n int) (*Perplexity, error) {
	sp, err := specialsOf(tok)
	if err != nil {
		return nil, fmt.Errorf("perplexity: %w", err)
	}
	docs, err := lastTextRows(ctx, tok, sp, dir, n)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("perplexity: %s has no rows", dir)
	}
	B, T := m.B, m.T
	b := &models.Batch{B: B, T: T, Tokens: make([]int32, B*T), Targets: make([]int32, B*T),
		LossMask: make([]float32, B*T), Pos: make([]int32, B*T), DocIDs: make([]int32, B*T), ImageTokenID: sp.image}
	var sum float64
	tokens := 0
	for start := 0; start < len(docs); start += B {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		count := 0
		for r := range B {
			var doc []int32
			if start+r < len(docs) {
				doc = docs[start+r].tokens
			}
			count += fillRow(b, r, doc, sp)
		}
		loss, err := m.Forward(b)
		if err != nil {
			return nil, fmt.Errorf("perplexity: %s: documents %d..%d: %w", dir, start, min(start+B, len(docs))-1, err)
		}
		sum += loss * float64(count)
		tokens += count
	}
	mean := sum / float64(tokens)
	return &Perplexity{Source: dir, Documents: len(docs), Tokens: tokens, Loss: mean, Value: math.Exp(mean)}, nil
}

// fillRow writes doc (<|bos|> … <|endofchunk|>) into row r of b, padded
// as the mixer pads, and returns the number of predicted tokens. A nil doc
// makes an all-padding row.
func fillRow(b *models.Batch, r int, doc []int32, sp specials) int {
	T := b.T
	n := min(len(doc), T+1) // inputs doc[:n-1] (or doc[:n] when short), targets shifted by one
	count := 0
	for t := range T {
		i := r*T + t
		switch {
		case t+1 < n:
			b.Tokens[i], b.Targets[i], b.LossMask[i] = doc[t], doc[t+1], 1
			b.Pos[i], b.DocIDs[i] = int32(t), 0
			count++
		case t < n: // the document's last token: nothing to predict
			b.Tokens[i], b.Targets[i], b.LossMask[i] = doc[t], sp.pad, 0
			b.Pos[i], b.DocIDs[i] = int32(t), 0
		default:
			pad := t - min(n, T)
			b.Tokens[i], b.Targets[i], b.LossMask[i] = sp.pad, sp.pad, 0
			b.Pos[i], b.DocIDs[i] = int32(pad), 1
		}
	}
	return count
}

// textDoc is one perplexity document's tokens.
type textDoc struct {
	id     string
	tokens []int32
}

// lastTextRows reads the last n rows of dir, in order, as documents. Row
// groups wholly before them are not read.
func lastTextRows(ctx context.Context, tok *tokenizer.Tokenizer, sp specials, dir string, n int) ([]textDoc, error) {
	paths, err := layouts.ListFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("perplexity: %w", err)
	}
	type group struct {
		path  string
		index int
		first int64 // dataset row index of the group's first row
		rows  int64
		file  int64 // dataset row index of the file's first row
	}
	var groups []group
	var total int64
	for _, p := range paths {
		f, err := layouts.Open(p, layouts.Options{})
		if err != nil {
			return nil, fmt.Errorf("perplexity: %w", err)
		}
		fileFirst := total
		for i := range f.NumRowGroups() {
			groups = append(groups, group{path: p, index: i, first: total, rows: f.RowGroupRows(i), file: fileFirst})
			total += f.RowGroupRows(i)
		}
		f.Close()
	}
	from := max(0, total-int64(n))
	var docs []textDoc
	var open *layouts.File
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	for _, g := range groups {
		if g.first+g.rows <= from {
			continue
		}
		if open == nil || open.Path() != g.path {
			if open != nil {
				open.Close()
			}
			if open, err = layouts.Open(g.path, layouts.Options{}); err != nil {
				return nil, fmt.Errorf("perplexity: %w", err)
			}
		}
		err := open.ReadRowGroup(ctx, g.index, func(row int64, rec *data.Record, rerr error) error {
			if rerr != nil {
				return rerr
			}
			if g.file+row < from {
				return nil
			}
			d := textDoc{id: rec.ID, tokens: []int32{sp.bos}}
			for i, t := range rec.Texts {
				if t == nil {
					return &data.RowError{File: g.path, RowGroup: g.index, Row: row, Column: "images",
						Err: fmt.Errorf("id %q: segment %d is an image; perplexity reads text rows", rec.ID, i)}
				}
				d.tokens = tok.AppendEncode(d.tokens, *t)
			}
			d.tokens = append(d.tokens, sp.endOfChunk)
			docs = append(docs, d)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("perplexity: %w", err)
		}
	}
	if int64(len(docs)) != total-from {
		return nil, errors.New("perplexity: " + dir + ": row counts changed while reading")
	}
	return docs, nil
}
