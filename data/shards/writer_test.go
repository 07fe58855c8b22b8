package shards

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/internal/pqsafe"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// testRecords cycles through the three kinds; image bytes are seeded random
// noise, which no codec compresses, like real JPEGs.
func testRecords(n, imageBytes int, seed uint64) []*data.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	image := func(i int) *data.ImageRef {
		b := make([]byte, imageBytes)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		return &data.ImageRef{Bytes: b, Path: fmt.Sprintf("%06d.jpg", i)}
	}
	recs := make([]*data.Record, n)
	for i := range recs {
		id := fmt.Sprintf("rec-%06d", i)
		switch i % 3 {
		case 0:
			recs[i] = &data.Record{ID: id, Kind: data.KindCaption,
				Texts:  []*string{nil, data.Str(fmt.Sprintf("caption %d", i))},
				Images: []*data.ImageRef{image(i), nil},
				Meta:   `{"split":"train"}`}
		case 1:
			recs[i] = &data.Record{ID: id, Kind: data.KindInterleaved,
				Texts:  []*string{data.Str("before"), nil, data.Str(""), nil},
				Images: []*data.ImageRef{nil, image(i), nil, image(i + 1)},
				Meta:   "{}"}
		default:
			recs[i] = &data.Record{ID: id, Kind: data.KindText,
				Texts:  []*string{data.Str(strings.Repeat("words ", 1+i%7))},
				Images: []*data.ImageRef{nil},
				Meta:   "{}"}
		}
	}
	return recs
}

func writeDataset(t testing.TB, dir string, opts Options, recs []*data.Record) *Manifest {
	t.Helper()
	w, err := NewWriter(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readRows reads every row of the dataset back in manifest order.
func readRows(t *testing.T, dir string, m *Manifest) []row {
	t.Helper()
	var rows []row
	for _, path := range m.Paths(dir) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := parquet.NewGenericReader[row](f)
		buf := make([]row, 16)
		for {
			n, err := r.Read(buf)
			rows = append(rows, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		r.Close()
		f.Close()
	}
	return rows
}

// sameRecord compares a row read back with the record written. A missing
// image path is stored as null and reads back as "", its zero value.
func sameRecord(got row, want *data.Record) error {
	wantMeta := want.Meta
	if wantMeta == "" {
		wantMeta = "{}"
	}
	if got.ID != want.ID || got.Kind != string(want.Kind) || got.Meta != wantMeta {
		return fmt.Errorf("got id %q kind %q meta %q, want %q %q %q", got.ID, got.Kind, got.Meta, want.ID, want.Kind, wantMeta)
	}
	if len(got.Texts) != len(want.Texts) || len(got.Images) != len(want.Images) {
		return fmt.Errorf("%s: got %d texts %d images, want %d %d", want.ID, len(got.Texts), len(got.Images), len(want.Texts), len(want.Images))
	}
	for i := range want.Texts {
		g, w := got.Texts[i], want.Texts[i]
		if (g == nil) != (w == nil) || g != nil && *g != *w {
			return fmt.Errorf("%s: texts[%d] = %v, want %v", want.ID, i, g, w)
		}
		gi, wi := got.Images[i], want.Images[i]
		if (gi == nil) != (wi == nil) || gi != nil && (!bytes.Equal(gi.Bytes, wi.Bytes) || gi.Path != wi.Path) {
			return fmt.Errorf("%s: images[%d] differs (null: got %v, want %v)", want.ID, i, gi == nil, wi == nil)
		}
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		recs []*data.Record
	}{
		{"all kinds", testRecords(9, 100, 1)},
		{"nulls and empty strings", []*data.Record{
			{ID: "empty-caption", Kind: data.KindCaption, Texts: []*string{nil, data.Str("")}, Images: []*data.ImageRef{{Bytes: []byte{1, 2}}, nil}},
			{ID: "empty-image", Kind: data.KindCaption, Texts: []*string{nil, data.Str("x")}, Images: []*data.ImageRef{{Path: "only-a-path.png"}, nil}},
			{ID: "empty-text-doc", Kind: data.KindText, Texts: []*string{data.Str("")}, Images: []*data.ImageRef{nil}, Meta: `{"a":[1,null]}`},
			{ID: "unicode", Kind: data.KindInterleaved, Texts: []*string{data.Str("ünï\x00cödé"), nil}, Images: []*data.ImageRef{nil, {Bytes: []byte{0}}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			m := writeDataset(t, dir, Options{MaxRowsPerShard: 4, RowGroupRows: 3}, tt.recs)
			rows := readRows(t, dir, m)
			if len(rows) != len(tt.recs) {
				t.Fatalf("read %d rows, wrote %d", len(rows), len(tt.recs))
			}
			for i := range rows {
				if err := sameRecord(rows[i], tt.recs[i]); err != nil {
					t.Error(err)
				}
			}
			kinds := map[data.Kind]int64{}
			for _, r := range tt.recs {
				kinds[r.Kind]++
			}
			if m.Rows != int64(len(tt.recs)) || !mapsEqual(m.Kinds, kinds) {
				t.Errorf("manifest rows %d kinds %v, want %d %v", m.Rows, m.Kinds, len(tt.recs), kinds)
			}
			for _, path := range append(m.Paths(dir), filepath.Join(dir, ManifestName)) {
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if perm := st.Mode().Perm(); perm != 0o644 {
					t.Errorf("%s has mode %v, want readable by all (0644)", path, perm)
				}
			}
			loaded, err := LoadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Rows != m.Rows || len(loaded.Shards) != len(m.Shards) || loaded.SchemaVersion != data.SchemaVersion {
				t.Errorf("loaded manifest %+v differs from returned %+v", loaded, m)
			}
		})
	}
}

func mapsEqual(a, b map[data.Kind]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestShardRollover(t *testing.T) {
	const imageBytes = 10 << 10
	tests := []struct {
		name      string
		opts      Options
		recs      []*data.Record
		wantRows  []int64 // nil: check the byte bound instead
		byteLimit int64
	}{
		{"by rows", Options{MaxRowsPerShard: 7}, testRecords(20, 10, 2), []int64{7, 7, 6}, 0},
		{"exact multiple", Options{MaxRowsPerShard: 5}, testRecords(10, 10, 2), []int64{5, 5}, 0},
		{"rows before bytes", Options{MaxRowsPerShard: 2, MaxBytesPerShard: 1 << 30}, testRecords(5, 10, 2), []int64{2, 2, 1}, 0},
		{"by bytes", Options{MaxBytesPerShard: 64 << 10, RowGroupRows: 2}, testRecords(30, imageBytes, 3), nil, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := writeDataset(t, dir, tt.opts, tt.recs)
			var rows []int64
			for i, s := range m.Shards {
				if want := fmt.Sprintf("shard-%05d.parquet", i); s.Name != want {
					t.Errorf("shard %d named %q, want %q", i, s.Name, want)
				}
				rows = append(rows, s.Rows)
			}
			if tt.wantRows != nil {
				if !slices.Equal(rows, tt.wantRows) {
					t.Errorf("rows per shard %v, want %v", rows, tt.wantRows)
				}
				return
			}
			if len(m.Shards) < 3 {
				t.Fatalf("%d shards for %d bytes of images with a %d-byte limit", len(m.Shards), 30*imageBytes*4/3, tt.byteLimit)
			}
			// A shard ends at the first row that reaches the limit, so it
			// overshoots by at most one buffered row group (two rows of up
			// to two images) plus the footer.
			slack := int64(2*2*imageBytes + 8<<10)
			var total int64
			for _, s := range m.Shards {
				total += s.Rows
				if s.Bytes > tt.byteLimit+slack {
					t.Errorf("%s: %d bytes, limit %d + slack %d", s.Name, s.Bytes, tt.byteLimit, slack)
				}
			}
			for _, s := range m.Shards[:len(m.Shards)-1] {
				if s.Bytes < tt.byteLimit/2 {
					t.Errorf("%s ended early at %d bytes (limit %d)", s.Name, s.Bytes, tt.byteLimit)
				}
			}
			if total != int64(len(tt.recs)) {
				t.Errorf("shards hold %d rows, wrote %d", total, len(tt.recs))
			}
		})
	}
}

func TestRowGroups(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		recs []*data.Record
		want [][]int64 // rows per row group, per shard
	}{
		{"by rows", Options{RowGroupRows: 4}, testRecords(10, 10, 4), [][]int64{{4, 4, 2}}},
		{"one row each", Options{RowGroupRows: 1}, testRecords(3, 10, 4), [][]int64{{1, 1, 1}}},
		// Records alternate 1, 2, 0 images of 10 KiB: a 25 KiB cap is
		// reached after rows 0–1 (30 KiB), then rows 2–4 (30 KiB), …
		{"by bytes", Options{RowGroupBytes: 25 << 10}, testRecords(9, 10<<10, 4), [][]int64{{2, 3, 3, 1}}},
		{"restart per shard", Options{RowGroupRows: 2, MaxRowsPerShard: 5}, testRecords(8, 10, 4), [][]int64{{2, 2, 1}, {2, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := writeDataset(t, dir, tt.opts, tt.recs)
			var got [][]int64
			for _, s := range m.Shards {
				pf := openFooter(t, filepath.Join(dir, s.Name))
				var groups []int64
				for _, rg := range pf.RowGroups() {
					groups = append(groups, rg.NumRows())
				}
				if s.RowGroups != len(groups) {
					t.Errorf("%s: manifest says %d row groups, footer %d", s.Name, s.RowGroups, len(groups))
				}
				got = append(got, groups)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("row groups %v, want %v", got, tt.want)
			}
		})
	}
}

func openFooter(t *testing.T, path string) *parquet.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := pqsafe.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pf
}

func TestCompression(t *testing.T) {
	tests := []struct {
		option string
		want   format.CompressionCodec
	}{
		{"", format.Zstd},
		{"zstd", format.Zstd},
		{"snappy", format.Snappy},
		{"none", format.Uncompressed},
	}
	recs := testRecords(6, 50, 5)
	for _, tt := range tests {
		t.Run("compression="+tt.option, func(t *testing.T) {
			dir := t.TempDir()
			m := writeDataset(t, dir, Options{Compression: tt.option}, recs)
			pf := openFooter(t, filepath.Join(dir, m.Shards[0].Name))
			for _, c := range pf.Metadata().RowGroups[0].Columns {
				if c.MetaData.Codec != tt.want {
					t.Errorf("column %v: codec %v, want %v", c.MetaData.PathInSchema, c.MetaData.Codec, tt.want)
				}
			}
			rows := readRows(t, dir, m)
			for i := range recs {
				if err := sameRecord(rows[i], recs[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	if _, err := NewWriter(t.TempDir(), Options{Compression: "lz4"}); err == nil || !strings.Contains(err.Error(), `"lz4"`) {
		t.Errorf("compression lz4: got %v, want an error naming it", err)
	}
}

// dirNames lists dir, or nil when it does not exist.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestAbortAndFailureLeaveNoFiles(t *testing.T) {
	recs := testRecords(8, 100, 6)
	tests := []struct {
		name     string
		existing bool // the directory existed before the writer
		run      func(t *testing.T, w *Writer)
		want     []string // directory listing afterwards; nil: gone
	}{
		{"abort mid-shard after a finished shard", false, func(t *testing.T, w *Writer) {
			for _, r := range recs[:5] {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"abort keeps a directory it did not create", true, func(t *testing.T, w *Writer) {
			for _, r := range recs[:2] {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
		}, []string{"unrelated.txt"}},
		{"write fails mid-shard", false, func(t *testing.T, w *Writer) {
			for _, r := range recs[:4] {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			// Pull the file out from under the open shard: the next row
			// group flush fails like a full disk would.
			w.cur.tmp.Close()
			var err error
			for _, r := range recs[4:6] {
				if err = w.Write(r); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatal("writes to a closed file succeeded, though the second one ends the shard")
			}
			if _, cerr := w.Close(); !errors.Is(cerr, err) {
				t.Errorf("Close after a failed write: %v, want the write's error %v", cerr, err)
			}
			if werr := w.Write(recs[6]); werr == nil {
				t.Error("Write after a failure succeeded")
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ds")
			if tt.existing {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "unrelated.txt"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, err := NewWriter(dir, Options{MaxRowsPerShard: 3, RowGroupRows: 1})
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, w)
			if got := dirNames(t, dir); !slices.Equal(got, tt.want) {
				t.Errorf("directory holds %q, want %q", got, tt.want)
			}
			if err := w.Abort(); err != nil {
				t.Errorf("second Abort: %v", err)
			}
		})
	}
}

func TestFinalNamesOnlyForCompleteShards(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{MaxRowsPerShard: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for i, r := range testRecords(3, 10, 7) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		names := dirNames(t, dir)
		var final, tmp int
		for _, n := range names {
			switch {
			case strings.HasSuffix(n, ".parquet"):
				final++
				if _, err := pqsafe.Open(mustOpen(t, filepath.Join(dir, n))); err != nil {
					t.Errorf("after row %d, %s is not complete: %v", i, n, err)
				}
			case strings.HasPrefix(n, ".shard-"):
				tmp++
			}
		}
		// Rows 0 and 2 leave an open shard under a temporary name; row 1
		// completes shard 0.
		if wantFinal, wantTmp := (i+1)/2, (i+1)%2; final != wantFinal || tmp != wantTmp {
			t.Errorf("after row %d: %d final and %d temporary files (%q), want %d and %d", i, final, tmp, names, wantFinal, wantTmp)
		}
	}
}

func mustOpen(t *testing.T, path string) (io.ReaderAt, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b), int64(len(b))
}

func TestInvalidRecordIsRefusedAndNamed(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := testRecords(2, 10, 8)
	bad := []*data.Record{
		{ID: "misaligned-7", Kind: data.KindCaption, Texts: []*string{nil}, Images: []*data.ImageRef{{Bytes: []byte{1}}, nil}},
		{ID: "both-9", Kind: data.KindText, Texts: []*string{data.Str("x")}, Images: []*data.ImageRef{{Bytes: []byte{1}}}},
		{ID: "kind-3", Kind: "video", Texts: []*string{data.Str("x")}, Images: []*data.ImageRef{nil}},
		{ID: "meta-4", Kind: data.KindText, Texts: []*string{data.Str("x")}, Images: []*data.ImageRef{nil}, Meta: "{"},
	}
	if err := w.Write(good[0]); err != nil {
		t.Fatal(err)
	}
	for _, r := range bad {
		err := w.Write(r)
		if !errors.Is(err, data.ErrBadRecord) || !strings.Contains(err.Error(), r.ID) {
			t.Errorf("Write(%s) = %v, want data.ErrBadRecord naming the id", r.ID, err)
		}
	}
	if err := w.Write(good[1]); err != nil {
		t.Fatalf("writer unusable after a refused record: %v", err)
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 2 {
		t.Errorf("manifest has %d rows, want the 2 valid ones", m.Rows)
	}
	if _, err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

func TestNewWriterRefusesExistingDataset(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		wantErr string
	}{
		{"empty directory", nil, ""},
		{"unrelated files", []string{"README.md"}, ""},
		{"manifest", []string{ManifestName}, ManifestName},
		{"shard", []string{"shard-00000.parquet"}, "shard-00000.parquet"},
		{"other parquet", []string{"train.parquet"}, "train.parquet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, err := NewWriter(dir, Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				w.Abort()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewWriter = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
	if _, err := NewWriter(t.TempDir(), Options{RowGroupRows: -1}); err == nil {
		t.Error("negative RowGroupRows accepted")
	}
}

func TestEmptyDataset(t *testing.T) {
	dir := t.TempDir()
	m := writeDataset(t, dir, Options{}, nil)
	if len(m.Shards) != 0 || m.Rows != 0 {
		t.Errorf("empty dataset manifest %+v", m)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{ManifestName}) {
		t.Errorf("directory holds %q, want only the manifest", got)
	}
	mm, err := Verify(dir)
	if err != nil || len(mm) != 0 {
		t.Errorf("Verify(empty) = %v, %v", mm, err)
	}
}

func TestRowGroupLimitEndsShard(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{RowGroupRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if w.maxRowGroups >= parquet.MaxRowGroups {
		t.Errorf("maxRowGroups %d, not below parquet-go's limit %d", w.maxRowGroups, parquet.MaxRowGroups)
	}
	// Reaching the real limit takes 10 000 row groups; the same rule at 3
	// is quick.
	w.maxRowGroups = 3
	for _, r := range testRecords(7, 10, 12) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var groups []int
	for _, s := range m.Shards {
		groups = append(groups, s.RowGroups)
	}
	if !slices.Equal(groups, []int{3, 3, 1}) {
		t.Errorf("row groups per shard %v, want [3 3 1]", groups)
	}
	if mm, err := Verify(dir); err != nil || len(mm) != 0 {
		t.Errorf("Verify = %v, %v", mm, err)
	}
}

// BenchmarkWrite measures shard writing throughput on caption-sized rows
// with 64 KiB incompressible images (zstd, default row groups).
func BenchmarkWrite(b *testing.B) {
	recs := testRecords(300, 64<<10, 13)
	var payload int64
	for _, r := range recs {
		payload += payloadBytes(r)
	}
	b.SetBytes(payload)
	for b.Loop() {
		w, err := NewWriter(filepath.Join(b.TempDir(), "ds"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
