// A restricted unpickler: Python's pickle opcodes (protocols 2–5, the binary ones torch.save writes)
// evaluated as data. Python's unpickler imports any `module.name` a GLOBAL names and calls it on
// REDUCE — that is how a checkpoint runs `os.system`. Here a global is looked up in the caller's
// whitelist the moment the opcode is read: an unlisted one stops the load with its name before
// anything is built, and a listed one is either an inert marker (a storage type, a dtype) or a
// small TypeScript function the caller wrote (an OrderedDict, a tensor reference). Opcodes that
// only exist to build arbitrary objects (INST, OBJ, NEWOBJ_EX, EXT*) are refused outright.

export class PickleError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = "PickleError";
  }
}

/** A whitelisted global used as a value (torch.HalfStorage, torch.float16). */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** dict and OrderedDict; `state` is what a BUILD set (a state_dict's `_metadata`). */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  state: unknown;
}

/** A whitelisted callable: REDUCE/NEWOBJ call it with the argument tuple's items. */
export type PyCallable = (args: unknown[]) => unknown;

export interface UnpickleOptions {
  /** Named in every error. */
  file: string;
  /** "module.name" → a callable implementation, or "value" for an inert marker. */
  globals: Record<string, PyCallable | "value">;
  /** BINPERSID's handler (torch: a storage reference). Without one, BINPERSID is refused. */
  persistentLoad?: (pid: unknown) => unknown;
}

const MARK = Symbol("mark");

export function unpickle(data: Uint8Array, o: UnpickleOptions): unknown {
  const fail = (what: string): never => {
    throw new PickleError(o.file, what);
  };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const latin1 = new TextDecoder("latin1"), utf8 = new TextDecoder("utf-8", { fatal: true });
  let p = 0;
  const need = (n: number) => {
    if (p + n > data.length) fail(`pickle truncated at byte ${p} (needs ${n} more)`);
    const at = p;
    p += n;
    return at;
  };
  const bytes = (n: number) => data.subarray(need(n), p);
  const str = (n: number) => {
    try {
      return utf8.decode(bytes(n));
    } catch {
      return fail(`pickle string at byte ${p - n} is not UTF-8`);
    }
  };
  const line = () => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) fail(`pickle truncated in a GLOBAL at byte ${p}`);
    const s = latin1.decode(data.subarray(p, end));
    p = end + 1;
    return s;
  };
  const u64 = () => {
    const n = v.getBigUint64(need(8), true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) fail(`pickle length ${n} is too large`);
    return Number(n);
  };
  const pop = () => (stack.length ? stack.pop() : fail(`pickle stack underflow at byte ${p - 1}`));
  const popMark = (): unknown[] => {
    const m = stack.lastIndexOf(MARK);
    if (m < 0) fail(`pickle: no MARK before byte ${p - 1}`);
    const items = stack.splice(m);
    items.shift();
    return items;
  };
  const top = () => (stack.length ? stack[stack.length - 1] : fail("pickle stack empty"));
  const global = (module: string, name: string) => {
    const key = `${module}.${name}`;
    const g = Object.hasOwn(o.globals, key) ? o.globals[key] : undefined;
    if (g === undefined) {
      fail(
        `refusing global ${key}: a checkpoint is data, and ${key} is not a state-dict type (nothing was run)`,
      );
    }
    return g === "value" ? new PyGlobal(module, name) : g;
  };
  const call = (f: unknown, args: unknown): unknown => {
    if (typeof f !== "function") {
      fail(`pickle calls ${f instanceof PyGlobal ? f.qualname : typeof f}, which is not callable here`);
    }
    if (!(args instanceof PyTuple)) fail("pickle REDUCE arguments are not a tuple");
    return (f as PyCallable)((args as PyTuple).items);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof PyDict)) fail("pickle SETITEMS on something that is not a dict");
    for (let i = 0; i + 1 < kv.length; i += 2) (d as PyDict).map.set(kv[i], kv[i + 1]);
  };
  const appendAll = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l)) fail("pickle APPENDS on something that is not a list");
    (l as unknown[]).push(...items);
  };
  const int = (n: number) => {
    // LONG1/LONG4: little-endian two's complement.
    const b = bytes(n);
    let x = 0n;
    for (let i = n - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
    if (n && b[n - 1] & 0x80) x -= 1n << BigInt(8 * n);
    if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
      fail(`pickle integer ${x} is outside the safe range`);
    }
    return Number(x);
  };

  for (;;) {
    const op = data[need(1)];
    switch (op) {
      case 0x80: // PROTO
        if (data[need(1)] > 5) fail(`pickle protocol ${data[p - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length prefix only
        need(8);
        break;
      case 0x7d: // } EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // ] EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // ) EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x28: // ( MARK
        stack.push(MARK);
        break;
      case 0x58: // X BINUNICODE
        stack.push(str(v.getUint32(need(4), true)));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(data[need(1)]));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(u64()));
        break;
      case 0x54: // T BINSTRING (Python 2 str)
        stack.push(latin1.decode(bytes(v.getUint32(need(4), true))));
        break;
      case 0x55: // U SHORT_BINSTRING
        stack.push(latin1.decode(bytes(data[need(1)])));
        break;
      case 0x42: // B BINBYTES
        stack.push(bytes(v.getUint32(need(4), true)).slice());
        break;
      case 0x43: // C SHORT_BINBYTES
        stack.push(bytes(data[need(1)]).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()).slice());
        break;
      case 0x63: { // c GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          fail("pickle STACK_GLOBAL of non-strings");
        }
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x4a: // J BININT
        stack.push(v.getInt32(need(4), true));
        break;
      case 0x4b: // K BININT1
        stack.push(data[need(1)]);
        break;
      case 0x4d: // M BININT2
        stack.push(v.getUint16(need(2), true));
        break;
      case 0x8a: // LONG1
        stack.push(int(data[need(1)]));
        break;
      case 0x8b: // LONG4
        stack.push(int(v.getUint32(need(4), true)));
        break;
      case 0x47: // G BINFLOAT (big-endian)
        stack.push(v.getFloat64(need(8), false));
        break;
      case 0x4e: // N NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x74: // t TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case 0x6c: // l LIST
        stack.push(popMark());
        break;
      case 0x64: { // d DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: { // a APPEND
        const x = pop();
        appendAll(top(), [x]);
        break;
      }
      case 0x65: { // e APPENDS
        const items = popMark();
        appendAll(top(), items);
        break;
      }
      case 0x73: { // s SETITEM
        const val = pop(), key = pop();
        setItems(top(), [key, val]);
        break;
      }
      case 0x75: { // u SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x71: // q BINPUT
        memo.set(data[need(1)], top());
        break;
      case 0x72: // r LONG_BINPUT
        memo.set(v.getUint32(need(4), true), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // h BINGET
      case 0x6a: { // j LONG_BINGET
        const k = op === 0x68 ? data[need(1)] : v.getUint32(need(4), true);
        if (!memo.has(k)) fail(`pickle reads memo ${k}, which was never stored`);
        stack.push(memo.get(k));
        break;
      }
      case 0x51: { // Q BINPERSID
        const pid = pop();
        if (!o.persistentLoad) fail("pickle has a persistent id, and none is expected here");
        stack.push(o.persistentLoad!(pid));
        break;
      }
      case 0x52: { // R REDUCE
        const args = pop(), f = pop();
        stack.push(call(f, args));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args), held to the same whitelist
        const args = pop(), cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // b BUILD
        const state = pop(), obj = top();
        if (obj instanceof PyDict) obj.state = state;
        else if (obj && typeof obj === "object" && "setState" in obj) {
          (obj as { setState(s: unknown): void }).setState(state);
        } else fail("pickle BUILD on an object that takes no state");
        break;
      }
      case 0x30: // 0 POP
        pop();
        break;
      case 0x31: // 1 POP_MARK
        popMark();
        break;
      case 0x32: // 2 DUP
        stack.push(top());
        break;
      case 0x2e: // . STOP
        if (stack.length !== 1) fail(`pickle ends with ${stack.length} values on the stack`);
        return stack[0];
      default:
        fail(
          `unsupported pickle opcode 0x${op.toString(16)} (${JSON.stringify(String.fromCharCode(op))}) ` +
            `at byte ${p - 1}: not one a state dict needs`,
        );
    }
  }
}
