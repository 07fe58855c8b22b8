package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/shards"
)

func TestDataVerify(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		wantOut string
		wantErr string
	}{
		{"intact", func(*testing.T, string) {}, "ok: 2 shards, 3 rows\n", ""},
		{"missing shard", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "shard-00001.parquet")); err != nil {
				t.Fatal(err)
			}
		}, "shard-00001.parquet: file: expected a shard listed in manifest.json, got no such file\n", "1 mismatch(es)"},
		{"no manifest", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, shards.ManifestName)); err != nil {
				t.Fatal(err)
			}
		}, "", shards.ManifestName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := shards.NewWriter(dir, shards.Options{MaxRowsPerShard: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a", "b", "c"} {
				r := &data.Record{ID: id, Kind: data.KindText, Texts: []*string{data.Str("text " + id)}, Images: []*data.ImageRef{nil}}
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir)

			var out bytes.Buffer
			root := newRootCmd()
			root.SetOut(&out)
			root.SetArgs([]string{"data", "verify", dir})
			err = root.Execute()
			if got := out.String(); got != tt.wantOut {
				t.Errorf("output %q, want %q", got, tt.wantOut)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			var ue *usageError
			if errors.As(err, &ue) {
				t.Errorf("a failed verification is a usage error (exit 2), want exit 1: %v", err)
			}
		})
	}

	root := newRootCmd()
	root.SetArgs([]string{"data", "verify"})
	var ue *usageError
	if err := root.Execute(); !errors.As(err, &ue) {
		t.Errorf("verify without DIR: %v, want a usage error", err)
	}
}
