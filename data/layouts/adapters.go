package layouts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/mmablate/mmablate/data"
)

// An adapter turns one decoded row into a record. A row it cannot adapt
// gives the offending column and an error wrapping a data sentinel.
type adapter interface {
	record(rc *rowContext) (rec *data.Record, column string, err error)
	// imageColumn names the file's column that holds the images ("" for
	// text), so an image that fails to decode later is located in the file.
	imageColumn() string
}

type rowContext struct {
	cols    []columnData
	r       int   // row within the row group
	row     int64 // row within the file
	stem    string
	scratch []parquet.Value
}

// str returns scalar field f as a string; ok is false for a null (or
// absent, f == nil) value.
func (rc *rowContext) str(f *field) (s string, ok bool, err error) {
	if f == nil {
		return "", false, nil
	}
	var vals []parquet.Value
	vals, ok, err = f.value(rc.cols, rc.r, rc.scratch)
	if err != nil || !ok {
		return "", false, err
	}
	if k := vals[0].Kind(); k == parquet.Int32 || k == parquet.Int64 {
		return strconv.FormatInt(intOf(vals[0]), 10), true, nil
	}
	return string(vals[0].ByteArray()), true, nil
}

func (rc *rowContext) id(f *field) (string, error) {
	s, ok, err := rc.str(f)
	if !ok || s == "" {
		// Unique within a file; across files only if their names differ.
		return rc.stem + "-" + strconv.FormatInt(rc.row, 10), err
	}
	return s, nil
}

const emptyMeta = "{}"

func intOf(v parquet.Value) int64 {
	if v.Kind() == parquet.Int32 {
		return int64(v.Int32())
	}
	return v.Int64()
}

// nonEmptyText reads a required text (caption or document).
func (rc *rowContext) nonEmptyText(f *field) (*string, error) {
	s, ok, err := rc.str(f)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("%w: %s is null", data.ErrNullText, f.name)
	case s == "":
		return nil, fmt.Errorf("%w: %s is empty", data.ErrNullText, f.name)
	}
	return &s, nil
}

// imageOf turns image leaf values (a binary, a URL string, or an image
// struct's members) into an ImageRef. Images without bytes but with a
// path or URL are URL-only images: mmablate never fetches them.
func imageOf(f *field, vals []parquet.Value) (*data.ImageRef, error) {
	if len(f.leaves) == 1 && f.leaves[0].sub == "" {
		b := vals[0].ByteArray()
		if f.leaves[0].str || bytes.HasPrefix(b, []byte("http://")) || bytes.HasPrefix(b, []byte("https://")) {
			return nil, fmt.Errorf("%w: %q", data.ErrURLImage, b)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: %s has zero bytes", data.ErrEmptyImage, f.name)
		}
		return &data.ImageRef{Bytes: b}, nil
	}
	var img data.ImageRef
	if v, ok := f.member(vals, "bytes"); ok {
		img.Bytes = v.ByteArray()
	}
	if v, ok := f.member(vals, "path"); ok {
		img.Path = string(v.ByteArray())
	}
	if len(img.Bytes) == 0 {
		if v, ok := f.member(vals, "url"); ok && v.ByteArray() != nil {
			return nil, fmt.Errorf("%w: %q", data.ErrURLImage, v.ByteArray())
		}
		if img.Path != "" {
			return nil, fmt.Errorf("%w: only a path, %q", data.ErrURLImage, img.Path)
		}
		return nil, fmt.Errorf("%w: %s has no bytes", data.ErrEmptyImage, f.name)
	}
	return &img, nil
}

// mmablate: the canonical schema, read as written.
type mmablateAdapter struct{ id, kind, texts, images, meta *field }

func bindMmablate(root *parquet.Column, b *binder) (adapter, error) {
	var a mmablateAdapter
	for _, c := range []struct {
		dst  **field
		name string
		bind func(*parquet.Column) (*field, error)
	}{
		{&a.id, "id", func(c *parquet.Column) (*field, error) { return b.scalar(c, kindString) }},
		{&a.kind, "kind", func(c *parquet.Column) (*field, error) { return b.scalar(c, kindString) }},
		{&a.texts, "texts", func(c *parquet.Column) (*field, error) { return b.listField(c, kindString, nil) }},
		{&a.images, "images", func(c *parquet.Column) (*field, error) { return b.listField(c, kindNone, imageMembers) }},
	} {
		col, err := column(root, c.name)
		if err != nil {
			return nil, err
		}
		if *c.dst, err = c.bind(col); err != nil {
			return nil, err
		}
	}
	a.meta = optionalScalar(b, root, "meta", kindString)
	return &a, nil
}

func (a *mmablateAdapter) imageColumn() string { return a.images.name }

func (a *mmablateAdapter) record(rc *rowContext) (*data.Record, string, error) {
	id, ok, err := rc.str(a.id)
	if err != nil || !ok || id == "" {
		return nil, "id", badRecord(err, "null or empty id")
	}
	kind, _, err := rc.str(a.kind)
	if err != nil {
		return nil, "kind", err
	}
	k, err := data.ParseKind(kind)
	if err != nil {
		return nil, "kind", fmt.Errorf("%w: %w", data.ErrBadRecord, err)
	}
	rec := &data.Record{ID: id, Kind: k, Meta: emptyMeta}
	if m, ok, err := rc.str(a.meta); err != nil {
		return nil, "meta", err
	} else if ok && m != "" {
		rec.Meta = m
	}
	n, _, err := a.texts.listLen(rc.cols, rc.r)
	if err != nil {
		return nil, "texts", err
	}
	rec.Texts = make([]*string, n)
	for j := range n {
		if vals, ok := a.texts.elem(rc.cols, rc.r, j, rc.scratch); ok {
			rec.Texts[j] = data.Str(string(vals[0].ByteArray()))
		}
	}
	if n, _, err = a.images.listLen(rc.cols, rc.r); err != nil {
		return nil, "images", err
	}
	rec.Images = make([]*data.ImageRef, n)
	for j := range n {
		if vals, ok := a.images.elem(rc.cols, rc.r, j, rc.scratch); ok {
			img := &data.ImageRef{}
			if v, ok := a.images.member(vals, "bytes"); ok {
				img.Bytes = v.ByteArray()
			}
			if v, ok := a.images.member(vals, "path"); ok {
				img.Path = string(v.ByteArray())
			}
			rec.Images[j] = img
		}
	}
	if err := rec.Validate(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", data.ErrBadRecord, err)
	}
	return rec, "", nil
}

func badRecord(err error, msg string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s", data.ErrBadRecord, msg)
}

// obelics: aligned texts and images lists; images as bytes, structs or
// URL strings.
type obelicsAdapter struct{ id, texts, images, metadata, general *field }

func bindObelics(root *parquet.Column, b *binder) (adapter, error) {
	var a obelicsAdapter
	tc, err := column(root, "texts")
	if err != nil {
		return nil, err
	}
	if a.texts, err = b.listField(tc, kindString, nil); err != nil {
		return nil, err
	}
	ic, err := column(root, "images")
	if err != nil {
		return nil, err
	}
	if a.images, err = b.listField(ic, kindBytes, imageMembers); err != nil {
		return nil, err
	}
	a.id = optionalScalar(b, root, "id", kindID)
	a.metadata = optionalScalar(b, root, "metadata", kindString)
	a.general = optionalScalar(b, root, "general_metadata", kindString)
	return &a, nil
}

func (a *obelicsAdapter) imageColumn() string { return a.images.name }

func (a *obelicsAdapter) record(rc *rowContext) (*data.Record, string, error) {
	id, err := rc.id(a.id)
	if err != nil {
		return nil, "id", err
	}
	rec := &data.Record{ID: id, Kind: data.KindInterleaved}
	n, _, err := a.texts.listLen(rc.cols, rc.r)
	if err != nil {
		return nil, "texts", err
	}
	rec.Texts = make([]*string, n)
	for j := range n {
		if vals, ok := a.texts.elem(rc.cols, rc.r, j, rc.scratch); ok {
			rec.Texts[j] = data.Str(string(vals[0].ByteArray()))
		}
	}
	if n, _, err = a.images.listLen(rc.cols, rc.r); err != nil {
		return nil, "images", err
	}
	rec.Images = make([]*data.ImageRef, n)
	for j := range n {
		vals, ok := a.images.elem(rc.cols, rc.r, j, rc.scratch)
		if !ok {
			continue
		}
		img, err := imageOf(a.images, vals)
		if err != nil {
			return nil, "images", fmt.Errorf("image %d: %w", j, err)
		}
		rec.Images[j] = img
	}
	meta := map[string]json.RawMessage{}
	for _, f := range []*field{a.metadata, a.general} {
		s, ok, err := rc.str(f)
		if err != nil {
			return nil, f.name, err
		}
		if ok {
			meta[f.name] = rawJSON(s)
		}
	}
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, "metadata", err
	}
	rec.Meta = string(m)
	if err := rec.Validate(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", data.ErrBadRecord, err)
	}
	return rec, "", nil
}

// rawJSON keeps valid JSON as is and quotes anything else, so meta is
// always a valid JSON object.
func rawJSON(s string) json.RawMessage {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return json.RawMessage(strconv.Quote(s))
}

// img2dataset: one image per row in a binary column, caption in caption
// or txt, filtering on status.
type img2datasetAdapter struct {
	image, caption, key, status, errorMessage, url, width, height *field
}

func bindImg2Dataset(root *parquet.Column, opts Options, b *binder) (adapter, error) {
	var a img2datasetAdapter
	ic, err := column(root, cmpOr(opts.ImageColumn, "jpg"))
	if err != nil {
		return nil, err
	}
	if a.image, err = b.scalar(ic, kindBytes); err != nil {
		return nil, err
	}
	captions := []string{"caption", "txt"}
	if opts.CaptionColumn != "" {
		captions = []string{opts.CaptionColumn}
	}
	cc, err := firstColumn(root, captions...)
	if err != nil {
		return nil, err
	}
	if a.caption, err = b.scalar(cc, kindBytes); err != nil {
		return nil, err
	}
	for _, o := range []struct {
		dst  **field
		name string
		kind leafKind
	}{
		{&a.key, "key", kindID}, {&a.status, "status", kindBytes}, {&a.errorMessage, "error_message", kindBytes},
		{&a.url, "url", kindBytes}, {&a.width, "width", kindInt}, {&a.height, "height", kindInt},
	} {
		*o.dst = optionalScalar(b, root, o.name, o.kind)
	}
	return &a, nil
}

type img2datasetMeta struct {
	URL    string `json:"url,omitempty"`
	Width  *int64 `json:"width,omitempty"`
	Height *int64 `json:"height,omitempty"`
}

func (a *img2datasetAdapter) imageColumn() string { return a.image.name }

func (a *img2datasetAdapter) record(rc *rowContext) (*data.Record, string, error) {
	if a.status != nil {
		status, _, err := rc.str(a.status)
		if err != nil {
			return nil, "status", err
		}
		if status != "success" {
			err := fmt.Errorf("%w: status %q", data.ErrSkippedStatus, status)
			if msg, ok, _ := rc.str(a.errorMessage); ok && msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
			return nil, "status", err
		}
	}
	id, err := rc.id(a.key)
	if err != nil {
		return nil, "key", err
	}
	vals, ok, err := a.image.value(rc.cols, rc.r, rc.scratch)
	if err != nil {
		return nil, a.image.name, err
	}
	if !ok || len(vals[0].ByteArray()) == 0 {
		return nil, a.image.name, fmt.Errorf("%w: %s is null or empty", data.ErrEmptyImage, a.image.name)
	}
	img := &data.ImageRef{Bytes: vals[0].ByteArray(), Path: id + "." + a.image.name}
	caption, err := rc.nonEmptyText(a.caption)
	if err != nil {
		return nil, a.caption.name, err
	}
	var meta img2datasetMeta
	if meta.URL, _, err = rc.str(a.url); err != nil {
		return nil, "url", err
	}
	for _, d := range []struct {
		f   *field
		dst **int64
	}{{a.width, &meta.Width}, {a.height, &meta.Height}} {
		if d.f == nil {
			continue
		}
		vals, ok, err := d.f.value(rc.cols, rc.r, rc.scratch)
		if err != nil {
			return nil, d.f.name, err
		}
		if ok {
			v := intOf(vals[0])
			*d.dst = &v
		}
	}
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, "", err
	}
	return &data.Record{
		ID: id, Kind: data.KindCaption, Meta: string(m),
		Texts:  []*string{nil, caption},
		Images: []*data.ImageRef{img, nil},
	}, "", nil
}

// hf-image: an Image feature struct column and a caption column.
type hfImageAdapter struct{ image, caption, id *field }

func bindHFImage(pf *parquet.File, opts Options, b *binder) (adapter, error) {
	root := pf.Root()
	var a hfImageAdapter
	var ic *parquet.Column
	var err error
	if opts.ImageColumn != "" {
		if ic, err = column(root, opts.ImageColumn); err != nil {
			return nil, err
		}
	} else if ic = hfImageColumn(pf); ic == nil {
		return nil, fmt.Errorf("%w: no struct column with bytes and path members (the file has %s)", data.ErrMissingColumn, columnNames(root))
	}
	if a.image, err = b.structField(ic, imageMembers); err != nil {
		return nil, err
	}
	captions := []string{"caption", "text"}
	if opts.CaptionColumn != "" {
		captions = []string{opts.CaptionColumn}
	}
	cc, err := firstColumn(root, captions...)
	if err != nil {
		return nil, err
	}
	if a.caption, err = b.scalar(cc, kindBytes); err != nil {
		return nil, err
	}
	a.id = optionalScalar(b, root, "id", kindID)
	return &a, nil
}

func (a *hfImageAdapter) imageColumn() string { return a.image.name }

func (a *hfImageAdapter) record(rc *rowContext) (*data.Record, string, error) {
	id, err := rc.id(a.id)
	if err != nil {
		return nil, "id", err
	}
	vals, ok, err := a.image.value(rc.cols, rc.r, rc.scratch)
	if err != nil {
		return nil, a.image.name, err
	}
	if !ok {
		return nil, a.image.name, fmt.Errorf("%w: %s is null", data.ErrEmptyImage, a.image.name)
	}
	img, err := imageOf(a.image, vals)
	if err != nil {
		return nil, a.image.name, err
	}
	caption, err := rc.nonEmptyText(a.caption)
	if err != nil {
		return nil, a.caption.name, err
	}
	return &data.Record{
		ID: id, Kind: data.KindCaption, Meta: emptyMeta,
		Texts:  []*string{nil, caption},
		Images: []*data.ImageRef{img, nil},
	}, "", nil
}

// text: one text column.
type textAdapter struct{ text, id *field }

func bindText(root *parquet.Column, opts Options, b *binder) (adapter, error) {
	var a textAdapter
	tc, err := column(root, cmpOr(opts.TextColumn, "text"))
	if err != nil {
		return nil, err
	}
	if a.text, err = b.scalar(tc, kindBytes); err != nil {
		return nil, err
	}
	a.id = optionalScalar(b, root, "id", kindID)
	return &a, nil
}

func (a *textAdapter) imageColumn() string { return "" }

func (a *textAdapter) record(rc *rowContext) (*data.Record, string, error) {
	id, err := rc.id(a.id)
	if err != nil {
		return nil, "id", err
	}
	text, err := rc.nonEmptyText(a.text)
	if err != nil {
		return nil, a.text.name, err
	}
	return &data.Record{
		ID: id, Kind: data.KindText, Meta: emptyMeta,
		Texts: []*string{text}, Images: []*data.ImageRef{nil},
	}, "", nil
}
