package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/internal/pqsafe"
	"github.com/parquet-go/parquet-go"
)

// Mismatch is one way a dataset directory differs from its manifest.
type Mismatch struct {
	Shard    string // file name inside the dataset directory (manifest.json for the manifest itself)
	What     string // "file", "bytes", "sha256", "rows", "row_groups", "parquet", "schema" or "schema_version"
	Expected string
	Got      string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: %s: expected %s, got %s", m.Shard, m.What, m.Expected, m.Got)
}

// Verify checks dir against its manifest: every listed shard exists with
// the listed bytes, sha256, rows and row groups (from its Parquet footer)
// and the canonical schema; no unlisted .parquet file is present; the
// schema version is the one this build writes. It returns one Mismatch per
// problem; the error is for a manifest that cannot be read at all.
func Verify(dir string) ([]Mismatch, error) {
	m, err := LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	var out []Mismatch
	if m.SchemaVersion != data.SchemaVersion {
		out = append(out, Mismatch{ManifestName, "schema_version", strconv.Itoa(data.SchemaVersion), strconv.Itoa(m.SchemaVersion)})
	}
	listed := make(map[string]bool, len(m.Shards))
	for _, s := range m.Shards {
		listed[s.Name] = true
		out = append(out, verifyShard(dir, s)...)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".parquet") && !listed[e.Name()] {
			out = append(out, Mismatch{e.Name(), "file", "only the files listed in " + ManifestName, "a .parquet file it does not list"})
		}
	}
	return out, nil
}

func verifyShard(dir string, s ShardInfo) []Mismatch {
	bad := func(what, expected, got string) []Mismatch {
		return []Mismatch{{s.Name, what, expected, got}}
	}
	f, err := os.Open(filepath.Join(dir, s.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return bad("file", "a shard listed in "+ManifestName, "no such file")
	}
	if err != nil {
		return bad("file", "a readable file", err.Error())
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return bad("file", "a readable file", err.Error())
	}
	if !st.Mode().IsRegular() {
		return bad("file", "a regular file", st.Mode().Type().String())
	}
	var out []Mismatch
	if st.Size() != s.Bytes {
		out = append(out, Mismatch{s.Name, "bytes", strconv.FormatInt(s.Bytes, 10), strconv.FormatInt(st.Size(), 10)})
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return append(out, Mismatch{s.Name, "file", "a readable file", err.Error()})
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != s.SHA256 {
		out = append(out, Mismatch{s.Name, "sha256", s.SHA256, sum})
	}
	pf, err := pqsafe.Open(f, st.Size())
	if err != nil {
		return append(out, Mismatch{s.Name, "parquet", "a valid Parquet file", err.Error()})
	}
	if n := pf.NumRows(); n != s.Rows {
		out = append(out, Mismatch{s.Name, "rows", strconv.FormatInt(s.Rows, 10), strconv.FormatInt(n, 10)})
	}
	if n := len(pf.RowGroups()); n != s.RowGroups {
		out = append(out, Mismatch{s.Name, "row_groups", strconv.Itoa(s.RowGroups), strconv.Itoa(n)})
	}
	if !parquet.EqualNodes(pf.Schema(), canonicalSchema) {
		out = append(out, Mismatch{s.Name, "schema", "the canonical columns " + columnList(canonicalSchema), columnList(pf.Schema())})
	}
	return out
}

// columnList writes a schema's leaf columns on one line, e.g.
// "id, kind, texts.list.element, …", for a mismatch message.
func columnList(s *parquet.Schema) string {
	var cols []string
	for _, path := range s.Columns() {
		cols = append(cols, strings.Join(path, "."))
	}
	return "(" + strings.Join(cols, ", ") + ")"
}
