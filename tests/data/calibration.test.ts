// Calibration sampling equals Python's random module draw for draw: the same seed picks the
// same windows as the reference implementations.

import assert from "node:assert";
import { calibrationStarts, calibrationWindows } from "../../lib/data/calibration.ts";
import { PyRandom } from "../../lib/data/pyrandom.ts";
import { python, runPython } from "../python.ts";

Deno.test("MT19937 seeded like random.seed(0): known first outputs", () => {
  const r = new PyRandom(0);
  // Python: random.seed(0); [random.getrandbits(32) for _ in range(3)]
  assert.deepStrictEqual([r.uint32(), r.uint32(), r.uint32()], [3626764237, 1654615998, 3255389356]);
});

Deno.test({
  name: "randint streams and calibration windows equal Python's for several seeds and ranges",
  ignore: (await python()) === null,
  fn: async () => {
    for (const [seed, tokens, seqlen] of [[0, 407994, 512], [42, 100000, 2048], [2 ** 40 + 3, 5000, 7]]) {
      const out = await runPython(
        `
import random, sys
seed, tokens, seqlen = map(int, sys.argv[1:4])
random.seed(seed)
print(",".join(str(random.randint(0, tokens - seqlen - 1)) for _ in range(300)))
`,
        [String(seed), String(tokens), String(seqlen)],
      );
      assert.deepStrictEqual(
        calibrationStarts(tokens, { nsamples: 300, seqlen, seed }),
        out.trim().split(",").map(Number),
      );
    }
  },
});

Deno.test("windows are seqlen tokens from the drawn starts; bad settings are refused", () => {
  const ids = Array.from({ length: 50 }, (_, i) => 100 + i);
  const ws = calibrationWindows(ids, { nsamples: 4, seqlen: 8, seed: 0 });
  const starts = calibrationStarts(50, { nsamples: 4, seqlen: 8, seed: 0 });
  ws.forEach((w, i) => assert.deepStrictEqual(w, ids.slice(starts[i], starts[i] + 8)));
  assert.throws(
    () => calibrationStarts(8, { nsamples: 1, seqlen: 8, seed: 0 }),
    /8 tokens, too few for windows of 8/,
  );
  assert.throws(() => calibrationStarts(80, { nsamples: 0, seqlen: 8, seed: 0 }), /nsamples must be ≥ 1/);
});
