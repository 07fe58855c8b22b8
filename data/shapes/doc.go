// Package shapes generates the shapes world, mmablate's built-in dataset:
// procedurally drawn scenes of coloured shapes, written as canonical shards
// (package data) for all three training kinds and for few-shot evaluation.
//
// # Scenes
//
// A scene holds 1–9 objects (Config.MaxObjects, default 8), at most one per
// cell of a 3×3 grid, on a pale background (white, cream, light gray, pale
// blue or pale green; plain, a gentle gradient, or speckled). Each object
// has a shape (circle, square, triangle, star, cross, diamond, ring,
// hexagon), a colour (red, orange, yellow, green, blue, purple, pink,
// brown, gray, black), a size (tiny, small, medium, large: radius 2.2%, 5%,
// 8%, 12% of the image side) and a position (top left, top, top right,
// left, center, right, bottom left, bottom, bottom right), jittered within
// its cell and slightly rotated. Two knobs stress what MM1 found to matter:
// TinyFraction of objects are tiny (about 3 px across at 128 px, lost at a
// low input resolution) and CrowdedFraction of scenes draw their count
// from the top quarter of [1, MaxObjects] (hard to count with few image
// tokens). Scenes are drawn by an anti-aliased signed-distance rasteriser
// (render.go) into an image.RGBA and stored as PNG or JPEG (quality
// JPEGQuality), chosen per image with probability Config.JPEGFraction.
//
// # Output
//
// Generate writes one dataset directory (shards plus manifest.json) per
// split, and synth.json, which records the parameters and the shards'
// sha256s so that a rerun with the same parameters says "up to date":
//
//	captions/               caption pairs
//	interleaved/            documents of 2–5 scenes with text about them
//	text/                   scene descriptions, stories and book chunks
//	eval/caption/query/     captioning benchmark, 5 references per image
//	eval/caption/support/   few-shot demonstrations for it
//	eval/vqa/query/         VQA benchmark, 10 answers per question
//	eval/vqa/support/       few-shot demonstrations for it
//	eval/text/              held-out descriptions and stories (Config.EvalText > 0)
//	instructions/           instruction-style samples (Config.Instructions > 0, see SplitInstructions)
//
// Record ids are the split with "/" replaced by "-" and the row number:
// "captions-0000042", "eval-vqa-query-0000007". Image paths are the id
// plus ".png" or ".jpg" (interleaved: id-j.png for the j-th scene). Every
// meta holds "split". Record layouts (texts and images aligned, "·" a null
// entry):
//
//	captions/        kind caption      images [img, ·]   texts [·, "Caption: " caption]
//	                 meta {"split", "task": "caption", "template", "scene"}
//	interleaved/     kind interleaved  text and image segments alternating,
//	                 text or image first, text last
//	                 meta {"split", "scenes": [scene of image 0, 1, …]}
//	text/            kind text         texts [text]
//	                 meta {"split", "source": "description"|"story"|"book",
//	                       "scene" (description, story), "file", "chunk" (book)}
//	eval/text/       kind text         texts [text]
//	                 meta {"split", "source": "description"|"story", "scene"}
//	eval/caption/*   kind caption      images [img]      texts [·]
//	                 meta {"split", "task": "caption", "references": [5 captions], "scene"}
//	eval/vqa/*       kind caption      images [img, ·]   texts [·, question]
//	                 meta {"split", "task": T, "question_type": T, "question",
//	                       "answer": truth, "answers": [10 annotators], "scene"}
//
// T is one of "color", "shape", "count", "position", "size". The true
// answer is canonical: a colour, shape, size or position name as listed
// above, a count in digits. The ten annotator answers are mostly the
// truth, a quarter of them a synonym or spelling ("grey", "two", "top-left",
// "centre", "big", "plus sign"), a twentieth wrong (another name, a count
// off by one), as human VQA answers are. Support rows have the same layout
// as query rows; a demonstration's target is references[0] or answer.
// Support scenes differ from every query scene of their benchmark (scene
// signature: each object's size, colour, shape and position).
//
// A scene in meta is {"background", "texture", "objects": [{"shape",
// "color", "size", "position", "x", "y", "r"}]}, x, y and r as fractions of
// the image side, objects in reading order of their positions.
//
// Captions name every object's colour and shape, singly ("a small red
// circle at the top left") or grouped ("two red circles"), from eight
// templates; totals they state are true. Training text uses the phrasing of
// experiments/eval's few-shot prompts (CaptionPrefix, QAText): a caption
// pair's text is "Caption: " and the caption. An interleaved document is,
// in equal shares, a narrative (text describes each image and compares
// later images with earlier ones: "It has two more shapes than the first
// image.", "Like the second image, it contains a blue star."), a list of
// images each followed by "Caption: …", or a quiz of images each followed
// by "Question: … Answer: …"; the last two are where a model learns to
// continue a run of solved examples. text/ mixes Config.Texts synthetic texts with paragraph chunks
// (about 1500 characters) of Config.TextFiles, spread evenly. eval/text
// holds Config.EvalText synthetic texts drawn the same way from random
// sources of their own, each redrawn until it equals no text of text/, so
// that a perplexity measured on it is over documents training never read.
// Its rows depend on no other split's, nor theirs on it: a world made
// before eval/text existed (synth.json without "eval_text") keeps its
// other splits' bytes when Generate adds it.
//
// # Determinism
//
// Every record draws from its own random source, seeded by (seed, split,
// row), so the bytes do not depend on the number of workers: rows are made
// in parallel and written in order. Two runs with the same Config give
// shards with the same sha256 on the same platform (architectures that
// fuse multiply-adds may round a few edge pixels differently).
package shapes
