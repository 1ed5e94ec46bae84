// Token ids equal Python `tokenizers` exactly on the fixture texts: byte-level BPE (tiny-llama,
// GPT-2 style) and SentencePiece-style BPE with byte fallback (stories260K, Llama-2 style).

import assert from "node:assert";
import { loadTokenizer } from "../../lib/io/tokenizer.ts";
import { FIXTURES, python, runPython } from "../python.ts";

const hasPython = (await python()) !== null;

const CASES: [string, string][] = [
  ["tiny-llama", "text/wiki.test.raw"],
  ["tiny-llama", "text/books.valid.txt"],
  ["tiny-llama", "text/calibration.txt"],
  ["stories260K", "text/tinystories_valid_head.txt"],
  ["stories260K", "text/wikitext2_test_joined.txt"],
];

for (const [model, text] of CASES) {
  Deno.test({
    name: `${model} ids on ${text} equal Python tokenizers`,
    ignore: !hasPython,
    fn: async () => {
      const tok = await loadTokenizer(`${FIXTURES}/${model}`);
      const ours = tok.encode(await Deno.readTextFile(`${FIXTURES}/${text}`));
      const out = await runPython(
        `
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
ids = t.encode(open(sys.argv[2], encoding="utf-8").read()).ids
sys.stdout.write(",".join(map(str, ids)))
`,
        [`${FIXTURES}/${model}/tokenizer.json`, `${FIXTURES}/${text}`],
      );
      const want = out.split(",").map(Number);
      assert.strictEqual(ours.length, want.length, "token count");
      const first = ours.findIndex((id, i) => id !== want[i]);
      assert.strictEqual(first, -1, `first differing id at ${first}`);
    },
  });
}

Deno.test("published token counts: one BOS at the start of the stream", async () => {
  // SOURCES.md: wiki.test.raw gives 407,994 tiny-llama tokens with BOS; books.valid.txt 95,956.
  const tok = await loadTokenizer(`${FIXTURES}/tiny-llama`);
  const ids = tok.encode(await Deno.readTextFile(`${FIXTURES}/text/wiki.test.raw`));
  assert.strictEqual(ids.length, 407_994);
  assert.strictEqual(ids[0], 0);
  assert.strictEqual(ids.indexOf(0, 1), -1, "BOS appears only once");
  assert.strictEqual(tok.encode(await Deno.readTextFile(`${FIXTURES}/text/books.valid.txt`)).length, 95_956);
});

Deno.test("a missing tokenizer.json is named", async () => {
  await assert.rejects(loadTokenizer("/nonexistent"), /\/nonexistent\/tokenizer.json: cannot read tokenizer/);
});

Deno.test("a GPT-2-style repo (vocab.json + merges.txt, OPT's layout) tokenizes as its tokenizer.json", async () => {
  // tiny-llama's tokenizer is a byte-level BPE with a BOS template: written out as vocab.json and
  // merges.txt with add_bos_token (as OPT's tokenizer_config.json has it), it must give the same ids.
  const src = JSON.parse(await Deno.readTextFile(`${FIXTURES}/tiny-llama/tokenizer.json`));
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/vocab.json`, JSON.stringify(src.model.vocab));
  const merges = (src.model.merges as (string | string[])[]).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  await Deno.writeTextFile(`${dir}/merges.txt`, ["#version: 0.2", ...merges].join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify({ add_bos_token: true, bos_token: "<|bos|>", eos_token: "<|eos|>", unk_token: "<|eos|>" }),
  );
  const [gpt2, ref] = [await loadTokenizer(dir), await loadTokenizer(`${FIXTURES}/tiny-llama`)];
  const text = (await Deno.readTextFile(`${FIXTURES}/text/wiki.test.raw`)).slice(0, 20000) +
    " <|eos|> café ☃";
  assert.deepStrictEqual(gpt2.encode(text), ref.encode(text));
  assert.strictEqual(gpt2.encode("x")[0], 0, "BOS first");
  assert.strictEqual(gpt2.decode(gpt2.encode("Hello world").slice(1)), "Hello world");
  await Deno.remove(`${dir}/merges.txt`);
  await assert.rejects(loadTokenizer(dir), /tokenizer.json: cannot read tokenizer/);
});
