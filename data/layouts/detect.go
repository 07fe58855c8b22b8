package layouts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
)

// imageMembers are the members of an image struct: the Hugging Face Image
// feature's bytes and path, and url where a dataset keeps one.
var imageMembers = map[string]leafKind{"bytes": kindBytes, "path": kindBytes, "url": kindBytes}

// resolveLayout returns the forced layout or detects one from the columns.
func resolveLayout(pf *parquet.File, opts Options) (Layout, error) {
	l, err := ParseLayout(string(opts.Layout))
	if err != nil || l != Auto {
		return l, err
	}
	root := pf.Root()
	has := func(name string) bool { return root.Column(name) != nil }
	switch {
	case has("id") && has("kind") && has("texts") && has("images"):
		return Mmablate, nil
	case has("texts") && has("images"):
		return Obelics, nil
	}
	if opts.ImageColumn != "" {
		if c := root.Column(opts.ImageColumn); c != nil {
			if c.Leaf() {
				return Img2Dataset, nil
			}
			return HFImage, nil
		}
	}
	switch {
	case has("jpg"):
		return Img2Dataset, nil
	case hfImageColumn(pf) != nil:
		return HFImage, nil
	case has(cmpOr(opts.TextColumn, "text")):
		return Text, nil
	}
	return "", fmt.Errorf("cannot tell the layout from the columns %s: name one with --layout", columnNames(root))
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func columnNames(root *parquet.Column) string {
	var names []string
	for _, c := range root.Columns() {
		names = append(names, c.Name())
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// hfImageColumn finds the image struct column: one the "huggingface"
// metadata calls an Image feature, else the first struct with bytes and path.
func hfImageColumn(pf *parquet.File) *parquet.Column {
	isImageStruct := func(c *parquet.Column) bool {
		return c != nil && !c.Leaf() && !c.Repeated() && c.Column("bytes") != nil && c.Column("path") != nil
	}
	if meta, ok := pf.Lookup("huggingface"); ok {
		var hf struct {
			Info struct {
				Features map[string]struct {
					Type string `json:"_type"`
				} `json:"features"`
			} `json:"info"`
		}
		if json.Unmarshal([]byte(meta), &hf) == nil {
			for _, c := range pf.Root().Columns() {
				if hf.Info.Features[c.Name()].Type == "Image" && isImageStruct(c) {
					return c
				}
			}
		}
	}
	for _, c := range pf.Root().Columns() {
		if isImageStruct(c) {
			return c
		}
	}
	return nil
}

// column looks up a required top-level column.
func column(root *parquet.Column, name string) (*parquet.Column, error) {
	if c := root.Column(name); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w %q (the file has %s)", data.ErrMissingColumn, name, columnNames(root))
}

// firstColumn looks up the first of names present.
func firstColumn(root *parquet.Column, names ...string) (*parquet.Column, error) {
	for _, n := range names {
		if c := root.Column(n); c != nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w %s (the file has %s)", data.ErrMissingColumn, strings.Join(quoteAll(names), " or "), columnNames(root))
}

func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return q
}

// optionalScalar binds a column the layout reads when present and
// readable; one of another type is an extra column like any other.
func optionalScalar(b *binder, root *parquet.Column, name string, kind leafKind) *field {
	c := root.Column(name)
	if c == nil || c.Repeated() || checkLeaf(c, kind) != nil {
		return nil
	}
	f, _ := b.scalar(c, kind)
	return f
}

func bind(l Layout, pf *parquet.File, opts Options, b *binder) (adapter, error) {
	root := pf.Root()
	switch l {
	case Mmablate:
		return bindMmablate(root, b)
	case Obelics:
		return bindObelics(root, b)
	case Img2Dataset:
		return bindImg2Dataset(root, opts, b)
	case HFImage:
		return bindHFImage(pf, opts, b)
	case Text:
		return bindText(root, opts, b)
	}
	return nil, fmt.Errorf("unknown layout %q", l)
}

// maxManifestBytes bounds manifest.json; a million shards fit in far less.
const maxManifestBytes = 256 << 20

// manifestShards returns the shard names a dataset directory's manifest
// lists, or nil when there is no manifest. Only the names are read, so
// the manifest's other fields may grow without breaking this reader.
func manifestShards(dir string) ([]string, error) {
	p := filepath.Join(dir, "manifest.json")
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Size() > maxManifestBytes {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit", p, st.Size(), maxManifestBytes)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m struct {
		Shards []struct{ Name string }
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	names := make([]string, 0, len(m.Shards))
	for i, s := range m.Shards {
		if s.Name == "" || s.Name != filepath.Base(s.Name) || s.Name == "." || s.Name == ".." {
			return nil, fmt.Errorf("%s: shard %d has name %q, want a file name in the dataset directory", p, i, s.Name)
		}
		names = append(names, s.Name)
	}
	return names, nil
}
