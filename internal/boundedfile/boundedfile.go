// Package boundedfile reads small files whole (configs, records, JSON
// results) without trusting their size: a file over the caller's limit is
// refused rather than read into memory. It is shared by the run, sweep and
// report readers, which must not import each other.
package boundedfile

import (
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
