package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/shards"
)

type i2dRow struct {
	Key     string  `parquet:"key"`
	JPG     []byte  `parquet:"jpg,optional"`
	Caption *string `parquet:"caption,optional"`
	Status  string  `parquet:"status"`
	Width   int32   `parquet:"width"`
}

// writeImg2Dataset writes an img2dataset-style file: rows 1 (failed
// download) and 2 (null caption) cannot become samples.
func writeImg2Dataset(t *testing.T, dir string) string {
	t.Helper()
	s := func(v string) *string { return &v }
	jpg := []byte("\xff\xd8\xff\xe0 fake jpeg")
	rows := []i2dRow{
		{Key: "k0", JPG: jpg, Caption: s("a red circle"), Status: "success", Width: 64},
		{Key: "k1", Status: "failed_to_download"},
		{Key: "k2", JPG: jpg, Status: "success", Width: 64},
		{Key: "k3", JPG: jpg, Caption: s("a blue square"), Status: "success", Width: 32},
	}
	path := filepath.Join(dir, "part-00000.parquet")
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkGolden compares got with testdata/name; UPDATE_GOLDEN=1 rewrites
// the file first.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func runCLI(args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestDataImport(t *testing.T) {
	src := writeImg2Dataset(t, t.TempDir())

	t.Run("skip", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "ds")
		got, err := runCLI("data", "import", "--layout", "img2dataset", "--on-error", "skip", src, "--out", out)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"wrote 2 samples to " + out + " in 1 shards", "skipped 2 rows:", "img2dataset status is not success  1", "null text                          1"} {
			if !strings.Contains(got, want) {
				t.Errorf("output %q lacks %q", got, want)
			}
		}
		m, err := shards.LoadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rows != 2 {
			t.Errorf("manifest rows %d, want 2", m.Rows)
		}
		js, err := runCLI("data", "inspect", "--json", "--preview", "2", out)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Layout    string
			Rows      int64
			RowGroups int `json:"row_groups"`
			Files     int
			Columns   []struct{ Name, Type string }
			Preview   []struct {
				ID       string
				Segments []string
			}
		}
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatalf("%v in %s", err, js)
		}
		if rep.Layout != "mmablate" || rep.Rows != 2 || rep.Files != 1 || rep.RowGroups < 1 || len(rep.Columns) != 5 {
			t.Errorf("inspect of the import: %+v", rep)
		}
		if len(rep.Preview) != 2 || rep.Preview[0].ID != "k0" || rep.Preview[1].ID != "k3" {
			t.Fatalf("preview %+v, want k0 and k3", rep.Preview)
		}
		if want := []string{"<image 14 bytes jpeg> k0.jpg", `"a red circle"`}; strings.Join(rep.Preview[0].Segments, "|") != strings.Join(want, "|") {
			t.Errorf("segments %q, want %q", rep.Preview[0].Segments, want)
		}
	})

	t.Run("fail", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "ds")
		_, err := runCLI("data", "import", src, "--out", out, "--rows-per-shard", "1")
		// The failed download is skipped even in fail mode; the null
		// caption of row 2 stops the import.
		if err == nil || !strings.Contains(err.Error(), "row 2, column caption") || !strings.Contains(err.Error(), "--on-error skip") {
			t.Fatalf("error %v, want the null caption of row 2", err)
		}
		if _, err := os.Stat(filepath.Join(out, shards.ManifestName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("manifest left behind: %v", err)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("files left behind: %v", entries)
		}
	})

	t.Run("sizes", func(t *testing.T) {
		// Each sample is over 10 bytes: every shard ends after one row.
		out := filepath.Join(t.TempDir(), "ds")
		got, err := runCLI("data", "import", "--on-error", "skip", "--shard-size", "10B", src, "--out", out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "wrote 2 samples to "+out+" in 2 shards") {
			t.Errorf("--shard-size 10B: output %q, want 2 samples in 2 shards", got)
		}
		// And every row group.
		out = filepath.Join(t.TempDir(), "ds")
		if _, err := runCLI("data", "import", "--on-error", "skip", "--row-group-size", "1B", src, "--out", out); err != nil {
			t.Fatal(err)
		}
		m, err := shards.LoadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Shards) != 1 || m.Shards[0].RowGroups != 2 {
			t.Errorf("--row-group-size 1B: shards %+v, want one shard of 2 row groups", m.Shards)
		}
	})

	t.Run("misuse", func(t *testing.T) {
		for _, args := range [][]string{
			{"data", "import", src, "--out", t.TempDir() + "/x", "--shard-size", "12"},
			{"data", "import", src, "--out", t.TempDir() + "/x", "--row-group-size", "-1MB"},
			{"data", "import", src},
			{"data", "import", src, "--out", t.TempDir() + "/x", "--on-error", "ignore"},
			{"data", "import", src, "--out", t.TempDir() + "/x", "--layout", "webdataset"},
		} {
			_, err := runCLI(args...)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("%v: error %v, want a usage error", args, err)
			}
		}
	})
}

func TestDataInspectText(t *testing.T) {
	src := writeImg2Dataset(t, t.TempDir())
	got, err := runCLI("data", "inspect", src, "--preview", "2")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"layout:      img2dataset", "rows:        4", "row groups:  1",
		"  jpg      binary", "  width    int32",
		"row 0  k0  caption  {\"width\":64}", "[0] <image 14 bytes jpeg> k0.jpg", `[1] "a red circle"`,
		"row 1  skipped: " + src + ": row group 0, row 1, column status: img2dataset status is not success",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestImportProgressBar checks the terminal progress line: a bar filled in
// proportion to the rows read, the percentage, rows, written and skipped
// counts, redrawn at the last row even within the redraw interval.
func TestImportProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := newImportProgress(&buf, 4)
	p.tty = true
	p.start = p.start.Add(-1000 * time.Second) // 2 rows in 1000 s: "0 rows/s"
	p.last = p.last.Add(-time.Second)
	res := &importResult{written: 1, skipped: data.SkipCounts{data.ErrNullText.Error(): 1}}
	p.add(2, res)
	want := "\rimport [###############...............]  50.0%  2/4 rows  0 rows/s  1 written  1 skipped\033[K"
	if got := buf.String(); got != want {
		t.Fatalf("half way: %q, want %q", got, want)
	}
	buf.Reset()
	res.written++
	p.add(2, res)
	if got := buf.String(); !strings.HasPrefix(got, "\rimport ["+strings.Repeat("#", 30)+"] 100.0%  4/4 rows") || !strings.HasSuffix(got, "2 written  1 skipped\033[K") {
		t.Fatalf("at the end: %q", got)
	}
	buf.Reset()
	p.done()
	if got := buf.String(); got != "\r\033[K" {
		t.Fatalf("done wrote %q, want the erase-line sequence", got)
	}
}
