// Python's notion of whitespace, for the places that must cut text exactly as a reference's
// Python does (lm-eval's context rstrip, the Pile loaders' strip): str.isspace() counts
// U+001C–U+001F and U+0085 as whitespace but not U+FEFF (which JS's \s and trim() include).

// deno-lint-ignore no-control-regex -- Python's str.isspace() counts U+001C–U+001F as whitespace
const WS = /[\s\x1c-\x1f\x85]/u;

/** Whether the character is whitespace to Python's str.isspace(). */
export const isPySpace = (c: string) => WS.test(c) && c !== "\ufeff";

/** How many characters Python's str.rstrip() removes from the end of `s`. */
export function pyTrailingSpaces(s: string): number {
  let n = 0;
  while (n < s.length && isPySpace(s[s.length - 1 - n])) n++;
  return n;
}

/** Python's str.strip(). */
export function pyStrip(s: string): string {
  let a = 0, b = s.length;
  while (a < b && isPySpace(s[a])) a++;
  while (b > a && isPySpace(s[b - 1])) b--;
  return s.slice(a, b);
}
