package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/shards"
)

// writeDataset writes rows caption records (every badEvery-th with a
// truncated JPEG) in shards of shardRows rows and row groups of rgRows.
func writeDataset(t testing.TB, dir string, rows, shardRows, rgRows, badEvery int) {
	t.Helper()
	w, err := shards.NewWriter(dir, shards.Options{MaxRowsPerShard: shardRows, RowGroupRows: rgRows})
	if err != nil {
		t.Fatal(err)
	}
	pool := make([][]byte, 8)
	for i := range pool {
		pool[i] = images.SyntheticJPEG(64, 48, uint64(i), 80)
	}
	for i := range rows {
		img := pool[i%len(pool)]
		if badEvery > 0 && i%badEvery == badEvery-1 {
			img = img[:len(img)/3]
		}
		rec := &data.Record{ID: fmt.Sprintf("row-%04d", i), Kind: data.KindCaption,
			Texts:  []*string{nil, data.Str(fmt.Sprintf("caption %d", i))},
			Images: []*data.ImageRef{{Bytes: img}, nil}, Meta: "{}"}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenStreamsADataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	writeDataset(t, dir, 60, 25, 10, 0) // 3 shards: 25, 25, 10 rows; 7 row groups
	opts := Options{Paths: []string{dir}, Image: images.DefaultOptions(32), Seed: 3, ShuffleBuffer: 8, Workers: 2}
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("row-%04d", i))
	}
	// 2 ranks split by shard; 4, with fewer shards than ranks, by row
	// group; 9, with fewer row groups than ranks, by rows in each.
	for _, world := range []int{2, 4, 9} {
		for ep := range 2 {
			var got []string
			for rank := range world {
				o := opts
				o.Rank, o.WorldSize = rank, world
				r, err := Open(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				if ep == 1 {
					epoch(t, r)
				}
				got = append(got, epoch(t, r)...)
				r.Close()
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("world size %d, epoch %d: the ranks read %v, want row-0000..row-0059 once each", world, ep, got)
			}
		}
	}

	// The number of decode workers never changes the order.
	var orders [][]string
	for _, workers := range []int{1, 4} {
		o := opts
		o.Workers = workers
		r, err := Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, events(t, r, 2*61))
		r.Close()
	}
	if !slices.Equal(orders[0], orders[1]) {
		t.Fatalf("1 worker read %v, 4 workers %v", orders[0], orders[1])
	}

	r, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	im := s.Segments[0].Image
	if im == nil || im.C != 3 || im.H != 32 || im.W != 32 || len(im.Pix) != 3*32*32 || !strings.HasPrefix(s.Segments[1].Text, "caption ") {
		t.Fatalf("first sample %s: segments %+v", s.ID, s.Segments)
	}
	if st := r.State(); len(st.Shards) != 3 || st.Shards[2] != (data.ShardID{Name: "shard-00002.parquet", Rows: 10}) {
		t.Fatalf("State.Shards = %v", st.Shards)
	}
}

func TestOpenResumesAndReportsBadImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	writeDataset(t, dir, 40, 20, 8, 7) // rows 6, 13, 20, … are truncated
	opts := Options{Paths: []string{dir}, Image: images.DefaultOptions(16), Seed: 1, ShuffleBuffer: 5, Workers: 3, OnError: data.OnErrorSkip}
	open := func() *Reader {
		r, err := Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	want := events(t, open(), 80)
	if n := slices.Index(want, "EOF"); n != 40-5 {
		t.Fatalf("epoch 0 has %d samples, want 40 less 5 truncated", n)
	}
	for _, n := range []int{0, 9, 34, 35, 36, 50} {
		first := open()
		events(t, first, n)
		second := open()
		if err := second.Restore(first.State()); err != nil {
			t.Fatal(err)
		}
		if got := events(t, second, 80-n); !slices.Equal(got, want[n:]) {
			t.Fatalf("n=%d: resumed %v, want %v", n, got, want[n:])
		}
	}

	opts.OnError = data.OnErrorFail
	r := open()
	var err error
	for err == nil {
		_, err = r.Next(context.Background())
	}
	var re *data.RowError
	if !errors.As(err, &re) || !strings.HasSuffix(re.File, ".parquet") || re.Column != "images" || re.Row < 0 {
		t.Fatalf("Next = %v, want a RowError naming the shard, row and column images", err)
	}
}

func TestOpenRejectsAChangedDataset(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeDataset(t, a, 30, 10, 5, 0)
	writeDataset(t, b, 31, 10, 5, 0)
	ra, err := Open(context.Background(), Options{Paths: []string{a}, Seed: 1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := Open(context.Background(), Options{Paths: []string{b}, Seed: 1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	err = rb.Restore(ra.State())
	if err == nil || !strings.Contains(err.Error(), "state lists 3 shards, the dataset has 4") {
		t.Fatalf("Restore = %v, want the shard count named", err)
	}
}

func BenchmarkStream(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "ds")
	w, err := shards.NewWriter(dir, shards.Options{RowGroupRows: 100})
	if err != nil {
		b.Fatal(err)
	}
	pool := make([][]byte, 16)
	for i := range pool {
		pool[i] = images.SyntheticJPEG(640, 480, uint64(i), 85)
	}
	const rows = 400
	for i := range rows {
		if err := w.Write(&data.Record{ID: fmt.Sprint(i), Kind: data.KindCaption,
			Texts:  []*string{nil, data.Str("a caption")},
			Images: []*data.ImageRef{{Bytes: pool[i%len(pool)]}, nil}, Meta: "{}"}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			r, err := Open(context.Background(), Options{Paths: []string{dir}, ShuffleBuffer: 100, Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.ResetTimer()
			for range b.N {
				if _, err := r.Next(context.Background()); err != nil && !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
