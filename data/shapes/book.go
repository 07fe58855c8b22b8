package shapes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

const (
	// MaxTextFileBytes bounds each --text-file: it is held in memory while
	// chunked, and 256 MiB of prose is far more than a demo needs.
	MaxTextFileBytes = 256 << 20
	// chunkChars is the target length of a book chunk: a few paragraphs,
	// a few hundred tokens, comparable to a scene description document.
	chunkChars = 1500
)

// textSource is a text file cut into chunks, with what identifies its content.
type textSource struct {
	Name   string `json:"name"` // base name, as recorded in meta
	SHA256 string `json:"sha256"`
	chunks []string
}

// BookPath returns the path of the English text shipped with Go,
// $(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt: $GOROOT if set,
// else what the go command reports.
func BookPath() (string, error) {
	root := os.Getenv("GOROOT")
	if root == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return "", fmt.Errorf("shapes: locate Go's Opticks text: GOROOT is unset and `go env GOROOT` failed (%w); pass the text with --text-file or use --no-book", err)
		}
		root = strings.TrimSpace(string(out))
	}
	p := filepath.Join(root, "src", "testdata", "Isaac.Newton-Opticks.txt")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("shapes: Go's Opticks text: %w; pass a text with --text-file or use --no-book", err)
	}
	return p, nil
}

// loadText reads path (at most MaxTextFileBytes) and cuts it into chunks.
func loadText(path string) (*textSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shapes: text file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTextFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("shapes: read text file %s: %w", path, err)
	}
	if len(b) > MaxTextFileBytes {
		return nil, fmt.Errorf("shapes: text file %s is larger than %d MiB", path, MaxTextFileBytes>>20)
	}
	sum := sha256.Sum256(b)
	chunks := chunkText(b)
	if len(chunks) == 0 {
		return nil, fmt.Errorf("shapes: text file %s holds no text", path)
	}
	return &textSource{Name: filepath.Base(path), SHA256: hex.EncodeToString(sum[:]), chunks: chunks}, nil
}

// chunkText splits text into paragraphs at blank lines, joins each
// paragraph's lines with spaces, and packs consecutive paragraphs into
// chunks of about chunkChars, separated by blank lines. A paragraph longer
// than that is cut at spaces. Invalid UTF-8 becomes U+FFFD.
func chunkText(b []byte) []string {
	text := strings.ToValidUTF8(string(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))), "\uFFFD")
	var paragraphs []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paragraphs = append(paragraphs, strings.Join(cur, " "))
			cur = cur[:0]
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			flush()
		} else {
			cur = append(cur, line)
		}
	}
	flush()
	var chunks []string
	var chunk strings.Builder
	emit := func() {
		if chunk.Len() > 0 {
			chunks = append(chunks, chunk.String())
			chunk.Reset()
		}
	}
	for _, p := range paragraphs {
		for _, piece := range cutLong(p, chunkChars) {
			if chunk.Len() > 0 && chunk.Len()+2+len(piece) > chunkChars {
				emit()
			}
			if chunk.Len() > 0 {
				chunk.WriteString("\n\n")
			}
			chunk.WriteString(piece)
		}
	}
	emit()
	return chunks
}

// cutLong cuts s into pieces of at most limit bytes, at spaces where it
// can and never inside a UTF-8 sequence.
func cutLong(s string, limit int) []string {
	var out []string
	for len(s) > limit {
		cut := strings.LastIndexByte(s[:limit], ' ')
		if cut <= 0 {
			cut = limit
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
