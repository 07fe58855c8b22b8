package experiments

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports "field x not found in type y" and type errors with a
// line but no key path; checkNode walks the node tree beside the Go type
// so that every error names file, line and key path, and reports them all.

var nodeType = reflect.TypeFor[yaml.Node]()

// overrideLine marks nodes made by --set: they have no line in the file.
const overrideLine = -1

// checkNode checks n against the type of v.
func checkNode(n *yaml.Node, file, path string, v any) []error {
	return check(n, file, path, reflect.TypeOf(v))
}

func where(file string, n *yaml.Node, path string) string {
	if n.Line == overrideLine {
		return "--set " + path
	}
	return fmt.Sprintf("%s:%d: %s", file, n.Line, path)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func check(n *yaml.Node, file, path string, t reflect.Type) []error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t == nodeType || (t.Kind() == reflect.Pointer && t.Elem() == nodeType) {
		return nil // kept as YAML for its owner to decode
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // null zeroes the value, whatever its type
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return []error{fmt.Errorf("%s: want a mapping of keys (%s), got %s", where(file, n, path), unknownKeyList(fieldNames(t)), describe(n))}
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: unknown key (known: %s)", where(file, k, join(path, k.Value)), unknownKeyList(fieldNames(t))))
				continue
			}
			errs = append(errs, check(v, file, join(path, k.Value), f.Type)...)
		}
		return errs
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return []error{fmt.Errorf("%s: want a mapping, got %s", where(file, n, path), describe(n))}
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			errs = append(errs, check(v, file, join(path, k.Value), t.Elem())...)
		}
		return errs
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return []error{fmt.Errorf("%s: want a list, got %s", where(file, n, path), describe(n))}
		}
		var errs []error
		for i, v := range n.Content {
			errs = append(errs, check(v, file, fmt.Sprintf("%s[%d]", path, i), t.Elem())...)
		}
		return errs
	default:
		if n.Kind != yaml.ScalarNode {
			return []error{fmt.Errorf("%s: want a %s, got %s", where(file, n, path), t.Kind(), describe(n))}
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return []error{fmt.Errorf("%s: %s", where(file, n, path), trimLine(err))}
		}
		return nil
	}
}

var linePrefix = regexp.MustCompile(`^(yaml: unmarshal errors:\n\s*)?line -?\d+: `)

// trimLine drops yaml.v3's "line N:" (where() already says it).
func trimLine(err error) string {
	return linePrefix.ReplaceAllString(strings.TrimSpace(err.Error()), "")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%s %q", n.Tag, n.Value)
}

// yamlFields maps yaml keys to struct fields (exported ones, by tag or by
// yaml.v3's lower-cased default name).
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() || f.Tag.Get("yaml") == "-" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	return names
}

// applyOverride sets key.path=value in the mapping tree root, creating
// mappings on the way; the key path must exist in v's type, and value is
// parsed as YAML.
func applyOverride(root *yaml.Node, o string, v any) error {
	key, val, ok := strings.Cut(o, "=")
	if !ok || key == "" {
		return fmt.Errorf("--set %q: want key.path=value", o)
	}
	parts := strings.Split(key, ".")
	if slices.Contains(parts, "") {
		return fmt.Errorf("--set %s: empty key in the path", key)
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := root
	for i, p := range parts {
		path := strings.Join(parts[:i+1], ".")
		opaque := t == nodeType || (t.Kind() == reflect.Pointer && t.Elem() == nodeType)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case opaque:
		case t.Kind() == reflect.Struct:
			f, ok := yamlFields(t)[p]
			if !ok {
				under := ""
				if i > 0 {
					under = " under " + strings.Join(parts[:i], ".")
				}
				return fmt.Errorf("--set %s: unknown key (known%s: %s)", path, under, unknownKeyList(fieldNames(t)))
			}
			t = f.Type
		case t.Kind() == reflect.Map:
			t = t.Elem()
		default:
			return fmt.Errorf("--set %s: %s is a %s, not a section with keys", path, strings.Join(parts[:i], "."), t.Kind())
		}
		if n.Kind != yaml.MappingNode { // a null or scalar in the file: the override replaces it
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: overrideLine}
		}
		var child *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == p {
				child = n.Content[j+1]
			}
		}
		if child == nil {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: overrideLine}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p, Line: overrideLine}, child)
		}
		n = child
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil {
		return fmt.Errorf("--set %s: value %q: %w", key, val, err)
	}
	repl := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(doc.Content) == 1 {
		repl = doc.Content[0]
	}
	markOverride(repl)
	*n = *repl
	return nil
}

func markOverride(n *yaml.Node) {
	n.Line = overrideLine
	for _, c := range n.Content {
		markOverride(c)
	}
}
