// Package stream reads Parquet datasets as a data.Stream of decoded
// Samples: one row group at a time, in a seeded per-epoch order, split by
// rank, shuffled through a seeded buffer, decoded by parallel workers
// without changing the order, and resumable from a JSON data.State.
//
// The order of an epoch is a pure function of the seed, the epoch, the rank
// and the files' row-group sizes (from their footers):
//
//  1. the files are permuted, and the row groups within each file;
//  2. each rank takes every world_size-th file of that permutation, or
//     every world_size-th row group when there are fewer files than ranks,
//     or its slice of every row group when there are fewer row groups;
//  3. the rows pass through a shuffle buffer of Options.ShuffleBuffer rows
//     whose choices depend only on its own seeded generator.
//
// Because of 3, the position inside an epoch is a count: Restore replays the
// buffer's choices over row ids, reads only the row groups that still hold
// buffered rows or rows not yet passed, and decodes nothing it skips.
//
//	r, err := stream.Open(ctx, stream.Options{
//		Paths: []string{"data/shapes/captions"}, Image: images.DefaultOptions(224),
//		Seed: 1, ShuffleBuffer: 1000, Workers: 4, OnError: data.OnErrorSkip,
//	})
//	for {
//		s, err := r.Next(ctx)
//		if err == io.EOF { break } // end of epoch; the next call starts the next
//		...
//	}
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"runtime"

	"github.com/mmablate/mmablate/data"
)

// source reads one row group of a file, calling fn for each row in order
// (row counted from the file's first row; err is that row's error, rec nil).
// Only one goroutine calls it at a time.
type source interface {
	readRowGroup(ctx context.Context, file, rg int, fn func(row int64, rec *data.Record, err error) error) error
	close() error
}

// decodeFunc turns encoded image bytes into a normalised tensor.
type decodeFunc func(b []byte) (*data.Image, error)

// config is Options after defaults, minus what only Open needs.
type config struct {
	seed          int64
	rank, world   int
	shuffleBuffer int
	workers       int
	onError       data.OnError
	tokenizer     data.Tokenizer
}

func (c *config) check() error {
	if c.world == 0 {
		c.world = 1
	}
	if c.workers == 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	if c.onError == "" {
		c.onError = data.OnErrorFail
	}
	switch {
	case c.world < 0 || c.rank < 0 || c.rank >= c.world:
		return fmt.Errorf("stream: rank %d is not in [0, world_size %d)", c.rank, c.world)
	case c.shuffleBuffer < 0:
		return fmt.Errorf("stream: shuffle buffer %d is negative", c.shuffleBuffer)
	case c.workers < 0:
		return fmt.Errorf("stream: workers %d is negative", c.workers)
	case c.onError != data.OnErrorFail && c.onError != data.OnErrorSkip:
		return fmt.Errorf("stream: on_error %q: want fail or skip", c.onError)
	}
	return nil
}

// Reader streams samples from a set of Parquet files. It implements
// data.Stream. A Reader is used by one goroutine; its decode workers are
// internal. The Tokenizer, if any, must be safe for concurrent use.
type Reader struct {
	cfg    config
	files  []fileInfo
	shards []data.ShardID
	src    source
	decode decodeFunc

	ctx    context.Context // ends the workers; cancelled by Close
	cancel context.CancelFunc

	epoch    int
	consumed int64 // samples returned this epoch
	position int64 // rows of this epoch's order passed, skips included
	skipped  data.SkipCounts
	started  bool
	pipe     *pipeline // the running epoch; nil between epochs
	err      error     // sticky: a failed row (on_error=fail) or a broken file
	closed   bool
}

func newReader(ctx context.Context, cfg config, files []fileInfo, src source, decode decodeFunc) (*Reader, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	shards := make([]data.ShardID, len(files))
	for i, f := range files {
		shards[i] = data.ShardID{Name: filepath.Base(f.path), Rows: f.rows()}
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Reader{cfg: cfg, files: files, shards: shards, src: src, decode: decode,
		ctx: ctx, cancel: cancel, skipped: data.SkipCounts{}}, nil
}

// Next returns the next sample of this rank's order, or io.EOF once the
// epoch is over; the call after io.EOF starts the next epoch. With
// on_error=fail a bad row ends the stream with its *data.RowError; with
// skip it is counted (Skipped) and passed over. A cancelled ctx returns
// ctx.Err() and leaves the position unchanged.
func (r *Reader) Next(ctx context.Context) (data.Sample, error) {
	if r.closed {
		return data.Sample{}, errors.New("stream: Next after Close")
	}
	if r.err != nil {
		return data.Sample{}, r.err
	}
	if err := ctx.Err(); err != nil {
		return data.Sample{}, err
	}
	r.started = true
	for {
		if r.pipe == nil {
			r.pipe = r.startEpoch()
		}
		res, err := r.pipe.next(ctx)
		if err == io.EOF {
			r.pipe.stop()
			r.pipe = nil
			r.epoch++
			r.consumed, r.position = 0, 0
			return data.Sample{}, io.EOF
		}
		if err != nil {
			if ctx.Err() == nil {
				r.err = err
			}
			return data.Sample{}, err
		}
		r.position++
		if res.err != nil {
			if r.cfg.onError == data.OnErrorSkip {
				r.skipped[data.Reason(res.err)]++
				continue
			}
			r.err = res.err
			return data.Sample{}, res.err
		}
		r.consumed++
		return res.sample, nil
	}
}

// Skipped counts the rows dropped with on_error=skip so far, by reason,
// including those counted before a Restore.
func (r *Reader) Skipped() data.SkipCounts { return maps.Clone(r.skipped) }

// State is the position after the last sample Next returned.
func (r *Reader) State() data.State {
	return data.State{
		Seed: r.cfg.seed, Epoch: r.epoch, Consumed: r.consumed, Position: r.position,
		Rank: r.cfg.rank, WorldSize: r.cfg.world,
		Shards: append([]data.ShardID(nil), r.shards...), Skipped: maps.Clone(r.skipped),
	}
}

// Restore positions a fresh Reader at s. It fails, naming the shard, when
// the files differ from those s was taken on, and when the seed, rank or
// world size differ from the Reader's options.
func (r *Reader) Restore(s data.State) error {
	if r.started {
		return errors.New("stream: Restore after Next: restore a fresh reader")
	}
	if s.Seed != r.cfg.seed {
		return fmt.Errorf("stream: restore: state has seed %d, the reader %d", s.Seed, r.cfg.seed)
	}
	if s.Rank != r.cfg.rank || s.WorldSize != r.cfg.world {
		return fmt.Errorf("stream: restore: state is for rank %d of world size %d, the reader is rank %d of %d",
			s.Rank, s.WorldSize, r.cfg.rank, r.cfg.world)
	}
	if len(s.Shards) != len(r.shards) {
		return fmt.Errorf("stream: restore: state lists %d shards, the dataset has %d", len(s.Shards), len(r.shards))
	}
	for i, want := range s.Shards {
		if got := r.shards[i]; got != want {
			return fmt.Errorf("stream: restore: shard %d was %s with %d rows, now %s with %d rows (%s)",
				i, want.Name, want.Rows, got.Name, got.Rows, r.files[i].path)
		}
	}
	if s.Epoch < 0 || s.Consumed < 0 || s.Position < s.Consumed {
		return fmt.Errorf("stream: restore: invalid position (epoch %d, consumed %d, position %d)", s.Epoch, s.Consumed, s.Position)
	}
	rows := totalRows(epochUnits(r.files, r.cfg.seed, s.Epoch, r.cfg.rank, r.cfg.world))
	if s.Position > rows {
		return fmt.Errorf("stream: restore: position %d is past the %d rows of epoch %d for rank %d", s.Position, rows, s.Epoch, r.cfg.rank)
	}
	for reason, n := range s.Skipped {
		if n < 0 {
			return fmt.Errorf("stream: restore: negative skip count %d for %q", n, reason)
		}
	}
	r.epoch, r.consumed, r.position = s.Epoch, s.Consumed, s.Position
	r.skipped = maps.Clone(s.Skipped)
	if r.skipped == nil {
		r.skipped = data.SkipCounts{}
	}
	return nil
}

// Close stops the workers, waits for them and closes the open file.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	if r.pipe != nil {
		r.pipe.stop()
		r.pipe = nil
	}
	return r.src.close()
}
