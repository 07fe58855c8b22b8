package reports

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mmablate/mmablate/internal/atomicfile"
)

// Columns of results.parquet before the axis columns, and after them.
var (
	parquetLead = []arrow.Field{
		{Name: "cell_id", Type: arrow.BinaryTypes.String},
		{Name: "cell_name", Type: arrow.BinaryTypes.String},
		{Name: "seed", Type: arrow.PrimitiveTypes.Int64},
		{Name: "baseline", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "state", Type: arrow.BinaryTypes.String},
	}
	parquetTail = []arrow.Field{
		{Name: "task", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "shots", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "metric", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "trial", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "final_loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "perplexity", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}
)

// parquetSchema is results.parquet's schema for the sweep's axes: one
// column per axis, named after it (prefixed "axis_" where that would clash
// with a fixed column), int64, float64 or string as its values are.
func parquetSchema(axes []Axis) (*arrow.Schema, error) {
	fields := slices.Clone(parquetLead)
	taken := map[string]bool{}
	for _, f := range append(slices.Clone(parquetLead), parquetTail...) {
		taken[f.Name] = true
	}
	for _, ax := range axes {
		name := ax.Name
		if taken[name] {
			name = "axis_" + name
		}
		if taken[name] {
			return nil, fmt.Errorf("axis %q: column %q is taken", ax.Name, name)
		}
		taken[name] = true
		typ := arrow.DataType(arrow.BinaryTypes.String)
		switch ax.Kind() {
		case KindInt:
			typ = arrow.PrimitiveTypes.Int64
		case KindFloat:
			typ = arrow.PrimitiveTypes.Float64
		}
		// Nullable: a cell that sweep.json gives no value for the axis (a
		// Problem) has null there rather than a made-up 0.
		fields = append(fields, arrow.Field{Name: name, Type: typ, Nullable: true, Metadata: arrow.NewMetadata([]string{"mmablate.keys"}, []string{strings.Join(ax.Keys, ",")})})
	}
	return arrow.NewSchema(append(fields, parquetTail...), nil), nil
}

// writeParquet writes results.parquet: one row per cell × task × shots ×
// metric × trial, values as eval.json holds them (CIDEr and BLEU-4 0–1,
// VQA accuracy 0–100). A cell without scores (failed, running, pending, or
// unreadable results) has one row with null task, shots, metric, trial and
// value, so its state is in the table too.
func writeParquet(path string, a *Analysis) error {
	schema, err := parquetSchema(a.Sweep.Axes)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	nAxes := len(a.Sweep.Axes)
	tail := len(parquetLead) + nAxes
	appendRow := func(c *Cell, s *Score, trial int, value float64) {
		b.Field(0).(*array.StringBuilder).Append(c.ID)
		b.Field(1).(*array.StringBuilder).Append(c.Name)
		b.Field(2).(*array.Int64Builder).Append(c.Seed)
		b.Field(3).(*array.BooleanBuilder).Append(c.Baseline)
		b.Field(4).(*array.StringBuilder).Append(string(c.State))
		for i, v := range c.Axes {
			switch fb := b.Field(len(parquetLead) + i).(type) {
			case *array.Int64Builder:
				if v.Kind != KindInt {
					fb.AppendNull()
				} else {
					fb.Append(v.I)
				}
			case *array.Float64Builder:
				if v.Kind == KindString {
					fb.AppendNull()
				} else {
					fb.Append(v.Float())
				}
			case *array.StringBuilder:
				fb.Append(v.String())
			}
		}
		task := b.Field(tail).(*array.StringBuilder)
		shots := b.Field(tail + 1).(*array.Int64Builder)
		met := b.Field(tail + 2).(*array.StringBuilder)
		tr := b.Field(tail + 3).(*array.Int64Builder)
		val := b.Field(tail + 4).(*array.Float64Builder)
		if s == nil {
			task.AppendNull()
			shots.AppendNull()
			met.AppendNull()
			tr.AppendNull()
			val.AppendNull()
		} else {
			task.Append(s.Task)
			shots.Append(int64(s.Shots))
			met.Append(s.Metric)
			tr.Append(int64(trial))
			appendFloat(val, value)
		}
		appendFloat(b.Field(tail+5).(*array.Float64Builder), c.FinalLoss())
		appendFloat(b.Field(tail+6).(*array.Float64Builder), c.Perplexity)
	}
	for _, c := range a.Sweep.Cells {
		if len(c.Scores) == 0 {
			appendRow(c, nil, 0, 0)
			continue
		}
		for i := range c.Scores {
			for t, v := range c.Scores[i].Trials {
				appendRow(c, &c.Scores[i], t, v)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy))
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		// The writer closes a sink that is an io.Closer; atomicfile must
		// sync and close its own file, so hand over only Write.
		fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fw.Write(rec); err != nil {
			fw.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fw.Close(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
}

// appendFloat appends x, or null for NaN (absent) and ±Inf.
func appendFloat(b *array.Float64Builder, x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		b.AppendNull()
		return
	}
	b.Append(x)
}
