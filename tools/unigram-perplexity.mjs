// A yardstick for the shipped model's perplexity: a unigram model of the training text's
// tokens (add-one counts) scored on the held-out text, both tokenized line by line.
//   node tools/unigram-perplexity.mjs [model folder] [training text] [held-out text]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const [dir = 'models/quest-tiny', trainFile = '.data/kjv-train.txt', heldFile = 'datasets/text/kjv-heldout.txt'] = process.argv.slice(2);
const json = (f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
const tok = new Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
const encode = (file) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => tok.encode(line, { add_special_tokens: false }).ids);
const counts = new Float64Array(json('config.json').vocab_size).fill(1);
for (const id of encode(trainFile)) counts[id] += 1;
const total = counts.reduce((a, b) => a + b, 0);
const held = encode(heldFile);
const nll = held.reduce((sum, id) => sum - Math.log(counts[id] / total), 0);
console.log(`unigram perplexity of ${heldFile}: ${Math.exp(nll / held.length).toFixed(1)} over ${held.length} tokens`);
