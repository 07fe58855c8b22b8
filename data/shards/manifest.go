package shards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmablate/mmablate/data"
)

// maxManifestBytes bounds what LoadManifest reads: a million shards' entries
// fit in far less, so anything larger is not a manifest.
const maxManifestBytes = 64 << 20

// Manifest describes a dataset directory: its shards in reading order and
// the row counts by kind.
type Manifest struct {
	SchemaVersion int                 `json:"schema_version"`
	CreatedBy     string              `json:"created_by"`
	Shards        []ShardInfo         `json:"shards"`
	Kinds         map[data.Kind]int64 `json:"kinds"`
	Rows          int64               `json:"rows"`
}

// ShardInfo is one shard's entry: what Verify checks the file against.
type ShardInfo struct {
	Name      string              `json:"name"` // file name inside the dataset directory
	Rows      int64               `json:"rows"`
	Bytes     int64               `json:"bytes"`
	SHA256    string              `json:"sha256"` // lowercase hex
	RowGroups int                 `json:"row_groups"`
	Kinds     map[data.Kind]int64 `json:"kinds"`
}

// Paths returns the shards' paths under dir, in manifest order.
func (m *Manifest) Paths(dir string) []string {
	paths := make([]string, len(m.Shards))
	for i, s := range m.Shards {
		paths[i] = filepath.Join(dir, s.Name)
	}
	return paths
}

func (m *Manifest) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("shards: encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// LoadManifest reads and validates dir/manifest.json. It accepts any schema
// version ≥ 1 so that Verify can report a version it does not know as a
// mismatch; readers compare SchemaVersion with data.SchemaVersion.
func LoadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("shards: read %s: %w", path, err)
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("shards: %s is larger than %d MiB: not a manifest", path, maxManifestBytes>>20)
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("shards: %s: %w", path, err)
	}
	return m, nil
}

// parseManifest decodes and validates a manifest. Unknown fields are
// rejected: a misspelt key would otherwise pass silently.
func parseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the manifest object")
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	if m.Shards == nil {
		m.Shards = []ShardInfo{}
	}
	if m.Kinds == nil {
		m.Kinds = map[data.Kind]int64{}
	}
	return &m, nil
}

// validate checks the manifest's own consistency: names that stay inside
// the dataset directory, non-negative counts, and totals that add up.
func (m *Manifest) validate() error {
	if m.SchemaVersion < 1 {
		return fmt.Errorf("schema_version %d: want 1 or more", m.SchemaVersion)
	}
	if m.Rows < 0 {
		return fmt.Errorf("rows %d is negative", m.Rows)
	}
	if err := validateKinds("kinds", m.Kinds, m.Rows); err != nil {
		return err
	}
	seen := make(map[string]bool, len(m.Shards))
	var rows int64
	kinds := map[data.Kind]int64{}
	for i, s := range m.Shards {
		at := fmt.Sprintf("shards[%d]", i)
		if err := validateShardName(s.Name); err != nil {
			return fmt.Errorf("%s: name %q: %w", at, s.Name, err)
		}
		at = fmt.Sprintf("shards[%d] (%s)", i, s.Name)
		if seen[s.Name] {
			return fmt.Errorf("%s: listed twice", at)
		}
		seen[s.Name] = true
		switch {
		case s.Rows < 0:
			return fmt.Errorf("%s: rows %d is negative", at, s.Rows)
		case s.Bytes < 0:
			return fmt.Errorf("%s: bytes %d is negative", at, s.Bytes)
		case s.RowGroups < 0:
			return fmt.Errorf("%s: row_groups %d is negative", at, s.RowGroups)
		case s.Rows > 0 && s.RowGroups == 0:
			return fmt.Errorf("%s: %d rows in no row groups", at, s.Rows)
		case int64(s.RowGroups) > s.Rows:
			return fmt.Errorf("%s: %d row groups for %d rows", at, s.RowGroups, s.Rows)
		}
		if !isSHA256Hex(s.SHA256) {
			return fmt.Errorf("%s: sha256 %q is not 64 lowercase hex digits", at, s.SHA256)
		}
		if err := validateKinds(at+".kinds", s.Kinds, s.Rows); err != nil {
			return err
		}
		if rows > m.Rows-s.Rows {
			return fmt.Errorf("shards' rows add up to more than rows %d", m.Rows)
		}
		rows += s.Rows
		for k, n := range s.Kinds {
			kinds[k] += n
		}
	}
	if rows != m.Rows {
		return fmt.Errorf("rows is %d but the shards' rows add up to %d", m.Rows, rows)
	}
	for k, n := range m.Kinds {
		if kinds[k] != n {
			return fmt.Errorf("kinds[%s] is %d but the shards' add up to %d", k, n, kinds[k])
		}
	}
	return nil
}

// validateKinds checks that kinds are known and their counts are
// non-negative and sum to rows, comparing without overflow.
func validateKinds(at string, kinds map[data.Kind]int64, rows int64) error {
	var sum int64
	for k, n := range kinds {
		if _, err := data.ParseKind(string(k)); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if n < 0 {
			return fmt.Errorf("%s[%s] is negative (%d)", at, k, n)
		}
		if n > rows-sum {
			return fmt.Errorf("%s add up to more than %d rows", at, rows)
		}
		sum += n
	}
	if sum != rows {
		return fmt.Errorf("%s add up to %d rows, want %d", at, sum, rows)
	}
	return nil
}

// validateShardName accepts only a plain Parquet file name, so a manifest
// can never point outside its directory.
func validateShardName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case strings.ContainsAny(name, `/\`) || !filepath.IsLocal(name) || name != filepath.Base(name):
		return errors.New("not a plain file name inside the dataset directory")
	case strings.HasPrefix(name, "."):
		return errors.New("hidden file names are temporaries")
	case !strings.HasSuffix(name, ".parquet"):
		return errors.New("not a .parquet file")
	case strings.ContainsRune(name, 0):
		return errors.New("contains a NUL byte")
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
