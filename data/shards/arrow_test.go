package shards

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/mmablate/mmablate/data"
)

// TestArrowReadsCanonicalSchema reads a shard with Apache Arrow, the reader
// behind pandas and Hugging Face datasets: the lists must come back as
// list<string> and list<struct<bytes, path>> with null elements null.
func TestArrowReadsCanonicalSchema(t *testing.T) {
	recs := append(testRecords(3, 20, 9),
		&data.Record{ID: "empty", Kind: data.KindCaption, Texts: []*string{nil, data.Str("")}, Images: []*data.ImageRef{{Bytes: []byte{7}, Path: "p.png"}, nil}})
	dir := t.TempDir()
	m := writeDataset(t, dir, Options{}, recs)

	pf, err := file.OpenParquetFile(filepath.Join(dir, m.Shards[0].Name), false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()

	schema := tbl.Schema()
	textsType, ok := fieldType(t, schema, "texts").(*arrow.ListType)
	if !ok || !arrow.TypeEqual(textsType.Elem(), arrow.BinaryTypes.String) || !textsType.ElemField().Nullable {
		t.Fatalf("texts is %v, want list<nullable string>", fieldType(t, schema, "texts"))
	}
	imagesType, ok := fieldType(t, schema, "images").(*arrow.ListType)
	if !ok || !imagesType.ElemField().Nullable {
		t.Fatalf("images is %v, want list<nullable struct>", fieldType(t, schema, "images"))
	}
	st, ok := imagesType.Elem().(*arrow.StructType)
	if !ok || st.NumFields() != 2 || st.Field(0).Name != "bytes" || !arrow.TypeEqual(st.Field(0).Type, arrow.BinaryTypes.Binary) ||
		st.Field(1).Name != "path" || !arrow.TypeEqual(st.Field(1).Type, arrow.BinaryTypes.String) {
		t.Fatalf("images element is %v, want struct<bytes: binary, path: string>", imagesType.Elem())
	}

	texts := column(t, tbl, "texts").(*array.List)
	images := column(t, tbl, "images").(*array.List)
	ids := column(t, tbl, "id").(*array.String)
	textValues := texts.ListValues().(*array.String)
	imageValues := images.ListValues().(*array.Struct)
	imageBytes := imageValues.Field(0).(*array.Binary)
	imagePaths := imageValues.Field(1).(*array.String)
	for i, r := range recs {
		if ids.Value(i) != r.ID {
			t.Fatalf("row %d: id %q, want %q", i, ids.Value(i), r.ID)
		}
		start, end := texts.ValueOffsets(i)
		if int(end-start) != len(r.Texts) {
			t.Fatalf("%s: %d texts, want %d", r.ID, end-start, len(r.Texts))
		}
		for j, want := range r.Texts {
			k := int(start) + j
			if textValues.IsNull(k) != (want == nil) || want != nil && textValues.Value(k) != *want {
				t.Errorf("%s: texts[%d] null=%v %q, want %v", r.ID, j, textValues.IsNull(k), textValues.Value(k), want)
			}
		}
		start, end = images.ValueOffsets(i)
		if int(end-start) != len(r.Images) {
			t.Fatalf("%s: %d images, want %d", r.ID, end-start, len(r.Images))
		}
		for j, want := range r.Images {
			k := int(start) + j
			if imageValues.IsNull(k) != (want == nil) {
				t.Errorf("%s: images[%d] null=%v, want %v", r.ID, j, imageValues.IsNull(k), want == nil)
				continue
			}
			if want != nil && (!bytes.Equal(imageBytes.Value(k), want.Bytes) || imagePaths.Value(k) != want.Path) {
				t.Errorf("%s: images[%d] = {%d bytes, %q}, want {%d bytes, %q}", r.ID, j, len(imageBytes.Value(k)), imagePaths.Value(k), len(want.Bytes), want.Path)
			}
		}
	}
}

func fieldType(t *testing.T, s *arrow.Schema, name string) arrow.DataType {
	t.Helper()
	fields, ok := s.FieldsByName(name)
	if !ok || len(fields) != 1 {
		t.Fatalf("no column %q in %v", name, s)
	}
	return fields[0].Type
}

// column returns a column's single chunk (the shard has one row group).
func column(t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q", name)
	}
	chunks := tbl.Column(idx[0]).Data().Chunks()
	if len(chunks) != 1 {
		t.Fatalf("column %q has %d chunks, want 1", name, len(chunks))
	}
	return chunks[0]
}
