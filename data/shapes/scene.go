package shapes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Object is one shape in a scene. X and Y are its centre and R its radius,
// as fractions of the image side, so a scene renders at any size.
type Object struct {
	Shape    Shape
	Color    Color
	Size     Size
	Position Position
	X, Y, R  float32
	Rotation float32 // radians, small: a rotated square stays a square
}

// Scene is what one image shows. Objects are in reading order of their
// positions, and no two share a position, so "the object at the top left"
// always names one object.
type Scene struct {
	Background  Background
	Texture     Texture
	Tint        [3]int8 // per-channel offset from the named background colour
	TextureSeed uint32
	Objects     []Object
}

// SceneOptions are the knobs of the scene distribution.
type SceneOptions struct {
	// MaxObjects bounds the objects in a scene, 1..9 (one per grid cell).
	MaxObjects int
	// TinyFraction is the probability that an object is tiny.
	TinyFraction float64
	// CrowdedFraction is the fraction of scenes drawn from the crowded
	// range [⌈¾·MaxObjects⌉, MaxObjects]; the rest are uniform on
	// [1, MaxObjects].
	CrowdedFraction float64
}

// maxExtent is the widest shape's reach (the square's corner) per unit radius.
const maxExtent = 1.13

// NewScene draws a scene from rng.
func NewScene(rng *rand.Rand, o SceneOptions) *Scene {
	s := &Scene{
		Background:  Background(rng.IntN(int(numBackgrounds))),
		Texture:     Texture(rng.IntN(int(numTextures))),
		TextureSeed: rng.Uint32(),
	}
	for c := range s.Tint {
		s.Tint[c] = int8(rng.IntN(9) - 4)
	}
	lo := 1
	if rng.Float64() < o.CrowdedFraction {
		lo = max(1, (3*o.MaxObjects+3)/4)
	}
	n := lo + rng.IntN(o.MaxObjects-lo+1)
	cells := rng.Perm(int(numPositions))[:n]
	slices.Sort(cells)
	s.Objects = make([]Object, n)
	for i, cell := range cells {
		size := Tiny
		if rng.Float64() >= o.TinyFraction {
			size = Small + Size(rng.IntN(int(numSizes-Small)))
		}
		p := Position(cell)
		r := sizeRadius[size]
		// Jitter keeps the whole shape inside its third of the image.
		room := float32(1.0/6) - r*maxExtent - 0.01
		s.Objects[i] = Object{
			Shape:    Shape(rng.IntN(int(numShapes))),
			Color:    Color(rng.IntN(int(numColors))),
			Size:     size,
			Position: p,
			X:        (float32(p.col())+0.5)/3 + room*(2*rng.Float32()-1),
			Y:        (float32(p.row())+0.5)/3 + room*(2*rng.Float32()-1),
			R:        r,
			Rotation: float32(math.Pi/20) * (2*rng.Float32() - 1),
		}
	}
	return s
}

// Signature names the scene's content (shape, colour, size, position of
// each object), ignoring jitter and background: two scenes with the same
// signature are the same scene for evaluation purposes.
func (s *Scene) Signature() string {
	var b strings.Builder
	for i, o := range s.Objects {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, "%s %s %s %s", o.Size, o.Color, o.Shape, o.Position)
	}
	return b.String()
}

// count returns how many objects satisfy keep.
func (s *Scene) count(keep func(o *Object) bool) int {
	n := 0
	for i := range s.Objects {
		if keep(&s.Objects[i]) {
			n++
		}
	}
	return n
}

// SceneJSON is a scene as stored in record meta.
type SceneJSON struct {
	Background string       `json:"background"`
	Texture    string       `json:"texture"`
	Objects    []ObjectJSON `json:"objects"`
}

// ObjectJSON is one object as stored in record meta; X, Y and R are
// fractions of the image side.
type ObjectJSON struct {
	Shape    string  `json:"shape"`
	Color    string  `json:"color"`
	Size     string  `json:"size"`
	Position string  `json:"position"`
	X        float32 `json:"x"`
	Y        float32 `json:"y"`
	R        float32 `json:"r"`
}

// JSON is the scene in the meta form.
func (s *Scene) JSON() SceneJSON {
	j := SceneJSON{Background: s.Background.String(), Texture: s.Texture.String(), Objects: make([]ObjectJSON, len(s.Objects))}
	for i, o := range s.Objects {
		j.Objects[i] = ObjectJSON{
			Shape: o.Shape.String(), Color: o.Color.String(), Size: o.Size.String(), Position: o.Position.String(),
			X: round4(o.X), Y: round4(o.Y), R: round4(o.R),
		}
	}
	return j
}

func round4(v float32) float32 { return float32(math.Round(float64(v)*1e4) / 1e4) }
