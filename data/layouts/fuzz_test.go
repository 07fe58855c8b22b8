package layouts

import (
	"bytes"
	"context"
	"errors"
	"reflect"
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

// FuzzAdapters fuzzes the row adapters themselves: it writes well-formed
// files of every layout (with Arrow's writer) from fuzzed values — texts,
// image bytes, paths, ids, statuses, kinds, which values are null, how many
// segments a document has and which are images — and reads them back.
// Every row must come back as exactly one of a record or a *data.RowError
// that names this file, the row, a column of the file and a known reason; a
// record must carry the fuzzed values unchanged; and a row whose values are
// all valid must come back as a record.
func FuzzAdapters(f *testing.F) {
	f.Add(uint8(0), "a caption", []byte("\x89PNG\r\n\x1a\nimage"), "p.png", "success", uint8(0), uint8(2))
	f.Add(uint8(1), "a cat", []byte("\xff\xd8\xffjpeg"), "000000001", "success", uint8(0), uint8(0))
	f.Add(uint8(1), "", []byte("http://x/1.jpg"), "", "failed_to_download", uint8(5), uint8(1))
	f.Add(uint8(2), "some text", []byte("img"), "", "", uint8(0), uint8(0x35))
	f.Add(uint8(2), "t", []byte{}, "", "", uint8(16), uint8(0x12))
	f.Add(uint8(3), "hello", []byte(nil), "", "", uint8(0), uint8(0))
	f.Add(uint8(4), "doc", []byte("img"), "id-7", "interleaved", uint8(0), uint8(0x2b))
	f.Add(uint8(4), "doc", []byte("img"), "", "video", uint8(1), uint8(0x11))
	f.Add(uint8(4), "doc", []byte{}, "id-8", "caption", uint8(0), uint8(0x0a))
	f.Fuzz(func(t *testing.T, layout uint8, text string, img []byte, path, status string, nulls, shape uint8) {
		null := func(bit int) bool { return nulls&(1<<bit) != 0 }
		orNil := func(v any, bit int) any {
			if null(bit) {
				return nil
			}
			return v
		}
		// A document of shape&7 segments; bit 3+j of shape makes segment j
		// text (the rest are images); null bit 4 drops the last image
		// element, so the lists are no longer aligned.
		n := int(shape & 7)
		isText := func(j int) bool { return shape&(1<<(3+j%5)) != 0 }
		segText := func(j int) string { return text + string(rune('0'+j)) }
		docLists := func(image func() any) (texts, images []any) {
			for j := range n {
				if isText(j) {
					texts, images = append(texts, segText(j)), append(images, nil)
				} else {
					texts, images = append(texts, nil), append(images, image())
				}
			}
			if null(4) && len(images) > 0 {
				images = images[:len(images)-1]
			}
			return texts, images
		}
		aligned := n > 0 && !null(4)
		var docImages bool
		for j := range n {
			docImages = docImages || !isText(j)
		}
		isURL := bytes.HasPrefix(img, []byte("http://")) || bytes.HasPrefix(img, []byte("https://"))
		hasText := !null(0) && text != ""

		var fx fixture
		var valid bool
		var want *data.Record // the row's record, when it is one
		id := path
		if id == "" {
			id = "fuzz-0"
		}
		switch layout % 5 {
		case 0: // hf-image
			var image any
			if !null(3) {
				image = []any{orNil(img, 1), orNil(path, 2)}
			}
			fx = fixture{schema: fields(col("image", imageType), col("caption", str)), rows: []row{{image, orNil(text, 0)}}}
			valid = !null(3) && !null(1) && len(img) > 0 && hasText
			p := path
			if null(2) {
				p = ""
			}
			want = &data.Record{ID: "fuzz-0", Kind: data.KindCaption, Meta: "{}", Texts: []*string{nil, &text}, Images: []*data.ImageRef{{Bytes: img, Path: p}, nil}}
		case 1: // img2dataset
			fx = fixture{schema: fields(col("key", str), col("jpg", bin), col("caption", str), col("status", str)),
				rows: []row{{orNil(path, 2), orNil(img, 1), orNil(text, 0), orNil(status, 3)}}}
			valid = !null(3) && status == "success" && !null(1) && len(img) > 0 && hasText
			if null(2) {
				id = "fuzz-0"
			}
			want = &data.Record{ID: id, Kind: data.KindCaption, Meta: "{}", Texts: []*string{nil, &text}, Images: []*data.ImageRef{{Bytes: img, Path: id + ".jpg"}, nil}}
		case 2: // obelics, images as binary
			texts, images := docLists(func() any { return img })
			fx = fixture{schema: fields(col("texts", listOf(str)), col("images", listOf(bin))), rows: []row{{texts, images}}}
			valid = aligned && (!docImages || len(img) > 0 && !isURL)
			want = &data.Record{ID: "fuzz-0", Kind: data.KindInterleaved, Meta: "{}"}
		case 3: // text
			fx = fixture{schema: fields(col("text", str)), rows: []row{{orNil(text, 0)}}}
			valid = hasText
			want = &data.Record{ID: "fuzz-0", Kind: data.KindText, Meta: "{}", Texts: []*string{&text}, Images: []*data.ImageRef{nil}}
		case 4: // mmablate, images as {bytes, path} structs
			texts, images := docLists(func() any { return []any{img, path} })
			fx = fixture{schema: fields(col("id", str), col("kind", str), col("texts", listOf(str)), col("images", listOf(imageType)), col("meta", str)),
				rows: []row{{orNil(path, 2), orNil(status, 3), texts, images, "{}"}}}
			_, kindErr := data.ParseKind(status)
			valid = aligned && !null(2) && path != "" && !null(3) && kindErr == nil
			want = &data.Record{ID: path, Kind: data.Kind(status), Meta: "{}"}
		}
		if layout%5 == 2 || layout%5 == 4 {
			for j := range n {
				if isText(j) {
					want.Texts, want.Images = append(want.Texts, data.Str(segText(j))), append(want.Images, nil)
				} else {
					im := &data.ImageRef{Bytes: img}
					if layout%5 == 4 {
						im.Path = path
					}
					want.Texts, want.Images = append(want.Texts, nil), append(want.Images, im)
				}
			}
		}
		fx.codec = arrowCodec["none"]
		b := writeArrowBytes(t, fx)
		file, err := openAt(bytes.NewReader(b), int64(len(b)), "fuzz.parquet", Options{Layout: concreteLayouts[[]int{3, 2, 1, 4, 0}[layout%5]]})
		if err != nil {
			t.Fatalf("layout %d: Open of a well-formed file: %v", layout%5, err)
		}
		var rows int
		err = file.ReadRowGroup(context.Background(), 0, func(row int64, rec *data.Record, err error) error {
			rows++
			var re *data.RowError
			switch {
			case (rec == nil) == (err == nil):
				t.Fatalf("row %d: record %v and error %v: want exactly one", row, rec, err)
			case err != nil && !errors.As(err, &re):
				t.Fatalf("row %d: %v is not a RowError", row, err)
			case err != nil:
				if re.File != "fuzz.parquet" || re.RowGroup != 0 || re.Row != row || data.Reason(err) == "other" ||
					(re.Column != "" && file.pf.Root().Column(re.Column) == nil) {
					t.Fatalf("row %d: RowError %+v (%v): want this file, row group 0, row %d, a column of the file and a known reason", row, re, err, row)
				}
				if valid {
					t.Fatalf("row %d: valid values refused: %v", row, err)
				}
			default:
				if verr := rec.Validate(); verr != nil {
					t.Fatalf("row %d: invalid record: %v", row, verr)
				}
				if !reflect.DeepEqual(rec, want) {
					t.Fatalf("row %d:\n got %s\nwant %s", row, show(rec), show(want))
				}
			}
			return nil
		})
		if err != nil || rows != 1 {
			t.Fatalf("ReadRowGroup: %d rows, %v", rows, err)
		}
	})
}
