package plot

import (
	"bytes"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fontStack is tried in order by the viewer; every entry is a font installed
// with the operating system, so the figure needs nothing from the network.
const fontStack = `system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif`

// Font sizes, in viewBox units (px at 100% zoom).
const (
	titleSize  = 16.0
	axisSize   = 13.0
	tickSize   = 11.0
	legendSize = 12.0
	noteSize   = 11.0
)

// Colours of the chart furniture.
const (
	inkColor  = "#222222"
	gridColor = "#e3e3e3"
	mutedInk  = "#666666"
)

// svg accumulates a document. Its methods write attribute values through
// esc and numbers through num, so the output is well-formed XML and the
// same for the same calls.
type svg struct{ b bytes.Buffer }

func (s *svg) raw(parts ...string) {
	for _, p := range parts {
		s.b.WriteString(p)
	}
}

// esc returns str escaped for XML text and attribute values. Characters
// that XML 1.0 forbids (control characters, invalid UTF-8) become U+FFFD.
func esc(str string) string {
	var b strings.Builder
	// xml.EscapeText only fails when the writer does.
	_ = xml.EscapeText(&b, []byte(str))
	return b.String()
}

// num formats a coordinate with at most two decimals, without trailing
// zeros and without "-0", so equal drawings give equal bytes.
func num(v float64) string {
	r := math.Round(v*100) / 100
	if r == 0 {
		r = 0 // turns -0 into 0
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// begin opens the document: viewBox sizing with a default width and height,
// a white background, an accessible title.
func (s *svg) begin(w, h float64, title string) {
	s.raw(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `, num(w), " ", num(h),
		`" width="`, num(w), `" height="`, num(h), `" role="img" aria-label="`, esc(title),
		`" font-family="`, fontStack, `" font-size="`, num(tickSize), `" fill="`, inkColor, `">`, "\n")
	if title != "" {
		s.raw("<title>", esc(title), "</title>\n")
	}
	s.raw(`<rect class="background" x="0" y="0" width="`, num(w), `" height="`, num(h), `" fill="#ffffff"/>`, "\n")
}

func (s *svg) end() { s.raw("</svg>\n") }

// text writes one line of text; anchor is "start", "middle" or "end"; extra
// is further attributes (already escaped).
func (s *svg) text(x, y, size float64, anchor, extra, str string) {
	s.raw(`<text x="`, num(x), `" y="`, num(y), `" font-size="`, num(size), `"`)
	if anchor != "start" {
		s.raw(` text-anchor="`, anchor, `"`)
	}
	if extra != "" {
		s.raw(" ", extra)
	}
	s.raw(">", esc(str), "</text>\n")
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, width float64, extra string) {
	s.raw(`<line x1="`, num(x1), `" y1="`, num(y1), `" x2="`, num(x2), `" y2="`, num(y2),
		`" stroke="`, stroke, `" stroke-width="`, num(width), `"`)
	if extra != "" {
		s.raw(" ", extra)
	}
	s.raw("/>\n")
}

// points formats a list of coordinates for polyline and polygon.
func points(xs, ys []float64) string {
	var b strings.Builder
	for i := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(num(xs[i]))
		b.WriteByte(',')
		b.WriteString(num(ys[i]))
	}
	return b.String()
}

// asciiWidths are the advance widths of the printable ASCII characters
// (space to tilde) in DejaVu Sans, per unit of font size, rounded up. It is
// the font most Linux systems fall back to, and wider than Helvetica, Arial,
// Segoe UI or San Francisco, so layout based on it errs on the wide side: a
// too-wide guess wastes a little space, a too-narrow one makes text overlap.
var asciiWidths = [95]float64{
	0.32, 0.41, 0.46, 0.84, 0.64, 0.95, 0.78, 0.28, 0.39, 0.39, 0.50, 0.84, 0.32, 0.37, 0.32, 0.34,
	0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.34, 0.34, 0.84, 0.84, 0.84, 0.54,
	1.00, 0.69, 0.69, 0.70, 0.77, 0.64, 0.58, 0.78, 0.76, 0.30, 0.30, 0.66, 0.56, 0.87, 0.75, 0.79,
	0.61, 0.79, 0.70, 0.64, 0.62, 0.74, 0.69, 0.99, 0.69, 0.62, 0.69, 0.39, 0.34, 0.39, 0.84, 0.50,
	0.50, 0.62, 0.64, 0.54, 0.64, 0.57, 0.36, 0.64, 0.64, 0.28, 0.28, 0.58, 0.28, 0.98, 0.64, 0.56,
	0.64, 0.64, 0.39, 0.53, 0.40, 0.64, 0.60, 0.82, 0.60, 0.60, 0.53, 0.64, 0.34, 0.64, 0.84,
}

// textWidth estimates the rendered width of str at the given font size.
func textWidth(str string, size float64) float64 {
	w := 0.0
	for _, r := range str {
		switch {
		case r >= ' ' && r <= '~':
			w += asciiWidths[r-' ']
		case r == utf8.RuneError || r < ' ':
			w += 1.03 // U+FFFD, which also replaces what XML cannot carry
		default:
			w += 0.8 // accented letters, Greek, symbols, CJK
		}
	}
	return w * size
}

// wrap breaks str into lines no wider than width, at spaces where it can
// and inside over-long words where it must.
func wrap(str string, size, width float64) []string {
	var lines []string
	cur := ""
	for _, word := range strings.Fields(str) {
		for textWidth(word, size) > width {
			// Split the word at the longest prefix that fits on its own line.
			_, cut := utf8.DecodeRuneInString(word)
			for i := range word {
				if i > 0 && textWidth(word[:i], size) <= width {
					cut = i
				}
			}
			if cur != "" {
				lines = append(lines, cur)
				cur = ""
			}
			lines = append(lines, word[:cut])
			word = word[cut:]
		}
		switch {
		case word == "":
		case cur == "":
			cur = word
		case textWidth(cur+" "+word, size) <= width:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
