package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/internal/atomicfile"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// Writer writes records into shards of a new dataset directory. It is not
// safe for concurrent use. Finish with Close (which writes manifest.json) or
// Abort.
type Writer struct {
	dir        string
	opts       Options
	codec      compress.Codec
	createdDir bool
	manifest   Manifest
	finished   []string // paths of shards renamed to their final names
	cur        *openShard
	err        error // sticky: an I/O failure ends the writer
	done       bool
	// maxRowGroups ends a shard whose footer would grow past what readers
	// should parse on every open (and past Verify's footer budget, see
	// pqsafe.MaxFooterDecodedBytes), and well before parquet-go's hard limit;
	// only tiny RowGroupRows with large shards reach it.
	maxRowGroups int
}

// openShard is the shard being written, under its temporary name.
type openShard struct {
	name       string // final name
	tmp        *os.File
	out        *hashingWriter
	pw         *parquet.GenericWriter[row]
	rows       int64
	kinds      map[data.Kind]int64
	rowGroups  int
	groupRows  int
	groupBytes int64
}

// hashingWriter counts and hashes what parquet-go writes, so a shard's
// size and sha256 come without reading it back.
type hashingWriter struct {
	f *os.File
	h hash.Hash
	n int64
}

func (w *hashingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

const defaultMaxRowGroups = 10_000

// NewWriter starts a dataset in dir, creating it if needed. It refuses a
// directory that already holds a manifest or Parquet files, so a dataset is
// never mixed with, or overwrites, another.
func NewWriter(dir string, opts Options) (*Writer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	codec, err := codecFor(opts.Compression)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(dir)
	createdDir := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("shards: create dataset directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	for _, e := range entries {
		if e.Name() == ManifestName || strings.HasSuffix(e.Name(), ".parquet") {
			return nil, fmt.Errorf("shards: %s already holds a dataset (found %s): write to a new directory or remove the old one first", dir, e.Name())
		}
	}
	return &Writer{
		dir:          dir,
		opts:         opts,
		codec:        codec,
		createdDir:   createdDir,
		maxRowGroups: defaultMaxRowGroups,
		manifest: Manifest{
			SchemaVersion: data.SchemaVersion,
			CreatedBy:     opts.CreatedBy,
			Shards:        []ShardInfo{},
			Kinds:         map[data.Kind]int64{},
		},
	}, nil
}

// Write validates r and appends it to the current shard, starting a new
// shard when the current one reaches MaxRowsPerShard or MaxBytesPerShard.
// An invalid record is refused (the error wraps data.ErrBadRecord and names
// its id) and the writer stays usable; an I/O error ends the writer.
func (w *Writer) Write(r *data.Record) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("shards: %w: %w", data.ErrBadRecord, err)
	}
	if w.cur == nil {
		if err := w.openShard(); err != nil {
			return w.fail(err)
		}
	}
	s := w.cur
	if _, err := s.pw.Write([]row{toRow(r)}); err != nil {
		return w.fail(fmt.Errorf("shards: %s: write record %q: %w", s.name, r.ID, err))
	}
	s.rows++
	s.kinds[r.Kind]++
	s.groupRows++
	s.groupBytes += payloadBytes(r)
	if s.groupRows >= w.opts.RowGroupRows || s.groupBytes >= w.opts.RowGroupBytes {
		if err := s.pw.Flush(); err != nil {
			return w.fail(fmt.Errorf("shards: %s: flush row group %d: %w", s.name, s.rowGroups, err))
		}
		s.rowGroups++
		s.groupRows, s.groupBytes = 0, 0
	}
	// Bytes already written plus the buffered row group's payload: the
	// buffered part is bounded by RowGroupBytes, so a shard overshoots its
	// limit by at most about one row group.
	if s.rows >= int64(w.opts.MaxRowsPerShard) || s.out.n+s.groupBytes >= w.opts.MaxBytesPerShard ||
		s.rowGroups >= w.maxRowGroups {
		if err := w.finishShard(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// Close finishes the last shard, writes manifest.json atomically and
// returns the manifest. After a failed Write, Close cleans up like Abort
// and returns the failure.
func (w *Writer) Close() (*Manifest, error) {
	if err := w.usable(); err != nil {
		if w.err != nil && !w.done {
			return nil, errors.Join(err, w.Abort())
		}
		return nil, err
	}
	if w.cur != nil {
		if err := w.finishShard(); err != nil {
			return nil, errors.Join(w.fail(err), w.Abort())
		}
	}
	b, err := w.manifest.marshal()
	if err != nil {
		return nil, errors.Join(w.fail(err), w.Abort())
	}
	if err := atomicfile.WriteFile(filepath.Join(w.dir, ManifestName), b, 0o644); err != nil {
		return nil, errors.Join(w.fail(err), w.Abort())
	}
	w.done = true
	m := w.manifest
	return &m, nil
}

// Abort removes the shard being written and the shards this writer already
// finished: without a manifest they are not a dataset, and leaving them
// would make the directory refuse the next attempt. A directory the writer
// created is removed when it ends up empty. Abort after Close does nothing.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	var errs []error
	if s := w.cur; s != nil {
		// The Parquet writer holds only memory; its file is thrown away.
		w.cur = nil
		_ = s.tmp.Close()
		errs = append(errs, removeIfExists(s.tmp.Name()))
	}
	for _, path := range w.finished {
		errs = append(errs, removeIfExists(path))
	}
	w.finished = nil
	if w.createdDir {
		if entries, err := os.ReadDir(w.dir); err == nil && len(entries) == 0 {
			errs = append(errs, os.Remove(w.dir))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shards: abort %s: %w", w.dir, err)
	}
	return nil
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("shards: writer for %s is already closed", w.dir)
	}
	return nil
}

// fail records err as the writer's sticky error and throws away the shard
// being written, so no partial file survives under any name.
func (w *Writer) fail(err error) error {
	w.err = err
	if s := w.cur; s != nil {
		w.cur = nil
		// Close may fail again for the same reason; the file goes either way.
		_ = s.tmp.Close()
		_ = removeIfExists(s.tmp.Name())
	}
	return err
}

func (w *Writer) openShard() error {
	name := fmt.Sprintf("shard-%05d.parquet", len(w.manifest.Shards))
	tmp, err := os.CreateTemp(w.dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("shards: create %s: %w", name, err)
	}
	// CreateTemp makes the file private; a dataset is read by other users
	// and jobs.
	if err := tmp.Chmod(0o644); err != nil {
		return errors.Join(fmt.Errorf("shards: create %s: %w", name, err), tmp.Close(), os.Remove(tmp.Name()))
	}
	out := &hashingWriter{f: tmp, h: sha256.New()}
	// Row groups are ended by Write, on rows or bytes; parquet-go's own
	// limit is unlimited by default, so the count kept here is exact.
	options := []parquet.WriterOption{parquet.Compression(w.codec)}
	for _, path := range blobColumns {
		options = append(options, parquet.SkipPageBounds(path...), parquet.SkipPageStatistics(path...))
	}
	pw := parquet.NewGenericWriter[row](out, options...)
	w.cur = &openShard{name: name, tmp: tmp, out: out, pw: pw, kinds: map[data.Kind]int64{}}
	return nil
}

// finishShard closes the Parquet writer, fsyncs the temporary file and
// renames it to its final name.
func (w *Writer) finishShard() error {
	s := w.cur
	if err := s.pw.Close(); err != nil {
		return fmt.Errorf("shards: %s: finish Parquet file: %w", s.name, err)
	}
	if s.groupRows > 0 {
		s.rowGroups++
	}
	if err := s.tmp.Sync(); err != nil {
		return fmt.Errorf("shards: %s: sync: %w", s.name, err)
	}
	if err := s.tmp.Close(); err != nil {
		return fmt.Errorf("shards: %s: close: %w", s.name, err)
	}
	final := filepath.Join(w.dir, s.name)
	if err := os.Rename(s.tmp.Name(), final); err != nil {
		return fmt.Errorf("shards: %s: rename into place: %w", s.name, err)
	}
	w.cur = nil
	w.finished = append(w.finished, final)
	if err := syncDir(w.dir); err != nil {
		return err
	}
	w.manifest.Shards = append(w.manifest.Shards, ShardInfo{
		Name:      s.name,
		Rows:      s.rows,
		Bytes:     s.out.n,
		SHA256:    hex.EncodeToString(s.out.h.Sum(nil)),
		RowGroups: s.rowGroups,
		Kinds:     s.kinds,
	})
	w.manifest.Rows += s.rows
	for k, n := range s.kinds {
		w.manifest.Kinds[k] += n
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
