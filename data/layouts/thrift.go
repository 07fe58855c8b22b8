package layouts

import (
	"errors"
	"fmt"
)

// A minimal Thrift compact-protocol walker. parquet-go's decoder allocates a
// slice as long as any list header claims, so a few corrupt footer bytes can
// demand gigabytes; walking the bytes first proves every list is backed by
// real bytes and bounds how many structs the decoder will allocate.

// errShortThrift: the bytes end inside a value. Page-header reads use it to
// ask for a larger window.
var errShortThrift = errors.New("thrift data ends early")

const (
	tStop   = 0
	tTrue   = 1
	tFalse  = 2
	tByte   = 3
	tI16    = 4
	tI32    = 5
	tI64    = 6
	tDouble = 7
	tBinary = 8
	tList   = 9
	tSet    = 10
	tMap    = 11
	tStruct = 12

	// maxThriftDepth stops stack exhaustion by deeply nested structs; the
	// Parquet footer nests fewer than ten levels.
	maxThriftDepth = 32
)

type thriftWalker struct {
	b []byte
	// structBudget is how many more structs may appear; the Go structs
	// parquet-go decodes into are a few hundred bytes each.
	structBudget int
	// ints receives the i32 and bool fields of the walked struct and of
	// the structs directly in it (page headers keep the sizes there), keyed
	// by field id, or 1000×parent id + field id one level down; nil when
	// not wanted.
	ints map[int]int32
}

func (w *thriftWalker) byte1() (byte, error) {
	if len(w.b) == 0 {
		return 0, errShortThrift
	}
	c := w.b[0]
	w.b = w.b[1:]
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c, err := w.byte1()
		if err != nil {
			return 0, err
		}
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("thrift varint longer than 10 bytes")
}

func (w *thriftWalker) zigzag() (int64, error) {
	u, err := w.uvarint()
	return int64(u>>1) ^ -int64(u&1), err
}

func (w *thriftWalker) skipN(n uint64) error {
	if n > uint64(len(w.b)) {
		return errShortThrift
	}
	w.b = w.b[n:]
	return nil
}

// walkStruct walks one struct; key is the record key prefix of its fields,
// negative where they are not recorded.
func (w *thriftWalker) walkStruct(depth int, key int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("thrift structs nested deeper than %d", maxThriftDepth)
	}
	if w.structBudget--; w.structBudget < 0 {
		return errors.New("thrift data holds too many structs")
	}
	var id int16
	for {
		h, err := w.byte1()
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
		if key >= 0 && w.ints != nil {
			switch typ {
			case tI32:
				v, err := w.zigzag()
				if err != nil {
					return err
				}
				w.ints[key+int(id)] = int32(v)
				continue
			case tTrue, tFalse:
				w.ints[key+int(id)] = int32(2 - typ)
				continue
			case tStruct:
				sub := -1
				if key == 0 {
					sub = 1000 * int(id)
				}
				if err := w.walkStruct(depth+1, sub); err != nil {
					return err
				}
				continue
			}
		}
		if err := w.walkValue(typ, depth+1); err != nil {
			return err
		}
	}
}

func (w *thriftWalker) walkValue(typ byte, depth int) error {
	switch typ {
	case tTrue, tFalse:
		return nil
	case tByte:
		return w.skipN(1)
	case tI16, tI32, tI64:
		_, err := w.uvarint()
		return err
	case tDouble:
		return w.skipN(8)
	case tBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		return w.skipN(n)
	case tList, tSet:
		h, err := w.byte1()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		return w.walkElems(n, h&0x0f, depth)
	case tMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte1()
		if err != nil {
			return err
		}
		// Every key and value takes at least one byte.
		if n > uint64(len(w.b))/2 {
			return errShortThrift
		}
		for range n {
			if err := w.walkElem(kv>>4, depth); err != nil {
				return err
			}
			if err := w.walkElem(kv&0x0f, depth); err != nil {
				return err
			}
		}
		return nil
	case tStruct:
		return w.walkStruct(depth, -1)
	}
	return fmt.Errorf("unknown thrift type %d", typ)
}

func (w *thriftWalker) walkElems(n uint64, typ byte, depth int) error {
	// Every element takes at least one byte (booleans in lists are bytes).
	if n > uint64(len(w.b)) {
		return errShortThrift
	}
	for range n {
		if err := w.walkElem(typ, depth); err != nil {
			return err
		}
	}
	return nil
}

// walkElem walks a list, set or map element, where booleans take a byte.
func (w *thriftWalker) walkElem(typ byte, depth int) error {
	if typ == tTrue || typ == tFalse {
		return w.skipN(1)
	}
	return w.walkValue(typ, depth)
}
