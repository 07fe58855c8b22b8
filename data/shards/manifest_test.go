package shards

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const validManifest = `{
  "schema_version": 1,
  "created_by": "test",
  "shards": [
    {"name": "shard-00000.parquet", "rows": 3, "bytes": 1000, "sha256": "` + hex64 + `", "row_groups": 2, "kinds": {"caption": 2, "text": 1}},
    {"name": "shard-00001.parquet", "rows": 1, "bytes": 500, "sha256": "` + hex64 + `", "row_groups": 1, "kinds": {"interleaved": 1}}
  ],
  "kinds": {"caption": 2, "interleaved": 1, "text": 1},
  "rows": 4
}`

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLoadManifest(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(string) string
		wantErr string // "" → valid
	}{
		{"valid", func(s string) string { return s }, ""},
		{"absolute name", func(s string) string { return strings.Replace(s, `"shard-00000.parquet"`, `"/etc/shard.parquet"`, 1) }, "/etc/shard.parquet"},
		{"parent name", func(s string) string { return strings.Replace(s, `"shard-00000.parquet"`, `"../shard.parquet"`, 1) }, "../shard.parquet"},
		{"subdirectory", func(s string) string { return strings.Replace(s, `"shard-00000.parquet"`, `"a/shard.parquet"`, 1) }, "a/shard.parquet"},
		{"backslash", func(s string) string { return strings.Replace(s, `"shard-00000.parquet"`, `"..\\shard.parquet"`, 1) }, `shards[0]`},
		{"dot-dot", func(s string) string { return strings.Replace(s, `"shard-00000.parquet"`, `".."`, 1) }, `".."`},
		{"temporary", func(s string) string {
			return strings.Replace(s, `"shard-00000.parquet"`, `".shard-00000.parquet"`, 1)
		}, "hidden"},
		{"not parquet", func(s string) string { return strings.Replace(s, `"shard-00000.parquet"`, `"shard-00000.csv"`, 1) }, "shard-00000.csv"},
		{"duplicate", func(s string) string { return strings.Replace(s, `"shard-00001.parquet"`, `"shard-00000.parquet"`, 1) }, "listed twice"},
		{"bad sha256", func(s string) string { return strings.Replace(s, hex64, strings.ToUpper(hex64), 1) }, "sha256"},
		{"negative rows", func(s string) string { return strings.Replace(s, `"rows": 1,`, `"rows": -1,`, 1) }, "negative"},
		{"negative bytes", func(s string) string { return strings.Replace(s, `"bytes": 500`, `"bytes": -500`, 1) }, "bytes -500"},
		{"rows do not add up", func(s string) string { return strings.Replace(s, `"rows": 4`, `"rows": 5`, 1) }, "add up"},
		{"kinds do not add up", func(s string) string { return strings.Replace(s, `"text": 1}`, `"text": 2}`, 1) }, "kinds"},
		{"unknown kind", func(s string) string { return strings.Replace(s, `"interleaved": 1}}`, `"video": 1}}`, 1) }, "video"},
		{"rows without row groups", func(s string) string { return strings.Replace(s, `"row_groups": 1`, `"row_groups": 0`, 1) }, "no row groups"},
		{"schema version 0", func(s string) string { return strings.Replace(s, `"schema_version": 1`, `"schema_version": 0`, 1) }, "schema_version"},
		{"unknown field", func(s string) string { return strings.Replace(s, `"rows": 4`, `"rows": 4, "rowz": 4`, 1) }, "rowz"},
		{"trailing data", func(s string) string { return s + "{}" }, "after"},
		{"not JSON", func(string) string { return "shards: []" }, "invalid JSON"},
		{"huge count", func(s string) string {
			return strings.Replace(s, `"rows": 4`, `"rows": 9223372036854775807`, 1)
		}, "add up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(tt.edit(validManifest)), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := LoadManifest(dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Rows != 4 || len(m.Shards) != 2 || m.Shards[1].Kinds["interleaved"] != 1 {
					t.Errorf("loaded %+v", m)
				}
				want := []string{filepath.Join(dir, "shard-00000.parquet"), filepath.Join(dir, "shard-00001.parquet")}
				if got := m.Paths(dir); !reflect.DeepEqual(got, want) {
					t.Errorf("Paths = %q, want %q", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ManifestName) {
				t.Errorf("LoadManifest = %v, want an error naming %s and %q", err, ManifestName, tt.wantErr)
			}
		})
	}
}

func TestLoadManifestBoundsSize(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: the test costs no disk, and the reader must stop at the bound.
	if err := f.Truncate(maxManifestBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := LoadManifest(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("LoadManifest(64 MiB + 1) = %v, want a size error", err)
	}
}

// FuzzParseManifest: any bytes parse to an error or to a manifest that
// validates and survives a write-and-read round trip unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte(`{"schema_version":1,"created_by":"","shards":[],"kinds":{},"rows":0}`))
	f.Add([]byte(`{"schema_version":1,"shards":null,"kinds":null,"rows":0}`))
	f.Add([]byte(`{"schema_version":1,"shards":[{"name":"../x.parquet"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			return
		}
		out, err := m.marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseManifest(out)
		if err != nil {
			t.Fatalf("re-reading a written manifest: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m, again) {
			t.Errorf("round trip changed the manifest:\n%+v\n%+v", m, again)
		}
	})
}
