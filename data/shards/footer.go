package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits checkFooter enforces on a Parquet footer before parquet-go decodes
// it. parquet-go's Thrift decoder allocates each list at its declared size
// (up to 2³¹ elements) and recurses once per nesting level, so a hostile
// footer of a few bytes could otherwise exhaust memory or the stack.
const (
	// maxFooterDepth: FileMetaData nests about six levels deep.
	maxFooterDepth = 32
	// maxFooterDecodedBytes bounds what decoding the footer may allocate,
	// as estimated by the walk below: a shard of six columns estimates at
	// about 21 KiB per row group, so the writer's 10 000 row groups (about
	// 210 MiB) fit, as do files of other writers with many more columns.
	maxFooterDecodedBytes = 512 << 20
	// structElemCost bounds one decoded Thrift struct of the Parquet format:
	// format.ColumnChunk, the largest, is 560 bytes (a test checks it).
	structElemCost = 640
	// scalarElemCost covers a slice element of any other type (a string or
	// slice header at most); byte contents are counted separately.
	scalarElemCost = 24
)

// Thrift compact protocol type ids.
const (
	tStop      = 0
	tBoolTrue  = 1
	tBoolFalse = 2
	tByte      = 3
	tI16       = 4
	tI32       = 5
	tI64       = 6
	tDouble    = 7
	tBinary    = 8
	tList      = 9
	tSet       = 10
	tMap       = 11
	tStruct    = 12
	tUUID      = 13
)

// footerWalker checks the structure of a Thrift compact-protocol struct
// without building it: every length fits in the bytes left, nesting is
// shallow, and the estimated decoded size stays under the budget.
type footerWalker struct {
	b      []byte
	off    int
	budget int64
}

// checkFooter validates a FileMetaData footer's encoding so that decoding
// it allocates at most maxFooterDecodedBytes. It accepts only what the
// compact protocol can express; the field meanings are parquet-go's job.
func checkFooter(b []byte) error {
	w := &footerWalker{b: b, budget: maxFooterDecodedBytes}
	if err := w.value(tStruct, 0); err != nil {
		return fmt.Errorf("corrupt footer at byte %d: %w", w.off, err)
	}
	return nil
}

var errFooterEOF = errors.New("unexpected end of footer")

func (w *footerWalker) byte() (byte, error) {
	if w.off >= len(w.b) {
		return 0, errFooterEOF
	}
	c := w.b[w.off]
	w.off++
	return c, nil
}

func (w *footerWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.off:])
	if n <= 0 {
		return 0, errors.New("bad varint")
	}
	w.off += n
	return v, nil
}

func (w *footerWalker) skip(n uint64) error {
	if n > uint64(len(w.b)-w.off) {
		return errFooterEOF
	}
	w.off += int(n)
	return nil
}

func (w *footerWalker) spend(n uint64) error {
	if n > uint64(w.budget) {
		return fmt.Errorf("footer would decode to more than %d MiB", maxFooterDecodedBytes>>20)
	}
	w.budget -= int64(n)
	return nil
}

// count checks that n list, set or map elements can fit in the bytes left
// (each takes at least one byte) and spends their slice slots; a struct
// element's own cost is spent when it is walked.
func (w *footerWalker) count(n uint64) error {
	if n > uint64(len(w.b)-w.off) {
		return fmt.Errorf("%d elements declared, %d bytes left", n, len(w.b)-w.off)
	}
	return w.spend(n * scalarElemCost) // n < 2³¹, so this cannot overflow
}

func (w *footerWalker) value(typ byte, depth int) error {
	if depth > maxFooterDepth {
		return fmt.Errorf("nested deeper than %d levels", maxFooterDepth)
	}
	switch typ {
	case tBoolTrue, tBoolFalse:
		return nil // a struct field's value is in its type nibble
	case tByte:
		return w.skip(1)
	case tI16, tI32, tI64:
		_, err := w.uvarint()
		return err
	case tDouble:
		return w.skip(8)
	case tUUID:
		return w.skip(16)
	case tBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		if err := w.skip(n); err != nil {
			return err
		}
		return w.spend(n)
	case tList, tSet:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n, elem := uint64(h>>4), h&0x0f
		if n == 0x0f {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		if err := w.count(n); err != nil {
			return err
		}
		for range n {
			if err := w.element(elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if err := w.count(2 * n); err != nil {
			return err
		}
		for range n {
			if err := w.element(kv>>4, depth+1); err != nil {
				return err
			}
			if err := w.element(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tStruct:
		// Counted here too, not only as list elements: a struct field may
		// be a pointer that decoding allocates.
		if err := w.spend(structElemCost); err != nil {
			return err
		}
		var id int64
		for {
			h, err := w.byte()
			if err != nil {
				return err
			}
			if h == tStop {
				return nil
			}
			if delta := h >> 4; delta != 0 {
				id += int64(delta)
			} else {
				v, err := w.uvarint()
				if err != nil {
					return err
				}
				id = int64(v>>1) ^ -int64(v&1) // zigzag
			}
			if err := w.value(h&0x0f, depth+1); err != nil {
				return fmt.Errorf("field %d: %w", id, err)
			}
		}
	}
	return fmt.Errorf("unknown Thrift type %d", typ)
}

// element is value for a list, set or map element, where a bool takes a
// byte of its own.
func (w *footerWalker) element(typ byte, depth int) error {
	if typ == tBoolTrue || typ == tBoolFalse {
		return w.skip(1)
	}
	return w.value(typ, depth)
}
