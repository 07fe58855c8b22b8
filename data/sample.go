package data

// Image is a decoded, resized, cropped and normalised image: float32 in
// channel-major order, Pix[c*H*W + y*W + x].
type Image struct {
	C, H, W int
	Pix     []float32
}

// Segment is one element of a Sample: either text or an image.
type Segment struct {
	// Text is the raw text of a text segment ("" for images).
	Text string
	// Tokens are Text's token ids when the stream has a Tokenizer.
	Tokens []int32
	// Image is non-nil for an image segment.
	Image *Image
}

// IsImage reports whether the segment is an image.
func (s Segment) IsImage() bool { return s.Image != nil }

// Sample is a decoded Record, ready for the mixer.
type Sample struct {
	ID       string
	Kind     Kind
	Segments []Segment
	Meta     string
	// Source names the dataset the sample came from (set by the mixer).
	Source string
}

// Tokenizer turns text into token ids. data/tokenizer implements it; the
// stream only needs this much.
type Tokenizer interface {
	Encode(text string) []int32
}
