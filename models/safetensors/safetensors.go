// Package safetensors reads and writes the safetensors tensor format
// (https://github.com/huggingface/safetensors), the format of mmablate's
// weights, optimiser state and PyTorch parity files.
//
// A file is
//
//	[8 bytes]  N, the header length, unsigned little-endian
//	[N bytes]  JSON: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
//	                  "__metadata__": {"key": "value"}}
//	[rest]     tensor bytes, little-endian, row-major
//
// data_offsets are relative to the first byte after the header; the tensors
// must tile that region exactly (no gaps, no overlap, nothing after the last).
// Reading accepts F32, F16 and BF16 and returns float32; writing produces F32
// with names sorted and the header padded with spaces to a multiple of 8, so
// equal tensors give byte-identical files.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"

	"github.com/mmablate/mmablate/internal/atomicfile"
)

// MaxHeaderLen bounds the JSON header (the reference Rust reader's limit):
// a larger length is treated as corruption before anything is allocated.
const MaxHeaderLen = 100 << 20

// Tensor is one named array of float32 values in row-major order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// File is the content of a safetensors file.
type File struct {
	Tensors  map[string]Tensor
	Metadata map[string]string
}

// FormatError reports a file that is not valid safetensors.
type FormatError struct {
	Tensor string // empty when the problem is not tied to one tensor
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("safetensors: tensor %q: %s", e.Tensor, e.Msg)
	}
	return "safetensors: " + e.Msg
}

// ErrUnsupportedDType is returned (wrapped, naming the tensor) for a valid
// safetensors dtype this package does not convert to float32 (I64, F64, ...).
var ErrUnsupportedDType = errors.New("safetensors: unsupported dtype")

// dtypeSize lists every dtype of the format with its element size; only
// F32, F16 and BF16 are converted.
var dtypeSize = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// headerEntry's field order is the reference writer's, which keeps files
// byte-identical to those it writes.
type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ReadFile reads a whole safetensors file.
func ReadFile(path string) (*File, error) {
	var sf *File
	err := withFile(path, func(r io.ReaderAt, size int64) (err error) {
		sf, err = Read(r, size)
		return err
	})
	return sf, err
}

// ReadMetadataFile returns the __metadata__ of a safetensors file, reading
// and checking its header (as Read does) but none of its tensor bytes.
func ReadMetadataFile(path string) (map[string]string, error) {
	var meta map[string]string
	err := withFile(path, func(r io.ReaderAt, size int64) error {
		h, err := readHeader(r, size)
		meta = h.meta
		return err
	})
	return meta, err
}

// withFile opens path and calls read with it and its size; read's errors
// are prefixed with path.
func withFile(path string, read func(r io.ReaderAt, size int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := read(f, st.Size()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// header is a parsed, checked header: the tensors (names in data order),
// the metadata and where the tensor bytes start.
type header struct {
	entries   map[string]headerEntry
	names     []string
	meta      map[string]string
	dataStart int64
}

// readHeader reads and checks the header of a safetensors file of the
// given size. Every length and offset is checked against size before
// memory is allocated for it.
func readHeader(r io.ReaderAt, size int64) (header, error) {
	if size < 8 {
		return header{}, &FormatError{Msg: fmt.Sprintf("file of %d bytes is shorter than the 8-byte header length", size)}
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return header{}, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderLen || n > uint64(size-8) {
		return header{}, &FormatError{Msg: fmt.Sprintf("header length %d exceeds the limit (%d) or the file size (%d)", n, MaxHeaderLen, size)}
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return header{}, fmt.Errorf("safetensors: reading header: %w", err)
	}
	h := header{dataStart: int64(8 + n)}
	var err error
	if h.entries, h.meta, err = parseHeader(hdr); err != nil {
		return header{}, err
	}
	if h.names, err = checkLayout(h.entries, size-h.dataStart); err != nil {
		return header{}, err
	}
	return h, nil
}

// Read parses a safetensors file of the given size. Every length and offset
// in the header is checked against size before memory is allocated for it.
func Read(r io.ReaderAt, size int64) (*File, error) {
	h, err := readHeader(r, size)
	if err != nil {
		return nil, err
	}
	out := &File{Tensors: make(map[string]Tensor, len(h.entries)), Metadata: h.meta}
	for _, name := range h.names {
		e := h.entries[name]
		raw := make([]byte, e.DataOffsets[1]-e.DataOffsets[0])
		// An empty tensor reads nothing: a ReaderAt may answer a zero-length
		// read at the end of the file with io.EOF (bytes.Reader does).
		if len(raw) > 0 {
			if _, err := r.ReadAt(raw, h.dataStart+e.DataOffsets[0]); err != nil {
				return nil, fmt.Errorf("safetensors: tensor %q: reading data: %w", name, err)
			}
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int(d)
		}
		out.Tensors[name] = Tensor{Shape: shape, Data: decode(e.DType, raw)}
	}
	return out, nil
}

func parseHeader(hdr []byte) (map[string]headerEntry, map[string]string, error) {
	trimmed := bytes.TrimRight(hdr, " ")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, &FormatError{Msg: "header is not a JSON object"}
	}
	raw, err := topLevel(trimmed)
	if err != nil {
		return nil, nil, err
	}
	var meta map[string]string
	entries := make(map[string]headerEntry, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, &FormatError{Msg: "__metadata__ must map strings to strings: " + err.Error()}
			}
			continue
		}
		var e headerEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, nil, &FormatError{Tensor: name, Msg: "entry: " + err.Error()}
		}
		size, known := dtypeSize[e.DType]
		switch {
		case !known:
			return nil, nil, &FormatError{Tensor: name, Msg: fmt.Sprintf("unknown dtype %q", e.DType)}
		case e.DType != "F32" && e.DType != "F16" && e.DType != "BF16":
			return nil, nil, fmt.Errorf("tensor %q: %w %s", name, ErrUnsupportedDType, e.DType)
		case len(e.DataOffsets) != 2:
			return nil, nil, &FormatError{Tensor: name, Msg: "data_offsets must have two elements"}
		case e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0]:
			return nil, nil, &FormatError{Tensor: name, Msg: fmt.Sprintf("bad data_offsets %v", e.DataOffsets)}
		}
		// The element count must equal the byte range; compute it with an
		// overflow guard, since a hostile shape can multiply past int64.
		bytesLen := e.DataOffsets[1] - e.DataOffsets[0]
		count, ok := elementCount(e.Shape, bytesLen/int64(size))
		if !ok {
			return nil, nil, &FormatError{Tensor: name, Msg: fmt.Sprintf("bad shape %v", e.Shape)}
		}
		if count > bytesLen/int64(size) || count*int64(size) != bytesLen {
			return nil, nil, &FormatError{Tensor: name, Msg: fmt.Sprintf("shape %v of %s needs a different byte count than data_offsets %v", e.Shape, e.DType, e.DataOffsets)}
		}
		entries[name] = e
	}
	return entries, meta, nil
}

// topLevel splits the header object into its members, rejecting a repeated
// name (a plain map decode would silently keep the last one).
func topLevel(hdr []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil { // the opening '{', checked by the caller
		return nil, &FormatError{Msg: "header JSON: " + err.Error()}
	}
	out := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &FormatError{Msg: "header JSON: " + err.Error()}
		}
		name, _ := tok.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &FormatError{Msg: "header JSON: " + err.Error()}
		}
		if _, dup := out[name]; dup {
			return nil, &FormatError{Tensor: name, Msg: "appears twice in the header"}
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, &FormatError{Msg: "header JSON: " + err.Error()}
	}
	if dec.More() || dec.InputOffset() != int64(len(hdr)) {
		return nil, &FormatError{Msg: "header JSON: data after the object"}
	}
	return out, nil
}

// elementCount multiplies the dimensions of shape; a result above limit is
// reported as limit+1 so hostile shapes cannot overflow int64. ok is false for
// a negative dimension.
func elementCount(shape []int64, limit int64) (count int64, ok bool) {
	count = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			return 0, true
		}
	}
	for _, d := range shape {
		if count > limit/d {
			return limit + 1, true
		}
		count *= d
	}
	return count, true
}

// checkLayout verifies the tensors tile [0, dataLen) exactly and returns the
// names in offset order.
func checkLayout(entries map[string]headerEntry, dataLen int64) ([]string, error) {
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := entries[names[i]].DataOffsets, entries[names[j]].DataOffsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		if a[1] != b[1] {
			return a[1] < b[1]
		}
		return names[i] < names[j]
	})
	var pos int64
	for _, name := range names {
		off := entries[name].DataOffsets
		if off[0] != pos {
			if off[0] < pos {
				return nil, &FormatError{Tensor: name, Msg: fmt.Sprintf("data_offsets %v overlap the previous tensor (ending at %d)", off, pos)}
			}
			return nil, &FormatError{Tensor: name, Msg: fmt.Sprintf("gap before data_offsets %v (previous tensor ends at %d)", off, pos)}
		}
		pos = off[1]
	}
	if pos != dataLen {
		return nil, &FormatError{Msg: fmt.Sprintf("tensors cover %d bytes but the data section has %d", pos, dataLen)}
	}
	return names, nil
}

func decode(dtype string, raw []byte) []float32 {
	switch dtype {
	case "F32":
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	case "BF16":
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
		return out
	default: // F16, the only other dtype parseHeader lets through
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out
	}
}

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = frac · 2^-24
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	}
}

// Encode writes tensors as F32 safetensors with names sorted, so equal
// inputs give equal bytes. A tensor whose Data length differs from the
// product of its Shape is an error.
func Encode(w io.Writer, tensors map[string]Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		if name == "__metadata__" {
			return fmt.Errorf("safetensors: %q is reserved", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	header := make(map[string]any, len(tensors)+1)
	var off int64
	for _, name := range names {
		t := tensors[name]
		count := 1
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", name, t.Shape)
			}
			count *= d
		}
		if count != len(t.Data) {
			return fmt.Errorf("safetensors: tensor %q: shape %v has %d elements, data has %d", name, t.Shape, count, len(t.Data))
		}
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = int64(d)
		}
		end := off + int64(4*count)
		header[name] = headerEntry{DType: "F32", Shape: shape, DataOffsets: []int64{off, end}}
		off = end
	}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	hdr, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return fmt.Errorf("safetensors: encoding header: %w", err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	bw.Write(lenBuf[:])
	bw.Write(hdr)
	var b [4]byte
	for _, name := range names {
		for _, v := range tensors[name].Data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			bw.Write(b[:])
		}
	}
	return bw.Flush()
}

// WriteFile writes tensors to path atomically (internal/atomicfile): a crash
// leaves either the old file or the new one.
func WriteFile(path string, tensors map[string]Tensor, metadata map[string]string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return Encode(w, tensors, metadata) })
}
