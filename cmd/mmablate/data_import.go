package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/shards"
)

func newDataImportCmd() *cobra.Command {
	var (
		lf           layoutFlags
		out          string
		onError      string
		rowsPerShard int
		rowGroupRows int
		shardSize    string
		rowGroupSize string
		compression  string
	)
	cmd := &cobra.Command{
		Use:   "import --layout L SRC... --out DIR",
		Short: "Convert Parquet files of any layout into a canonical dataset",
		Long: `Import reads Parquet files in any supported layout and writes them as a
canonical mmablate dataset: shard-00000.parquet, ... and manifest.json in
--out, which must not already hold a dataset.

Each SRC is a Parquet file, a dataset directory (shards in manifest order)
or a directory of *.parquet files (sorted by name). Rows are read one row
group at a time; images are copied as encoded bytes, never decoded or
fetched. Records get the file's id column (id, or key for img2dataset)
or, without one, "<file name without .parquet>-<row>".

Rows that cannot become a record (a URL-only image, a null or empty
caption, a record breaking the aligned-list rule) are bad rows:
  --on-error fail   stop at the first, print where it is, and remove the
                    shards written so far (no manifest is left behind);
  --on-error skip   drop it and count it by reason.
img2dataset rows whose status is not "success" hold no image: they are
always skipped and counted, whatever --on-error says.

A shard ends at --rows-per-shard rows or --shard-size bytes, whichever
comes first; a row group at --row-group-rows rows or --row-group-size
bytes (a reader holds one row group per decode worker in memory).

Progress goes to stderr: on a terminal a progress bar with rows read,
rows/s, samples written and rows skipped; otherwise a log line every 10
seconds. At the end the command prints the samples written and the rows
skipped by reason.

Example:

  mmablate data import --layout img2dataset --on-error skip \
      laion/00000.parquet laion/00001.parquet --out data/laion-sample
  wrote 18933 samples to data/laion-sample in 1 shards
  skipped 809 rows:
    img2dataset status is not success  801
    null text                          8`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := lf.options()
			if err != nil {
				return err
			}
			if out == "" {
				return usagef("--out is required")
			}
			mode := data.OnError(onError)
			if mode != data.OnErrorFail && mode != data.OnErrorSkip {
				return usagef("--on-error must be fail or skip, got %q", onError)
			}
			if rowsPerShard < 0 || rowGroupRows < 0 {
				return usagef("--rows-per-shard and --row-group-rows must be ≥ 0")
			}
			shardBytes, err := optionalSize("--shard-size", shardSize)
			if err != nil {
				return err
			}
			rowGroupBytes, err := optionalSize("--row-group-size", rowGroupSize)
			if err != nil {
				return err
			}
			imp := importer{
				layout: opts, onError: mode, stderr: cmd.ErrOrStderr(),
				shardOpts: shards.Options{
					MaxRowsPerShard: rowsPerShard, RowGroupRows: rowGroupRows,
					MaxBytesPerShard: shardBytes, RowGroupBytes: rowGroupBytes,
					Compression: compression, CreatedBy: "mmablate data import",
				},
			}
			res, err := imp.run(cmd.Context(), args, out)
			if err != nil {
				return err
			}
			res.print(cmd.OutOrStdout(), out)
			return nil
		},
	}
	lf.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "dataset directory to create (required)")
	cmd.Flags().StringVar(&onError, "on-error", string(data.OnErrorFail), "what a bad row does: fail (stop, write nothing) or skip (drop and count)")
	cmd.Flags().IntVar(&rowsPerShard, "rows-per-shard", 0, "most rows per shard (0: the shards default)")
	cmd.Flags().IntVar(&rowGroupRows, "row-group-rows", 0, "most rows per row group (0: the shards default)")
	cmd.Flags().StringVar(&shardSize, "shard-size", "", "approximate most bytes per shard, e.g. 256MB or 1GiB (default 512MiB)")
	cmd.Flags().StringVar(&rowGroupSize, "row-group-size", "", "approximate most payload bytes per row group, e.g. 8MiB (default 16MiB)")
	cmd.Flags().StringVar(&compression, "compression", shards.DefaultCompression, "shard compression: zstd, snappy or none")
	return cmd
}

// optionalSize parses a size flag; "" means the shards default (0).
func optionalSize(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, usagef("%s: %v", flag, err)
	}
	return n, nil
}

type importer struct {
	layout    layouts.Options
	onError   data.OnError
	shardOpts shards.Options
	stderr    io.Writer
}

type importResult struct {
	written int64
	shards  int
	skipped data.SkipCounts
}

func (imp *importer) run(ctx context.Context, srcs []string, out string) (*importResult, error) {
	var files []string
	for _, s := range srcs {
		listed, err := layouts.ListFiles(s)
		if err != nil {
			return nil, err
		}
		files = append(files, listed...)
	}
	// Open every file before writing anything, so a wrong layout or a
	// corrupt footer fails fast, and the total is known for progress.
	var total int64
	for _, p := range files {
		f, err := layouts.Open(p, imp.layout)
		if err != nil {
			return nil, err
		}
		total += f.NumRows()
		f.Close()
	}
	w, err := shards.NewWriter(out, imp.shardOpts)
	if err != nil {
		return nil, err
	}
	res := &importResult{skipped: data.SkipCounts{}}
	prog := newImportProgress(imp.stderr, total)
	for _, p := range files {
		if err := imp.importFile(ctx, w, p, res, prog); err != nil {
			prog.done()
			return nil, errors.Join(err, w.Abort())
		}
	}
	prog.done()
	m, err := w.Close()
	if err != nil {
		return nil, err
	}
	res.shards = len(m.Shards)
	return res, nil
}

func (imp *importer) importFile(ctx context.Context, w *shards.Writer, path string, res *importResult, prog *importProgress) error {
	f, err := layouts.Open(path, imp.layout)
	if err != nil {
		return err
	}
	defer f.Close()
	for g := range f.NumRowGroups() {
		err := f.ReadRowGroup(ctx, g, func(row int64, rec *data.Record, rerr error) error {
			err := imp.importRow(w, path, g, row, rec, rerr, res)
			prog.add(1, res) // after the row, so the counts shown include it
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// importRow writes one row read from path (rec, or the rerr that says why
// it is no record) and counts it as written or skipped.
func (imp *importer) importRow(w *shards.Writer, path string, g int, row int64, rec *data.Record, rerr error, res *importResult) error {
	if rerr == nil {
		rerr = w.Write(rec)
		if rerr == nil {
			res.written++
			return nil
		}
		if !errors.Is(rerr, data.ErrBadRecord) {
			return rerr // the writer failed, not the row
		}
		rerr = &data.RowError{File: path, RowGroup: g, Row: row, Err: rerr}
	}
	if imp.onError == data.OnErrorFail && !errors.Is(rerr, data.ErrSkippedStatus) {
		return fmt.Errorf("%w (use --on-error skip to drop such rows)", rerr)
	}
	res.skipped[data.Reason(rerr)]++
	return nil
}

func (res *importResult) print(w io.Writer, out string) {
	fmt.Fprintf(w, "wrote %d samples to %s in %d shards\n", res.written, out, res.shards)
	var n int64
	reasons := make([]string, 0, len(res.skipped))
	for r, c := range res.skipped {
		n += c
		reasons = append(reasons, r)
	}
	if n == 0 {
		fmt.Fprintln(w, "skipped 0 rows")
		return
	}
	sort.Strings(reasons)
	width := 0
	for _, r := range reasons {
		width = max(width, len(r))
	}
	fmt.Fprintf(w, "skipped %d rows:\n", n)
	for _, r := range reasons {
		fmt.Fprintf(w, "  %-*s  %d\n", width, r, res.skipped[r])
	}
}

// importProgress reports rows read: a rewritten bar on a terminal, a log line
// every logEvery otherwise (so logs stay readable when redirected).
type importProgress struct {
	progressLine
	total int64
	rows  int64
}

func newImportProgress(w io.Writer, total int64) *importProgress {
	return &importProgress{progressLine: newProgressLine(w), total: total}
}

func (p *importProgress) add(n int64, res *importResult) {
	p.rows += n
	draw, log, rate := p.due(p.rows, p.total)
	switch {
	case draw:
		frac := 1.0
		if p.total > 0 {
			frac = float64(p.rows) / float64(p.total)
		}
		p.draw("import %s %5.1f%%  %d/%d rows  %.0f rows/s  %d written  %d skipped",
			progressBar(frac, 30), 100*frac, p.rows, p.total, rate, res.written, skippedTotal(res.skipped))
	case log:
		p.log.Info("import progress", "rows", p.rows, "total", p.total, "written", res.written, "skipped", skippedTotal(res.skipped))
	}
}

func skippedTotal(s data.SkipCounts) int64 {
	var n int64
	for _, c := range s {
		n += c
	}
	return n
}
