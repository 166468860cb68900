// Measures the throughput of Hugging Face's Rust encoder (npm `tokenizers`)
// and of tokenizers.js (npm `@huggingface/tokenizers`, the JavaScript
// implementation transformers.js uses) on the Gutenberg books, the way BenchmarkEncodeBooks and
// BenchmarkEncodeLines in ../bench_test.go measure mlbuild's: every book
// encoded as one string (books), or one call per line (lines), without
// special tokens, one encode at a time. Prints MB/s (10^6 bytes of UTF-8
// input per second) of the best of several passes after a warm-up pass,
// by the wall clock and by the process's CPU time (cpu-MB/s: steadier on a
// busy machine; includes all of the process's threads).
//
//   node bench.mjs [SHARED_DATA_DIR] [PASSES]

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');
const tokjs = await import('@huggingface/tokenizers');

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = process.argv[2] || process.env.MLBUILD_SHARED_DATA || path.resolve(here, '../../../../shared/data');
const passes = Number(process.argv[3] || 5);

const dir = path.join(shared, 'gutenberg');
const books = fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()
  .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
const lines = books.flatMap((b) => b.split(/(?<=\n)/));
const bytes = books.reduce((n, b) => n + Buffer.byteLength(b), 0);

async function measure(label, encode, inputs) {
  let best = Infinity, bestCPU = Infinity, first = 0;
  for (let p = 0; p <= passes; p++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (const s of inputs) await encode(s);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    const dc = (c.user + c.system) / 1e6;
    if (p === 0) first = dt; // the first pass starts with cold caches
    else { best = Math.min(best, dt); bestCPU = Math.min(bestCPU, dc); }
  }
  const mbs = (t) => (bytes / 1e6 / t).toFixed(2);
  console.log(`${label}: ${mbs(best)} MB/s, ${mbs(bestCPU)} cpu-MB/s (best of ${passes} warm passes); first pass ${mbs(first)} MB/s`);
}

for (const name of ['mistral', 'llama3']) {
  const dirTok = path.join(shared, 'tokenizers', name);
  const rust = Tokenizer.fromFile(path.join(dirTok, 'tokenizer.json'));
  const js = new tokjs.Tokenizer(
    JSON.parse(fs.readFileSync(path.join(dirTok, 'tokenizer.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(dirTok, 'tokenizer_config.json'), 'utf8')));
  for (const [mode, inputs] of [['books', books], ['lines', lines]]) {
    await measure(`npm tokenizers (Rust) ${name} ${mode}`, (s) => rust.encode(s, null, { addSpecialTokens: false }), inputs);
    await measure(`tokenizers.js ${name} ${mode}`, (s) => js.encode(s, { add_special_tokens: false }), inputs);
  }
}
