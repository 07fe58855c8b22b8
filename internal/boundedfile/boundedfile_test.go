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

func TestTail(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		n          int64
		want       string
		cut        bool
	}{
		{"empty", "", 4, "", false},
		{"shorter", "abc", 4, "abc", false},
		{"exactly n", "abcd", 4, "abcd", false},
		{"longer", "abcdef", 4, "cdef", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			b, cut, err := Tail(path, tc.n)
			if err != nil || string(b) != tc.want || cut != tc.cut {
				t.Fatalf("Tail = %q, %v, %v; want %q, %v", b, cut, err, tc.want, tc.cut)
			}
		})
	}
	if _, _, err := Tail(filepath.Join(dir, "missing"), 4); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, _, err := Tail(dir, 4); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a directory: err = %v, want one naming %s", err, dir)
	}
}
