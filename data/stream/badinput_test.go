package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
)

// hfRow is a Hugging Face image-dataset row ({bytes, path} struct plus a
// caption), the layout most bad inputs arrive in.
type hfRow struct {
	Image   *data.ImageRef `parquet:"image,optional"`
	Caption *string        `parquet:"caption,optional"`
}

// pngWithSize is a valid 1×1 PNG whose IHDR then claims w×h (CRC fixed, so
// only the declared size is wrong): a pixel bomb, or a zero-size image.
func pngWithSize(t *testing.T, w, h uint32) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestOpenNamesEveryBadInput streams real files, each with one bad row (row
// 3, in row group 1): with on_error=fail the stream ends with an error that
// names the file, row group, row and column and wraps the reason's
// sentinel; with skip the other rows arrive and the row is counted under
// that reason.
func TestOpenNamesEveryBadInput(t *testing.T) {
	good := images.SyntheticJPEG(64, 48, 1, 85)
	tests := []struct {
		name     string
		image    *data.ImageRef
		caption  *string
		column   string
		sentinel error
		detail   string
	}{
		{"truncated JPEG", &data.ImageRef{Bytes: good[:len(good)/2]}, data.Str("c"), "image", data.ErrImageFormat, "JPEG"},
		{"corrupt bytes", &data.ImageRef{Bytes: []byte("<html>not found</html>")}, data.Str("c"), "image", data.ErrImageFormat, "not a JPEG, PNG, GIF or WebP"},
		{"corrupt JPEG body", &data.ImageRef{Bytes: append(good[:200:200], bytes.Repeat([]byte{0x55}, 400)...)}, data.Str("c"), "image", data.ErrImageFormat, "JPEG"},
		{"zero bytes", &data.ImageRef{}, data.Str("c"), "image", data.ErrEmptyImage, "no bytes"},
		{"zero-size PNG", &data.ImageRef{Bytes: pngWithSize(t, 0, 7)}, data.Str("c"), "image", data.ErrEmptyImage, "0×7"},
		{"pixel bomb", &data.ImageRef{Bytes: pngWithSize(t, 100_000, 100_000)}, data.Str("c"), "image", data.ErrImageTooLarge, "limit"},
		{"null caption", &data.ImageRef{Bytes: good}, nil, "caption", data.ErrNullText, "caption is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.parquet")
			rows := make([]hfRow, 4)
			for i := range rows {
				rows[i] = hfRow{Image: &data.ImageRef{Bytes: good}, Caption: data.Str(fmt.Sprint("caption ", i))}
			}
			rows[3] = hfRow{Image: tt.image, Caption: tt.caption}
			writeHF(t, path, rows, 2)

			opts := Options{Paths: []string{path}, Image: images.DefaultOptions(16), Seed: 1, Workers: 2}
			r, err := Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for err == nil {
				_, err = r.Next(context.Background())
			}
			prefix := fmt.Sprintf("%s: row group 1, row 3, column %s: ", path, tt.column)
			if !errors.Is(err, tt.sentinel) || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("error %q, want it to start %q, wrap %q and mention %q", err, prefix, tt.sentinel, tt.detail)
			}

			opts.OnError = data.OnErrorSkip
			r, err = Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if ids := epoch(t, r); len(ids) != 3 {
				t.Fatalf("skip: read %v, want the 3 good rows", ids)
			}
			if want := (data.SkipCounts{tt.sentinel.Error(): 1}); !maps.Equal(r.Skipped(), want) {
				t.Fatalf("skip counts %v, want %v", r.Skipped(), want)
			}
		})
	}
}

func writeHF(t *testing.T, path string, rows []hfRow, rowGroupRows int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[hfRow](f, parquet.MaxRowsPerRowGroup(rowGroupRows))
	for i := range rows {
		if _, err := w.Write(rows[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
