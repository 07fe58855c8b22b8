package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/layouts"
)

// Options configures a Reader.
type Options struct {
	// Paths are Parquet files or dataset directories, read in this order
	// before the per-epoch permutation (see layouts.ListFiles).
	Paths  []string
	Layout layouts.Options
	// Image sets the decoded size and normalisation; a zero Resolution
	// means images.DefaultOptions(224), CLIP's input.
	Image images.Options
	// Tokenizer, when set, fills Segment.Tokens; it must be safe for
	// concurrent use by the decode workers.
	Tokenizer data.Tokenizer
	// Seed fixes every epoch's order; the epoch number is mixed in.
	Seed int64
	// Rank is this process's index among WorldSize readers of the same
	// dataset (0 and 1 by default); together they read every row once per
	// epoch.
	Rank, WorldSize int
	// ShuffleBuffer is the number of rows held for shuffling; 0 keeps each
	// row group's rows in file order (row groups are still permuted).
	ShuffleBuffer int
	// Workers is the number of decode goroutines (0: GOMAXPROCS). The
	// order never depends on it.
	Workers int
	// OnError says what a bad row does: fail (default) ends the stream
	// with its *data.RowError, skip drops it and counts it.
	OnError data.OnError
}

// Open lists the files of opts.Paths and reads their footers. Nothing else
// is read until the first Next. ctx bounds the Reader's lifetime: once it
// is cancelled the decode workers stop and Next fails.
func Open(ctx context.Context, opts Options) (*Reader, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("stream: no paths to read")
	}
	imgOpts := opts.Image
	if imgOpts.Resolution == 0 {
		imgOpts = images.DefaultOptions(224)
	}
	var files []fileInfo
	for _, p := range opts.Paths {
		paths, err := layouts.ListFiles(p)
		if err != nil {
			return nil, fmt.Errorf("stream: %w", err)
		}
		for _, path := range paths {
			f, err := layouts.Open(path, opts.Layout)
			if err != nil {
				return nil, fmt.Errorf("stream: %w", err)
			}
			fi := fileInfo{path: path, rowGroups: make([]int64, f.NumRowGroups()), imageColumn: f.ImageColumn()}
			for i := range fi.rowGroups {
				fi.rowGroups[i] = f.RowGroupRows(i)
			}
			f.Close()
			files = append(files, fi)
		}
	}
	cfg := config{seed: opts.Seed, rank: opts.Rank, world: opts.WorldSize, shuffleBuffer: opts.ShuffleBuffer,
		workers: opts.Workers, onError: opts.OnError, tokenizer: opts.Tokenizer}
	src := &fileSource{files: files, opts: opts.Layout}
	decode := func(b []byte) (*data.Image, error) { return images.Decode(b, imgOpts) }
	return newReader(ctx, cfg, files, src, decode)
}

// fileSource reads row groups through package layouts, keeping the last
// file open because consecutive units usually share a file.
type fileSource struct {
	files   []fileInfo
	opts    layouts.Options
	open    *layouts.File
	openIdx int
}

func (s *fileSource) readRowGroup(ctx context.Context, file, rg int, fn func(int64, *data.Record, error) error) error {
	if s.open == nil || s.openIdx != file {
		if err := s.close(); err != nil {
			return err
		}
		f, err := layouts.Open(s.files[file].path, s.opts)
		if err != nil {
			return err
		}
		if f.NumRowGroups() != len(s.files[file].rowGroups) {
			f.Close()
			return fmt.Errorf("%s: has %d row groups now, %d when the stream opened", s.files[file].path, f.NumRowGroups(), len(s.files[file].rowGroups))
		}
		s.open, s.openIdx = f, file
	}
	return s.open.ReadRowGroup(ctx, rg, fn)
}

func (s *fileSource) close() error {
	if s.open == nil {
		return nil
	}
	err := s.open.Close()
	s.open = nil
	return err
}
