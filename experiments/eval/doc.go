// Package eval owns mmablate's few-shot evaluation of a trained model:
// captioning and VQA benchmarks at k = 0, 4, 8 demonstrations (MM1's
// protocol, as open_flamingo implements it), greedy decoding through
// models.Generator, scores from experiments/scoring (CIDEr-D and BLEU-4,
// VQAv2 accuracy), and the decoder's text perplexity. It also owns the
// `eval:` section of a run config (Config) and eval.json (Results).
//
// # Benchmarks
//
// A benchmark directory holds query/ and support/ datasets laid out as
// data/shapes writes them: captioning rows [image] with meta "references";
// VQA rows [image, question] with meta "answer" (the truth) and "answers"
// (ten human answers). The first Config.MaxQueries query rows, in dataset
// order, are evaluated; demonstrations come from support/ only, whose
// scenes data/shapes keeps apart from the queries'.
//
// # Prompts
//
// A prompt is one document laid out as the mixer packs training documents
// (<|bos|> first, N = model.connector.tokens placeholders per image): k
// demonstrations, each closed by <|endofchunk|>, then the query, which
// stops where its target would start. For captioning with k = 2:
//
//	<|bos|> <|image|>×N "Caption: a red circle at the top" <|endofchunk|>
//	        <|image|>×N "Caption: two blue squares" <|endofchunk|>
//	        <|image|>×N "Caption:"
//
// and for VQA each part is "Question: What color is the star? Answer: red"
// (the query: "Question: … Answer:"). The demonstrations of query q in
// trial t are drawn without replacement from support/ by a generator
// seeded with (seed, task, t, q), one at a time, so that the 4-shot
// demonstrations are the first four of the 8-shot ones; a captioning
// demonstration's caption is drawn among its references, a VQA
// demonstration's answer is its true answer. A 0-shot prompt has nothing
// random in it and is run in one trial only.
//
// A prompt must leave room for the new tokens within
// model.decoder.max_seq; one that does not loses its earliest
// demonstrations, whole, until it does, and Results counts them
// (ShotResult.DroppedDemos), because a k-shot score with demonstrations
// missing is not a k-shot score.
//
// # Decoding and scoring
//
// Decoding is greedy (models.Generator), Config.Batch prompts at a time,
// at most Config.MaxNewTokens new tokens, stopping at <|endofchunk|> or
// <|eos|>. The new tokens are decoded to text and trimmed of surrounding
// space, then scored over the whole query set per trial. Each metric is
// reported as the mean and sample standard deviation over trials, with
// every trial's value.
//
// # Perplexity
//
// TextPerplexity scores the last Config.PerplexitySamples rows of
// Config.Text, one document per row of the model's batch shape. Those rows
// are a fixed slice, not a held-out split: unless Config.Text names data
// training never read, they were trained on too.
package eval
