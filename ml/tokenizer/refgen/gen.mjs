// Regenerates ../testdata/reference_{mistral,llama3}.jsonl.gz with Hugging
// Face's own encoder (the npm package `tokenizers`, Rust compiled to a
// native Node addon) from the real tokenizer.json files in
// ../shared/data/tokenizers. Deterministic: the strings are sampled with a
// fixed seed, so a rerun writes identical files. See README.md.
//
//   cd ml/tokenizer/refgen && npm ci --ignore-scripts && node gen.mjs [SHARED_DATA_DIR]

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const shared = process.argv[2] || process.env.MLBUILD_SHARED_DATA || path.resolve(repo, '../shared/data');
const outDir = path.resolve(here, '../testdata');

// mulberry32: a small seeded PRNG, so sampling does not depend on Node's.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(20240611);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];

// sample returns n distinct elements of arr in a seeded random order.
function sample(arr, n) {
  const idx = arr.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, Math.min(n, idx.length)).map((i) => arr[i]);
}

// parseCSV handles quoted fields with commas, doubled quotes and newlines.
function parseCSV(text) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i++; } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

const texts = [];
const seen = new Set();
const add = (s) => { if (!seen.has(s)) { seen.add(s); texts.push(s); } };

// 1. Hard cases, written by hand.
const hard = [
  '', ' ', '  ', '   ', '\n', '\n\n', '\r\n', '\r\n\r\n', '\t', '\t\t', ' \t \n ', '\n \n', '  \n  ',
  'Hello world', ' Hello world', 'Hello world ', 'Hello  world', 'Hello   world', 'Hello\tworld', 'Hello\nworld',
  'Hello\n\nworld', 'Hello \n world', 'Hello\r\nworld', 'a\u00a0b', '\u00a0', 'x\u3000y', 'trailing space   ',
  '    leading spaces', 'tabs\t\t\tthen text', 'line\n\n\n\n\nbreaks', ' \n\n hi', '\n\n\n',
  '1', '12', '123', '1234', '12345678901234567890', '3.14159265358979323846', '1,000,000', '٣٤٥٦٧', '１２３４',
  'Ⅻ roman', '½ ¾', 'v1.2.3-rc4', '0x1F600', '2018-12-17 18:31:21',
  "don't", "DON'T WE'LL", "I'm you're they've she'll he'd it's", "I'M YOU'RE THEY'VE SHE'LL HE'D IT'S",
  "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "'Re 'rE 'Ll 'lL", "'ſ", "o'ſ", "x'ſt", "'hello", "''", "' s",
  "rock'n'roll", "O'Neil's", 'l’été', 'it’s',
  '日本語のテキスト', '中文文本测试', '한국어 텍스트', 'こんにちは、世界！', 'Ｆｕｌｌｗｉｄｔｈ',
  '👍', '👨‍👩‍👧‍👦', '👩🏽‍💻 coding', '🏳️‍🌈', '❤️', '🇺🇸🇫🇷', 'emoji😀in😀text',
  'e\u0301', 'cafe\u0301', 'n\u0303o\u0308', 'a\u0300\u0301\u0302\u0303\u0304', '\u0301', 'Zalgo: Z\u0351\u0363\u0364a\u036bl\u0307g\u0308o',
  'Ünïcödé', 'naïve façade', 'Straße', 'ǅemal', 'İstanbul', 'ΣΊΣΥΦΟΣ', 'Ελληνικά', 'русский текст', 'עברית',
  'العربية', 'हिन्दी', 'ไทย', 'Tiếng Việt', 'ქართული',
  'mixed English and 日本語 and русский and 123', 'Hello世界', 'abc123def', 'snake_case_name', 'camelCaseName',
  'https://example.com/path?q=1&r=2#frag', 'user@example.com', '<html><body>hi</body></html>', '&amp; &lt; &gt;',
  'C:\\Users\\test', '$100.00', '(parenthesized)', '[bracketed]', '{"json": true}', '...', '!!!???', '—–-',
  '\u200b', 'zero\u200bwidth', '\ufeffBOM', '\u2581', '\u2581\u2581x', 'a\u2581b', '▁Hello', '\u00ad',
  '<s>', '</s>', '<unk>', '<s>Hello</s>', 'Hello <s> world', ' <s> ', '<s><s>', '< s>', '<s', 's>',
  '<|begin_of_text|>', '<|eot_id|>', '<|end_of_text|>', 'Hi<|eot_id|>', '<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>',
  '<|reserved_special_token_0|>', '<|reserved_special_token_250|>', '<|eot_id', '<|not_a_token|>', '<<|eot_id|>>',
  'x'.repeat(100), 'ab'.repeat(500), '\u00e9'.repeat(300), ' '.repeat(50), '\n'.repeat(30), '9'.repeat(1000),
  '<0x0A>', '<0xFF>', '\u0000', '\u0001\u0002', '\u007f', '\ud800\udc00', '\u{10ffff}', '\u{1f600}\u{1f601}',
];
for (const s of hard) add(s);
// A 5,000-character word (no spaces), and one of repeated letters.
{
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  let w = '';
  while (w.length < 5000) w += letters[Math.floor(rand() * 26)];
  add(w);
  add('a'.repeat(5000));
  add('Supercalifragilisticexpialidocious'.repeat(150).slice(0, 5000));
}

// 2. Random strings over an alphabet of awkward characters: they exercise
// every branch of the pre-tokenizer regexes and of the added-token rules.
const alphabet = [
  'a', 'b', 'Z', 's', 't', 'S', 'T', 'r', 'e', 'l', 'L', 'd', 'D', 'm', 'v', 'é', 'ſ', 'ß', 'ω', '語', 'ア',
  '0', '1', '9', '٣', '½', '²', ' ', ' ', ' ', '  ', '\t', '\n', '\r', '\r\n', '\u00a0', '\u3000', '\u2009', '\u000b', '\u0085',
  "'", '’', '"', '.', ',', '!', '?', '-', '_', '(', ')', '<', '>', '|', '/', '\\', '#', '@', '$', '%', '^', '&', '*',
  '\u0301', '\u200d', '\u200b', '😀', '👍🏽', '🇺', '▁', '\ufffd', '<s>', '</s>', '<|eot_id|>', '<|begin_of_text|>', '<|', '|>',
];
for (let i = 0; i < 400; i++) {
  const n = 1 + Math.floor(rand() * 24);
  let s = '';
  for (let k = 0; k < n; k++) s += pick(alphabet);
  add(s);
}

// 3. Onion titles.
{
  const csv = fs.readFileSync(path.join(shared, 'onion/TheOnion_181217_184244.csv'), 'utf8');
  const rows = parseCSV(csv);
  const col = rows[0].indexOf('title');
  const titles = rows.slice(1).map((r) => r[col]).filter((t) => typeof t === 'string');
  for (const t of sample(titles, 1000)) add(t);
}

// 4. Gutenberg paragraphs (split at blank lines, CRLF kept), single lines,
// and raw windows of text.
{
  const dir = path.join(shared, 'gutenberg');
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const paras = text.split(/\r?\n(?:[ \t]*\r?\n)+/).filter((p) => p.trim() !== '');
    for (const p of sample(paras, 250)) add(p);
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    for (const l of sample(lines, 60)) add(l);
    add(text.slice(0, 3000)); // the head, with the BOM where there is one
    for (let k = 0; k < 5; k++) {
      const start = Math.floor(rand() * (text.length - 4000));
      add(text.slice(start, start + 1000 + Math.floor(rand() * 3000)));
    }
  }
}

// JS strings may hold lone surrogates, which are not Unicode text: drop any.
const valid = texts.filter((s) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s));

// writeGz writes JSON lines, gzipped with a fixed header (no mtime, OS
// byte "unknown") so that the file is reproducible.
function writeGz(file, lines) {
  const gz = zlib.gzipSync(Buffer.from(lines.join('\n') + '\n'), { level: 9 });
  gz.writeUInt32LE(0, 4);
  gz[9] = 255;
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, file), gz);
  console.log(`${file}: ${lines.length} strings, ${gz.length} bytes`);
}

async function reference(tok, inputs) {
  const lines = [];
  for (const text of inputs) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const idsSpecial = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    const rec = { text, ids, ids_special: idsSpecial };
    // The reference's decodings, kept only where they differ from the text.
    const decoded = await tok.decode(ids, false);
    if (decoded !== text) rec.decoded = decoded;
    const decodedSkip = await tok.decode(idsSpecial, true);
    if (decodedSkip !== decoded) rec.decoded_skip = decodedSkip;
    lines.push(JSON.stringify(rec));
  }
  return lines;
}

// 5. Strings for the added-token variant: the real files plus the tokens of
// testdata/extra_added_tokens.json, which exercise lstrip, rstrip,
// single_word and normalized matching.
const extra = JSON.parse(fs.readFileSync(path.join(outDir, 'extra_added_tokens.json'), 'utf8'));
const variantTexts = [];
{
  const parts = [...extra.map((t) => t.content), 'cat', 'cats', 'concat', 'Dog', 'dogs', 'hello', 'world', 'hello  world',
    ' ', ' ', '  ', '\n', '\t', 'a', 'b', 'x', '_', '1', '.', '\u00a0', '<', '>', '本', '日', 'é', '\u0301', '<s>', '<|eot_id|>'];
  for (let i = 0; i < 600; i++) {
    const n = 1 + Math.floor(rand() * 10);
    let s = '';
    for (let k = 0; k < n; k++) s += pick(parts);
    variantTexts.push(s);
  }
  variantTexts.push('', 'The cat sat on the <tool> mat', 'hello world, hello world!', 'Dog eat Dog', 'a  [MASK]  b', 'x<eom>   y');
}

// 6. Variants of the real files with other components swapped in (the
// layouts of newer Llama/Mistral conversions, GPT-2's byte-level
// pre-tokenizer, normalizers, Split behaviors), each checked on the first
// 800 strings. The Go test applies the same patches from
// ../testdata/variants.json.
const variants = JSON.parse(fs.readFileSync(path.join(outDir, 'variants.json'), 'utf8'));
{
  const lines = [];
  for (const v of variants) {
    const json = JSON.parse(fs.readFileSync(path.join(shared, 'tokenizers', v.base, 'tokenizer.json'), 'utf8'));
    Object.assign(json, v.patch);
    const tok = Tokenizer.fromString(JSON.stringify(json));
    for (const l of await reference(tok, valid.slice(0, 800))) lines.push(JSON.stringify({ variant: v.name, ...JSON.parse(l) }));
  }
  writeGz('reference_variants.jsonl.gz', lines);
}

for (const name of ['mistral', 'llama3']) {
  const file = path.join(shared, 'tokenizers', name, 'tokenizer.json');
  const tok = Tokenizer.fromFile(file);
  writeGz(`reference_${name}.jsonl.gz`, await reference(tok, valid));

  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  let id = Math.max(...json.added_tokens.map((t) => t.id), Object.keys(json.model.vocab).length - 1);
  for (const t of extra) json.added_tokens.push({ id: ++id, ...t });
  const variant = Tokenizer.fromString(JSON.stringify(json));
  writeGz(`reference_${name}_added.jsonl.gz`, await reference(variant, variantTexts));
}
