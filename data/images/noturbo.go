//go:build !cgo || noturbojpeg

package images

const turboAvailable = false

// decodeJPEGTurbo is never called without libjpeg-turbo: decodeInto checks
// turboAvailable first.
func decodeJPEGTurbo(dst []float32, b []byte, opt Options, s *scratch) error {
	panic("images: libjpeg-turbo not compiled in")
}
