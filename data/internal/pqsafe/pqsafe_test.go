package pqsafe

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// testRow has the shape of mmablate's canonical schema: strings, a list of
// strings and a list of structs.
type testRow struct {
	ID     string      `parquet:"id"`
	Texts  []string    `parquet:"texts,list"`
	Images []testImage `parquet:"images,list"`
}

type testImage struct {
	Bytes []byte `parquet:"bytes"`
	Path  string `parquet:"path"`
}

// writeFile returns a Parquet file of rows rows, rowsPerGroup to a row group.
func writeFile(t testing.TB, rows, rowsPerGroup int, codec compress.Codec) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[testRow](&buf, parquet.Compression(codec))
	for i := range rows {
		r := testRow{ID: strings.Repeat("i", i+1), Texts: []string{"a caption", ""},
			Images: []testImage{{Bytes: bytes.Repeat([]byte{byte(i)}, 30), Path: "p.jpg"}}}
		if _, err := w.Write([]testRow{r}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%rowsPerGroup == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// footerOf returns the Thrift footer of a Parquet file.
func footerOf(b []byte) []byte {
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	return b[len(b)-8-n : len(b)-8]
}

func TestCheckFooter(t *testing.T) {
	real := footerOf(writeFile(t, 20, 1, &parquet.Snappy))
	nested := bytes.Repeat([]byte{0x1c}, 100) // field 1, type struct, a hundred levels deep
	tests := []struct {
		name    string
		footer  []byte
		wantErr string
	}{
		{"real footer", real, ""},
		{"empty struct", []byte{0}, ""},
		{"truncated", real[:len(real)/2], "corrupt footer"},
		// field 1: list of 2³¹-1 structs, declared in 7 bytes.
		{"huge list", []byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07}, "elements declared"},
		// field 1: binary of 2³¹-1 bytes.
		{"huge binary", []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0x07}, "end of footer"},
		// field 1: map of 2⁶³ entries, which must not wrap to 0 when doubled.
		{"huge map", []byte{0x1b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x55}, "elements declared"},
		{"deep nesting", nested, "nested deeper"},
		{"unknown type", []byte{0x1e}, "unknown Thrift type"},
		// A list of 900 000 empty structs fits in its bytes but would
		// decode to more than the budget.
		{"amplification", append(append([]byte{0x19, 0xfc, 0xa0, 0xf7, 0x36}, make([]byte, 900_000)...), 0), "MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckFooter(tt.footer)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckFooter = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestStructElemCostCoversFormat keeps the budget honest across parquet-go
// upgrades: every struct that appears as a list element in FileMetaData
// must fit in structElemCost.
func TestStructElemCostCoversFormat(t *testing.T) {
	sizes := map[string]uintptr{
		"SchemaElement":     unsafe.Sizeof(format.SchemaElement{}),
		"RowGroup":          unsafe.Sizeof(format.RowGroup{}),
		"ColumnChunk":       unsafe.Sizeof(format.ColumnChunk{}),
		"PageEncodingStats": unsafe.Sizeof(format.PageEncodingStats{}),
		"KeyValue":          unsafe.Sizeof(format.KeyValue{}),
		"SortingColumn":     unsafe.Sizeof(format.SortingColumn{}),
		"ColumnOrder":       unsafe.Sizeof(format.ColumnOrder{}),
	}
	for name, size := range sizes {
		if size > structElemCost {
			t.Errorf("format.%s is %d bytes, more than structElemCost %d", name, size, structElemCost)
		}
	}
}

func TestOpen(t *testing.T) {
	good := writeFile(t, 6, 2, &parquet.Zstd)
	edit := func(fn func(b []byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	tests := []struct {
		name    string
		b       []byte
		wantErr string
	}{
		{"good", good, ""},
		{"tiny", good[:5], "only 5 bytes"},
		{"wrong magic", edit(func(b []byte) []byte { copy(b, "PAR2"); return b }), "not a Parquet file"},
		{"truncated", good[:len(good)-10], "truncated"},
		{"encrypted", edit(func(b []byte) []byte { copy(b[len(b)-4:], "PARE"); return b }), "encrypted"},
		{"absurd footer length", edit(func(b []byte) []byte {
			copy(b[len(b)-8:], []byte{0x00, 0xff, 0xff, 0xff})
			return b
		}), "footer length"},
		{"garbage footer", edit(func(b []byte) []byte {
			f := footerOf(b)
			for i := range f {
				f[i] = 0xf9 // list headers claiming huge sizes
			}
			return b
		}), "corrupt footer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(bytes.NewReader(tt.b), int64(len(tt.b)))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if f.NumRows() != 6 || len(f.RowGroups()) != 3 {
					t.Errorf("opened %d rows in %d row groups, want 6 in 3", f.NumRows(), len(f.RowGroups()))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestCheckMetadata edits a decoded footer the ways a corrupt file could.
func TestCheckMetadata(t *testing.T) {
	b := writeFile(t, 6, 2, &parquet.Snappy)
	dataEnd := int64(len(b) - 8 - len(footerOf(b)))
	tests := []struct {
		name string
		edit func(md *format.FileMetaData)
		want string
	}{
		{"intact", func(*format.FileMetaData) {}, ""},
		{"negative rows", func(md *format.FileMetaData) { md.RowGroups[1].NumRows = -1 }, "negative row count"},
		{"rows past num_rows", func(md *format.FileMetaData) { md.RowGroups[0].NumRows = 1 << 62 }, "more rows than"},
		{"num_rows too large", func(md *format.FileMetaData) { md.NumRows++ }, "the footer says 7"},
		{"missing chunk", func(md *format.FileMetaData) { md.RowGroups[0].Columns = md.RowGroups[0].Columns[1:] }, "column chunks"},
		{"chunk past data", func(md *format.FileMetaData) { md.RowGroups[2].Columns[0].MetaData.DataPageOffset = dataEnd }, "outside the data section"},
		{"external chunk", func(md *format.FileMetaData) { md.RowGroups[0].Columns[0].FilePath = "other.parquet" }, "another file"},
	}
	for _, tt := range tests {
		var md format.FileMetaData
		if err := thrift.Unmarshal(&thrift.CompactProtocol{}, footerOf(b), &md); err != nil {
			t.Fatal(err)
		}
		tt.edit(&md)
		err := checkMetadata(&md, 4, dataEnd)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestCheckPages walks every column chunk of files written with each
// codec mmablate reads.
func TestCheckPages(t *testing.T) {
	for _, codec := range []compress.Codec{&parquet.Uncompressed, &parquet.Snappy, &parquet.Gzip, &parquet.Zstd} {
		b := writeFile(t, 6, 2, codec)
		f, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckCodecs(f.Metadata()); err != nil {
			t.Error(err)
		}
		for _, rg := range f.Metadata().RowGroups {
			for _, cc := range rg.Columns {
				if err := CheckPages(bytes.NewReader(b), &cc.MetaData); err != nil {
					t.Errorf("%s: %v", codec, err)
				}
			}
		}
	}
	lz4 := writeFile(t, 2, 2, &parquet.Lz4Raw)
	f, err := Open(bytes.NewReader(lz4), int64(len(lz4)))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCodecs(f.Metadata()); err == nil || !strings.Contains(err.Error(), "LZ4") {
		t.Errorf("CheckCodecs(LZ4) = %v, want a refusal", err)
	}
}

// TestDecodedSizeBounds checks that compressed pages whose headers promise
// more than maxPageBytes are refused before any decoder allocates.
func TestDecodedSizeBounds(t *testing.T) {
	zstdFrame := func(desc byte, rest ...byte) []byte {
		return append([]byte{0x28, 0xb5, 0x2f, 0xfd, desc}, rest...)
	}
	rle := func(size uint32, last bool) []byte { // an RLE block of size bytes
		h := size<<3 | 1<<1
		if last {
			h |= 1
		}
		return []byte{byte(h), byte(h >> 8), byte(h >> 16), 'x'}
	}
	var bomb []byte
	bomb = append(bomb, zstdFrame(0x00, 0x00)...) // window descriptor, no size
	for range 200 {
		bomb = append(bomb, rle(1<<20+1<<19, false)...)
	}
	bomb = append(bomb, rle(1, true)...)
	small := append(zstdFrame(0x20, 5), rle(5, true)...) // single segment, 1-byte size
	tests := []struct {
		name  string
		codec format.CompressionCodec
		b     []byte
		want  string // "" for no error
	}{
		{"snappy ok", format.Snappy, []byte{0x05, 0, 0, 0, 0, 0}, ""},
		{"snappy 4 GiB", format.Snappy, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, "over the"},
		{"snappy no header", format.Snappy, []byte{0xff}, "corrupt snappy"},
		{"zstd ok", format.Zstd, small, ""},
		{"zstd declared 1 TiB", format.Zstd, zstdFrame(0xe0, 0, 0, 0, 0, 0, 1, 0, 0), "declares"},
		{"zstd RLE bomb", format.Zstd, bomb, "over the"},
		{"zstd bad magic", format.Zstd, []byte("not zstd"), "frame magic"},
		{"zstd truncated", format.Zstd, small[:7], "ends inside"},
		{"gzip garbage", format.Gzip, []byte("not gzip at all"), "corrupt gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDecodedSize(bytes.NewReader(tt.b), tt.codec, 0, int64(len(tt.b)))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckSchemaDepth(t *testing.T) {
	group := func(n int32) format.SchemaElement {
		return format.SchemaElement{NumChildren: thrift.New(n)}
	}
	leaf := format.SchemaElement{Type: thrift.New(format.ByteArray)}
	chain := func(depth int) []format.SchemaElement {
		var s []format.SchemaElement
		for range depth {
			s = append(s, group(1))
		}
		return append(s, leaf)
	}
	tests := []struct {
		name   string
		schema []format.SchemaElement
		want   string
	}{
		{"list of structs", []format.SchemaElement{group(2), leaf, group(1), group(2), leaf, leaf}, ""},
		{"64 levels", chain(64), ""},
		{"65 levels", chain(65), "deeper than 64"},
		{"missing child", []format.SchemaElement{group(2), leaf}, "ends inside a group"},
		{"extra element", []format.SchemaElement{group(1), leaf, leaf}, "outside the tree"},
		{"empty", nil, "empty schema"},
	}
	for _, tt := range tests {
		err := checkSchemaDepth(tt.schema)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}
