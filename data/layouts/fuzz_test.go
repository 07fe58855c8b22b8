package layouts

import (
	"bytes"
	"context"
	"errors"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
)

// FuzzOpenRead feeds whole Parquet files through Open and every row group's
// adapter. Corrupt bytes must give errors: no panic, no allocation sized by
// a corrupt length.
func FuzzOpenRead(f *testing.F) {
	seeds := []fixture{
		{schema: fields(col("image", imageType), col("caption", str)), rowGroup: 1, codec: arrowCodec["snappy"],
			rows: []row{{[]any{fakeImage(0), "0.png"}, "c"}, {nil, nil}}},
		{schema: fields(col("key", str), col("jpg", bin), col("txt", str), col("status", str), col("width", i32)), codec: arrowCodec["zstd"],
			rows: []row{{"k", fakeJPEG(0), "c", "success", int32(3)}, {"k2", nil, nil, "failed", nil}}},
		{schema: fields(col("texts", listOf(str)), col("images", listOf(imageType)), col("metadata", str)), codec: arrowCodec["none"],
			rows: []row{{[]any{"a", nil}, []any{nil, []any{fakeImage(1), nil}}, "[]"}, {nil, []any{}, nil}}},
		{schema: fields(col("id", str), col("kind", str), col("texts", listOf(str)), col("images", listOf(imageType)), col("meta", str)), codec: arrowCodec["none"],
			rows: []row{{"a", "caption", []any{nil, "c"}, []any{[]any{fakeImage(2), "p"}, nil}, "{}"}}},
		{schema: fields(col("text", str)), codec: arrowCodec["none"], rows: []row{{"hello"}, {nil}}},
	}
	for _, s := range seeds {
		f.Add(writeArrowBytes(f, s))
	}
	type legacy struct {
		Texts  []string `parquet:"texts"`
		Images [][]byte `parquet:"images"`
	}
	var buf bytes.Buffer
	if err := pq.Write(&buf, []legacy{{Texts: []string{"a"}, Images: [][]byte{[]byte("b")}}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())

	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := openAt(bytes.NewReader(b), int64(len(b)), "fuzz.parquet", Options{})
		if err != nil {
			return
		}
		for i := range file.NumRowGroups() {
			_ = file.ReadRowGroup(context.Background(), i, func(row int64, rec *data.Record, err error) error {
				var re *data.RowError
				switch {
				case err != nil && !errors.As(err, &re):
					t.Fatalf("row %d: %v is not a RowError", row, err)
				case err == nil && rec == nil:
					t.Fatalf("row %d: neither record nor error", row)
				case err == nil:
					if verr := rec.Validate(); verr != nil && file.Layout() != Mmablate {
						t.Fatalf("row %d: adapted record invalid: %v", row, verr)
					}
				}
				return nil
			})
		}
	})
}
