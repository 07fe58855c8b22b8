package layouts_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/shards"
)

// TestShardsRoundTrip reads what the canonical writer writes: every record
// comes back equal, in order, across shards and row groups, for each codec.
func TestShardsRoundTrip(t *testing.T) {
	var recs []*data.Record
	for i := range 11 {
		id := fmt.Sprintf("r%02d", i)
		img := &data.ImageRef{Bytes: fmt.Appendf(nil, "\x89PNG image %d", i), Path: id + ".png"}
		switch i % 3 {
		case 0:
			recs = append(recs, &data.Record{ID: id, Kind: data.KindCaption, Meta: `{"i":1}`,
				Texts: []*string{nil, data.Str("caption " + id)}, Images: []*data.ImageRef{img, nil}})
		case 1:
			recs = append(recs, &data.Record{ID: id, Kind: data.KindInterleaved, Meta: "{}",
				Texts:  []*string{data.Str("before"), nil, data.Str("after"), nil},
				Images: []*data.ImageRef{nil, img, nil, {Bytes: []byte("second")}}})
		case 2:
			recs = append(recs, &data.Record{ID: id, Kind: data.KindText, Meta: "{}",
				Texts: []*string{data.Str("text " + id)}, Images: []*data.ImageRef{nil}})
		}
	}
	for _, codec := range []string{"zstd", "snappy", "none"} {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			w, err := shards.NewWriter(dir, shards.Options{MaxRowsPerShard: 5, RowGroupRows: 2, Compression: codec})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := layouts.ListFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 3 {
				t.Errorf("%d shards, want 3", len(files))
			}
			var got []*data.Record
			groups := 0
			for _, path := range files {
				f, err := layouts.Open(path, layouts.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if f.Layout() != layouts.Mmablate {
					t.Errorf("%s: layout %s, want mmablate", path, f.Layout())
				}
				groups += f.NumRowGroups()
				for i := range f.NumRowGroups() {
					err := f.ReadRowGroup(context.Background(), i, func(_ int64, rec *data.Record, err error) error {
						if err != nil {
							return err
						}
						got = append(got, rec)
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				f.Close()
			}
			if groups != 7 {
				t.Errorf("%d row groups, want 7 (2-row groups in shards of 5, 5, 1 rows)", groups)
			}
			if !reflect.DeepEqual(got, recs) {
				t.Errorf("round trip differs:\n got %v\nwant %v", got, recs)
			}
		})
	}
}
