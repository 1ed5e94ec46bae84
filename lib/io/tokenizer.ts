// tokenizer.json → token ids, through the maintained @huggingface/tokenizers (a JavaScript port
// of the Rust library's pipeline: normalizer, pre-tokenizer, BPE with byte fallback, post-processor).
// Covers byte-level BPE (GPT-2, OPT, Llama-3, Qwen) and SentencePiece-style BPE (Llama-2, Mistral).
// Ids equal Python `tokenizers` on the fixture texts (tests/io/tokenizer.test.ts).

import { Tokenizer } from "@huggingface/tokenizers";

export interface TextTokenizer {
  /** Ids of `text`, with the post-processor's special tokens (e.g. one BOS at the start). */
  encode(text: string): number[];
  decode(ids: number[]): string;
  vocabSize: number;
  file: string;
}

export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const file = `${dir}/tokenizer.json`;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new Error(`${file}: cannot read tokenizer (${(e as Error).message})`);
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`));
  } catch {
    // tokenizer_config.json is optional: tokenizer.json alone defines the pipeline.
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new Error(`${file}: unsupported tokenizer (${(e as Error).message})`);
  }
  const model = json.model as { vocab?: Record<string, number> | unknown[] } | undefined;
  const added = (json.added_tokens as { id: number }[] | undefined) ?? [];
  const vocabSize = Math.max(
    model?.vocab ? (Array.isArray(model.vocab) ? model.vocab.length : Object.keys(model.vocab).length) : 0,
    ...added.map((t) => t.id + 1),
  );
  return {
    encode: (text) => tok.encode(text).ids,
    decode: (ids) => tok.decode(ids),
    vocabSize,
    file,
  };
}
