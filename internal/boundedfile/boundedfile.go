// Package boundedfile reads files without trusting their size: small files
// whole (configs, records, JSON results), refused over the caller's limit
// rather than read into memory (Read), and the end of a long log or
// metrics file (Tail). It is shared by the run, sweep and report readers,
// which must not import each other.
package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Read returns the bytes of the file at path, or an error naming path when
// it holds more than limit bytes. It reads at most limit+1 bytes, so a huge
// or endless file (/dev/zero) costs no more than that. Every error is an
// *fs.PathError naming path, as os.Open and (*os.File).Read give them, so
// callers can test errors.Is(err, fs.ErrNotExist) and strip the path when
// they name the file themselves.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err // already names path: a directory gives "read PATH: is a directory"
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	return b, nil
}

// Tail returns the last n bytes of the file at path (all of it when
// shorter) and whether the file held more, in which case the first line of
// b is likely cut. A long file costs no more than n to look into. An error
// opening the file is returned as os.Open gives it; every error names path.
func Tail(path string, n int64) (b []byte, cut bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, false, &fs.PathError{Op: "seek", Path: path, Err: err}
	}
	start := max(0, end-n)
	b = make([]byte, end-start)
	if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err // ReadAt's errors are *fs.PathError naming path
	}
	return b, start > 0, nil
}
