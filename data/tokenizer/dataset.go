package tokenizer

import (
	"context"
	"errors"
	"fmt"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
)

var _ data.Tokenizer = (*Tokenizer)(nil)

// AddDataset counts the texts of every record in path (a .parquet file, a
// dataset directory, or a directory of *.parquet files, in any layout
// data/layouts reads), each text segment as one sequence. Rows the layout
// cannot turn into a record stop training with onError "fail" and are
// counted by reason with "skip".
func (tr *Trainer) AddDataset(ctx context.Context, path string, opts layouts.Options, onError data.OnError) (data.SkipCounts, error) {
	if onError != data.OnErrorFail && onError != data.OnErrorSkip {
		return nil, fmt.Errorf("tokenizer: train: on_error %q (want fail or skip)", onError)
	}
	files, err := layouts.ListFiles(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: train: %w", err)
	}
	skipped := data.SkipCounts{}
	for _, name := range files {
		f, err := layouts.Open(name, opts)
		if err != nil {
			return skipped, fmt.Errorf("tokenizer: train: %w", err)
		}
		for g := range f.NumRowGroups() {
			err = f.ReadRowGroup(ctx, g, func(row int64, rec *data.Record, rowErr error) error {
				if rowErr != nil {
					if onError == data.OnErrorFail {
						return rowErr
					}
					skipped[data.Reason(rowErr)]++
					return nil
				}
				for _, text := range rec.Texts {
					if text != nil {
						tr.AddText(*text)
					}
				}
				return nil
			})
			if err != nil {
				break
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			var re *data.RowError
			if errors.As(err, &re) || errors.Is(err, context.Canceled) {
				return skipped, fmt.Errorf("tokenizer: train: %w", err)
			}
			return skipped, fmt.Errorf("tokenizer: train: %s: %w", name, err)
		}
	}
	return skipped, nil
}
