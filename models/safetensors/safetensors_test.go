package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"b.weight": {Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, float32(math.Inf(1)), -0.125}},
		"a.bias":   {Shape: []int{3}, Data: []float32{7, 8, 9}},
		"scalar":   {Shape: []int{}, Data: []float32{42}},
		"empty":    {Shape: []int{0, 4}, Data: []float32{}},
	}
	meta := map[string]string{"step": "12", "format": "mmablate"}
	var buf bytes.Buffer
	if err := Encode(&buf, in, meta); err != nil {
		t.Fatal(err)
	}
	if hl := binary.LittleEndian.Uint64(buf.Bytes()); hl%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hl)
	}
	got, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Metadata, meta) {
		t.Errorf("metadata %v, want %v", got.Metadata, meta)
	}
	if len(got.Tensors) != len(in) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(in))
	}
	for name, want := range in {
		g := got.Tensors[name]
		if !reflect.DeepEqual(g.Shape, want.Shape) || !reflect.DeepEqual(g.Data, want.Data) {
			t.Errorf("%s: got %v %v, want %v %v", name, g.Shape, g.Data, want.Shape, want.Data)
		}
	}
	// Same tensors, different insertion order: identical bytes.
	var again bytes.Buffer
	if err := Encode(&again, map[string]Tensor{"scalar": in["scalar"], "empty": in["empty"], "a.bias": in["a.bias"], "b.weight": in["b.weight"]}, meta); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("equal tensors encoded to different bytes")
	}
}

// TestGolden pins the exact byte layout against a file produced with the
// reference writer's conventions (sorted names, space padding).
func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	err := Encode(&buf, map[string]Tensor{"x": {Shape: []int{2}, Data: []float32{1, 2}}, "a": {Shape: []int{1}, Data: []float32{-1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "small.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("encoded\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

func TestHalfPrecision(t *testing.T) {
	// F16: 1.0 = 0x3c00, -2.0 = 0xc000, smallest subnormal 0x0001 = 2^-24, +Inf 0x7c00.
	// BF16: 1.0 = 0x3f80, -0.5 = 0xbf00.
	data := []uint16{0x3c00, 0xc000, 0x0001, 0x7c00, 0x3f80, 0xbf00}
	raw := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(raw[2*i:], v)
	}
	hdr := `{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}`
	f, err := readBytes(build(hdr, raw))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Tensors["h"].Data, []float32{1, -2, float32(math.Ldexp(1, -24)), float32(math.Inf(1))}; !reflect.DeepEqual(got, want) {
		t.Errorf("F16 decoded %v, want %v", got, want)
	}
	if got, want := f.Tensors["b"].Data, []float32{1, -0.5}; !reflect.DeepEqual(got, want) {
		t.Errorf("BF16 decoded %v, want %v", got, want)
	}
}

func build(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func readBytes(b []byte) (*File, error) { return Read(bytes.NewReader(b), int64(len(b))) }

func TestRejects(t *testing.T) {
	eight := make([]byte, 8)
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"short file", []byte{1, 2, 3}, "shorter than"},
		{"header past end", huge, "exceeds"},
		{"not an object", build(`[1]`, nil), "not a JSON object"},
		{"bad json", build(`{"a":`, nil), "header JSON"},
		{"unknown dtype", build(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "unknown dtype"},
		{"unknown field", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, eight[:4]), "unknown field"},
		{"one offset", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, eight[:4]), "two elements"},
		{"reversed offsets", build(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, eight[:4]), "bad data_offsets"},
		{"negative dim", build(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, eight[:4]), "bad shape"},
		{"shape mismatch", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, eight[:4]), "different byte count"},
		{"overflowing shape", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}}`, eight[:4]), "different byte count"},
		{"past end", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, eight[:4]), "data section"},
		{"trailing bytes", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight), "data section"},
		{"gap", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "gap"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "overlap"},
		{"duplicate", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "twice"},
		{"trailing json", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}{}`, eight[:4]), "after the object"},
		{"bad metadata", build(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readBytes(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := readBytes(build(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, eight))
	if !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("I64: error %v, want ErrUnsupportedDType", err)
	}
}

func TestEncodeRejectsBadShape(t *testing.T) {
	err := Encode(&bytes.Buffer{}, map[string]Tensor{"w": {Shape: []int{2, 2}, Data: []float32{1}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Fatalf("error %v, want one naming tensor w", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	first := map[string]Tensor{"w": {Shape: []int{1}, Data: []float32{1}}}
	if err := WriteFile(path, first, nil); err != nil {
		t.Fatal(err)
	}
	// A failing write must leave the previous file intact and no temporary behind.
	if err := WriteFile(path, map[string]Tensor{"w": {Shape: []int{3}, Data: []float32{1}}}, nil); err == nil {
		t.Fatal("bad tensor written without error")
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Tensors["w"].Data; !reflect.DeepEqual(got, []float32{1}) {
		t.Errorf("file changed by a failed write: %v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after writes, want 1", len(entries))
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	Encode(&buf, map[string]Tensor{"a": {Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}, "b": {Shape: []int{1}, Data: []float32{5}}}, map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(build(`{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, []byte{0, 0x3c, 0, 0xc0}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readBytes(b)
		// The header alone (ReadMetadataFile's path) accepts exactly what
		// the whole read accepts, with the same metadata.
		h, herr := readHeader(bytes.NewReader(b), int64(len(b)))
		if (herr == nil) != (err == nil) {
			t.Fatalf("header read error %v, whole read error %v", herr, err)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(h.meta, got.Metadata) {
			t.Fatalf("header metadata %v, whole read %v", h.meta, got.Metadata)
		}
		// Whatever parses must survive a re-encode and read back equal.
		var out bytes.Buffer
		if err := Encode(&out, got.Tensors, got.Metadata); err != nil {
			t.Fatalf("re-encoding a parsed file: %v", err)
		}
		again, err := readBytes(out.Bytes())
		if err != nil {
			t.Fatalf("reading a re-encoded file: %v", err)
		}
		for name, tt := range got.Tensors {
			a := again.Tensors[name]
			if !reflect.DeepEqual(a.Shape, tt.Shape) || len(a.Data) != len(tt.Data) {
				t.Fatalf("tensor %q changed in round trip", name)
			}
		}
	})
}

// TestReadMetadataFile: the metadata without the tensors, and a damaged
// file's error names it.
func TestReadMetadataFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "w.safetensors")
	want := map[string]string{"vision": `{"patch":4}`, "k": "v"}
	if err := WriteFile(good, map[string]Tensor{"a": {Shape: []int{3}, Data: []float32{1, 2, 3}}}, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMetadataFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata %v, want %v", got, want)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.safetensors")
	if err := os.WriteFile(cut, b[:len(b)-4], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMetadataFile(cut); err == nil || !strings.Contains(err.Error(), cut) {
		t.Fatalf("truncated file: error %v, want one naming %s", err, cut)
	}
}
