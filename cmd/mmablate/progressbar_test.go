package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestProgressBar(t *testing.T) {
	for _, tt := range []struct {
		frac float64
		want string
	}{{-1, "[....]"}, {0, "[....]"}, {0.5, "[##..]"}, {0.99, "[###.]"}, {1, "[####]"}, {2, "[####]"}} {
		if got := progressBar(tt.frac, 4); got != tt.want {
			t.Errorf("progressBar(%v, 4) = %q, want %q", tt.frac, got, tt.want)
		}
	}
}

// TestIsTerminal: a buffer and a regular file are not terminals, so
// output redirected to them gets log lines, not a redrawn bar.
func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(&bytes.Buffer{}) || isTerminal(f) {
		t.Fatal("a buffer or a regular file taken for a terminal")
	}
}
