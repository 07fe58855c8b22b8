package shapes

import (
	"image"
	"math"
)

// The rasteriser computes, for every pixel centre near a shape, the signed
// distance d to the shape's outline in pixels (negative inside) and covers
// the pixel by clamp(½ − d, 0, 1): the area a straight edge through the
// pixel leaves inside it. That is exact anti-aliasing for edges and close
// at corners, at one distance evaluation per pixel instead of the 16 or 64
// samples of supersampling.
//
// All distance functions are 1-Lipschitz (exact distances, or minima of
// them), so a 4×4 tile whose centre lies more than the tile's half diagonal
// plus ½ px from the outline is wholly inside or wholly outside: such tiles
// are filled or skipped without per-pixel work.

const (
	tile = 4
	// tileReach: the farthest pixel centre from the tile centre (1.5√2)
	// plus the half pixel of the coverage ramp.
	tileReach = 1.5*math.Sqrt2 + 0.5
)

// Render draws s into dst, whose bounds must start at (0, 0) and be square.
func Render(dst *image.RGBA, s *Scene) {
	fillBackground(dst, s)
	for i := range s.Objects {
		drawObject(dst, &s.Objects[i])
	}
}

func fillBackground(dst *image.RGBA, s *Scene) {
	n := dst.Rect.Dx()
	var base [3]int
	for c := range base {
		base[c] = int(backgroundRGB[s.Background][c]) + int(s.Tint[c])
	}
	// Gradients run ±8 levels across the image, in one of four directions;
	// speckle is sparse ±3-level grain.
	dir := s.TextureSeed & 3
	shade := func(off int) [4]uint8 {
		return [4]uint8{clamp8(base[0] + off), clamp8(base[1] + off), clamp8(base[2] + off), 255}
	}
	gradient := func(t int) int {
		if dir&2 != 0 {
			t = n - 1 - t
		}
		return (16*t)/n - 8
	}
	first := dst.Pix[:4*n]
	switch {
	case s.Texture == Speckle:
		// One pixel in eight is lighter or darker: visible grain that
		// still compresses (dense noise would triple the PNG size and time).
		shades := [8][4]uint8{shade(-3), shade(3)}
		for k := 2; k < len(shades); k++ {
			shades[k] = shade(0)
		}
		for y := range n {
			row := dst.Pix[y*dst.Stride : y*dst.Stride+4*n]
			for x := range n {
				copy(row[4*x:4*x+4], shades[speckle(uint32(x), uint32(y), s.TextureSeed)&7][:])
			}
		}
		return
	case s.Texture == Gradient && dir&1 == 0: // vertical: each row is one colour
		for y := range n {
			c := shade(gradient(y))
			row := dst.Pix[y*dst.Stride : y*dst.Stride+4*n]
			copy(row, c[:])
			for filled := 4; filled < len(row); filled *= 2 {
				copy(row[filled:], row[:filled])
			}
		}
		return
	case s.Texture == Gradient: // horizontal: every row is the first
		for x := range n {
			c := shade(gradient(x))
			copy(first[4*x:], c[:])
		}
	default:
		c := shade(0)
		copy(first, c[:])
		for filled := 4; filled < len(first); filled *= 2 {
			copy(first[filled:], first[:filled])
		}
	}
	for y := 1; y < n; y++ {
		copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*n], first)
	}
}

// speckle is a small integer hash: texture without a random source per pixel.
func speckle(x, y, seed uint32) uint32 {
	h := x*0x9E3779B1 ^ y*0x85EBCA77 ^ seed
	h ^= h >> 15
	h *= 0x2C1B3C6D
	h ^= h >> 12
	h *= 0x297A2D39
	h ^= h >> 15
	return h
}

func clamp8(v int) uint8 {
	return uint8(min(max(v, 0), 255))
}

// outline is a shape placed in pixel coordinates, ready for distance queries.
type outline struct {
	shape    Shape
	cx, cy   float32
	cos, sin float32 // rotation
	r        float32
	edges    []edge // polygon edges in the shape's frame
}

// edge is a polygon edge from (x, y) along (ex, ey), with 1/|e|² kept for
// the projection.
type edge struct {
	x, y, ex, ey, inv float32
}

// Polygon vertices per unit radius, y pointing down (so "up" is −y).
var (
	triangleVerts = regularPolygon(3, 1.12, -math.Pi/2)
	hexagonVerts  = regularPolygon(6, 1.0, 0)
	diamondVerts  = []float32{0, -1.12, 0.75, 0, 0, 1.12, -0.75, 0}
	starVerts     = starPolygon(5, 1.12, 0.48)
)

func regularPolygon(n int, radius, phase float64) []float32 {
	v := make([]float32, 0, 2*n)
	for i := range n {
		a := phase + 2*math.Pi*float64(i)/float64(n)
		v = append(v, float32(radius*math.Cos(a)), float32(radius*math.Sin(a)))
	}
	return v
}

func starPolygon(points int, outer, inner float64) []float32 {
	v := make([]float32, 0, 4*points)
	for i := range 2 * points {
		rad := outer
		if i%2 == 1 {
			rad = inner
		}
		a := -math.Pi/2 + math.Pi*float64(i)/float64(points)
		v = append(v, float32(rad*math.Cos(a)), float32(rad*math.Sin(a)))
	}
	return v
}

func newOutline(o *Object, side float32, scratch []edge) outline {
	sin, cos := math.Sincos(float64(o.Rotation))
	ol := outline{shape: o.Shape, cx: o.X * side, cy: o.Y * side, cos: float32(cos), sin: float32(sin), r: o.R * side}
	var unit []float32
	switch o.Shape {
	case Triangle:
		unit = triangleVerts
	case Hexagon:
		unit = hexagonVerts
	case Diamond:
		unit = diamondVerts
	case Star:
		unit = starVerts
	}
	if unit != nil {
		n := len(unit) / 2
		ol.edges = scratch[:n]
		for i := range n {
			j := (i + n - 1) % n
			x, y := unit[2*i]*ol.r, unit[2*i+1]*ol.r
			ex, ey := unit[2*j]*ol.r-x, unit[2*j+1]*ol.r-y
			ol.edges[i] = edge{x: x, y: y, ex: ex, ey: ey, inv: 1 / (ex*ex + ey*ey)}
		}
	}
	return ol
}

// dist is the signed distance in pixels from (px, py) to the outline.
func (ol *outline) dist(px, py float32) float32 {
	dx, dy := px-ol.cx, py-ol.cy
	// Rotate the point into the shape's frame.
	x := ol.cos*dx + ol.sin*dy
	y := ol.cos*dy - ol.sin*dx
	r := ol.r
	switch ol.shape {
	case Circle:
		return hypot(x, y) - r
	case Ring:
		return abs32(hypot(x, y)-0.75*r) - 0.25*r
	case Square:
		return boxDist(x, y, 0.8*r, 0.8*r)
	case Cross:
		return min(boxDist(x, y, r, 0.34*r), boxDist(x, y, 0.34*r, r))
	default:
		return polygonDist(ol.edges, x, y)
	}
}

func boxDist(x, y, hx, hy float32) float32 {
	qx, qy := abs32(x)-hx, abs32(y)-hy
	outside := hypot(max(qx, 0), max(qy, 0))
	return outside + min(max(qx, qy), 0)
}

// polygonDist is the exact signed distance to a simple polygon (Inigo
// Quilez's formulation): the nearest edge gives the distance, a crossing
// count gives the sign.
func polygonDist(edges []edge, x, y float32) float32 {
	d := float32(math.MaxFloat32)
	inside := false
	for k := range edges {
		e := &edges[k]
		wx, wy := x-e.x, y-e.y
		t := min(max((wx*e.ex+wy*e.ey)*e.inv, 0), 1)
		bx, by := wx-e.ex*t, wy-e.ey*t
		d = min(d, bx*bx+by*by)
		c1, c2, c3 := y >= e.y, y < e.y+e.ey, e.ex*wy > e.ey*wx
		if c1 == c2 && c2 == c3 {
			inside = !inside
		}
	}
	d = float32(math.Sqrt(float64(d)))
	if inside {
		return -d
	}
	return d
}

func hypot(x, y float32) float32 { return float32(math.Sqrt(float64(x*x + y*y))) }

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func drawObject(dst *image.RGBA, o *Object) {
	n := dst.Rect.Dx()
	var scratch [10]edge
	ol := newOutline(o, float32(n), scratch[:])
	reach := ol.r*maxExtent + 1
	x0 := max(int(ol.cx-reach), 0)
	y0 := max(int(ol.cy-reach), 0)
	x1 := min(int(ol.cx+reach)+1, n)
	y1 := min(int(ol.cy+reach)+1, n)
	col := colorRGB[o.Color]
	for ty := y0; ty < y1; ty += tile {
		for tx := x0; tx < x1; tx += tile {
			d := ol.dist(float32(tx)+tile/2, float32(ty)+tile/2)
			if d > tileReach {
				continue
			}
			ex, ey := min(tx+tile, x1), min(ty+tile, y1)
			solid := d < -tileReach
			for y := ty; y < ey; y++ {
				row := dst.Pix[y*dst.Stride:]
				for x := tx; x < ex; x++ {
					p := row[4*x : 4*x+3 : 4*x+3]
					if solid {
						p[0], p[1], p[2] = col[0], col[1], col[2]
						continue
					}
					cover := 0.5 - ol.dist(float32(x)+0.5, float32(y)+0.5)
					if cover <= 0 {
						continue
					}
					if cover >= 1 {
						p[0], p[1], p[2] = col[0], col[1], col[2]
						continue
					}
					a := int32(cover*256 + 0.5)
					for c := range 3 {
						v := int32(p[c])
						p[c] = uint8(v + ((int32(col[c])-v)*a)>>8)
					}
				}
			}
		}
	}
}
