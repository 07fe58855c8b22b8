// Package pqsafe opens Parquet files from outside sources with parquet-go
// without letting their bytes decide how much is allocated or whether the
// process crashes. parquet-go trusts a file: its Thrift decoder allocates a
// slice as long as any list header in the footer claims (up to 2³¹ elements,
// so a few corrupt bytes demand gigabytes) and recurses once per nesting
// level; it builds its column tree recursively from the schema and panics on
// some broken schemas (a LIST annotation on a leaf, say); its LZ4 decoder
// doubles its buffer forever on corrupt input, and gzip does not record its
// decoded size at all. So Open walks the footer's bytes and bounds its
// schema and row groups before parquet-go decodes it, turning panics into
// errors; CheckCodecs refuses the codecs that cannot be bounded; and
// CheckPages bounds each page header and what its page decompresses to
// before parquet-go reads the page.
//
// The data/shards and data/layouts packages open every Parquet file through
// here.
package pqsafe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Limits on lengths read from a file, checked before anything that size is
// allocated. Each is far above what real datasets use.
const (
	// maxFooterBytes bounds the Thrift footer; a file with 10 000 row groups
	// of 20 columns has a footer of a few MiB.
	maxFooterBytes = 64 << 20
	// maxSchemaDepth bounds the schema's nesting; mmablate's layouts read
	// at most a list of structs (depth 4), and real files rarely pass 10.
	maxSchemaDepth = 64
)

const parquetMagic = "PAR1"

// Open opens a Parquet file's footer with parquet-go after checking both
// magic numbers, the footer length, the footer's Thrift structure
// (CheckFooter), the schema's nesting, and that every row group's rows and
// column chunks fit the footer and the file, so that a truncated or hostile
// file is an error saying what is wrong rather than a huge allocation, a
// stack overflow or a panic. Page indexes and bloom filters are not read.
// Callers add the file name.
func Open(r io.ReaderAt, size int64) (f *parquet.File, err error) {
	dataEnd, err := footerRange(r, size)
	if err != nil {
		return nil, err
	}
	// The checks above bound what parquet-go allocates; a panic in its
	// decoding of the checked structure is still a corrupt file.
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("corrupt Parquet metadata: %v", p)
		}
	}()
	f, err = parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("corrupt Parquet metadata: %w", err)
	}
	if err := checkMetadata(f.Metadata(), countLeaves(f.Root()), dataEnd); err != nil {
		return nil, fmt.Errorf("corrupt footer: %w", err)
	}
	return f, nil
}

// footerRange checks the magic bytes and the footer length, walks the
// footer's Thrift bytes and bounds the schema's nesting. It returns where
// the footer starts; column chunks must end before it.
func footerRange(r io.ReaderAt, size int64) (int64, error) {
	if size < 12 {
		return 0, fmt.Errorf("not a Parquet file: only %d bytes (truncated?)", size)
	}
	var head, tail [4]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return 0, fmt.Errorf("reading the magic bytes: %w", err)
	}
	if string(head[:]) != parquetMagic {
		return 0, fmt.Errorf("not a Parquet file: starts with %q, want %q", head[:], parquetMagic)
	}
	var trailer [8]byte
	if _, err := r.ReadAt(trailer[:], size-8); err != nil {
		return 0, fmt.Errorf("reading the footer trailer: %w", err)
	}
	copy(tail[:], trailer[4:])
	switch string(tail[:]) {
	case parquetMagic:
	case "PARE":
		return 0, errors.New("encrypted Parquet files are not supported")
	default:
		return 0, fmt.Errorf("truncated or not a Parquet file: ends with %q, want %q", tail[:], parquetMagic)
	}
	footerLen := int64(binary.LittleEndian.Uint32(trailer[:4]))
	if footerLen > size-12 {
		return 0, fmt.Errorf("footer length %d does not fit in the %d-byte file (truncated?)", footerLen, size)
	}
	if footerLen > maxFooterBytes {
		return 0, fmt.Errorf("footer length %d exceeds the %d-byte limit", footerLen, maxFooterBytes)
	}
	footer := make([]byte, footerLen)
	if _, err := r.ReadAt(footer, size-8-footerLen); err != nil {
		return 0, fmt.Errorf("reading the %d-byte footer: %w", footerLen, err)
	}
	if _, err := CheckFooter(footer); err != nil {
		return 0, err
	}
	// parquet-go builds its column tree recursively, copying each path, so
	// the schema's nesting is bounded here, before it does.
	var md format.FileMetaData
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, footer, &md); err != nil {
		return 0, fmt.Errorf("corrupt footer: %w", err)
	}
	if err := checkSchemaDepth(md.Schema); err != nil {
		return 0, fmt.Errorf("corrupt footer: %w", err)
	}
	return size - 8 - footerLen, nil
}

// checkSchemaDepth checks that the flattened schema (each group followed by
// its children, depth first) is a tree no deeper than maxSchemaDepth.
func checkSchemaDepth(schema []format.SchemaElement) error {
	if len(schema) == 0 {
		return errors.New("empty schema")
	}
	// open holds, for each group being filled, how many children it still needs.
	open := []int32{schema[0].NumChildren.V}
	for i := 1; i < len(schema); i++ {
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) == 0 {
			return fmt.Errorf("schema element %d is outside the tree", i)
		}
		open[len(open)-1]--
		if n := schema[i].NumChildren; !schema[i].Type.Valid && n.V > 0 {
			open = append(open, n.V)
			if len(open) > maxSchemaDepth {
				return fmt.Errorf("schema nests deeper than %d levels", maxSchemaDepth)
			}
		}
	}
	for _, n := range open {
		if n != 0 {
			return errors.New("schema ends inside a group")
		}
	}
	return nil
}

func countLeaves(c *parquet.Column) int {
	if c.Leaf() {
		return 1
	}
	n := 0
	for _, k := range c.Columns() {
		n += countLeaves(k)
	}
	return n
}

// checkMetadata bounds the counts and offsets of the decoded footer.
func checkMetadata(md *format.FileMetaData, leaves int, dataEnd int64) error {
	var rows int64
	for i := range md.RowGroups {
		rg := &md.RowGroups[i]
		if rg.NumRows < 0 {
			return fmt.Errorf("row group %d: negative row count %d", i, rg.NumRows)
		}
		// Compared before adding, so that huge counts cannot wrap the sum.
		if rg.NumRows > md.NumRows-rows {
			return fmt.Errorf("row groups hold more rows than the footer's num_rows %d", md.NumRows)
		}
		if len(rg.Columns) != leaves {
			return fmt.Errorf("row group %d has %d column chunks, the schema %d leaf columns", i, len(rg.Columns), leaves)
		}
		for j := range rg.Columns {
			cc := &rg.Columns[j]
			if cc.FilePath != "" {
				return fmt.Errorf("row group %d, column %d: column data in another file (%q) is not supported", i, j, cc.FilePath)
			}
			if n := cc.MetaData.TotalCompressedSize; n < 0 || n > dataEnd {
				return fmt.Errorf("row group %d, column %d: chunk size %d does not fit in the file", i, j, n)
			}
			start, end := chunkRange(&cc.MetaData)
			if start < 4 || end < start || end > dataEnd {
				return fmt.Errorf("row group %d, column %d: chunk bytes [%d, %d) lie outside the data section [4, %d)", i, j, start, end, dataEnd)
			}
		}
		rows += rg.NumRows
	}
	if rows != md.NumRows {
		return fmt.Errorf("row groups hold %d rows, the footer says %d", rows, md.NumRows)
	}
	return nil
}

func chunkRange(cm *format.ColumnMetaData) (start, end int64) {
	start = cm.DataPageOffset
	if cm.DictionaryPageOffset > 0 && cm.DictionaryPageOffset < start {
		start = cm.DictionaryPageOffset
	}
	return start, start + cm.TotalCompressedSize
}
