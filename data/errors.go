package data

import (
	"errors"
	"fmt"
)

// Sentinel errors; RowError wraps them so callers can count skips by reason
// with errors.Is.
var (
	// ErrImageTooLarge: the image header declares more pixels than the limit.
	ErrImageTooLarge = errors.New("image too large")
	// ErrImageFormat: the bytes are not a decodable JPEG, PNG, WebP or GIF.
	ErrImageFormat = errors.New("invalid image")
	// ErrEmptyImage: zero bytes, or zero width or height.
	ErrEmptyImage = errors.New("empty image")
	// ErrNullText: a text segment (e.g. a caption) is null or empty where one is required.
	ErrNullText = errors.New("null text")
	// ErrMissingColumn: the file lacks a column its layout needs.
	ErrMissingColumn = errors.New("missing column")
	// ErrColumnType: a column has a type the layout cannot read.
	ErrColumnType = errors.New("wrong column type")
	// ErrURLImage: an image given only as a URL; mmablate never fetches.
	ErrURLImage = errors.New("image is a URL only: download the images first (mmablate never fetches URLs)")
	// ErrSkippedStatus: an img2dataset row whose status is not "success".
	ErrSkippedStatus = errors.New("img2dataset status is not success")
	// ErrBadRecord: a row that violates the canonical schema's invariants.
	ErrBadRecord = errors.New("bad record")
)

// RowError locates a failure in a dataset: file, row group, row (within
// the file), and column when known.
type RowError struct {
	File     string
	RowGroup int   // -1 when unknown
	Row      int64 // row index within the file; -1 when unknown
	Column   string
	Err      error
}

func (e *RowError) Error() string {
	msg := e.File
	if e.RowGroup >= 0 {
		msg += fmt.Sprintf(": row group %d", e.RowGroup)
	}
	if e.Row >= 0 {
		msg += fmt.Sprintf(", row %d", e.Row)
	}
	if e.Column != "" {
		msg += fmt.Sprintf(", column %s", e.Column)
	}
	return msg + ": " + e.Err.Error()
}

func (e *RowError) Unwrap() error { return e.Err }

// OnError says what a reader does with a bad row.
type OnError string

const (
	OnErrorFail OnError = "fail" // stop with the RowError
	OnErrorSkip OnError = "skip" // drop the row, count it by reason
)

// SkipCounts counts skipped rows by reason (the sentinel's text, or
// "other").
type SkipCounts map[string]int64

// Reason classifies err into one of the sentinel reasons.
func Reason(err error) string {
	for _, s := range []error{ErrImageTooLarge, ErrImageFormat, ErrEmptyImage, ErrNullText, ErrMissingColumn, ErrColumnType, ErrURLImage, ErrSkippedStatus, ErrBadRecord} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}
