package layouts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Fixtures are written with Apache Arrow's Parquet writer, a different
// implementation from the parquet-go reader under test, so the tests catch
// encodings one library writes and the other would not.

// row holds a fixture row's values in schema order: nil, string, []byte,
// int32, int64, []any for lists and []any in member order for structs.
type row []any

type fixture struct {
	schema   *arrow.Schema
	rows     []row
	codec    compress.Compression
	rowGroup int64             // rows per row group
	kv       map[string]string // key-value metadata
	pageV2   bool              // write data pages of format version 2
}

// writeArrow writes f as a Parquet file in dir and returns its path.
func writeArrow(t testing.TB, dir, name string, f fixture) string {
	t.Helper()
	b := writeArrowBytes(t, f)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeArrowBytes(t testing.TB, f fixture) []byte {
	t.Helper()
	mem := memory.NewGoAllocator()
	rb := array.NewRecordBuilder(mem, f.schema)
	defer rb.Release()
	for _, r := range f.rows {
		if len(r) != len(f.schema.Fields()) {
			t.Fatalf("fixture row has %d values, schema %d fields", len(r), len(f.schema.Fields()))
		}
		for i, v := range r {
			appendValue(t, rb.Field(i), v)
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()

	rowGroup := f.rowGroup
	if rowGroup == 0 {
		rowGroup = 1 << 20
	}
	version := parquet.DataPageV1
	if f.pageV2 {
		version = parquet.DataPageV2
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(f.codec),
		parquet.WithMaxRowGroupLength(rowGroup),
		parquet.WithDataPageVersion(version),
	)
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(f.schema, &buf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range f.kv {
		if err := w.AppendKeyValueMetadata(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func appendValue(t testing.TB, b array.Builder, v any) {
	t.Helper()
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.BinaryBuilder:
		b.Append(v.([]byte))
	case *array.Int32Builder:
		b.Append(v.(int32))
	case *array.Int64Builder:
		b.Append(v.(int64))
	case *array.ListBuilder:
		b.Append(true)
		for _, e := range v.([]any) {
			appendValue(t, b.ValueBuilder(), e)
		}
	case *array.StructBuilder:
		b.Append(true)
		for i, e := range v.([]any) {
			appendValue(t, b.FieldBuilder(i), e)
		}
	default:
		t.Fatalf("fixture: no appender for %T", b)
	}
}

func fields(fs ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fs, nil) }

func col(name string, typ arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: typ, Nullable: true}
}

var (
	str        = arrow.BinaryTypes.String
	bin        = arrow.BinaryTypes.Binary
	i32        = arrow.PrimitiveTypes.Int32
	i64        = arrow.PrimitiveTypes.Int64
	imageType  = arrow.StructOf(col("bytes", bin), col("path", str))
	listOf     = func(t arrow.DataType) arrow.DataType { return arrow.ListOf(t) }
	fakeImage  = func(i int) []byte { return fmt.Appendf(nil, "\x89PNG\r\n\x1a\nimage-%d", i) }
	fakeJPEG   = func(i int) []byte { return fmt.Appendf(nil, "\xff\xd8\xffjpeg-%d", i) }
	arrowCodec = map[string]compress.Compression{
		"snappy": compress.Codecs.Snappy, "zstd": compress.Codecs.Zstd, "gzip": compress.Codecs.Gzip,
		"brotli": compress.Codecs.Brotli, "none": compress.Codecs.Uncompressed,
	}
)
