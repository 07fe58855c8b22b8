//go:build cgo && !noturbojpeg

package images

/*
#cgo LDFLAGS: -lturbojpeg
#include <turbojpeg.h>
*/
import "C"

import (
	"image/color"
	"unsafe"
)

const turboAvailable = true

// turboFlags: LIMITSCANS refuses progressive JPEGs with absurd scan counts
// (a CPU bomb); FASTUPSAMPLE replicates chroma like image/jpeg, which keeps
// the two paths close and is faster than libjpeg's triangle upsampling.
const turboFlags = C.TJFLAG_LIMITSCANS | C.TJFLAG_FASTUPSAMPLE

// decodeJPEGTurbo decodes b with libjpeg-turbo, the DCT scaled to the
// smallest factor that keeps the shorter side at least opt.Resolution, and
// resamples it like the pure-Go path. It returns errTurboFailed when
// libjpeg-turbo cannot read b or warns about it (truncated scan, stray
// bytes): the caller then lets image/jpeg decide, so that both paths accept
// and refuse the same files.
func decodeJPEGTurbo(dst []float32, b []byte, opt Options, s *scratch) error {
	h := C.tjInitDecompress()
	if h == nil {
		return errTurboFailed
	}
	defer C.tjDestroy(h)
	jpegBuf := (*C.uchar)(unsafe.Pointer(&b[0]))
	jpegSize := C.ulong(len(b))

	var cw, ch, subsamp, colorspace C.int
	if C.tjDecompressHeader3(h, jpegBuf, jpegSize, &cw, &ch, &subsamp, &colorspace) != 0 {
		return errTurboFailed
	}
	w, ht := int(cw), int(ch)
	if err := checkSize(formatJPEG, w, ht, opt); err != nil {
		return err
	}

	num, den := scaleFor(min(w, ht), opt.Resolution)
	sw, sh := scaled(w, num, den), scaled(ht, num, den)
	cmyk := colorspace == C.TJCS_CMYK || colorspace == C.TJCS_YCCK
	pf, bpp := C.int(C.TJPF_RGB), 3
	if cmyk {
		// libjpeg-turbo has no CMYK→RGB conversion; decode CMYK and convert
		// below as image/jpeg does.
		pf, bpp = C.TJPF_CMYK, 4
	}
	pix := s.bytes(sw * sh * bpp)
	if C.tjDecompress2(h, jpegBuf, jpegSize, (*C.uchar)(unsafe.Pointer(&pix[0])),
		C.int(sw), 0, C.int(sh), pf, turboFlags) != 0 {
		return errTurboFailed
	}
	if cmyk {
		pix = cmykToRGB(pix)
	}
	f := float64(num) / float64(den)
	resample(dst, rgbImage{w: sw, h: sh, pix: pix}, float64(w)*f, float64(ht)*f, opt, s)
	return nil
}

// scaleFor picks, from libjpeg-turbo's scaling factors no larger than 1, the
// smallest that keeps short at least target pixels (1/1 if none does).
func scaleFor(short, target int) (num, den int) {
	var n C.int
	sfs := C.tjGetScalingFactors(&n)
	num, den = 1, 1
	if sfs == nil {
		return num, den
	}
	for _, sf := range unsafe.Slice(sfs, int(n)) {
		fn, fd := int(sf.num), int(sf.denom)
		if fn <= fd && scaled(short, fn, fd) >= target && fn*den < num*fd {
			num, den = fn, fd
		}
	}
	return num, den
}

// scaled is TJSCALED: libjpeg rounds scaled dimensions up.
func scaled(dim, num, den int) int { return (dim*num + den - 1) / den }

// cmykToRGB converts libjpeg's CMYK (stored inverted, Adobe's convention) to
// RGB in place, exactly as image/jpeg's image.CMYK converts.
func cmykToRGB(p []byte) []byte {
	n := len(p) / 4
	for i := range n {
		q := p[4*i : 4*i+4 : 4*i+4]
		p[3*i], p[3*i+1], p[3*i+2] = color.CMYKToRGB(255-q[0], 255-q[1], 255-q[2], 255-q[3])
	}
	return p[:3*n]
}
