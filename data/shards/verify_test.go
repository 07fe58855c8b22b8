package shards

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// editManifest rewrites dir's manifest.json through fn, as a JSON object,
// so tests can also write values the Manifest type would not.
func editManifest(t *testing.T, dir string, fn func(m *Manifest)) {
	t.Helper()
	m, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	shard := func(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("shard-%05d.parquet", i)) }
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string // "shard: what", sorted
	}{
		{"intact", func(*testing.T, string) {}, nil},
		{"edited byte", func(t *testing.T, dir string) {
			editFile(t, shard(dir, 1), func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		}, []string{"shard-00001.parquet: sha256"}},
		{"truncated", func(t *testing.T, dir string) {
			editFile(t, shard(dir, 0), func(b []byte) []byte { return b[:len(b)-100] })
		}, []string{"shard-00000.parquet: bytes", "shard-00000.parquet: parquet", "shard-00000.parquet: sha256"}},
		{"wrong magic", func(t *testing.T, dir string) {
			editFile(t, shard(dir, 2), func(b []byte) []byte { copy(b, "PK\x03\x04"); return b })
		}, []string{"shard-00002.parquet: parquet", "shard-00002.parquet: sha256"}},
		{"empty file", func(t *testing.T, dir string) {
			editFile(t, shard(dir, 2), func([]byte) []byte { return nil })
		}, []string{"shard-00002.parquet: bytes", "shard-00002.parquet: parquet", "shard-00002.parquet: sha256"}},
		{"missing shard", func(t *testing.T, dir string) {
			if err := os.Remove(shard(dir, 2)); err != nil {
				t.Fatal(err)
			}
		}, []string{"shard-00002.parquet: file"}},
		{"extra file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "extra.parquet"), []byte("PAR1"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"extra.parquet: file"}},
		{"wrong rows", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *Manifest) {
				m.Shards[0].Rows++
				m.Shards[0].Kinds["caption"]++
				m.Kinds["caption"]++
				m.Rows++
			})
		}, []string{"shard-00000.parquet: rows"}},
		{"wrong row groups", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *Manifest) { m.Shards[1].RowGroups-- })
		}, []string{"shard-00001.parquet: row_groups"}},
		{"wrong bytes", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *Manifest) { m.Shards[1].Bytes += 5 })
		}, []string{"shard-00001.parquet: bytes"}},
		{"schema version", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *Manifest) { m.SchemaVersion = 2 })
		}, []string{"manifest.json: schema_version"}},
		{"foreign schema under a listed name", func(t *testing.T, dir string) {
			var buf bytes.Buffer
			type other struct {
				ID string `parquet:"id"`
			}
			w := parquet.NewGenericWriter[other](&buf)
			for i := range 3 {
				if _, err := w.Write([]other{{fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(shard(dir, 2), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, err := fileSHA256(shard(dir, 2))
			if err != nil {
				t.Fatal(err)
			}
			editManifest(t, dir, func(m *Manifest) {
				m.Shards[2].Bytes = int64(buf.Len())
				m.Shards[2].SHA256 = sum
			})
		}, []string{"shard-00002.parquet: row_groups", "shard-00002.parquet: schema"}},
	}
	recs := testRecords(13, 200, 10)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := writeDataset(t, dir, Options{MaxRowsPerShard: 5, RowGroupRows: 2}, recs)
			if len(m.Shards) != 3 {
				t.Fatalf("%d shards, want 3", len(m.Shards))
			}
			tt.damage(t, dir)
			mismatches, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, mm := range mismatches {
				got = append(got, mm.Shard+": "+mm.What)
				if mm.Expected == "" || mm.Got == "" || mm.Expected == mm.Got {
					t.Errorf("mismatch %q does not say what differs", mm)
				}
				if !strings.HasPrefix(mm.String(), mm.Shard+": ") {
					t.Errorf("mismatch %q does not start with its shard", mm)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Verify found %q, want %q\n%v", got, tt.want, mismatches)
			}
		})
	}
}

func TestVerifyWithoutManifest(t *testing.T) {
	if _, err := Verify(t.TempDir()); err == nil || !strings.Contains(err.Error(), ManifestName) {
		t.Errorf("Verify(no manifest) = %v, want an error naming %s", err, ManifestName)
	}
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
