package tokenizer

// GPT-2's byte-to-rune table: printable bytes map to themselves, the others
// to U+0100 upwards, so every token is a printable string with no spaces.
var byteRune, runeByte = byteLevelTables()

func byteLevelTables() (b2r [256]rune, r2b map[rune]byte) {
	r2b = make(map[rune]byte, 256)
	n := rune(0)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			b2r[b] = rune(b)
		} else {
			b2r[b] = 256 + n
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}

// byteLevelString maps raw bytes to their byte-level spelling.
func byteLevelString(raw string) string {
	out := make([]rune, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		out = append(out, byteRune[raw[i]])
	}
	return string(out)
}

// rawBytes maps a byte-level spelling back to raw bytes; ok is false when a
// rune is outside the byte-level alphabet (a token added by hand).
func rawBytes(token string) (raw string, ok bool) {
	out := make([]byte, 0, len(token))
	for _, r := range token {
		b, in := runeByte[r]
		if !in {
			return "", false
		}
		out = append(out, b)
	}
	return string(out), true
}
