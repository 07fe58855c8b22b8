package pqsafe

import (
	"bytes"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// FuzzOpen feeds arbitrary bytes to Open: any input is an error or a file,
// never a panic or a huge allocation.
func FuzzOpen(f *testing.F) {
	good := writeFile(f, 5, 2, &parquet.Snappy)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Add([]byte("PAR1\xff\xff\xff\x7fPAR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := Open(bytes.NewReader(b), int64(len(b)))
		if err == nil && pf.NumRows() < 0 {
			t.Errorf("accepted a footer with %d rows", pf.NumRows())
		}
	})
}

// FuzzCheckPages walks arbitrary bytes as a column chunk of each codec
// mmablate reads: an error or nil, never a panic or a huge allocation.
func FuzzCheckPages(f *testing.F) {
	good := writeFile(f, 4, 4, &parquet.Zstd)
	pf, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		f.Fatal(err)
	}
	for _, cc := range pf.Metadata().RowGroups[0].Columns {
		start, end := chunkRange(&cc.MetaData)
		f.Add(good[start:end])
	}
	f.Fuzz(func(t *testing.T, chunk []byte) {
		for codec := range readableCodecs {
			cm := format.ColumnMetaData{Codec: codec, TotalCompressedSize: int64(len(chunk))}
			_ = CheckPages(bytes.NewReader(chunk), &cm)
		}
	})
}
