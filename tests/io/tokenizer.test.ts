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
