package layouts

import (
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Column describes a top-level column for people: its name and a type such
// as "string", "list<string>" or "struct{bytes binary, path string}".
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Columns lists the file's top-level columns in schema order, those the
// layout ignores included.
func (f *File) Columns() []Column { return f.columns }

func describe(c *parquet.Column) string {
	if c.Repeated() {
		return "list<" + describeElem(c) + ">"
	}
	if c.Leaf() {
		return describeLeaf(c)
	}
	if kids := c.Columns(); len(kids) == 1 && kids[0].Repeated() {
		rep := kids[0]
		if !rep.Leaf() && len(rep.Columns()) == 1 && rep.Name() != "array" && rep.Name() != c.Name()+"_tuple" {
			return "list<" + describe(rep.Columns()[0]) + ">"
		}
		return "list<" + describeElem(rep) + ">"
	}
	return describeStruct(c)
}

// describeElem describes a repeated node as its list's element.
func describeElem(c *parquet.Column) string {
	if c.Leaf() {
		return describeLeaf(c)
	}
	return describeStruct(c)
}

func describeStruct(c *parquet.Column) string {
	var members []string
	for _, k := range c.Columns() {
		members = append(members, k.Name()+" "+describe(k))
	}
	return "struct{" + strings.Join(members, ", ") + "}"
}

func describeLeaf(c *parquet.Column) string {
	if isStringColumn(c) {
		return "string"
	}
	t := c.Type()
	var s string
	switch k := t.Kind(); k {
	case parquet.ByteArray:
		s = "binary"
	case parquet.FixedLenByteArray:
		s = fmt.Sprintf("fixed_len_binary(%d)", t.Length())
	default:
		s = strings.ToLower(k.String())
	}
	// Integer annotations only repeat the width; others (timestamps,
	// decimals) change what the number means.
	if lt := t.LogicalType(); lt != nil && lt.Value != nil && !isInt(lt) {
		s += " (" + lt.String() + ")"
	}
	return s
}

func isInt(lt *format.LogicalType) bool {
	_, ok := lt.Value.(*format.IntType)
	return ok
}
