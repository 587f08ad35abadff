/** tokenizer.json through @huggingface/tokenizers (a pure-JS port of the Rust library). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { QuestError, errorMessage } from '../errors.js';
import { readJson } from './config.js';

export interface TextTokenizer {
  /** Token ids of `text`; with `special` the tokenizer's own BOS/template is applied. */
  encode(text: string, special?: boolean): number[];
  decode(ids: ArrayLike<number>): string;
  readonly file: string;
  /**
   * The model's chat template (tokenizer_config.json) around one user message, as the text
   * before and after it, with the generation prompt; null for a model without one.
   */
  readonly chat: { before: string; after: string } | null;
}

// A marker no real prompt holds, to find where the template puts the message.
const MARK = '\u0000quest-message\u0000';

function chatParts(template: unknown, cfg: Record<string, unknown>, file: string): { before: string; after: string } | null {
  if (typeof template !== 'string') return null;
  const token = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'object' && v !== null ? String((v as { content?: unknown }).content ?? '') : '');
  try {
    const text = new Template(template).render({
      messages: [{ role: 'user', content: MARK }],
      add_generation_prompt: true,
      bos_token: token(cfg.bos_token),
      eos_token: token(cfg.eos_token),
    });
    const at = text.indexOf(MARK);
    if (at < 0) throw new Error('the message does not appear in the rendered template');
    return { before: text.slice(0, at), after: text.slice(at + MARK.length) };
  } catch (err) {
    throw new QuestError(`${file}: chat_template cannot be rendered (${errorMessage(err)})`);
  }
}

export function loadTokenizer(folder: string): TextTokenizer {
  const file = path.join(folder, 'tokenizer.json');
  if (!existsSync(file)) throw new QuestError(`${folder}: no tokenizer.json`);
  const json = readJson(file, 'tokenizer.json');
  // Unigram lists its vocabulary, the other models map it; either way, none is no tokenizer.
  const vocab = (json.model as { vocab?: unknown } | null | undefined)?.vocab;
  if (typeof vocab === 'object' && vocab !== null && Object.keys(vocab).length === 0) throw new QuestError(`${file}: model.vocab is empty`);
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
    chat: chatParts(cfg.chat_template, cfg, cfgFile),
    encode: (text, special = false) => tok.encode(text, { add_special_tokens: special }).ids,
    decode: (ids) => tok.decode(Array.from(ids), { skip_special_tokens: true }),
  };
}
