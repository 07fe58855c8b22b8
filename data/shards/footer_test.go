package shards

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmablate/mmablate/data/internal/pqsafe"
)

// footerOf returns the Thrift footer of a freshly written shard.
func footerOf(t testing.TB, opts Options, rows int) []byte {
	t.Helper()
	dir := t.TempDir()
	m := writeDataset(t, dir, opts, testRecords(rows, 30, 14))
	b, err := os.ReadFile(filepath.Join(dir, m.Shards[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	return b[len(b)-8-n : len(b)-8]
}

// TestFooterBudgetFitsLargestShard extrapolates the footer estimate from
// shards of 10 and 20 row groups to the writer's row-group limit, which
// must stay within the budget Verify allows.
func TestFooterBudgetFitsLargestShard(t *testing.T) {
	cost := func(groups int) int64 {
		c, err := pqsafe.CheckFooter(footerOf(t, Options{RowGroupRows: 1}, groups))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c10, c20 := cost(10), cost(20)
	perGroup := (c20 - c10) / 10
	if largest := c10 + perGroup*(defaultMaxRowGroups-10); largest > pqsafe.MaxFooterDecodedBytes*3/4 {
		t.Errorf("a shard of %d row groups estimates at %d MiB, too close to the %d MiB budget", defaultMaxRowGroups, largest>>20, pqsafe.MaxFooterDecodedBytes>>20)
	}
}
