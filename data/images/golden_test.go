package images

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.png and golden.txt")

// TestGolden pins the pure-Go path's output for a fixed 37×23 PNG (alpha
// included) at resolution 8: a change to the filter, the geometry, the
// alpha rule or the normalisation shows up here.
func TestGolden(t *testing.T) {
	pngPath := filepath.Join("testdata", "golden.png")
	txtPath := filepath.Join("testdata", "golden.txt")
	opt := DefaultOptions(8)
	if *update {
		img := picture(37, 23, func(x, y int) uint8 { return uint8(255 - 4*x) })
		if err := os.WriteFile(pngPath, encodePNG(t, img), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]float32, 3*8*8)
	if err := decodeInto(got, testdata(t, "golden.png"), opt, false); err != nil {
		t.Fatal(err)
	}
	if *update {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# images.DecodeInto(testdata/golden.png, DefaultOptions(8)), pure-Go path: C=3 H=8 W=8, one row per line\n")
		for row := range 3 * 8 {
			for x := range 8 {
				if x > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(strconv.FormatFloat(float64(got[row*8+x]), 'f', 6, 32))
			}
			b.WriteByte('\n')
		}
		if err := os.WriteFile(txtPath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readGolden(t, txtPath)
	if len(want) != len(got) {
		t.Fatalf("golden has %d values, output %d", len(want), len(got))
	}
	// The golden file itself must agree with the independent imaging
	// reference, so -update cannot pin a wrong answer.
	if meanAbs, maxAbs := diff(want, reference(t, testdata(t, "golden.png"), opt), opt); max(maxAbs[0], maxAbs[1], maxAbs[2]) > 2 {
		t.Fatalf("golden.txt is %v levels (max %v) from the imaging reference", meanAbs, maxAbs)
	}
	for i := range got {
		// 1e-5: printed to 6 decimals; FMA on some architectures moves the
		// last place.
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Errorf("value %d (c=%d y=%d x=%d) = %.6f, golden %.6f", i, i/64, i/8%8, i%8, got[i], want[i])
		}
	}
}

func readGolden(t *testing.T, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.Fields(line) {
			v, err := strconv.ParseFloat(field, 32)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out = append(out, float32(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
