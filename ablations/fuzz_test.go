package ablations

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParse feeds arbitrary sweep files to Parse (bases resolved in
// testdata/): it must return a sweep or an error, never panic, and a sweep
// it returns must be a valid grid.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range parseErrorCases {
		f.Add([]byte(tc.src))
	}
	dir := testdataDir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b, "fuzz.yaml", dir)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(s.Cells) == 0 || len(s.Seeds) == 0 || s.Name == "" {
			t.Fatalf("sweep with %d cells, %d seeds, name %q", len(s.Cells), len(s.Seeds), s.Name)
		}
		var ids, names []string
		for i, c := range s.Cells {
			if c.Index != i || len(c.ID) != 12 || len(c.ConfigYAML) == 0 || len(c.Axes) != len(s.Axes) {
				t.Fatalf("cell %d: %+v", i, c.CellInfo)
			}
			ids, names = append(ids, c.ID), append(names, c.Name)
		}
		slices.Sort(ids)
		slices.Sort(names)
		if len(slices.Compact(ids)) != len(s.Cells) || len(slices.Compact(names)) != len(s.Cells) {
			t.Fatalf("ids or names repeat: %v", s.Cells)
		}
	})
}
