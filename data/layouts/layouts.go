// Package layouts reads the Parquet layouts image-text datasets come in
// (the canonical mmablate schema, Hugging Face image datasets, img2dataset
// output, OBELICS documents, plain text) one row group at a time, and adapts
// each row to a canonical data.Record.
//
// The layout is detected from the schema, or forced with Options.Layout:
//
//	mmablate     id, kind, texts list<string>, images list<{bytes, path}>, meta
//	obelics      texts and images lists (images as bytes, {bytes, path|url} or URL strings),
//	             metadata, general_metadata → interleaved, meta {"metadata":…, "general_metadata":…}
//	img2dataset  jpg binary, caption (or txt), key, status, url, width, height
//	             → caption [image, text]; a status other than "success" is a skip
//	hf-image     a {bytes, path} struct column (the Hugging Face datasets Image
//	             feature) and a caption (or text) column → caption [image, text]
//	text         a text column → text [text]
//
// Detection tries them in that order: id+kind+texts+images, texts+images,
// jpg (or a binary Options.ImageColumn), a {bytes, path} struct, text.
// Rows that cannot become a record (a URL-only image, a null caption, a
// skipped img2dataset status) are reported as *data.RowError, so callers
// can skip and count them; files that cannot be read at all fail at Open.
// An OBELICS document is always "interleaved", even with one image and one
// text, because its text need not describe the image as a caption does.
// A record's id is the row's id column (key for img2dataset) when it has
// one, else "<file name without .parquet>-<row>".
//
// Every length and count read from a file (footer size, list lengths in the
// footer, schema depth, page sizes, decoded sizes in snappy and zstd
// headers) is checked against the file and fixed limits before anything
// that size is allocated (package data/internal/pqsafe); memory is bounded
// by one row group of the columns the layout reads. Pages may be
// uncompressed or compressed with snappy, zstd or gzip; brotli and LZ4 files
// are refused at Open. Lists may use the standard 3-level encoding or the
// legacy 2-level forms.
package layouts

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/internal/pqsafe"
)

// Layout names a row layout.
type Layout string

const (
	Auto        Layout = "auto"
	Mmablate    Layout = "mmablate"
	HFImage     Layout = "hf-image"
	Img2Dataset Layout = "img2dataset"
	Obelics     Layout = "obelics"
	Text        Layout = "text"
)

// concreteLayouts lists the layouts in detection order.
var concreteLayouts = [...]Layout{Mmablate, Obelics, Img2Dataset, HFImage, Text}

// ParseLayout validates a layout name from a flag or config; "" means auto.
func ParseLayout(s string) (Layout, error) {
	if s == "" || s == string(Auto) {
		return Auto, nil
	}
	for _, l := range concreteLayouts {
		if string(l) == s {
			return l, nil
		}
	}
	return "", fmt.Errorf("unknown layout %q (want auto, mmablate, obelics, img2dataset, hf-image or text)", s)
}

// Options choose the layout and its columns; empty fields use defaults.
type Options struct {
	// Layout forces a layout; "" or "auto" detects it.
	Layout Layout
	// CaptionColumn names the caption of hf-image and img2dataset
	// (default "caption", then "text" for hf-image, "txt" for img2dataset).
	CaptionColumn string
	// ImageColumn names the image: the struct column of hf-image or the
	// binary column of img2dataset (default: detected, "jpg").
	ImageColumn string
	// TextColumn names the text of the text layout (default "text").
	TextColumn string
}

// File is one Parquet file opened for one layout.
type File struct {
	path     string
	stem     string // default id prefix
	r        io.ReaderAt
	closer   io.Closer
	pf       *parquet.File
	layout   Layout
	slots    []int   // leaf column index of each decoded column
	rowStart []int64 // first file row of each row group
	adapt    adapter
	columns  []Column
}

// Open opens one Parquet file, checks its magic bytes, footer and bounds,
// and binds the columns of its layout. Errors name the file; a missing or
// mistyped column wraps data.ErrMissingColumn or data.ErrColumnType.
func Open(path string, opts Options) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, err
	}
	f, err := openAt(osf, st.Size(), path, opts)
	if err != nil {
		osf.Close()
		return nil, err
	}
	f.closer = osf
	return f, nil
}

// openAt opens the Parquet bytes of r; path names them in errors.
func openAt(r io.ReaderAt, size int64, path string, opts Options) (*File, error) {
	f, err := open(r, size, path, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func open(r io.ReaderAt, size int64, path string, opts Options) (f *File, err error) {
	// parquet-go panics on some malformed schemas (a LIST annotation on a
	// leaf, say); a corrupt file must be an error, not a crash.
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("corrupt Parquet metadata: %v", p)
		}
	}()
	pf, err := pqsafe.Open(r, size)
	if err != nil {
		return nil, err
	}
	if err := pqsafe.CheckCodecs(pf.Metadata()); err != nil {
		return nil, err
	}
	f = &File{
		path: path,
		stem: strings.TrimSuffix(filepath.Base(path), ".parquet"),
		r:    r,
		pf:   pf,
	}
	var start int64
	for _, rg := range pf.RowGroups() {
		f.rowStart = append(f.rowStart, start)
		start += rg.NumRows()
	}
	if f.layout, err = resolveLayout(pf, opts); err != nil {
		return nil, err
	}
	var b binder
	if f.adapt, err = bind(f.layout, pf, opts, &b); err != nil {
		return nil, fmt.Errorf("layout %s: %w", f.layout, err)
	}
	f.slots = b.slots
	for _, c := range pf.Root().Columns() {
		f.columns = append(f.columns, Column{Name: c.Name(), Type: describe(c)})
	}
	return f, nil
}

// Path returns the file's path as given to Open.
func (f *File) Path() string { return f.path }

// Layout returns the detected or forced layout.
func (f *File) Layout() Layout { return f.layout }

// ImageColumn names the column the layout reads images from ("images",
// "jpg", …; "" for the text layout), for errors about images found later.
func (f *File) ImageColumn() string { return f.adapt.imageColumn() }

// NumRows returns the rows in the file.
func (f *File) NumRows() int64 { return f.pf.NumRows() }

// NumRowGroups returns the row groups in the file.
func (f *File) NumRowGroups() int { return len(f.rowStart) }

// RowGroupRows returns the rows in row group i.
func (f *File) RowGroupRows(i int) int64 { return f.pf.RowGroups()[i].NumRows() }

// Close closes the file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// ReadRowGroup decodes row group i and calls fn for each of its rows in
// order; row is the row's index within the file. A row that cannot become
// a record comes with rec == nil and a *data.RowError; the caller decides
// whether to skip it. An error fn returns stops the read and is returned.
// Several goroutines may read row groups of one File at once.
func (f *File) ReadRowGroup(ctx context.Context, i int, fn func(row int64, rec *data.Record, err error) error) error {
	if i < 0 || i >= len(f.rowStart) {
		return fmt.Errorf("%s: row group %d out of range [0, %d)", f.path, i, len(f.rowStart))
	}
	cols, err := f.decode(ctx, i)
	if err != nil {
		return err
	}
	rows := int(f.RowGroupRows(i))
	rc := rowContext{cols: cols, stem: f.stem, scratch: make([]parquet.Value, 0, 4)}
	for r := range rows {
		if r%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rc.r, rc.row = r, f.rowStart[i]+int64(r)
		rec, column, rerr := f.adapt.record(&rc)
		if rerr != nil {
			err = fn(rc.row, nil, &data.RowError{File: f.path, RowGroup: i, Row: rc.row, Column: column, Err: rerr})
		} else {
			err = fn(rc.row, rec, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decode reads the columns the layout needs from row group i.
func (f *File) decode(ctx context.Context, i int) (cols []columnData, err error) {
	md := &f.pf.Metadata().RowGroups[i]
	chunks := f.pf.RowGroups()[i].ColumnChunks()
	rows := f.RowGroupRows(i)
	cols = make([]columnData, len(f.slots))
	for s, leaf := range f.slots {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := strings.Join(md.Columns[leaf].MetaData.PathInSchema, ".")
		if err := pqsafe.CheckPages(f.r, &md.Columns[leaf].MetaData); err != nil {
			return nil, fmt.Errorf("%s: row group %d, column %s: %w", f.path, i, name, err)
		}
		if cols[s], err = readColumnSafe(chunks[leaf], rows); err != nil {
			return nil, fmt.Errorf("%s: row group %d, column %s: %w", f.path, i, name, err)
		}
	}
	return cols, nil
}

// readColumnSafe turns parquet-go's panics on corrupt pages into errors.
func readColumnSafe(chunk parquet.ColumnChunk, rows int64) (cd columnData, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt column data: %v", p)
		}
	}()
	return readColumn(chunk, rows)
}

// ListFiles expands path into Parquet files: a file is itself; a dataset
// directory (one with a manifest.json) gives its shards in manifest order;
// any other directory gives its *.parquet files sorted by name.
func ListFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	names, err := manifestShards(path)
	if err != nil {
		return nil, err
	}
	if names == nil {
		matches, err := filepath.Glob(filepath.Join(path, "*.parquet"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s: no manifest.json and no *.parquet files", path)
		}
		return matches, nil // Glob sorts
	}
	files := make([]string, len(names))
	for i, n := range names {
		files[i] = filepath.Join(path, n)
	}
	return files, nil
}
