// CPU reference of shaders/sample.wgsl (float64): the same argmax rule, nucleus threshold and
// PCG random stream, so tests can check the GPU's choices.

export function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export function uniformDraw(seed: number, step: number): number {
  return (pcg((seed ^ pcg((step + 0x9e3779b9) >>> 0)) >>> 0) >>> 8) / 16777216;
}

export function sampleRef(
  logits: ArrayLike<number>,
  temperature: number,
  topP: number,
  seed: number,
  step: number,
): number {
  let mx = -Infinity, arg = 0;
  for (let j = 0; j < logits.length; j++) if (logits[j] > mx) (mx = logits[j]), (arg = j);
  if (temperature === 0) return arg;
  const q = Array.from(logits, (l) => Math.exp((l - mx) / temperature));
  const z = q.reduce((a, b) => a + b, 0);
  for (let j = 0; j < q.length; j++) q[j] /= z;
  let lo = 0, hi = 1;
  if (topP < 1) {
    for (let i = 0; i < 32; i++) {
      const tau = 0.5 * (lo + hi);
      const m = q.reduce((s, x) => s + (x >= tau ? x : 0), 0);
      if (m >= topP) lo = tau;
      else hi = tau;
    }
  }
  const kept = q.reduce((s, x) => s + (x >= lo ? x : 0), 0);
  let left = uniformDraw(seed, step) * kept, chosen = arg;
  for (let j = 0; j < q.length; j++) {
    if (q[j] >= lo) {
      chosen = j;
      if (left < q[j]) break;
      left -= q[j];
    }
  }
  return chosen;
}
