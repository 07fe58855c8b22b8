//go:build cgo && !noturbojpeg

package images

import "testing"

// TestScaleFor: libjpeg-turbo decodes at the smallest of its DCT scales
// (k/8 up to 1) that keeps the shorter side at least the target, rounding
// scaled sizes up as TJSCALED does; nothing smaller than the target is
// ever decoded, and nothing is upscaled in the DCT.
func TestScaleFor(t *testing.T) {
	for _, tt := range []struct {
		short, target, num, den int
	}{
		{480, 224, 1, 2},  // 240; 3/8 would give 180
		{600, 224, 3, 8},  // 225
		{333, 224, 3, 4},  // 250; 5/8 would give 209
		{224, 224, 1, 1},  // exact
		{100, 224, 1, 1},  // smaller than the target: full size, resampled up
		{1800, 224, 1, 8}, // 225
		{1785, 224, 1, 8}, // ⌈223.125⌉ = 224
		{1784, 224, 1, 4}, // 1/8 gives 223
		{4000, 64, 1, 8},  // the smallest scale there is
	} {
		num, den := scaleFor(tt.short, tt.target)
		if num*tt.den != tt.num*den {
			t.Errorf("scaleFor(%d, %d) = %d/%d, want %d/%d", tt.short, tt.target, num, den, tt.num, tt.den)
		}
		if got := scaled(tt.short, num, den); got < tt.target && num != den {
			t.Errorf("scaleFor(%d, %d) = %d/%d decodes %d px, under the target", tt.short, tt.target, num, den, got)
		}
	}
}
