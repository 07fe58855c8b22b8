package shapes

import (
	"strconv"
	"strings"
)

// Shape is one of the drawable shapes.
type Shape uint8

const (
	Circle Shape = iota
	Square
	Triangle
	Star
	Cross
	Diamond
	Ring
	Hexagon
	numShapes
)

var shapeNames = [numShapes]string{"circle", "square", "triangle", "star", "cross", "diamond", "ring", "hexagon"}

func (s Shape) String() string { return shapeNames[s] }

// Plural is the shape's plural noun ("crosses").
func (s Shape) Plural() string {
	if s == Cross {
		return "crosses"
	}
	return shapeNames[s] + "s"
}

// Color is one of the named fill colours. They are far apart in RGB and
// all contrast with the pale backgrounds, so a colour is never confused
// with the background at full resolution.
type Color uint8

const (
	Red Color = iota
	Orange
	Yellow
	Green
	Blue
	Purple
	Pink
	Brown
	Gray
	Black
	numColors
)

var colorNames = [numColors]string{"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "gray", "black"}

var colorRGB = [numColors][3]uint8{
	{220, 38, 38},   // red
	{245, 140, 20},  // orange
	{235, 200, 20},  // yellow
	{40, 160, 60},   // green
	{40, 90, 220},   // blue
	{135, 55, 190},  // purple
	{240, 110, 185}, // pink
	{125, 75, 35},   // brown
	{130, 130, 130}, // gray
	{25, 25, 25},    // black
}

func (c Color) String() string { return colorNames[c] }

// Size is a named object size; its radius is a fraction of the image side.
type Size uint8

const (
	Tiny Size = iota
	Small
	Medium
	Large
	numSizes
)

var sizeNames = [numSizes]string{"tiny", "small", "medium", "large"}

// sizeRadius is each size's radius as a fraction of the image side. Tiny
// is about 3 px at 128 px, so a 64 px model input keeps 1–2 px of it;
// large (with the 1.13 extent of the widest shape) still leaves room for
// jitter inside a third of the image.
var sizeRadius = [numSizes]float32{0.022, 0.05, 0.08, 0.12}

func (s Size) String() string { return sizeNames[s] }

// Position is a cell of the 3×3 grid, in reading order.
type Position uint8

const (
	TopLeft Position = iota
	Top
	TopRight
	Left
	Center
	Right
	BottomLeft
	Bottom
	BottomRight
	numPositions
)

var positionNames = [numPositions]string{"top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"}

// positionPhrases are the prepositional phrases that place an object.
var positionPhrases = [numPositions]string{
	"at the top left", "at the top", "at the top right",
	"on the left", "in the center", "on the right",
	"at the bottom left", "at the bottom", "at the bottom right",
}

func (p Position) String() string { return positionNames[p] }

// Phrase is where the object is, as a prepositional phrase ("on the left").
func (p Position) Phrase() string { return positionPhrases[p] }

func (p Position) col() int { return int(p) % 3 }
func (p Position) row() int { return int(p) / 3 }

// Background is a named pale background colour.
type Background uint8

const (
	White Background = iota
	Cream
	LightGray
	PaleBlue
	PaleGreen
	numBackgrounds
)

var backgroundNames = [numBackgrounds]string{"white", "cream", "light gray", "pale blue", "pale green"}

var backgroundRGB = [numBackgrounds][3]uint8{
	{246, 246, 244},
	{246, 238, 214},
	{214, 214, 212},
	{212, 226, 244},
	{218, 238, 218},
}

func (b Background) String() string { return backgroundNames[b] }

// Texture says how the background varies.
type Texture uint8

const (
	Plain Texture = iota
	Gradient
	Speckle
	numTextures
)

var textureNames = [numTextures]string{"plain", "gradient", "speckle"}

func (t Texture) String() string { return textureNames[t] }

var numberWords = [...]string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"}

// numberWord spells small counts; larger ones stay digits.
func numberWord(n int) string {
	if n >= 0 && n < len(numberWords) {
		return numberWords[n]
	}
	return strconv.Itoa(n)
}

var ordinals = [...]string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"}

func ordinal(i int) string { return ordinals[i] }

// article is "a" or "an" for the word that follows.
func article(next string) string {
	if next != "" && strings.ContainsRune("aeiou", rune(next[0])) {
		return "an"
	}
	return "a"
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// joinAnd joins items as "a, b and c".
func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
