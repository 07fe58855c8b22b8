package shards

import (
	"crypto/sha256"
	"encoding/binary"
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
	"github.com/parquet-go/parquet-go"
)

// maxFooterBytes bounds the Parquet footer length read from a file's last
// bytes before anything is allocated; footers of real shards are a few KiB.
const maxFooterBytes = 64 << 20

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
	pf, err := OpenParquet(f, st.Size())
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

// OpenParquet opens any Parquet file's footer with parquet-go after checking
// both magic numbers, the footer length and the footer's Thrift structure
// (checkFooter), so a truncated or hostile file is an error saying what is
// wrong rather than a huge allocation, a stack overflow or a panic. Page
// indexes and bloom filters are not read. Callers add the file name.
func OpenParquet(r io.ReaderAt, size int64) (f *parquet.File, err error) {
	if size < 12 {
		return nil, fmt.Errorf("%d bytes is too short for a Parquet file", size)
	}
	var head [4]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(head[:]) != "PAR1" {
		return nil, fmt.Errorf("header magic %q is not PAR1", head[:])
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return nil, fmt.Errorf("footer magic %q is not PAR1 (truncated file?)", tail[4:])
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer > size-12 || footer > maxFooterBytes {
		return nil, fmt.Errorf("footer length %d does not fit in a %d-byte file (limit %d)", footer, size, int64(maxFooterBytes))
	}
	meta := make([]byte, footer)
	if _, err := r.ReadAt(meta, size-8-footer); err != nil {
		return nil, fmt.Errorf("read footer: %w", err)
	}
	if err := checkFooter(meta); err != nil {
		return nil, err
	}
	// checkFooter bounds what parquet-go allocates; a panic in its
	// decoding of the checked structure is still a corrupt file.
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("corrupt footer: %v", p)
		}
	}()
	f, err = parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	var rows int64
	for _, rg := range f.RowGroups() {
		if n := rg.NumRows(); n < 0 || n > f.NumRows()-rows {
			return nil, fmt.Errorf("footer row groups hold more rows than its num_rows %d", f.NumRows())
		}
		rows += rg.NumRows()
	}
	if rows != f.NumRows() {
		return nil, fmt.Errorf("footer num_rows %d but its row groups hold %d", f.NumRows(), rows)
	}
	return f, nil
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
