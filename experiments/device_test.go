package experiments

import (
	"strings"
	"testing"
)

// TestValidateDevice: device and precision are checked together, naming
// the key; other sections' errors do not matter here.
func TestValidateDevice(t *testing.T) {
	for _, tc := range []struct {
		device, precision string
		vision            bool
		bad               string // key the error must name; "" = neither key
		pruning           string // model.decoder.ffn_pruning
	}{
		{"cpu", "", true, "", ""},
		{"cpu", "fp32", true, "", ""},
		{"cpu", "bf16", true, "precision", ""},
		{"cuda", "", false, "", ""},
		{"cuda", "bf16", false, "", ""},
		{"cuda", "tf32", false, "", ""},
		{"cuda", "fp16", false, "precision", ""},
		{"cuda", "", true, "device", ""},
		{"cuda", "", false, "device", "static"},
		{"cpu", "", true, "", "instruction"},
		{"tpu", "", false, "device", ""},
	} {
		c := Default()
		c.Device, c.Precision = tc.device, tc.precision
		c.Model.Decoder.FFNPruning = tc.pruning
		if !tc.vision {
			c.Model.Vision, c.Model.Connector = nil, nil
		}
		err := c.Validate()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, key := range []string{"device", "precision"} {
			has := strings.Contains(msg, key+":")
			if has != (key == tc.bad) {
				t.Errorf("device %q precision %q vision %v: error %q; want key %q named", tc.device, tc.precision, tc.vision, msg, tc.bad)
			}
		}
	}
}
