// Package tokenizer owns mmablate's text tokenizer: a byte-level BPE in the
// style of GPT-2, trained from text, saved and loaded as a Hugging Face
// tokenizer.json, and used by the data plane through data.Tokenizer.
//
// Text is first split by the GPT-2 pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// (implemented by hand, since Go's regexp has no look-ahead), each piece's
// bytes become byte-level symbols, and merges are applied lowest rank first.
// Every byte has a token, so Decode(Encode(s)) == s for any byte string,
// valid UTF-8 or not:
//
//	"Hello world's"  →  "Hello" " world" "'s"  →  [Hello] [Ġworld] ['s]
//
// Special tokens (<|image|>, <|endofchunk|>, <|bos|>, <|eos|>, <|pad|>) are
// atomic ids. Encode treats their text as ordinary text, so a caption that
// happens to contain "<|image|>" never yields the image id; EncodeWithSpecials
// parses them, as Hugging Face's encode does by default.
//
// A tokenizer.json written by the Hugging Face tokenizers library for a BPE
// model with the ByteLevel pre-tokenizer and decoder loads and gives exactly
// the ids that library gives; the other way round, that library loads what
// Save writes and gives the ids Encode gives; and Train learns the merges
// its BpeTrainer learns from the same text. testdata/ holds the fixtures,
// produced by the library itself (testdata/gen_hf_golden.js says how).
package tokenizer
