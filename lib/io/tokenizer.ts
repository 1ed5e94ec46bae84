// tokenizer.json → token ids, through the maintained @huggingface/tokenizers (a JavaScript port
// of the Rust library's pipeline: normalizer, pre-tokenizer, BPE with byte fallback, post-processor).
// Covers byte-level BPE (GPT-2, OPT, Llama-3, Qwen) and SentencePiece-style BPE (Llama-2, Mistral).
// Ids equal Python `tokenizers` on the fixture texts (tests/io/tokenizer.test.ts).

import { Tokenizer } from "@huggingface/tokenizers";

export interface TextTokenizer {
  /** Ids of `text`, with the post-processor's special tokens (e.g. one BOS at the start). */
  encode(text: string): number[];
  /** Ids of `text` without special tokens (transformers' add_special_tokens=False). */
  encodePlain(text: string): number[];
  /** tokenizer_config.json's bos_token / eos_token as ids (null where absent or unknown). */
  bosId: number | null;
  eosId: number | null;
  decode(ids: number[]): string;
  vocabSize: number;
  file: string;
}

export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  let file = `${dir}/tokenizer.json`;
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`));
  } catch {
    // tokenizer_config.json is optional: tokenizer.json alone defines the pipeline.
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    // GPT-2-style repos (OPT's among them) ship vocab.json + merges.txt instead.
    const gpt2 = await gpt2Tokenizer(dir, config);
    if (!gpt2) throw new Error(`${file}: cannot read tokenizer (${(e as Error).message})`);
    (json = gpt2), (file = `${dir}/vocab.json + merges.txt`);
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
  const special = (k: string): number | null => {
    const v = config[k] as string | { content?: string } | undefined;
    const text = typeof v === "string" ? v : v?.content;
    return text === undefined ? null : tok.token_to_id(text) ?? null;
  };
  return {
    encode: (text) => tok.encode(text).ids,
    encodePlain: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    bosId: special("bos_token"),
    eosId: special("eos_token"),
    decode: (ids) => tok.decode(ids),
    vocabSize,
    file,
  };
}

/**
 * tokenizer.json of a GPT-2 byte-level BPE from vocab.json + merges.txt, as transformers' GPT2
 * converter builds it: ByteLevel pre-tokenizer (add_prefix_space from the config, default off),
 * ByteLevel decoder, and a BOS template when add_bos_token is set (OPT: "</s>" first). The
 * config's special tokens become added tokens, so they are never split. Null if the files are absent.
 */
async function gpt2Tokenizer(
  dir: string,
  config: Record<string, unknown>,
): Promise<Record<string, unknown> | null> {
  let vocab: Record<string, number>, mergesText: string;
  try {
    vocab = JSON.parse(await Deno.readTextFile(`${dir}/vocab.json`));
    mergesText = await Deno.readTextFile(`${dir}/merges.txt`);
  } catch {
    return null;
  }
  const merges = mergesText.split("\n").filter((l, i) => l.trim() && !(i === 0 && l.startsWith("#version")));
  const name = (t: unknown) => (typeof t === "string" ? t : (t as { content?: string } | null)?.content);
  const specials = [
    ...new Set(["bos_token", "eos_token", "unk_token", "pad_token"].map((k) => name(config[k]))),
  ]
    .filter((t): t is string => !!t && t in vocab);
  const bos = name(config.bos_token);
  const ws = { single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
  return {
    version: "1.0",
    added_tokens: specials.map((t) => ({ id: vocab[t], content: t, ...ws })),
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: config.add_prefix_space === true,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: config.add_bos_token === true && bos && bos in vocab
      ? {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [
          { SpecialToken: { id: bos, type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
      }
      : { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
