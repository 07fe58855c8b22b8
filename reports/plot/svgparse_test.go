package plot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// node is an element of a parsed SVG document.
type node struct {
	name     string
	attr     map[string]string
	children []*node
	text     string // character data directly inside the element
}

// parseSVG decodes the whole document with encoding/xml, failing on any
// well-formedness error.
func parseSVG(b []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local, attr: map[string]string{}}
			for _, a := range t.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("second root element <%s>", n.name)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		case xml.ProcInst, xml.Directive:
			return nil, fmt.Errorf("unexpected %T in SVG", t)
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

// all returns every element under n (n included) for which keep is true,
// in document order.
func (n *node) all(keep func(*node) bool) []*node {
	var out []*node
	if keep(n) {
		out = append(out, n)
	}
	for _, c := range n.children {
		out = append(out, c.all(keep)...)
	}
	return out
}

func (n *node) class(c string) []*node {
	return n.all(func(m *node) bool { return m.attr["class"] == c })
}

func (n *node) f(key string) float64 {
	v, err := strconv.ParseFloat(n.attr[key], 64)
	if err != nil {
		panic(fmt.Sprintf("<%s %s=%q>: %v", n.name, key, n.attr[key], err))
	}
	return v
}

// translate reads a transform="translate(x y)".
func (n *node) translate() (x, y float64) {
	t := strings.TrimSuffix(strings.TrimPrefix(n.attr["transform"], "translate("), ")")
	if _, err := fmt.Sscanf(t, "%g %g", &x, &y); err != nil {
		panic(fmt.Sprintf("transform %q: %v", n.attr["transform"], err))
	}
	return x, y
}

// allText concatenates the character data of n and its descendants.
func (n *node) allText() string {
	s := n.text
	for _, c := range n.children {
		s += c.allText()
	}
	return s
}
