package boundedfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		size    int
		limit   int64
		wantErr string
	}{
		{"empty", 0, 4, ""},
		{"under", 3, 4, ""},
		{"at limit", 4, 4, ""},
		{"one over", 5, 4, "larger than 4 bytes"},
		{"far over", 1 << 16, 4, "larger than 4 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			want := bytes.Repeat([]byte{'x'}, tc.size)
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := Read(path, tc.limit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want one naming %s and %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("read %d bytes, want %d", len(b), len(want))
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "absent"), 4)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

// A read error names the path once: os.File's errors already carry it.
func TestReadDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(dir, 4)
	if err == nil {
		t.Fatal("reading a directory: no error")
	}
	if n := strings.Count(err.Error(), dir); n != 1 {
		t.Fatalf("err = %v, names %s %d times, want once", err, dir, n)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want an *fs.PathError", err, err)
	}
}
