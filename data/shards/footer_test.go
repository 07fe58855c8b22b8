package shards

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/parquet-go/parquet-go/format"
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

func TestCheckFooter(t *testing.T) {
	real := footerOf(t, Options{RowGroupRows: 1}, 20)
	nested := bytes.Repeat([]byte{0x1c}, 100) // field 1, type struct, a hundred levels deep
	tests := []struct {
		name    string
		footer  []byte
		wantErr string
	}{
		{"real footer", real, ""},
		{"empty struct", []byte{0}, ""},
		{"truncated", real[:len(real)/2], "corrupt footer"},
		// field 1: list of 2³¹-1 structs, declared in 7 bytes.
		{"huge list", []byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07}, "elements declared"},
		// field 1: binary of 2³¹-1 bytes.
		{"huge binary", []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0x07}, "end of footer"},
		{"deep nesting", nested, "nested deeper"},
		{"unknown type", []byte{0x1e}, "unknown Thrift type"},
		// A list of 900 000 empty structs fits in its bytes but would
		// decode to more than the budget.
		{"amplification", append(append([]byte{0x19, 0xfc, 0xa0, 0xf7, 0x36}, make([]byte, 900_000)...), 0), "MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkFooter(tt.footer)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkFooter = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestStructElemCostCoversFormat keeps the budget honest across parquet-go
// upgrades: every struct that appears as a list element in FileMetaData
// must fit in structElemCost.
func TestStructElemCostCoversFormat(t *testing.T) {
	sizes := map[string]uintptr{
		"SchemaElement":     unsafe.Sizeof(format.SchemaElement{}),
		"RowGroup":          unsafe.Sizeof(format.RowGroup{}),
		"ColumnChunk":       unsafe.Sizeof(format.ColumnChunk{}),
		"PageEncodingStats": unsafe.Sizeof(format.PageEncodingStats{}),
		"KeyValue":          unsafe.Sizeof(format.KeyValue{}),
		"SortingColumn":     unsafe.Sizeof(format.SortingColumn{}),
		"ColumnOrder":       unsafe.Sizeof(format.ColumnOrder{}),
	}
	for name, size := range sizes {
		if size > structElemCost {
			t.Errorf("format.%s is %d bytes, more than structElemCost %d", name, size, structElemCost)
		}
	}
}

// TestFooterBudgetFitsLargestShard extrapolates the footer estimate from
// shards of 10 and 20 row groups to the writer's row-group limit, which
// must stay within the budget Verify allows.
func TestFooterBudgetFitsLargestShard(t *testing.T) {
	cost := func(groups int) int64 {
		w := &footerWalker{b: footerOf(t, Options{RowGroupRows: 1}, groups), budget: maxFooterDecodedBytes}
		if err := w.value(tStruct, 0); err != nil {
			t.Fatal(err)
		}
		return maxFooterDecodedBytes - w.budget
	}
	c10, c20 := cost(10), cost(20)
	perGroup := (c20 - c10) / 10
	if largest := c10 + perGroup*(defaultMaxRowGroups-10); largest > maxFooterDecodedBytes*3/4 {
		t.Errorf("a shard of %d row groups estimates at %d MiB, too close to the %d MiB budget", defaultMaxRowGroups, largest>>20, maxFooterDecodedBytes>>20)
	}
}
