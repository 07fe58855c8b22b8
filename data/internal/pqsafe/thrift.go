package pqsafe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits on what decoding Thrift bytes may allocate, checked by walking the
// bytes before parquet-go decodes them.
const (
	// maxThriftDepth stops stack exhaustion: FileMetaData nests about six
	// levels deep, a list counting as a level.
	maxThriftDepth = 32
	// MaxFooterDecodedBytes bounds what decoding a footer may allocate, as
	// estimated by the walk: a footer of six columns estimates at about
	// 21 KiB per row group, so 10 000 row groups (about 210 MiB) fit, as do
	// files of other writers with many more columns. It is the stricter of
	// the two earlier bounds: a byte estimate (which also counts strings and
	// list slots) of 512 MiB allows at most 819 200 structs, under the
	// 1 048 576-struct count the layouts package used.
	MaxFooterDecodedBytes = 512 << 20
	// maxPageHeaderDecodedBytes bounds one page header the same way: room
	// for 65 536 structs, where a real header holds fewer than ten.
	maxPageHeaderDecodedBytes = 1 << 16 * structElemCost
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

// shortError reports bytes that end inside a value, or a list longer than
// the bytes left. Page-header reads take it as a request for a larger window.
type shortError struct{ msg string }

func (e *shortError) Error() string { return e.msg }

func isShort(err error) bool {
	var s *shortError
	return errors.As(err, &s)
}

// walker checks the structure of a Thrift compact-protocol struct without
// building it: every length fits in the bytes left, nesting is shallow, and
// the estimated decoded size stays under the budget.
type walker struct {
	b      []byte
	off    int
	what   string // "footer" or "page header", for errors
	limit  int64  // the starting budget
	budget int64  // decoded bytes still allowed
	// ints receives the i32 and bool fields of the walked struct and of the
	// structs directly in it (page headers keep the sizes there), keyed by
	// field id, or 1000×parent id + field id one level down; nil when not
	// wanted.
	ints map[int]int32
}

func newWalker(b []byte, what string, limit int64) *walker {
	return &walker{b: b, what: what, limit: limit, budget: limit}
}

// CheckFooter validates a FileMetaData footer's encoding so that decoding it
// allocates at most MaxFooterDecodedBytes, and returns the estimate of what
// decoding allocates. It accepts only what the compact protocol can express;
// the field meanings are parquet-go's job.
func CheckFooter(footer []byte) (int64, error) {
	w := newWalker(footer, "footer", MaxFooterDecodedBytes)
	if err := w.walkStruct(0, -1); err != nil {
		return 0, fmt.Errorf("corrupt footer at byte %d: %w", w.off, err)
	}
	return w.limit - w.budget, nil
}

func (w *walker) short() error { return &shortError{"unexpected end of " + w.what} }

func (w *walker) byte() (byte, error) {
	if w.off >= len(w.b) {
		return 0, w.short()
	}
	c := w.b[w.off]
	w.off++
	return c, nil
}

func (w *walker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.off:])
	if n == 0 {
		return 0, w.short()
	}
	if n < 0 {
		return 0, errors.New("bad varint")
	}
	w.off += n
	return v, nil
}

func (w *walker) zigzag() (int64, error) {
	u, err := w.uvarint()
	return int64(u>>1) ^ -int64(u&1), err
}

func (w *walker) skip(n uint64) error {
	if n > uint64(len(w.b)-w.off) {
		return w.short()
	}
	w.off += int(n)
	return nil
}

func (w *walker) spend(n uint64) error {
	if n > uint64(w.budget) {
		return fmt.Errorf("%s would decode to more than %d MiB", w.what, w.limit>>20)
	}
	w.budget -= int64(n)
	return nil
}

// count checks that n list, set or map elements can fit in the bytes left
// (each takes at least one byte) and spends their slice slots; a struct
// element's own cost is spent when it is walked.
func (w *walker) count(n uint64) error {
	if left := len(w.b) - w.off; n > uint64(left) {
		return &shortError{fmt.Sprintf("%d elements declared, %d bytes left", n, left)}
	}
	return w.spend(n * scalarElemCost) // n < 2³¹, so this cannot overflow
}

// walkStruct walks one struct at nesting depth; key is the ints key prefix
// of its fields, negative where they are not recorded.
func (w *walker) walkStruct(depth, key int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("nested deeper than %d levels", maxThriftDepth)
	}
	// Counted for every struct, not only list elements: a struct field may
	// be a pointer that decoding allocates.
	if err := w.spend(structElemCost); err != nil {
		return err
	}
	var id int16
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		typ := h & 0x0f
		if typ == tStop {
			return nil
		}
		if delta := h >> 4; delta != 0 {
			id += int16(delta)
		} else {
			v, err := w.zigzag()
			if err != nil {
				return err
			}
			id = int16(v)
		}
		if err := w.field(typ, id, depth+1, key); err != nil {
			return fmt.Errorf("field %d: %w", id, err)
		}
	}
}

// field walks the value of field id of a struct whose fields are recorded
// under key (when not negative).
func (w *walker) field(typ byte, id int16, depth, key int) error {
	if key < 0 || w.ints == nil {
		return w.value(typ, depth)
	}
	switch typ {
	case tI32:
		v, err := w.zigzag()
		if err != nil {
			return err
		}
		w.ints[key+int(id)] = int32(v)
		return nil
	case tBoolTrue, tBoolFalse:
		w.ints[key+int(id)] = int32(2 - typ)
		return nil
	case tStruct:
		sub := -1
		if key == 0 {
			sub = 1000 * int(id)
		}
		return w.walkStruct(depth, sub)
	}
	return w.value(typ, depth)
}

func (w *walker) value(typ byte, depth int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("nested deeper than %d levels", maxThriftDepth)
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
		// Any n past 2⁴⁰ fails count, and the min keeps 2n from wrapping.
		if err := w.count(2 * min(n, 1<<40)); err != nil {
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
		return w.walkStruct(depth, -1)
	}
	return fmt.Errorf("unknown Thrift type %d", typ)
}

// element is value for a list, set or map element, where a bool takes a
// byte of its own.
func (w *walker) element(typ byte, depth int) error {
	if typ == tBoolTrue || typ == tBoolFalse {
		return w.skip(1)
	}
	return w.value(typ, depth)
}
