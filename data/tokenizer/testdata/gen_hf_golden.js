// gen_hf_golden.js writes the Hugging Face golden fixtures used by
// hf_test.go: hf_tokenizer.json (a byte-level BPE trained by the Rust
// `tokenizers` library on hf_corpus.txt) and hf_golden.jsonl (the ids that
// library gives for a diverse set of strings).
//
// Regenerate (outside the repository, so node_modules never lands in it):
//
//	mkdir -p /tmp/hftok && cd /tmp/hftok && npm init -y && npm install tokenizers@0.23.2
//	node /path/to/data/tokenizer/testdata/gen_hf_golden.js /path/to/data/tokenizer/testdata
//
// The Node bindings expose no BpeTrainer options, so training uses the
// default trainer (vocab_size 30000, no special tokens, alphabet = the bytes
// seen). Afterwards the script appends the byte-level characters the corpus
// lacks (so every byte is encodable), sets the ByteLevel decoder (not exported
// by the bindings) and adds the special tokens, which get ids after the model
// vocabulary. Each golden row holds:
//
//	ids        HF encode with specials parsed (its default); add_prefix_space=false
//	ids_plain  HF encode of the same file without added_tokens: specials are plain text
//	ids_prefix HF encode with specials parsed and add_prefix_space=true
//	decoded    HF decode(ids, skip_special_tokens=false)
//
// hf_random.jsonl has rows of the same form for 600 seeded random texts:
// fragments that stress the split (every whitespace kind, contractions,
// digits, accents, combining marks, emoji, CJK, special-token text),
// slices of hf_corpus.txt, and random code points from all of Unicode.
//
// go_trained_golden.jsonl holds {text, ids, decoded} from HF for
// go_trained.json, a tokenizer.json written by mmablate's own Save (Go
// training on hf_corpus.txt), for the same texts: HF reads what Go writes.
// Regenerate go_trained.json first (go test ./data/tokenizer -run
// TestGoTrainedInHF -update) when training or Marshal change on purpose.
//
// hf_tiny.jsonl covers what a trained file does not: a hand-made vocabulary
// missing most bytes (unk_token, fuse_unk, or bytes dropped without one),
// ignore_merges, and added tokens with lstrip/rstrip, special or not. Each
// row is {"config": name, "tokenizer": tokenizer.json object, "text", "ids"}.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tokenizer, BPE, byteLevelPreTokenizer, byteLevelProcessing, byteLevelAlphabet } = require(
  require.resolve('tokenizers', { paths: [process.cwd()] }),
);

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node gen_hf_golden.js TESTDATA_DIR');
  process.exit(2);
}
const specials = ['<|image|>', '<|endofchunk|>', '<|bos|>', '<|eos|>', '<|pad|>'];

const texts = [
  '', 'a', ' ', '  ', '\t', '\n', '\n\n', '\r\n', '   leading', 'trailing   ', 'a  b', 'a \t b',
  'tab\tseparated\tvalues', 'line1\nline2\r\nline3', '  \n  x', ' !!', 'x  !', '\n\nword', ' \t\n x',
  "I'm", "you're", "they've", "we'll", "he'd", "it's", "don't", "DON'T", "I'M", "''s", "'sand",
  "rock'n'roll", 'it\u2019s', "'", "''", " 's", "x's'", 
  '12345', '3.14159', 'year 2026', ' 42', 'a1b2c3', '\u0661\u0662\u0663', '\u00bd \u00b2', '\u216b',
  'caf\u00e9 na\u00efve r\u00e9sum\u00e9', '\u00dcn\u00efc\u00f6d\u00e9', 'cafe\u0301', 'a\u0308\u0304',
  ' \u0301', '\u0301\u0301x', 'Stra\u00dfe gr\u00f6\u00dfer',
  '\u{1F600}', '\u{1F44D}\u{1F3FD}', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}',
  'I \u2764\uFE0F Go', '\u{1F1EB}\u{1F1F7}', ' \u{1F600} \u{1F600}',
  '\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8', '\u4e2d\u6587\uff0c\u6807\u70b9\u3002',
  '\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8', 'Go\u8bed\u8a00 2026\u5e74',
  'a\u00a0b', 'a\u3000b', 'a\u2028b', 'a\u0085b', 'a\u000bb', 'a\u000cb', 'x\u001cy', 'a\u200bb',
  '\u2003em space', 'a \u00a0 b', '\u00a0\u00a0x',
  '<|image|>', 'A photo: <|image|> of a cat.<|endofchunk|>', '<|bos|>Hello<|eos|>', '<|pad|><|pad|>',
  '<|image|', '<<|image|>>', ' <|eos|> ', 'x<|endofchunk|>\n\n<|image|>caption',
  'func main() { fmt.Println("hello, world") }', 'https://example.com/a?b=c&d=e#f',
  '...!!!???', '--->', 'x=1;y=2', '\u0000\u0001\u007f', 'UPPER lower MiXeD',
  'The Light of the Sun consists of Rays differently Refrangible.',
  'Mañana señor, ¿qué tal? ¡Olé!', '    indented line with four spaces', '\t\ttwo tabs',
  'Numbers 2026, 3.14159, \u0661\u0662\u0663, \u00bd and \u216b; tabs\tand\tmore.',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis',
];

async function encodeAll(tok, opts) {
  const out = [];
  for (const t of texts) out.push((await tok.encode(t, null, opts)).getIds());
  return out;
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hfgold-'));
  const trained = new Tokenizer(BPE.empty());
  trained.setPreTokenizer(byteLevelPreTokenizer(false, true));
  trained.setPostProcessor(byteLevelProcessing(true));
  trained.train([path.join(outDir, 'hf_corpus.txt')]);
  trained.save(path.join(tmp, 'trained.json'));

  const j = JSON.parse(fs.readFileSync(path.join(tmp, 'trained.json'), 'utf8'));
  let next = Object.keys(j.model.vocab).length;
  for (const c of byteLevelAlphabet().sort()) {
    if (!(c in j.model.vocab)) j.model.vocab[c] = next++;
  }
  j.decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  const tok = Tokenizer.fromString(JSON.stringify(j));
  tok.addSpecialTokens(specials);
  const file = path.join(outDir, 'hf_tokenizer.json');
  tok.save(file, true);

  const full = JSON.parse(fs.readFileSync(file, 'utf8'));
  const plain = Tokenizer.fromString(JSON.stringify({ ...full, added_tokens: [] }));
  full.pre_tokenizer.add_prefix_space = true;
  const prefix = Tokenizer.fromString(JSON.stringify(full));

  const opts = { addSpecialTokens: true };
  const ids = await encodeAll(tok, opts);
  const idsPlain = await encodeAll(plain, opts);
  const idsPrefix = await encodeAll(prefix, opts);
  const lines = [];
  for (let i = 0; i < texts.length; i++) {
    const decoded = await tok.decode(ids[i], false);
    lines.push(JSON.stringify({ text: texts[i], ids: ids[i], ids_plain: idsPlain[i], ids_prefix: idsPrefix[i], decoded }));
  }
  fs.writeFileSync(path.join(outDir, 'hf_golden.jsonl'), lines.join('\n') + '\n');
  fs.rmSync(tmp, { recursive: true });
  const nRandom = await writeRandom(tok, plain, prefix);
  await writeGoTrained();
  await writeTiny();
  console.log(`wrote ${file} (${Object.keys(full.model.vocab).length} model tokens, ${full.model.merges.length} merges), ${texts.length} golden rows and ${nRandom} random rows`);
}

// mulberry32: a tiny seeded generator, so hf_random.jsonl is the same on
// every run.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// randomTexts mixes fragments chosen to stress the GPT-2 split (every
// whitespace kind, contractions, digits of several scripts, accents,
// combining marks, emoji sequences, CJK, special-token text and pieces of
// it), slices of the training corpus (long merges), and random code points
// from all of Unicode (letters and numbers of every script: the split's
// character classes must agree with the library's).
function randomTexts(n) {
  const rnd = mulberry32(20261201);
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const frags = ['a', 'b', 'z', 'The', 'light', 'Newton', 'x', 'OF', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r',
    '\u000b', '\u000c', '\u0085', '\u00a0', '\u1680', '\u2000', '\u2028', '\u2029', '\u202f', '\u3000', '\u200b', '\u001c',
    "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", '\u2019s', '0', '7', '42', '3.14', '1730', '\u0661\u0662',
    '\u0967', '\u00bd', '\u00b2', '\u216b', '\u00e9', 'e\u0301', '\u0301', '\u0308\u0304', '\u00df', '\u00f1', '\u03a9', '\u0436',
    '\u05e9\u05dc\u05d5\u05dd', '\u0645\u0631\u062d\u0628\u0627', '\u0928\u092e\u0938\u094d\u0924\u0947', '\u65e5\u672c',
    '\u4e2d\u6587', '\u3002', '\uff0c', '\ud55c\uad6d\uc5b4', '\u30c6\u30ad\u30b9\u30c8', '\u{1F600}', '\u{1F44D}\u{1F3FD}',
    '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}', '\u2764\uFE0F', '\u{1F1EB}\u{1F1F7}', '\u{1D400}', '\u{20000}',
    '!', '?', '.', ',', '-', '_', '(', ')', '"', '#', '\u00bf', '\u2014', '<|image|>', '<|eos|>', '<|endofchunk|>', '<|bos|>',
    '<|pad|>', '<|', '|>', '<', '|', '\u0000', '\u007f', '\ufffd'];
  const corpus = fs.readFileSync(path.join(outDir, 'hf_corpus.txt'), 'utf8');
  const randomRune = () => {
    for (;;) {
      const c = rnd() < 0.7 ? Math.floor(rnd() * 0x3000) : Math.floor(rnd() * 0x110000);
      if (c < 0xd800 || c > 0xdfff) return String.fromCodePoint(c); // no lone surrogates
    }
  };
  const out = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = Math.floor(rnd() * 40);
    const kind = i % 3;
    if (kind === 1) {
      const at = Math.floor(rnd() * (corpus.length - 200));
      s = corpus.slice(at, at + 1 + Math.floor(rnd() * 200));
    }
    for (let j = 0; j < len; j++) {
      if (kind === 2 && rnd() < 0.5) s += randomRune();
      else if (kind !== 1 || rnd() < 0.1) s += pick(frags);
    }
    out.push(s);
  }
  return out;
}

// writeRandom writes hf_random.jsonl: rows like hf_golden.jsonl's, for
// seeded random texts.
async function writeRandom(tok, plain, prefix) {
  const texts = randomTexts(600);
  const opts = { addSpecialTokens: true };
  const lines = [];
  for (const text of texts) {
    const ids = (await tok.encode(text, null, opts)).getIds();
    const row = {
      text,
      ids,
      ids_plain: (await plain.encode(text, null, opts)).getIds(),
      ids_prefix: (await prefix.encode(text, null, opts)).getIds(),
      decoded: await tok.decode(ids, false),
    };
    lines.push(JSON.stringify(row));
  }
  fs.writeFileSync(path.join(outDir, 'hf_random.jsonl'), lines.join('\n') + '\n');
  return texts.length;
}

// writeGoTrained writes go_trained_golden.jsonl: the ids HF gives, with
// specials parsed, for go_trained.json (a tokenizer.json that mmablate
// trained and saved; hf_test.go's -update writes it), on the hand-picked and
// the random texts.
async function writeGoTrained() {
  const tok = Tokenizer.fromFile(path.join(outDir, 'go_trained.json'));
  const lines = [];
  for (const text of texts.concat(randomTexts(600))) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    lines.push(JSON.stringify({ text, ids, decoded: await tok.decode(ids, false) }));
  }
  fs.writeFileSync(path.join(outDir, 'go_trained_golden.jsonl'), lines.join('\n') + '\n');
}

async function writeTiny() {
  const vocab = { '<unk>': 0, a: 1, b: 2, c: 3, '\u0120': 4, ab: 5, bc: 6, abc: 7, '\u0120a': 8, abcabc: 9 };
  const base = {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: ['a b', 'b c', 'ab c', '\u0120 a'],
    },
  };
  const added = (id, content, special, lstrip, rstrip) =>
    ({ id, content, single_word: false, lstrip, rstrip, normalized: !special, special });
  const configs = {
    drop: base,
    unk: { ...base, model: { ...base.model, unk_token: '<unk>' } },
    fuse_unk: { ...base, model: { ...base.model, unk_token: '<unk>', fuse_unk: true } },
    ignore_merges: { ...base, model: { ...base.model, ignore_merges: true } },
    no_regex: { ...base, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false } },
    default_regex: { ...base, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true } },
    strip: {
      ...base,
      model: { ...base.model, unk_token: '<unk>' },
      added_tokens: [added(10, '[L]', true, true, false), added(11, '[R]', false, false, true), added(12, '[LR]', true, true, true), added(13, 'ab c', false, false, false)],
    },
  };
  const tinyTexts = ['abc', 'abcabc', 'xyz', 'a xyz b', 'abcabc abcabc', 'zzz', 'cab', ' a', 'a  [L] b', 'a [R]  b',
    ' \t[LR]\n c', '[L][R][LR]', 'xab cx', 'ab cab c'];
  const rows = [];
  for (const [name, cfg] of Object.entries(configs)) {
    const tok = Tokenizer.fromString(JSON.stringify(cfg));
    for (const text of tinyTexts) {
      const ids = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
      rows.push(JSON.stringify({ config: name, tokenizer: cfg, text, ids }));
    }
  }
  fs.writeFileSync(path.join(outDir, 'hf_tiny.jsonl'), rows.join('\n') + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
