package shapes

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestChunkText(t *testing.T) {
	long := strings.Repeat("word ", 700) // 3500 bytes, one paragraph
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"blank lines only", "\n  \n\t\n", nil},
		{"lines joined", "one\ntwo\r\nthree\n", []string{"one two three"}},
		{"paragraphs packed", "a b\n\nc\n\n\n\nd", []string{"a b\n\nc\n\nd"}},
		{"invalid UTF-8", "caf\xe9", []string{"caf\uFFFD"}},
		{"long paragraph cut at spaces", long, []string{
			strings.TrimSpace(long[:1500]), strings.TrimSpace(long[1500:3000]), strings.TrimSpace(long[3000:]),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chunkText([]byte(tc.in))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestChunkTextPacksParagraphs(t *testing.T) {
	para := strings.Repeat("x", 400)
	in := strings.Repeat(para+"\n\n", 10)
	got := chunkText([]byte(in))
	// 400+2+400+2+400 = 1204 fits, a fourth paragraph would not.
	if len(got) != 4 || strings.Count(got[0], "\n\n") != 2 {
		t.Fatalf("%d chunks, first has %d paragraphs", len(got), strings.Count(got[0], "\n\n")+1)
	}
}

func FuzzChunkText(f *testing.F) {
	f.Add([]byte("a\n\nb"))
	f.Add([]byte(strings.Repeat("é", 2000)))
	f.Add([]byte("\xff\xfe\r\n\r\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range chunkText(b) {
			if c == "" || len(c) > chunkChars || !utf8.ValidString(c) || c != strings.TrimSpace(c) {
				t.Fatalf("bad chunk %q", c)
			}
		}
	})
}
