package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mmablate/mmablate/data"
)

// fakeSource is an in-memory dataset: file f has rowGroups[f][g] rows; row
// ids are "f<file>-<row>". Rows listed in layoutBad come back as layout
// errors, rows in decodeBad carry image bytes the fake decoder rejects.
type fakeSource struct {
	rowGroups [][]int64
	layoutBad map[string]bool
	decodeBad map[string]bool
	shortRG   [2]int // {file, rg} that yields one row fewer; {-1, -1} for none

	mu       sync.Mutex
	reads    map[[2]int]int
	rowsRead int64
}

func newFakeSource(rowGroups [][]int64) *fakeSource {
	return &fakeSource{rowGroups: rowGroups, layoutBad: map[string]bool{}, decodeBad: map[string]bool{},
		shortRG: [2]int{-1, -1}, reads: map[[2]int]int{}}
}

// uniform builds files×groups row groups of rows rows each.
func uniform(files, groups int, rows int64) [][]int64 {
	out := make([][]int64, files)
	for f := range out {
		for range groups {
			out[f] = append(out[f], rows)
		}
	}
	return out
}

func rowID(file int, row int64) string { return fmt.Sprintf("f%d-%d", file, row) }

func (s *fakeSource) files() []fileInfo {
	out := make([]fileInfo, len(s.rowGroups))
	for f, rgs := range s.rowGroups {
		out[f] = fileInfo{path: fmt.Sprintf("/data/shard-%05d.parquet", f), rowGroups: rgs}
	}
	return out
}

func (s *fakeSource) allIDs() []string {
	var ids []string
	for f, rgs := range s.rowGroups {
		var row int64
		for _, n := range rgs {
			for range n {
				ids = append(ids, rowID(f, row))
				row++
			}
		}
	}
	return ids
}

func (s *fakeSource) readRowGroup(ctx context.Context, file, rg int, fn func(int64, *data.Record, error) error) error {
	s.mu.Lock()
	s.reads[[2]int{file, rg}]++
	s.mu.Unlock()
	var start int64
	for _, n := range s.rowGroups[file][:rg] {
		start += n
	}
	n := s.rowGroups[file][rg]
	if s.shortRG == [2]int{file, rg} {
		n--
	}
	for row := start; row < start+n; row++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		s.rowsRead++
		s.mu.Unlock()
		id := rowID(file, row)
		var err error
		if s.layoutBad[id] {
			err = fn(row, nil, &data.RowError{File: fmt.Sprintf("shard-%05d.parquet", file), RowGroup: rg, Row: row, Column: "texts", Err: data.ErrNullText})
		} else {
			img := id
			if s.decodeBad[id] {
				img = "bad:" + id
			}
			err = fn(row, &data.Record{ID: id, Kind: data.KindCaption,
				Texts:  []*string{nil, data.Str("caption of " + id)},
				Images: []*data.ImageRef{{Bytes: []byte(img)}, nil}, Meta: "{}"}, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeSource) close() error { return nil }

func (s *fakeSource) totalReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.reads {
		n += c
	}
	return n
}

// fakeDecoder records which images it decoded; "bad:" bytes fail.
type fakeDecoder struct {
	mu      sync.Mutex
	decoded map[string]int
}

func newFakeDecoder() *fakeDecoder { return &fakeDecoder{decoded: map[string]int{}} }

func (d *fakeDecoder) decode(b []byte) (*data.Image, error) {
	d.mu.Lock()
	d.decoded[strings.TrimPrefix(string(b), "bad:")]++
	d.mu.Unlock()
	if strings.HasPrefix(string(b), "bad:") {
		return nil, fmt.Errorf("fake: %w", data.ErrImageFormat)
	}
	return &data.Image{C: 1, H: 1, W: 1, Pix: []float32{float32(len(b))}}, nil
}

func (d *fakeDecoder) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.decoded[id]
}

func openFake(t testing.TB, ctx context.Context, src *fakeSource, dec *fakeDecoder, cfg config) *Reader {
	t.Helper()
	r, err := newReader(ctx, cfg, src.files(), src, dec.decode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// events reads n events (sample ids, or "EOF" at an epoch's end).
func events(t testing.TB, r *Reader, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for len(out) < n {
		s, err := r.Next(context.Background())
		switch {
		case errors.Is(err, io.EOF):
			out = append(out, "EOF")
		case err != nil:
			t.Fatalf("after %d events: %v", len(out), err)
		default:
			out = append(out, s.ID)
		}
	}
	return out
}

// epoch reads one whole epoch's sample ids.
func epoch(t testing.TB, r *Reader) []string {
	t.Helper()
	var ids []string
	for {
		s, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
}
