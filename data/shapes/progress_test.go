package shapes

import (
	"slices"
	"testing"
)

// TestProgressValues: Generate reports every written record exactly once,
// in order: Done counts 1, 2, … TotalRows with TotalRows fixed from the
// start; within a split SplitDone counts 1 … SplitRows and SplitRows is
// the rows the split's manifest holds; splits come in the order they are
// written, an empty split reports nothing, and each non-empty split's
// last report has SplitDone == SplitRows. An up-to-date rerun reports
// nothing. Progress is documented to run on Generate's goroutine, so the
// plain slice append below is also a check under -race.
func TestProgressValues(t *testing.T) {
	cfg := smallConfig()
	cfg.Size = MinSize
	cfg.Support = 0 // two empty splits
	cfg.Instructions = 3
	var got []Progress
	out := t.TempDir()
	res := generateIn(t, out, cfg, Options{Workers: 3, Progress: func(p Progress) { got = append(got, p) }})

	rows := map[string]int64{}
	var total int64
	var nonEmpty []string
	for _, s := range res.Splits {
		rows[s.Name] = s.Rows
		total += s.Rows
		if s.Rows > 0 {
			nonEmpty = append(nonEmpty, s.Name)
		}
	}
	if int64(len(got)) != total || total == 0 {
		t.Fatalf("%d progress reports for %d rows", len(got), total)
	}
	var order []string
	for i, p := range got {
		if p.Done != int64(i+1) || p.TotalRows != total {
			t.Fatalf("report %d: Done %d of %d, want %d of %d", i, p.Done, p.TotalRows, i+1, total)
		}
		if len(order) == 0 || order[len(order)-1] != p.Split {
			order = append(order, p.Split)
			if p.SplitDone != 1 {
				t.Fatalf("report %d: split %s starts at %d", i, p.Split, p.SplitDone)
			}
		} else if prev := got[i-1]; p.SplitDone != prev.SplitDone+1 {
			t.Fatalf("report %d: split %s goes from %d to %d", i, p.Split, prev.SplitDone, p.SplitDone)
		}
		if p.SplitRows != rows[p.Split] || p.SplitDone > p.SplitRows {
			t.Fatalf("report %d: %s %d/%d, its manifest holds %d rows", i, p.Split, p.SplitDone, p.SplitRows, rows[p.Split])
		}
		if last := i == len(got)-1 || got[i+1].Split != p.Split; last && p.SplitDone != p.SplitRows {
			t.Fatalf("split %s ends at %d of %d", p.Split, p.SplitDone, p.SplitRows)
		}
	}
	if !slices.Equal(order, nonEmpty) {
		t.Fatalf("splits reported in order %v, want the non-empty splits %v", order, nonEmpty)
	}
	if want := cfg.splits(); !slices.Equal(nonEmpty, slices.DeleteFunc(slices.Clone(want), func(s string) bool { return rows[s] == 0 })) {
		t.Fatalf("written splits %v, want %v less the empty ones", nonEmpty, want)
	}

	got = nil
	if res := generateIn(t, out, cfg, Options{Progress: func(p Progress) { got = append(got, p) }}); !res.UpToDate || len(got) != 0 {
		t.Fatalf("rerun: up to date %v, %d progress reports", res.UpToDate, len(got))
	}
}
