/** tokenizer.json through @huggingface/tokenizers (a pure-JS port of the Rust library). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { QuestError, errorMessage } from '../errors.js';
import { readJson } from './config.js';

export interface TextTokenizer {
  /** Token ids of `text`; with `special` the tokenizer's own BOS/template is applied. */
  encode(text: string, special?: boolean): number[];
  decode(ids: ArrayLike<number>): string;
  readonly file: string;
}

export function loadTokenizer(folder: string): TextTokenizer {
  const file = path.join(folder, 'tokenizer.json');
  if (!existsSync(file)) throw new QuestError(`${folder}: no tokenizer.json`);
  const json = readJson(file, 'tokenizer.json');
  const cfgFile = path.join(folder, 'tokenizer_config.json');
  const cfg = existsSync(cfgFile) ? readJson(cfgFile, 'tokenizer_config.json') : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, cfg);
    tok.encode('probe');
  } catch (err) {
    throw new QuestError(`${file}: not a tokenizer the library can load (${errorMessage(err)})`);
  }
  return {
    file,
    encode: (text, special = false) => tok.encode(text, { add_special_tokens: special }).ids,
    decode: (ids) => tok.decode(Array.from(ids), { skip_special_tokens: true }),
  };
}
