package layouts

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
)

// want is one row's expected outcome: a record, or an error wrapping err
// at column.
type want struct {
	rec    *data.Record
	err    error
	column string
}

func caption(id string, img *data.ImageRef, text, meta string) want {
	return want{rec: &data.Record{ID: id, Kind: data.KindCaption, Texts: []*string{nil, data.Str(text)}, Images: []*data.ImageRef{img, nil}, Meta: meta}}
}

func fails(err error, column string) want { return want{err: err, column: column} }

// segs builds aligned lists from a mix of strings (texts) and ImageRefs.
func segs(items ...any) ([]*string, []*data.ImageRef) {
	texts, images := make([]*string, len(items)), make([]*data.ImageRef, len(items))
	for i, it := range items {
		switch it := it.(type) {
		case string:
			texts[i] = data.Str(it)
		case *data.ImageRef:
			images[i] = it
		}
	}
	return texts, images
}

func doc(id string, kind data.Kind, meta string, items ...any) want {
	texts, images := segs(items...)
	return want{rec: &data.Record{ID: id, Kind: kind, Texts: texts, Images: images, Meta: meta}}
}

type got struct {
	row int64
	rec *data.Record
	err error
}

func readAll(t *testing.T, f *File) []got {
	t.Helper()
	var out []got
	for i := range f.NumRowGroups() {
		err := f.ReadRowGroup(context.Background(), i, func(row int64, rec *data.Record, err error) error {
			out = append(out, got{row, rec, err})
			return nil
		})
		if err != nil {
			t.Fatalf("ReadRowGroup(%d): %v", i, err)
		}
	}
	return out
}

func TestLayouts(t *testing.T) {
	img := func(b []byte, path string) *data.ImageRef { return &data.ImageRef{Bytes: b, Path: path} }
	hfMeta := `{"info":{"features":{"thumb":{"_type":"Value"},"picture":{"_type":"Image"},"text":{"dtype":"string","_type":"Value"}}}}`
	tests := []struct {
		name       string
		file       string
		fx         fixture
		opts       Options
		layout     Layout
		groupSizes []int64
		want       []want
	}{
		{
			name: "hf-image snappy, three row groups, extra column",
			file: "hf.parquet",
			fx: fixture{
				schema: fields(col("image", imageType), col("caption", str), col("extra", i64)),
				codec:  arrowCodec["snappy"], rowGroup: 2,
				rows: []row{
					{[]any{fakeImage(0), "0.png"}, "a red circle", int64(7)},
					{[]any{fakeImage(1), nil}, "a blue square", nil},
					{[]any{nil, "http://example.com/2.png"}, "url only", nil},
					{[]any{fakeImage(3), "3.png"}, nil, nil},
					{nil, "no image", nil},
				},
			},
			layout: HFImage, groupSizes: []int64{2, 2, 1},
			want: []want{
				caption("hf-0", img(fakeImage(0), "0.png"), "a red circle", "{}"),
				caption("hf-1", img(fakeImage(1), ""), "a blue square", "{}"),
				fails(data.ErrURLImage, "image"),
				fails(data.ErrNullText, "caption"),
				fails(data.ErrEmptyImage, "image"),
			},
		},
		{
			name: "hf-image zstd, image column from the huggingface metadata, text caption",
			file: "hf2.parquet",
			fx: fixture{
				schema: fields(col("thumb", imageType), col("picture", imageType), col("text", str)),
				codec:  arrowCodec["zstd"], kv: map[string]string{"huggingface": hfMeta},
				rows: []row{{[]any{[]byte("thumb"), "t.png"}, []any{fakeImage(0), "p.png"}, "a picture"}},
			},
			layout: HFImage, groupSizes: []int64{1},
			want: []want{caption("hf2-0", img(fakeImage(0), "p.png"), "a picture", "{}")},
		},
		{
			name: "img2dataset zstd, int32 width and int64 height, status filter",
			file: "i2d.parquet",
			fx: fixture{
				schema: fields(col("key", str), col("jpg", bin), col("caption", str), col("url", str),
					col("width", i32), col("height", i64), col("status", str), col("error_message", str), col("sha256", str)),
				codec: arrowCodec["zstd"], rowGroup: 2,
				rows: []row{
					{"000000000", fakeJPEG(0), "a cat", "http://a/0.jpg", int32(640), int64(480), "success", nil, "ab"},
					{"000000001", nil, nil, "http://a/1.jpg", nil, nil, "failed_to_download", "HTTP 404", nil},
					{"000000002", fakeJPEG(2), "", "http://a/2.jpg", int32(1), int64(2), "success", nil, nil},
					{"000000003", fakeJPEG(3), "a dog", nil, nil, nil, "success", nil, nil},
				},
			},
			layout: Img2Dataset, groupSizes: []int64{2, 2},
			want: []want{
				caption("000000000", img(fakeJPEG(0), "000000000.jpg"), "a cat", `{"url":"http://a/0.jpg","width":640,"height":480}`),
				fails(data.ErrSkippedStatus, "status"),
				fails(data.ErrNullText, "caption"),
				caption("000000003", img(fakeJPEG(3), "000000003.jpg"), "a dog", "{}"),
			},
		},
		{
			name: "img2dataset snappy, txt caption, int64 width, no key or status",
			file: "i2d-txt.parquet",
			fx: fixture{
				schema: fields(col("jpg", bin), col("txt", str), col("width", i64)),
				codec:  arrowCodec["snappy"],
				rows:   []row{{fakeJPEG(0), "caption zero", int64(1 << 40)}, {[]byte{}, "empty image", nil}},
			},
			layout: Img2Dataset, groupSizes: []int64{2},
			want: []want{
				caption("i2d-txt-0", img(fakeJPEG(0), "i2d-txt-0.jpg"), "caption zero", `{"width":1099511627776}`),
				fails(data.ErrEmptyImage, "jpg"),
			},
		},
		{
			name: "obelics snappy, binary images, null elements kept, one row per row group",
			file: "obelics.parquet",
			fx: fixture{
				schema: fields(col("texts", listOf(str)), col("images", listOf(bin)), col("metadata", str), col("general_metadata", str)),
				codec:  arrowCodec["snappy"], rowGroup: 1,
				rows: []row{
					{[]any{"intro", nil, "outro"}, []any{nil, fakeImage(0), nil}, `[{"a":1}]`, `{"url":"u"}`},
					{[]any{nil, "one image, one text"}, []any{fakeImage(1), nil}, nil, nil},
					{[]any{}, []any{}, nil, nil},
					{[]any{"a", "b"}, []any{nil}, nil, nil},
					{[]any{"x", nil}, []any{nil, fakeImage(4)}, "not json", nil},
				},
			},
			layout: Obelics, groupSizes: []int64{1, 1, 1, 1, 1},
			want: []want{
				doc("obelics-0", data.KindInterleaved, `{"general_metadata":{"url":"u"},"metadata":[{"a":1}]}`, "intro", img(fakeImage(0), ""), "outro"),
				doc("obelics-1", data.KindInterleaved, "{}", img(fakeImage(1), ""), "one image, one text"),
				fails(data.ErrBadRecord, ""),
				fails(data.ErrBadRecord, ""),
				doc("obelics-4", data.KindInterleaved, `{"metadata":"not json"}`, "x", img(fakeImage(4), "")),
			},
		},
		{
			name: "obelics zstd, images as URL strings",
			file: "obelics-urls.parquet",
			fx: fixture{
				schema: fields(col("texts", listOf(str)), col("images", listOf(str))),
				codec:  arrowCodec["zstd"],
				rows: []row{
					{[]any{nil, "t"}, []any{"https://example.com/1.jpg", nil}},
					{[]any{"only text"}, []any{nil}},
				},
			},
			layout: Obelics, groupSizes: []int64{2},
			want: []want{
				fails(data.ErrURLImage, "images"),
				doc("obelics-urls-1", data.KindInterleaved, "{}", "only text"),
			},
		},
		{
			name: "obelics, images as nested structs, integer id",
			file: "obelics-structs.parquet",
			fx: fixture{
				schema: fields(col("id", i64), col("texts", listOf(str)), col("images", listOf(imageType))),
				codec:  arrowCodec["none"],
				rows: []row{
					{int64(17), []any{nil, "t"}, []any{[]any{fakeImage(0), "p.png"}, nil}},
					{int64(18), []any{nil, "t"}, []any{[]any{nil, "http://u/1.png"}, nil}},
				},
			},
			layout: Obelics, groupSizes: []int64{2},
			want: []want{
				doc("17", data.KindInterleaved, "{}", img(fakeImage(0), "p.png"), "t"),
				fails(data.ErrURLImage, "images"),
			},
		},
		{
			name: "text zstd, version 2 data pages, null and empty texts",
			file: "text.parquet",
			fx: fixture{
				schema: fields(col("text", str), col("lang", str)),
				codec:  arrowCodec["zstd"], rowGroup: 2, pageV2: true,
				rows: []row{{"hello", "en"}, {nil, "en"}, {"", "en"}, {"bye", nil}},
			},
			layout: Text, groupSizes: []int64{2, 2},
			want: []want{
				doc("text-0", data.KindText, "{}", "hello"),
				fails(data.ErrNullText, "text"),
				fails(data.ErrNullText, "text"),
				doc("text-3", data.KindText, "{}", "bye"),
			},
		},
		{
			name: "text gzip, column named by option, layout forced",
			file: "body.parquet",
			fx: fixture{
				schema: fields(col("body", str)),
				codec:  arrowCodec["gzip"],
				rows:   []row{{"a body"}},
			},
			opts:   Options{Layout: Text, TextColumn: "body"},
			layout: Text, groupSizes: []int64{1},
			want: []want{doc("body-0", data.KindText, "{}", "a body")},
		},
		{
			name: "mmablate canonical written by arrow",
			file: "shard-00000.parquet",
			fx: fixture{
				schema: fields(
					arrow.Field{Name: "id", Type: str}, arrow.Field{Name: "kind", Type: str},
					col("texts", listOf(str)), col("images", listOf(imageType)), col("meta", str)),
				codec: arrowCodec["zstd"], rowGroup: 3,
				rows: []row{
					{"c0", "caption", []any{nil, "cap"}, []any{[]any{fakeImage(0), "a.png"}, nil}, `{"split":"train"}`},
					{"t1", "text", []any{"doc"}, []any{nil}, nil},
					{"v2", "video", []any{"doc"}, []any{nil}, nil},
					{"i3", "interleaved", []any{"a", nil, "b"}, []any{nil, []any{fakeImage(3), nil}, nil}, "{}"},
				},
			},
			layout: Mmablate, groupSizes: []int64{3, 1},
			want: []want{
				doc("c0", data.KindCaption, `{"split":"train"}`, img(fakeImage(0), "a.png"), "cap"),
				doc("t1", data.KindText, "{}", "doc"),
				fails(data.ErrBadRecord, "kind"),
				doc("i3", data.KindInterleaved, "{}", "a", img(fakeImage(3), ""), "b"),
			},
		},
	}
	// The column a stream names when an image fails to decode.
	imageColumns := map[string]string{
		"hf.parquet": "image", "hf2.parquet": "picture", "i2d.parquet": "jpg", "i2d-txt.parquet": "jpg",
		"obelics.parquet": "images", "obelics-urls.parquet": "images", "obelics-structs.parquet": "images",
		"text.parquet": "", "body.parquet": "", "shard-00000.parquet": "images",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeArrow(t, t.TempDir(), tt.file, tt.fx)
			f, err := Open(path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Layout() != tt.layout {
				t.Errorf("layout %q, want %q", f.Layout(), tt.layout)
			}
			if got, want := f.ImageColumn(), imageColumns[tt.file]; got != want {
				t.Errorf("ImageColumn %q, want %q", got, want)
			}
			var sizes []int64
			for i := range f.NumRowGroups() {
				sizes = append(sizes, f.RowGroupRows(i))
			}
			if !reflect.DeepEqual(sizes, tt.groupSizes) {
				t.Errorf("row group sizes %v, want %v", sizes, tt.groupSizes)
			}
			if f.NumRows() != int64(len(tt.want)) {
				t.Errorf("NumRows %d, want %d", f.NumRows(), len(tt.want))
			}
			rows := readAll(t, f)
			if len(rows) != len(tt.want) {
				t.Fatalf("read %d rows, want %d", len(rows), len(tt.want))
			}
			for i, g := range rows {
				w := tt.want[i]
				if g.row != int64(i) {
					t.Errorf("row %d reported as %d", i, g.row)
				}
				if w.err != nil {
					var re *data.RowError
					if !errors.As(g.err, &re) || !errors.Is(g.err, w.err) {
						t.Errorf("row %d: got %v, %v; want a RowError wrapping %q", i, g.rec, g.err, w.err)
						continue
					}
					if re.File != path || re.Row != int64(i) || re.Column != w.column || re.RowGroup < 0 {
						t.Errorf("row %d: RowError %+v, want file %s, row %d, column %q", i, re, path, i, w.column)
					}
					continue
				}
				if g.err != nil {
					t.Errorf("row %d: %v", i, g.err)
					continue
				}
				if !reflect.DeepEqual(g.rec, w.rec) {
					t.Errorf("row %d:\n got %s\nwant %s", i, show(g.rec), show(w.rec))
				}
				if err := g.rec.Validate(); err != nil {
					t.Errorf("row %d: %v", i, err)
				}
			}
		})
	}
}

func show(r *data.Record) string {
	var b strings.Builder
	b.WriteString(r.ID + " " + string(r.Kind) + " " + r.Meta + " [")
	for i := range r.Texts {
		switch {
		case r.Texts[i] != nil:
			b.WriteString(" " + *r.Texts[i])
		case r.Images[i] != nil:
			b.WriteString(" <" + string(r.Images[i].Bytes) + "|" + r.Images[i].Path + ">")
		default:
			b.WriteString(" null")
		}
	}
	return b.String() + " ]"
}

// TestLegacyLists decodes the 2-level list encodings (a bare repeated
// column; a repeated group that is itself the element) that older writers
// and parquet-go's untagged slices produce. Their elements cannot be null,
// so no valid aligned record fits them; the test checks the decoded lists.
func TestLegacyLists(t *testing.T) {
	type image struct {
		Bytes []byte `parquet:"bytes,optional"`
		Path  string `parquet:"path,optional"`
	}
	type legacyDoc struct {
		Texts  []string `parquet:"texts"`
		Images []image  `parquet:"images"`
	}
	path := filepath.Join(t.TempDir(), "legacy.parquet")
	rows := []legacyDoc{
		{Texts: []string{"t0", "t1"}, Images: []image{{Bytes: []byte("img"), Path: "p"}}},
		{},
	}
	if err := pq.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, ok := f.adapt.(*obelicsAdapter)
	if !ok {
		t.Fatalf("layout %s, want obelics", f.Layout())
	}
	cols, err := f.decode(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	n, null, err := a.texts.listLen(cols, 0)
	if err != nil || null {
		t.Fatalf("texts: %d, null %v, %v", n, null, err)
	}
	for j := range n {
		vals, ok := a.texts.elem(cols, 0, j, nil)
		if !ok {
			t.Fatalf("texts[%d] null", j)
		}
		texts = append(texts, string(vals[0].ByteArray()))
	}
	if !reflect.DeepEqual(texts, []string{"t0", "t1"}) {
		t.Errorf("texts %q", texts)
	}
	if n, _, _ := a.images.listLen(cols, 0); n != 1 {
		t.Fatalf("images: %d elements, want 1", n)
	}
	vals, ok := a.images.elem(cols, 0, 0, nil)
	b, okb := a.images.member(vals, "bytes")
	p, okp := a.images.member(vals, "path")
	if !ok || !okb || !okp || string(b.ByteArray()) != "img" || string(p.ByteArray()) != "p" {
		t.Errorf("images[0] = %v %v", vals, ok)
	}
	for _, fl := range []*field{a.texts, a.images} {
		if n, null, err := fl.listLen(cols, 1); n != 0 || null || err != nil {
			t.Errorf("row 1 %s: %d elements, null %v, %v; want an empty list", fl.name, n, null, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	textFile := writeArrow(t, dir, "text.parquet", fixture{schema: fields(col("text", str)), rows: []row{{"x"}}})
	intText := writeArrow(t, dir, "int-text.parquet", fixture{schema: fields(col("text", i64)), rows: []row{{int64(1)}}})
	flatObelics := writeArrow(t, dir, "flat.parquet", fixture{schema: fields(col("texts", str), col("images", listOf(bin))), rows: []row{{"x", []any{}}}})
	badImages := writeArrow(t, dir, "bad-images.parquet", fixture{
		schema: fields(col("id", str), col("kind", str), col("texts", listOf(str)), col("images", listOf(str))),
		rows:   []row{{"a", "text", []any{"x"}, []any{nil}}},
	})
	unknown := writeArrow(t, dir, "unknown.parquet", fixture{schema: fields(col("foo", i64)), rows: []row{{int64(1)}}})
	brotli := writeArrow(t, dir, "brotli.parquet", fixture{schema: fields(col("text", str)), codec: arrowCodec["brotli"], rows: []row{{"x"}}})

	good, err := os.ReadFile(textFile)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func(name string, edit func([]byte) []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, edit(append([]byte(nil), good...)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := corrupt("truncated.parquet", func(b []byte) []byte { return b[:len(b)-10] })
	magic := corrupt("magic.parquet", func(b []byte) []byte { copy(b, "PAR2"); return b })
	absurd := corrupt("absurd.parquet", func(b []byte) []byte {
		copy(b[len(b)-8:], []byte{0x00, 0xff, 0xff, 0xff})
		return b
	})
	tiny := corrupt("tiny.parquet", func(b []byte) []byte { return b[:5] })
	footerGarbage := corrupt("garbage-footer.parquet", func(b []byte) []byte {
		n := int(b[len(b)-8]) | int(b[len(b)-7])<<8
		for i := len(b) - 8 - n; i < len(b)-8; i++ {
			b[i] = 0xf9 // list headers claiming huge sizes
		}
		return b
	})

	tests := []struct {
		name     string
		path     string
		opts     Options
		sentinel error
		contains []string
	}{
		{"missing column", textFile, Options{Layout: Img2Dataset}, data.ErrMissingColumn, []string{`"jpg"`, "[text]"}},
		{"mistyped text", intText, Options{Layout: Text}, data.ErrColumnType, []string{"text", "INT64"}},
		{"texts not a list", flatObelics, Options{}, data.ErrColumnType, []string{"texts", "not a list"}},
		{"canonical images of strings", badImages, Options{}, data.ErrColumnType, []string{"images"}},
		{"undetectable", unknown, Options{}, nil, []string{"[foo]", "--layout"}},
		{"unknown layout", textFile, Options{Layout: "webdataset"}, nil, []string{`"webdataset"`}},
		{"brotli", brotli, Options{}, nil, []string{"column text uses BROTLI compression", "snappy, zstd or gzip"}},
		{"truncated", truncated, Options{}, nil, []string{"truncated"}},
		{"wrong magic", magic, Options{}, nil, []string{"not a Parquet file"}},
		{"absurd footer length", absurd, Options{}, nil, []string{"footer length"}},
		{"tiny", tiny, Options{}, nil, []string{"only 5 bytes"}},
		{"garbage footer", footerGarbage, Options{}, nil, []string{"corrupt footer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.path, tt.opts)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("%v does not wrap %q", err, tt.sentinel)
			}
			for _, s := range append(tt.contains, tt.path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestReadRowGroupStops(t *testing.T) {
	path := writeArrow(t, t.TempDir(), "text.parquet", fixture{
		schema: fields(col("text", str)), rowGroup: 2,
		rows: []row{{"a"}, {"b"}, {"c"}},
	})
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := errors.New("stop")
	calls := 0
	err = f.ReadRowGroup(context.Background(), 0, func(int64, *data.Record, error) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("callback error: got %v after %d calls, want stop after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.ReadRowGroup(ctx, 1, func(int64, *data.Record, error) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if err := f.ReadRowGroup(context.Background(), 2, nil); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("row group 2 of 2: %v", err)
	}
}

func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.parquet", "a.parquet", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ListFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")}; !reflect.DeepEqual(got, want) {
		t.Errorf("plain dir: %v, want %v", got, want)
	}
	manifest := `{"schema_version":1,"shards":[{"name":"b.parquet"},{"name":"a.parquet"}]}`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ListFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "b.parquet"), filepath.Join(dir, "a.parquet")}; !reflect.DeepEqual(got, want) {
		t.Errorf("dataset dir: %v, want manifest order %v", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"shards":[{"name":"../x.parquet"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListFiles(dir); err == nil || !strings.Contains(err.Error(), "../x.parquet") {
		t.Errorf("escaping shard name: %v", err)
	}
	if got, err := ListFiles(filepath.Join(dir, "a.parquet")); err != nil || len(got) != 1 {
		t.Errorf("single file: %v, %v", got, err)
	}
	if _, err := ListFiles(t.TempDir()); err == nil {
		t.Error("empty dir: no error")
	}
}

func TestColumns(t *testing.T) {
	path := writeArrow(t, t.TempDir(), "c.parquet", fixture{
		schema: fields(col("image", imageType), col("texts", listOf(str)), col("images", listOf(imageType)),
			col("width", i32), col("n", i64), col("raw", bin)),
		rows: []row{{nil, nil, nil, nil, nil, nil}},
	})
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []Column{
		{"image", "struct{bytes binary, path string}"},
		{"texts", "list<string>"},
		{"images", "list<struct{bytes binary, path string}>"},
		{"width", "int32"},
		{"n", "int64"},
		{"raw", "binary"},
	}
	if got := f.Columns(); !reflect.DeepEqual(got, want) {
		t.Errorf("Columns() = %v, want %v", got, want)
	}
}

// BenchmarkReadRowGroup measures adapting rows to records: hf-image rows
// with 16 KiB images (bytes/s counts image bytes) and text rows of ~500 bytes.
func BenchmarkReadRowGroup(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	image := make([]byte, 16<<10)
	for i := range image {
		image[i] = byte(rng.Uint32())
	}
	text := strings.Repeat("a small red circle above a blue square. ", 12)
	benches := []struct {
		name      string
		fx        fixture
		bytesEach int64
	}{
		{"hf-image", fixture{schema: fields(col("image", imageType), col("caption", str)), codec: arrowCodec["snappy"], rowGroup: 256}, int64(len(image))},
		{"text", fixture{schema: fields(col("text", str)), codec: arrowCodec["zstd"], rowGroup: 4096}, int64(len(text))},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			const rows = 2048
			for i := range rows {
				if bb.name == "text" {
					bb.fx.rows = append(bb.fx.rows, row{text})
				} else {
					bb.fx.rows = append(bb.fx.rows, row{[]any{image, "x.png"}, text[:40+i%40]})
				}
			}
			f, err := Open(writeArrow(b, b.TempDir(), "bench.parquet", bb.fx), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(rows * bb.bytesEach)
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				for g := range f.NumRowGroups() {
					if err := f.ReadRowGroup(context.Background(), g, func(_ int64, rec *data.Record, err error) error {
						n++
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
				if n != rows {
					b.Fatalf("%d rows", n)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestConcurrentRowGroups reads every row group from its own goroutine and
// checks each sees exactly what a sequential read sees.
func TestConcurrentRowGroups(t *testing.T) {
	var rows []row
	for i := range 40 {
		rows = append(rows, row{[]any{nil, fmt.Sprint("text ", i)}, []any{[]any{fakeImage(i), "p"}, nil}})
	}
	path := writeArrow(t, t.TempDir(), "docs.parquet", fixture{
		schema: fields(col("texts", listOf(str)), col("images", listOf(imageType))),
		codec:  arrowCodec["zstd"], rowGroup: 5, rows: rows,
	})
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := readAll(t, f)
	perGroup := make([][]got, f.NumRowGroups())
	errs := make([]error, f.NumRowGroups())
	var wg sync.WaitGroup
	for g := range f.NumRowGroups() {
		wg.Go(func() {
			errs[g] = f.ReadRowGroup(context.Background(), g, func(row int64, rec *data.Record, err error) error {
				perGroup[g] = append(perGroup[g], got{row, rec, err})
				return nil
			})
		})
	}
	wg.Wait()
	var all []got
	for g := range perGroup {
		if errs[g] != nil {
			t.Fatalf("row group %d: %v", g, errs[g])
		}
		all = append(all, perGroup[g]...)
	}
	if !reflect.DeepEqual(all, want) {
		t.Error("concurrent reads differ from a sequential read")
	}
}
