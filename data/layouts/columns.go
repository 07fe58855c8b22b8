package layouts

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/mmablate/mmablate/data"
)

// A field is one top-level column bound to the shape a layout reads from it:
// a scalar, a struct of scalars, or a list of either. Levels follow the
// Dremel encoding: a value's definition level counts how many of the
// optional or repeated nodes above it are present.
type field struct {
	name string
	// defList: at or above it a list is non-null (lists only).
	defList int
	// defElem: at or above it a list has an element (lists only).
	defElem int
	// defValue: at or above it the scalar, struct or element is non-null.
	defValue int
	// leaves are the primitive columns under the value: one for a scalar,
	// one per struct member (sub names the member).
	leaves []leafRef
}

type leafRef struct {
	sub  string
	str  bool // annotated as a string (a URL where bytes are expected)
	slot int  // index into the row group's decoded columns
}

// columnData is one leaf column of a row group: every value with its levels,
// and where each row's values start.
type columnData struct {
	vals   []parquet.Value
	starts []int // len rows+1
}

func (c *columnData) row(r int) []parquet.Value { return c.vals[c.starts[r]:c.starts[r+1]] }

// leafKind is what a primitive column may hold for a layout.
type leafKind int

const (
	kindNone   leafKind = iota // no primitive accepted (struct elements only)
	kindBytes                  // BYTE_ARRAY, string or not
	kindString                 // BYTE_ARRAY annotated as a string
	kindInt                    // INT32 or INT64
	kindID                     // BYTE_ARRAY, INT32 or INT64
)

func (k leafKind) String() string {
	return [...]string{"struct", "binary", "string", "int32 or int64", "string or integer"}[k]
}

func isStringColumn(c *parquet.Column) bool {
	t := c.Type()
	if lt := t.LogicalType(); lt != nil {
		switch lt.Value.(type) {
		case *format.StringType, *format.JsonType, *format.EnumType:
			return true
		}
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.UTF8, deprecated.Json, deprecated.Enum:
			return true
		}
	}
	return false
}

func checkLeaf(c *parquet.Column, want leafKind) error {
	if !c.Leaf() {
		return fmt.Errorf("%w: %s is a group, want %s", data.ErrColumnType, pathOf(c), want)
	}
	switch k := c.Type().Kind(); want {
	case kindBytes, kindString:
		if k != parquet.ByteArray && k != parquet.FixedLenByteArray {
			return fmt.Errorf("%w: %s is %s, want %s", data.ErrColumnType, pathOf(c), k, want)
		}
	case kindNone:
		return fmt.Errorf("%w: %s is %s, want a struct", data.ErrColumnType, pathOf(c), k)
	case kindInt:
		if k != parquet.Int32 && k != parquet.Int64 {
			return fmt.Errorf("%w: %s is %s, want %s", data.ErrColumnType, pathOf(c), k, want)
		}
	case kindID:
		if k != parquet.ByteArray && k != parquet.Int32 && k != parquet.Int64 {
			return fmt.Errorf("%w: %s is %s, want %s", data.ErrColumnType, pathOf(c), k, want)
		}
	}
	return nil
}

func pathOf(c *parquet.Column) string {
	s := ""
	for i, p := range c.Path() {
		if i > 0 {
			s += "."
		}
		s += p
	}
	return s
}

func level(c *parquet.Column) int {
	if c.Optional() || c.Repeated() {
		return 1
	}
	return 0
}

// binder builds fields and assigns each needed leaf a slot.
type binder struct {
	slots []int // slot → leaf column index
}

func (b *binder) leaf(c *parquet.Column, sub string) leafRef {
	b.slots = append(b.slots, c.Index())
	return leafRef{sub: sub, str: isStringColumn(c), slot: len(b.slots) - 1}
}

// scalar binds a top-level primitive column.
func (b *binder) scalar(c *parquet.Column, want leafKind) (*field, error) {
	if c.Repeated() {
		return nil, fmt.Errorf("%w: %s is repeated, want a single %s", data.ErrColumnType, pathOf(c), want)
	}
	if err := checkLeaf(c, want); err != nil {
		return nil, err
	}
	return &field{name: c.Name(), defValue: level(c), leaves: []leafRef{b.leaf(c, "")}}, nil
}

// structOf binds the members of group g named in subs (absent members are
// left out; at least one must be there).
func (b *binder) structOf(g *parquet.Column, subs map[string]leafKind) ([]leafRef, error) {
	if g.Leaf() {
		return nil, fmt.Errorf("%w: %s is %s, want a struct with members %s", data.ErrColumnType, pathOf(g), g.Type().Kind(), memberNames(subs))
	}
	var refs []leafRef
	for _, m := range g.Columns() {
		want, ok := subs[m.Name()]
		if !ok {
			continue
		}
		if m.Repeated() {
			return nil, fmt.Errorf("%w: %s is repeated, want a single %s", data.ErrColumnType, pathOf(m), want)
		}
		if err := checkLeaf(m, want); err != nil {
			return nil, err
		}
		refs = append(refs, b.leaf(m, m.Name()))
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: struct %s has none of the members %s", data.ErrColumnType, pathOf(g), memberNames(subs))
	}
	return refs, nil
}

func memberNames(subs map[string]leafKind) string {
	s := ""
	for _, n := range []string{"bytes", "path", "url"} {
		if _, ok := subs[n]; ok {
			if s != "" {
				s += ", "
			}
			s += n
		}
	}
	return s
}

// structField binds a top-level struct column.
func (b *binder) structField(c *parquet.Column, subs map[string]leafKind) (*field, error) {
	if c.Repeated() {
		return nil, fmt.Errorf("%w: %s is repeated, want a single struct", data.ErrColumnType, pathOf(c))
	}
	refs, err := b.structOf(c, subs)
	if err != nil {
		return nil, err
	}
	return &field{name: c.Name(), defValue: level(c), leaves: refs}, nil
}

// listField binds a top-level list in any of the encodings the Parquet
// format's backward-compatibility rules allow: the 3-level LIST (optional
// group → repeated group → element), the 2-level form whose repeated node
// is the element, and a bare repeated column. Elements are scalars of kind
// elem, or structs with members subs when subs is non-nil; with both set,
// whichever the file has.
func (b *binder) listField(c *parquet.Column, elem leafKind, subs map[string]leafKind) (*field, error) {
	f := &field{name: c.Name()}
	rep := c
	if c.Repeated() {
		f.defList, f.defElem = 0, 1
	} else {
		kids := c.Columns()
		if c.Leaf() || len(kids) != 1 || !kids[0].Repeated() {
			return nil, fmt.Errorf("%w: %s is not a list", data.ErrColumnType, pathOf(c))
		}
		rep = kids[0]
		f.defList = level(c)
		f.defElem = f.defList + 1
	}
	el := rep
	if !rep.Leaf() && len(rep.Columns()) == 1 && rep.Name() != "array" && rep.Name() != c.Name()+"_tuple" {
		el = rep.Columns()[0]
	}
	f.defValue = f.defElem
	if el != rep {
		f.defValue += level(el)
		if el.Repeated() {
			return nil, fmt.Errorf("%w: %s is a list of lists", data.ErrColumnType, pathOf(c))
		}
	}
	if el.Leaf() {
		if elem == kindNone {
			return nil, fmt.Errorf("%w: %s is a list of %s, want a list of structs", data.ErrColumnType, pathOf(c), el.Type().Kind())
		}
		if err := checkLeaf(el, elem); err != nil {
			return nil, err
		}
		f.leaves = []leafRef{b.leaf(el, "")}
		return f, nil
	}
	if subs == nil {
		return nil, fmt.Errorf("%w: %s is a list of structs, want a list of %s", data.ErrColumnType, pathOf(c), elem)
	}
	refs, err := b.structOf(el, subs)
	if err != nil {
		return nil, err
	}
	f.leaves = refs
	return f, nil
}

// readColumn decodes one leaf column chunk of a row group, keeping each
// value's levels and copying its bytes out of the page buffers.
func readColumn(chunk parquet.ColumnChunk, rows int64) (columnData, error) {
	cd := columnData{starts: make([]int, 0, min(rows, 1<<16)+1)}
	pages := chunk.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 256)
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cd, err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				if v.RepetitionLevel() == 0 {
					if int64(len(cd.starts)) >= rows {
						parquet.Release(p)
						return cd, fmt.Errorf("more rows than the %d the footer declares", rows)
					}
					cd.starts = append(cd.starts, len(cd.vals))
				} else if len(cd.starts) == 0 {
					parquet.Release(p)
					return cd, errors.New("the first value continues a row")
				}
				cd.vals = append(cd.vals, v.Clone())
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return cd, err
			}
		}
		parquet.Release(p)
	}
	if int64(len(cd.starts)) != rows {
		return cd, fmt.Errorf("%d rows, the footer declares %d", len(cd.starts), rows)
	}
	cd.starts = append(cd.starts, len(cd.vals))
	return cd, nil
}

// errLevels: the levels of a row contradict the schema; only a corrupt
// file does that.
var errLevels = fmt.Errorf("%w: repetition and definition levels do not match the schema", data.ErrBadRecord)

// value returns the leaf values of a scalar or struct field for row r;
// ok is false when the value is null.
func (f *field) value(cols []columnData, r int, dst []parquet.Value) ([]parquet.Value, bool, error) {
	dst = dst[:0]
	for _, l := range f.leaves {
		vs := cols[l.slot].row(r)
		if len(vs) != 1 {
			return nil, false, errLevels
		}
		dst = append(dst, vs[0])
	}
	return dst, dst[0].DefinitionLevel() >= f.defValue, nil
}

// listLen returns the number of elements of list field f in row r; null
// reports a null list (as opposed to an empty one).
func (f *field) listLen(cols []columnData, r int) (n int, null bool, err error) {
	first := cols[f.leaves[0].slot].row(r)
	for _, l := range f.leaves[1:] {
		if len(cols[l.slot].row(r)) != len(first) {
			return 0, false, errLevels
		}
	}
	if len(first) == 1 {
		switch d := first[0].DefinitionLevel(); {
		case d < f.defList:
			return 0, true, nil
		case d < f.defElem:
			return 0, false, nil
		}
	}
	return len(first), false, nil
}

// elem returns the leaf values of element j of list field f in row r; ok
// is false for a null element.
func (f *field) elem(cols []columnData, r, j int, dst []parquet.Value) ([]parquet.Value, bool) {
	dst = dst[:0]
	for _, l := range f.leaves {
		dst = append(dst, cols[l.slot].row(r)[j])
	}
	return dst, dst[0].DefinitionLevel() >= f.defValue
}

// member returns the value of the struct member named sub, and whether it
// is there and non-null.
func (f *field) member(vals []parquet.Value, sub string) (parquet.Value, bool) {
	for i, l := range f.leaves {
		if l.sub == sub {
			return vals[i], !vals[i].IsNull()
		}
	}
	return parquet.Value{}, false
}
