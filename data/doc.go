// Package data reads and writes sharded Parquet datasets of image-caption
// pairs, interleaved image-text documents and text-only documents, and turns
// their rows into model-ready Samples.
//
// # The canonical shard format
//
// Every kind of data is stored in one schema (schema version 1), the aligned
// lists that OBELICS made popular:
//
//	id      string                      required, unique within the dataset
//	kind    string                      "caption" | "interleaved" | "text"
//	texts   list<string (nullable)>     one entry per segment
//	images  list<struct{bytes binary, path string} (nullable)>
//	meta    string                      a JSON object, "{}" when empty
//
// texts and images have the same length; at each index exactly one of them is
// non-null, so index i is either a text segment or an image segment, in
// document order. A caption pair is [image, text]; an interleaved document is
// any order of both; a text document is [text]. Example (one caption row):
//
//	id:     "shapes-000042"
//	kind:   "caption"
//	texts:  [null, "a small red circle at the top left"]
//	images: [{bytes: <PNG bytes>, path: "000042.png"}, null]
//	meta:   {"split": "train"}
//
// A dataset is a directory of shards (shard-00000.parquet, …) and a
// manifest.json that lists each shard's name, rows, bytes and sha256, the
// kinds present and the schema version. Shards are written to a temporary
// name and renamed, so a shard under its final name is always complete.
//
// # Layouts people already have
//
// Readers also accept, detected from the Parquet schema or forced by name:
// hf-image (a Hugging Face datasets Image struct column plus a caption
// column), img2dataset (jpg binary plus caption/txt, status filtering),
// obelics (aligned texts/images lists), text (a text column) and mmablate
// (the canonical format above). Each is adapted row by row to a Record.
//
// # Streaming
//
// A Stream yields Samples: records whose images are decoded, resized,
// cropped and normalised into float32 CHW tensors and whose texts are
// optionally tokenized. Readers hold at most a row group per worker in
// memory, shuffle with seeded per-epoch shard orders and a seeded shuffle
// buffer, split work by rank, and expose a JSON State from which a new
// process continues with exactly the samples an uninterrupted reader yields.
package data
