// Package shards writes datasets in the canonical shard format of package
// data, keeps their manifest.json, and verifies a dataset directory against
// its manifest.
//
// A dataset directory holds shard-00000.parquet, shard-00001.parquet, … and
// manifest.json:
//
//	{
//	  "schema_version": 1,
//	  "created_by": "mmablate data synth",
//	  "shards": [
//	    {"name": "shard-00000.parquet", "rows": 5000, "bytes": 81234567,
//	     "sha256": "9f86d0…", "row_groups": 20, "kinds": {"caption": 5000}}
//	  ],
//	  "kinds": {"caption": 5000},
//	  "rows": 5000
//	}
//
// Every file is written under a temporary name in the same directory,
// fsynced and renamed, so a file under its final name is always complete.
// Parquet lists use the standard three-level LIST encoding with nullable
// elements, so Apache Arrow and pandas read texts as list<string> and images
// as list<struct<bytes: binary, path: string>> with the nulls intact.
package shards

import (
	"fmt"

	"github.com/mmablate/mmablate/data"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// ManifestName is the manifest's file name inside a dataset directory.
const ManifestName = "manifest.json"

const (
	// DefaultMaxRowsPerShard keeps text-only shards (≈1 KiB a row) near
	// 100 MiB, so even small datasets split into enough shards for
	// several ranks and workers.
	DefaultMaxRowsPerShard = 100_000
	// DefaultMaxBytesPerShard: large enough that per-file costs (open, footer,
	// one manifest entry) vanish, small enough that ranks of a multi-node job
	// get many shards each and a failed copy costs little.
	DefaultMaxBytesPerShard = 512 << 20
	// DefaultRowGroupRows bounds row groups of small text rows; the row group
	// is the unit readers hold in memory and seek to on resume.
	DefaultRowGroupRows = 1000
	// DefaultRowGroupBytes caps a row group's payload, so image rows (50–500
	// KiB each) end a row group after a few dozen to a few hundred rows: a
	// reader holds one row group per worker, and the writer buffers one, so
	// 16 MiB keeps eight decode workers under ~150 MiB whatever the images.
	DefaultRowGroupBytes = 16 << 20
	// DefaultCompression: zstd gives text about snappy's speed at a better
	// ratio and is read by Arrow, pandas and Spark.
	DefaultCompression = "zstd"
)

// Options configures a Writer. Zero fields take the defaults above.
type Options struct {
	MaxRowsPerShard  int    // rows per shard; 0 → DefaultMaxRowsPerShard
	MaxBytesPerShard int64  // approximate encoded bytes per shard; whichever limit comes first
	RowGroupRows     int    // rows per row group; 0 → DefaultRowGroupRows
	RowGroupBytes    int64  // approximate payload bytes per row group; 0 → DefaultRowGroupBytes
	Compression      string // "zstd" (default) | "snappy" | "none"
	CreatedBy        string // recorded in the manifest; "" → "mmablate"
}

// withDefaults fills zero fields and rejects negative ones.
func (o Options) withDefaults() (Options, error) {
	if o.MaxRowsPerShard < 0 || o.MaxBytesPerShard < 0 || o.RowGroupRows < 0 || o.RowGroupBytes < 0 {
		return o, fmt.Errorf("shards: negative size in options %+v", o)
	}
	if o.MaxRowsPerShard == 0 {
		o.MaxRowsPerShard = DefaultMaxRowsPerShard
	}
	if o.MaxBytesPerShard == 0 {
		o.MaxBytesPerShard = DefaultMaxBytesPerShard
	}
	if o.RowGroupRows == 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.RowGroupBytes == 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	if o.Compression == "" {
		o.Compression = DefaultCompression
	}
	if o.CreatedBy == "" {
		o.CreatedBy = "mmablate"
	}
	return o, nil
}

func codecFor(name string) (compress.Codec, error) {
	switch name {
	case "zstd":
		return &zstd.Codec{}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "none":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("shards: unknown compression %q (want zstd, snappy or none)", name)
}

// row is one canonical-schema row as parquet-go sees it. A list of pointers
// becomes LIST<optional element>: null segments stay null, and an empty
// string stays an empty string.
type row struct {
	ID     string           `parquet:"id"`
	Kind   string           `parquet:"kind,dict"`
	Texts  []*string        `parquet:"texts,list"`
	Images []*data.ImageRef `parquet:"images,list"`
	Meta   string           `parquet:"meta"`
}

// canonicalSchema is what every shard written here has; Verify compares
// shards against it.
var canonicalSchema = parquet.SchemaOf(row{})

// blobColumns hold payloads whose min/max bounds are useless for filtering
// and, for images, as large as the images themselves.
var blobColumns = [][]string{
	{"texts", "list", "element"},
	{"images", "list", "element", "bytes"},
	{"meta"},
}

func toRow(r *data.Record) row {
	meta := r.Meta
	if meta == "" {
		meta = "{}"
	}
	return row{ID: r.ID, Kind: string(r.Kind), Texts: r.Texts, Images: r.Images, Meta: meta}
}

// payloadBytes approximates a record's encoded size: images are already
// compressed, and text is small next to them.
func payloadBytes(r *data.Record) int64 {
	n := int64(len(r.ID) + len(r.Kind) + len(r.Meta))
	for _, t := range r.Texts {
		if t != nil {
			n += int64(len(*t))
		}
	}
	for _, im := range r.Images {
		if im != nil {
			n += int64(len(im.Bytes) + len(im.Path))
		}
	}
	return n
}
