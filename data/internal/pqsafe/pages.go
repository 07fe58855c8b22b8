package pqsafe

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go/format"
)

const (
	// maxPageBytes bounds one page, compressed or not: a page holds at least
	// one value, and no image or document needs 256 MiB.
	maxPageBytes = 256 << 20
	// maxPageHeaderBytes bounds a page header (statistics included).
	maxPageHeaderBytes = 1 << 20
)

// CheckCodecs refuses compressions mmablate does not read.
func CheckCodecs(md *format.FileMetaData) error {
	for i := range md.RowGroups {
		for _, cc := range md.RowGroups[i].Columns {
			if !readableCodecs[cc.MetaData.Codec] {
				return fmt.Errorf("column %s uses %s compression, which mmablate does not read (rewrite it with snappy, zstd or gzip)", strings.Join(cc.MetaData.PathInSchema, "."), cc.MetaData.Codec)
			}
		}
	}
	return nil
}

// readableCodecs are the compressions whose decoders cannot be made to
// allocate without bound (CheckPages bounds their output first). Brotli and
// LZ4 are refused: parquet-go's LZ4 decoder doubles its buffer forever on
// corrupt input, and neither is common in image-text datasets.
var readableCodecs = map[format.CompressionCodec]bool{
	format.Uncompressed: true, format.Snappy: true, format.Gzip: true, format.Zstd: true,
}

// PageHeader fields (parquet.thrift), as walker.ints keys them.
const (
	phType             = 1
	phUncompressedSize = 2
	phCompressedSize   = 3
	phV2DefLevelsLen   = 8*1000 + 5
	phV2RepLevelsLen   = 8*1000 + 6
	phV2IsCompressed   = 8*1000 + 7
	pageTypeDataV2     = 3
)

// CheckPages walks the page headers of one column chunk so that no page
// claims more bytes than the chunk holds, and checks that no page
// decompresses to more than maxPageBytes before parquet-go allocates for it.
func CheckPages(r io.ReaderAt, cm *format.ColumnMetaData) error {
	pos, end := chunkRange(cm)
	for pos < end {
		window := min(int64(4096), end-pos)
		for {
			buf := make([]byte, window)
			if _, err := r.ReadAt(buf, pos); err != nil {
				return fmt.Errorf("reading the page header at offset %d: %w", pos, err)
			}
			w := newWalker(buf, "page header", maxPageHeaderDecodedBytes)
			w.ints = map[int]int32{}
			err := w.walkStruct(0, 0)
			if isShort(err) && window < end-pos && window < maxPageHeaderBytes {
				window = min(window*16, end-pos, maxPageHeaderBytes)
				continue
			}
			if err != nil {
				return fmt.Errorf("corrupt page header at offset %d: %w", pos, err)
			}
			uncompressed, compressed := int64(w.ints[phUncompressedSize]), int64(w.ints[phCompressedSize])
			pos += int64(w.off)
			if compressed < 0 || uncompressed < 0 || compressed > end-pos {
				return fmt.Errorf("page at offset %d claims %d bytes, the column chunk has %d left", pos, compressed, end-pos)
			}
			if uncompressed > maxPageBytes || compressed > maxPageBytes {
				return fmt.Errorf("page at offset %d claims %d bytes uncompressed, over the %d-byte limit", pos, uncompressed, maxPageBytes)
			}
			body, size := pos, compressed
			if w.ints[phType] == pageTypeDataV2 {
				// Version 2 pages keep their levels uncompressed before the data.
				levels := int64(w.ints[phV2DefLevelsLen]) + int64(w.ints[phV2RepLevelsLen])
				if levels < 0 || levels > compressed {
					return fmt.Errorf("page at offset %d: %d bytes of levels in a %d-byte page", pos, levels, compressed)
				}
				body, size = pos+levels, compressed-levels
				if v, ok := w.ints[phV2IsCompressed]; ok && v == 0 {
					size = 0
				}
			}
			if size > 0 {
				if err := checkDecodedSize(r, cm.Codec, body, size); err != nil {
					return fmt.Errorf("page at offset %d: %w", pos, err)
				}
			}
			pos += compressed
			break
		}
	}
	return nil
}

// checkDecodedSize bounds what the compressed bytes [off, off+n) of r
// decode to, from the format's own headers where it has them.
func checkDecodedSize(r io.ReaderAt, codec format.CompressionCodec, off, n int64) error {
	switch codec {
	case format.Snappy:
		// A snappy block starts with its decoded length as a uvarint.
		var head [binary.MaxVarintLen32]byte
		k, _ := r.ReadAt(head[:min(n, int64(len(head)))], off)
		size, m := binary.Uvarint(head[:k])
		if m <= 0 {
			return errors.New("corrupt snappy block header")
		}
		if size > maxPageBytes {
			return fmt.Errorf("snappy block decodes to %d bytes, over the %d-byte limit", size, maxPageBytes)
		}
	case format.Zstd:
		return checkZstd(r, off, n)
	case format.Gzip:
		// Gzip does not record its decoded size: decode once, counting.
		gz, err := gzip.NewReader(io.NewSectionReader(r, off, n))
		if err != nil {
			return fmt.Errorf("corrupt gzip data: %w", err)
		}
		decoded, err := io.Copy(io.Discard, io.LimitReader(gz, maxPageBytes+1))
		if err != nil {
			return fmt.Errorf("corrupt gzip data: %w", err)
		}
		if decoded > maxPageBytes {
			return fmt.Errorf("gzip data decodes to over the %d-byte limit", maxPageBytes)
		}
	}
	return nil
}

// checkZstd walks the frames and block headers of zstd data (RFC 8878) and
// bounds the decoded size: declared frame sizes (which the decoder
// preallocates) and each block's largest possible output.
func checkZstd(r io.ReaderAt, off, n int64) error {
	end := off + n
	var declared, bound int64
	read := func(k int64) ([]byte, error) {
		if k > end-off {
			return nil, errors.New("corrupt zstd data: ends inside a header")
		}
		b := make([]byte, k)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, err
		}
		off += k
		return b, nil
	}
	for off < end {
		b, err := read(4)
		if err != nil {
			return err
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&0xfffffff0 == 0x184d2a50 { // skippable frame
			if b, err = read(4); err != nil {
				return err
			}
			off += int64(binary.LittleEndian.Uint32(b))
			continue
		}
		if magic != 0xfd2fb528 {
			return fmt.Errorf("corrupt zstd data: frame magic %#x", magic)
		}
		if b, err = read(1); err != nil {
			return err
		}
		desc := b[0]
		single := desc>>5&1 == 1
		fcsLen := [4]int64{0, 2, 4, 8}[desc>>6]
		if fcsLen == 0 && single {
			fcsLen = 1
		}
		skip := [4]int64{0, 1, 2, 4}[desc&3]
		if !single {
			skip++ // window descriptor
		}
		if _, err := read(skip); err != nil {
			return err
		}
		if fcsLen > 0 {
			if b, err = read(fcsLen); err != nil {
				return err
			}
			var fcs uint64
			for i := len(b) - 1; i >= 0; i-- {
				fcs = fcs<<8 | uint64(b[i])
			}
			if fcsLen == 2 {
				fcs += 256
			}
			if fcs > maxPageBytes || declared+int64(fcs) > maxPageBytes {
				return fmt.Errorf("zstd data declares %d decoded bytes, over the %d-byte limit", fcs, maxPageBytes)
			}
			declared += int64(fcs)
		}
		for last := false; !last; {
			if b, err = read(3); err != nil {
				return err
			}
			h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			last = h&1 == 1
			size := int64(h >> 3)
			switch h >> 1 & 3 {
			case 0: // raw
				bound += size
				off += size
			case 1: // RLE: one byte repeated size times
				bound += size
				off++
			case 2: // compressed: at most the 128 KiB block maximum
				bound += 128 << 10
				off += size
			default:
				return errors.New("corrupt zstd data: reserved block type")
			}
			if off > end {
				return errors.New("corrupt zstd data: a block runs past the page")
			}
			if bound > maxPageBytes {
				return fmt.Errorf("zstd data decodes to over the %d-byte limit", maxPageBytes)
			}
		}
		if desc>>2&1 == 1 {
			off += 4 // content checksum
		}
	}
	return nil
}
