package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
)

// layoutFlags are the layout options shared by inspect and import.
type layoutFlags struct {
	layout, caption, image, text string
}

func (lf *layoutFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&lf.layout, "layout", "auto", "row layout: auto, mmablate, obelics, img2dataset, hf-image or text")
	cmd.Flags().StringVar(&lf.caption, "caption-column", "", `caption column of hf-image and img2dataset (default "caption", then "text" or "txt")`)
	cmd.Flags().StringVar(&lf.image, "image-column", "", `image column: the {bytes, path} struct of hf-image, the binary of img2dataset (default: detected, "jpg")`)
	cmd.Flags().StringVar(&lf.text, "text-column", "", `text column of the text layout (default "text")`)
}

func (lf *layoutFlags) options() (layouts.Options, error) {
	l, err := layouts.ParseLayout(lf.layout)
	if err != nil {
		return layouts.Options{}, usagef("--layout: %v", err)
	}
	return layouts.Options{Layout: l, CaptionColumn: lf.caption, ImageColumn: lf.image, TextColumn: lf.text}, nil
}

func newDataInspectCmd() *cobra.Command {
	var (
		lf      layoutFlags
		asJSON  bool
		preview int
	)
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Show a Parquet file's or dataset's layout, size, columns and first rows",
		Long: `Inspect reads the footers of a Parquet file, a dataset directory (its shards in
manifest order) or a directory of *.parquet files, and prints the detected
layout, the number of files, rows and row groups, the columns of the first
file with their types, and the first rows as they will be read: texts
truncated, images as "<image 12345 bytes png>", rows that cannot be read
with the reason. Nothing is decoded beyond the previewed rows.

Layouts: mmablate (the canonical schema), obelics, img2dataset, hf-image,
text; see "mmablate data --help". Detection uses the column names; force a
layout or name columns with the flags below.

Example:

  mmablate data inspect data/laion-part-00000.parquet --preview 2
  path:        data/laion-part-00000.parquet
  layout:      img2dataset
  files:       1
  rows:        9871
  row groups:  10
  columns:
    key      string
    jpg      binary
    caption  string
    ...
  first 2 rows:
    row 0  000000000  caption  {"url":"http://...","width":256,"height":256}
      [0] <image 11203 bytes jpeg> 000000000.jpg
      [1] "a red bicycle leaning on a wall"
    row 1  skipped: data/laion-part-00000.parquet: row group 0, row 1, column status: img2dataset status is not success: status "failed_to_download": HTTP 404

With --json the same is printed as one object:
  {"path", "layout", "files", "rows", "row_groups", "columns": [{"name", "type"}],
   "file_list": [{"path", "layout", "rows", "row_groups"}],
   "preview": [{"file", "row", "id", "kind", "meta", "segments", "error"}]}
"layout" is "mixed" when the files' layouts differ.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := lf.options()
			if err != nil {
				return err
			}
			if preview < 0 {
				return usagef("--preview must be ≥ 0, got %d", preview)
			}
			rep, err := inspect(cmd, args[0], opts, preview)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false) // keep "<image 12345 bytes png>" readable
				return enc.Encode(rep)
			}
			rep.print(cmd.OutOrStdout())
			return nil
		},
	}
	lf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	cmd.Flags().IntVar(&preview, "preview", 3, "rows to preview from the start of the first file(s)")
	return cmd
}

type inspectReport struct {
	Path      string           `json:"path"`
	Layout    string           `json:"layout"`
	Files     int              `json:"files"`
	Rows      int64            `json:"rows"`
	RowGroups int              `json:"row_groups"`
	Columns   []layouts.Column `json:"columns"`
	FileList  []inspectFile    `json:"file_list"`
	Preview   []previewRow     `json:"preview"`
}

type inspectFile struct {
	Path      string `json:"path"`
	Layout    string `json:"layout"`
	Rows      int64  `json:"rows"`
	RowGroups int    `json:"row_groups"`
}

type previewRow struct {
	File     string   `json:"file"`
	Row      int64    `json:"row"`
	ID       string   `json:"id,omitempty"`
	Kind     string   `json:"kind,omitempty"`
	Meta     string   `json:"meta,omitempty"`
	Segments []string `json:"segments,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// errPreviewDone stops reading once the preview is full.
var errPreviewDone = errors.New("preview done")

func inspect(cmd *cobra.Command, path string, opts layouts.Options, preview int) (*inspectReport, error) {
	files, err := layouts.ListFiles(path)
	if err != nil {
		return nil, err
	}
	rep := &inspectReport{Path: path, Files: len(files), FileList: []inspectFile{}, Preview: []previewRow{}}
	for i, p := range files {
		f, err := layouts.Open(p, opts)
		if err != nil {
			return nil, err
		}
		rep.Rows += f.NumRows()
		rep.RowGroups += f.NumRowGroups()
		rep.FileList = append(rep.FileList, inspectFile{Path: p, Layout: string(f.Layout()), Rows: f.NumRows(), RowGroups: f.NumRowGroups()})
		switch {
		case i == 0:
			rep.Layout = string(f.Layout())
			rep.Columns = f.Columns()
		case rep.Layout != string(f.Layout()):
			rep.Layout = "mixed"
		}
		err = previewFile(cmd, f, rep, preview)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func previewFile(cmd *cobra.Command, f *layouts.File, rep *inspectReport, preview int) error {
	for g := 0; g < f.NumRowGroups() && len(rep.Preview) < preview; g++ {
		err := f.ReadRowGroup(cmd.Context(), g, func(row int64, rec *data.Record, rerr error) error {
			pr := previewRow{File: f.Path(), Row: row}
			if rerr != nil {
				pr.Error = rerr.Error()
			} else {
				pr.ID, pr.Kind, pr.Meta = rec.ID, string(rec.Kind), truncate(rec.Meta, 120)
				for i := range rec.Texts {
					pr.Segments = append(pr.Segments, describeSegment(rec.Texts[i], rec.Images[i]))
				}
			}
			rep.Preview = append(rep.Preview, pr)
			if len(rep.Preview) >= preview {
				return errPreviewDone
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPreviewDone) {
			return err
		}
	}
	return nil
}

func describeSegment(text *string, img *data.ImageRef) string {
	if text != nil {
		return fmt.Sprintf("%q", truncate(*text, 80))
	}
	if img == nil {
		return "null"
	}
	s := fmt.Sprintf("<image %d bytes %s>", len(img.Bytes), imageFormat(img.Bytes))
	if img.Path != "" {
		s += " " + truncate(img.Path, 60)
	}
	return s
}

// imageFormat names the format from the magic bytes, without decoding.
func imageFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	}
	return "unknown format"
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func (rep *inspectReport) print(w io.Writer) {
	fmt.Fprintf(w, "path:        %s\n", rep.Path)
	fmt.Fprintf(w, "layout:      %s\n", rep.Layout)
	fmt.Fprintf(w, "files:       %d\n", rep.Files)
	fmt.Fprintf(w, "rows:        %d\n", rep.Rows)
	fmt.Fprintf(w, "row groups:  %d\n", rep.RowGroups)
	if rep.Layout == "mixed" {
		for _, f := range rep.FileList {
			fmt.Fprintf(w, "  %s  %s\n", f.Layout, f.Path)
		}
	}
	fmt.Fprintln(w, "columns:")
	width := 0
	for _, c := range rep.Columns {
		width = max(width, len(c.Name))
	}
	for _, c := range rep.Columns {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Type)
	}
	if len(rep.Preview) == 0 {
		return
	}
	fmt.Fprintf(w, "first %d rows:\n", len(rep.Preview))
	for _, p := range rep.Preview {
		prefix := fmt.Sprintf("  row %d", p.Row)
		if rep.Files > 1 {
			prefix += " of " + p.File
		}
		if p.Error != "" {
			fmt.Fprintf(w, "%s  skipped: %s\n", prefix, p.Error)
			continue
		}
		fmt.Fprintf(w, "%s  %s  %s  %s\n", prefix, p.ID, p.Kind, p.Meta)
		for i, s := range p.Segments {
			fmt.Fprintf(w, "    [%d] %s\n", i, strings.ReplaceAll(s, "\n", " "))
		}
	}
}
