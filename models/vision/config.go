package vision

import (
	"errors"
	"fmt"
)

// Config sizes a ViT. Keys in errors are those of the `model.vision` section
// of a training config, so a bad value is reported as the user wrote it.
type Config struct {
	Resolution int  // R: input images are R×R
	Patch      int  // P: patches are P×P; the grid is R/P per side
	Width      int  // Dv
	Depth      int  // number of transformer blocks
	Heads      int  // attention heads; must divide Width
	MLPRatio   int  // MLP hidden = MLPRatio·Width; 0 means DefaultMLPRatio
	Freeze     bool // keep the encoder fixed: no gradients, no optimiser update
}

// DefaultMLPRatio is the ViT MLP expansion of MODEL-SPEC.md (and of every
// CLIP/ViT the MM1 study starts from).
const DefaultMLPRatio = 4

// Channels is the number of image channels the encoder takes (RGB).
const Channels = 3

// Validate checks every size and relation the encoder relies on and names the
// offending key; New calls it, so a bad config fails at build time, never as
// a panic mid-training.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("model.vision.%s %s", key, fmt.Sprintf(format, a...)))
	}
	positive := func(key string, v int) bool {
		if v <= 0 {
			bad(key, "must be positive, got %d", v)
			return false
		}
		return true
	}
	if positive("resolution", c.Resolution) && positive("patch", c.Patch) && c.Resolution%c.Patch != 0 {
		bad("resolution", "%d is not a multiple of model.vision.patch %d", c.Resolution, c.Patch)
	}
	positive("depth", c.Depth)
	if positive("width", c.Width) && positive("heads", c.Heads) && c.Width%c.Heads != 0 {
		bad("heads", "%d does not divide model.vision.width %d", c.Heads, c.Width)
	}
	if c.MLPRatio < 0 {
		bad("mlp_ratio", "must be positive (or 0 for the default %d), got %d", DefaultMLPRatio, c.MLPRatio)
	}
	return errors.Join(errs...)
}

// Grid is the number of patches per side, R/P.
func (c Config) Grid() int { return c.Resolution / c.Patch }

// NumPatches is the number of patches per image, Grid².
func (c Config) NumPatches() int { return c.Grid() * c.Grid() }

// Hidden is the MLP hidden width.
func (c Config) Hidden() int {
	if c.MLPRatio == 0 {
		return DefaultMLPRatio * c.Width
	}
	return c.MLPRatio * c.Width
}

// NumParams is the number of scalars the encoder registers (frozen or not).
func (c Config) NumParams() int {
	d, f, np := c.Width, c.Hidden(), c.NumPatches()
	patch := Channels * c.Patch * c.Patch
	block := 2*d + // ln1
		3*d*d + 3*d + // qkv
		d*d + d + // proj
		2*d + // ln2
		f*d + f + // fc1
		d*f + d // fc2
	return patch*d + d + // patch_embed
		np*d + // pos_embed
		c.Depth*block +
		2*d // norm
}

// FLOPs counts one training step's floating-point operations for a batch of
// images: matrix products only (patch embedding, qkv, q·kᵀ, p·v, proj, fc1,
// fc2), 2·m·n·k each forward and twice that backward (the input and the
// weight gradient). Normalisation, GELU, softmax and additions are left out:
// they are O(n·d) beside the O(n·d²) products. A frozen encoder runs no
// backward, so its backward count is 0.
func (c Config) FLOPs(images int) (forward, backward int64) {
	b, np, d, f := int64(images), int64(c.NumPatches()), int64(c.Width), int64(c.Hidden())
	patch := int64(Channels * c.Patch * c.Patch)
	rows := b * np
	block := 2*rows*d*3*d + // qkv
		2*2*b*np*np*d + // q·kᵀ and p·v over all heads
		2*rows*d*d + // proj
		2*rows*d*f + 2*rows*f*d // fc1, fc2
	forward = 2*rows*patch*d + int64(c.Depth)*block
	if c.Freeze {
		return forward, 0
	}
	return forward, 2 * forward
}
