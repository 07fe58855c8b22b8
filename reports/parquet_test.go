package reports

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// readParquet reads results.parquet back with Apache Arrow, the reader
// behind pandas and polars.
func readParquet(t *testing.T, path string) arrow.Table {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Close() })
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return tbl
}

// col returns a column of a one-chunk table.
func col(t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q in %v", name, tbl.Schema())
	}
	c := tbl.Column(idx[0]).Data()
	if len(c.Chunks()) != 1 {
		t.Fatalf("%s: %d chunks", name, len(c.Chunks()))
	}
	return c.Chunk(0)
}

func TestParquetRoundTrip(t *testing.T) {
	out, _, _ := writeReport(t, "full")
	tbl := readParquet(t, filepath.Join(out, ParquetFile))
	// 8 cells × (caption: cider, bleu4; vqa: accuracy) × (0-shot: 1 trial,
	// 4- and 8-shot: 2 trials) = 8 × 3 × 5.
	if tbl.NumRows() != 120 {
		t.Fatalf("%d rows, want 120", tbl.NumRows())
	}
	for name, typ := range map[string]arrow.DataType{
		"cell_id": arrow.BinaryTypes.String, "seed": arrow.PrimitiveTypes.Int64, "baseline": arrow.FixedWidthTypes.Boolean,
		"res": arrow.PrimitiveTypes.Int64, "tokens": arrow.PrimitiveTypes.Int64, "shots": arrow.PrimitiveTypes.Int64,
		"trial": arrow.PrimitiveTypes.Int64, "value": arrow.PrimitiveTypes.Float64, "final_loss": arrow.PrimitiveTypes.Float64,
	} {
		if got := col(t, tbl, name).DataType(); !arrow.TypeEqual(got, typ) {
			t.Errorf("%s is %v, want %v", name, got, typ)
		}
	}
	res, seed := col(t, tbl, "res").(*array.Int64), col(t, tbl, "seed").(*array.Int64)
	task, metric := col(t, tbl, "task").(*array.String), col(t, tbl, "metric").(*array.String)
	shots, trial := col(t, tbl, "shots").(*array.Int64), col(t, tbl, "trial").(*array.Int64)
	value, ppl := col(t, tbl, "value").(*array.Float64), col(t, tbl, "perplexity").(*array.Float64)
	tokens, base := col(t, tbl, "tokens").(*array.Int64), col(t, tbl, "baseline").(*array.Boolean)
	found := 0
	for i := range int(tbl.NumRows()) {
		// The fixture's VQA accuracy of res=64,tokens=16,seed=1 at 4 shots,
		// trial 1: 30 + 1 + 10 + 0.1 + 1 + 0.5.
		if res.Value(i) == 64 && tokens.Value(i) == 16 && seed.Value(i) == 1 && task.Value(i) == "vqa" &&
			metric.Value(i) == "accuracy" && shots.Value(i) == 4 && trial.Value(i) == 1 {
			found++
			if math.Abs(value.Value(i)-42.6) > 1e-9 || !base.Value(i) || math.Abs(ppl.Value(i)-(20-11.1)) > 1e-9 {
				t.Errorf("row %d: value %v baseline %v perplexity %v", i, value.Value(i), base.Value(i), ppl.Value(i))
			}
		}
	}
	if found != 1 {
		t.Errorf("found the known row %d times", found)
	}
}

// TestParquetPartial: cells without scores have one row with null scores;
// string and float axes get string and float columns.
func TestParquetPartial(t *testing.T) {
	out, _, _ := writeReport(t, "partial")
	tbl := readParquet(t, filepath.Join(out, ParquetFile))
	if tbl.NumRows() != 2*15+2 {
		t.Fatalf("%d rows, want 32", tbl.NumRows())
	}
	if got := col(t, tbl, "connector").DataType(); !arrow.TypeEqual(got, arrow.BinaryTypes.String) {
		t.Errorf("connector is %v", got)
	}
	state, value := col(t, tbl, "state").(*array.String), col(t, tbl, "value").(*array.Float64)
	nulls := map[string]int{}
	for i := range int(tbl.NumRows()) {
		if value.IsNull(i) {
			nulls[state.Value(i)]++
		}
	}
	if nulls["failed"] != 1 || nulls["running"] != 1 || len(nulls) != 2 {
		t.Errorf("null-value rows by state: %v", nulls)
	}
}

// TestParquetPandas reads the file with pandas where it is installed.
func TestParquetPandas(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import pandas, pyarrow").Run() != nil {
		t.Skip("python3 with pandas and pyarrow is not installed")
	}
	out, _, _ := writeReport(t, "mixture")
	script := `import sys, pandas as pd
df = pd.read_parquet(sys.argv[1])
assert len(df) == 120, len(df)
assert df["mixture"].dtype == object and df["shots"].dtype == "int64", df.dtypes
print(df.groupby("mixture")["value"].count().to_dict())`
	if b, err := exec.Command(py, "-c", script, filepath.Join(out, ParquetFile)).CombinedOutput(); err != nil {
		t.Fatalf("pandas: %v\n%s", err, b)
	}
}

// TestParquetMissingAxisValue: a cell that sweep.json gives no value for
// an int axis has null in that column, not 0.
func TestParquetMissingAxisValue(t *testing.T) {
	sw := &Sweep{
		Axes: []Axis{{Name: "res", Values: []Value{{Kind: KindInt, I: 32}}}},
		Cells: []*Cell{
			{ID: "a", State: StatePending, Axes: []Value{{Kind: KindInt, I: 32}}, Perplexity: math.NaN()},
			{ID: "b", State: StatePending, Axes: []Value{{Kind: KindString, S: "?"}}, Perplexity: math.NaN()},
		},
	}
	path := filepath.Join(t.TempDir(), ParquetFile)
	if err := writeParquet(path, Analyse(sw)); err != nil {
		t.Fatal(err)
	}
	res := col(t, readParquet(t, path), "res").(*array.Int64)
	if res.Len() != 2 || res.IsNull(0) || res.Value(0) != 32 || !res.IsNull(1) {
		t.Errorf("res column: %v, want [32 null]", res)
	}
}
