// PyTorch checkpoints (`pytorch_model.bin`): the zip archive torch.save has written since 1.6.
//   <archive>/data.pkl      the state dict, pickled (protocol 2): key → _rebuild_tensor_v2(
//                           persistent_id ('storage', torch.<T>Storage, key, location, numel),
//                           storage_offset, size, stride, requires_grad, hooks[, metadata])
//   <archive>/data/<key>    each storage's raw bytes (little-endian; `byteorder` says so)
// The pickle is read with a whitelist (pickle.ts): only the globals a state dict needs. Tensors
// are views: an offset and strides into a storage that others may share (a tied head and its
// embedding). At open every tensor is checked against its storage's size; bytes are read by
// offset when asked for, a strided view gathered into a contiguous copy.

import { PickleError, type PyCallable, PyDict, PyGlobal, PyTuple, unpickle } from "./pickle.ts";
import { DTYPE_BYTES, type SafeDType } from "./safetensors.ts";
import { readAt, ZipError, ZipFile } from "./zip.ts";

export class TorchFileError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = "TorchFileError";
  }
}

/** torch.<T>Storage → the element dtype. */
export const STORAGE_DTYPES: Record<string, SafeDType> = {
  DoubleStorage: "F64",
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** torch dtypes that may appear as values (metadata, hqq's meta records). */
const TORCH_DTYPES = [
  "float64",
  "float32",
  "float16",
  "bfloat16",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
];

export interface TorchTensorInfo {
  dtype: SafeDType;
  shape: number[];
  stride: number[];
  /** Elements into the storage. */
  offset: number;
  storage: string;
}

class StorageRef {
  constructor(readonly key: string, readonly dtype: SafeDType, readonly numel: number) {}
}

class TensorRef {
  constructor(readonly info: TorchTensorInfo) {}
  setState(): void {} // a Parameter's BUILD (its __dict__) carries nothing a weight needs
}

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** The globals of a state dict, found in the pickles of the checkpoints read (see the tests). */
function stateDictGlobals(file: string): Record<string, PyCallable | "value"> {
  const ints = (x: unknown, what: string): number[] => {
    if (!(x instanceof PyTuple) || !x.items.every((n) => Number.isInteger(n) && (n as number) >= 0)) {
      throw new PickleError(file, `_rebuild_tensor_v2: ${what} is not a tuple of non-negative integers`);
    }
    return x.items as number[];
  };
  const rebuild: PyCallable = ([storage, offset, size, stride]) => {
    if (!(storage instanceof StorageRef)) throw new PickleError(file, "_rebuild_tensor_v2 without a storage");
    if (!Number.isInteger(offset) || (offset as number) < 0) {
      throw new PickleError(file, "_rebuild_tensor_v2: bad storage offset");
    }
    const shape = ints(size, "size"), st = ints(stride, "stride");
    if (st.length !== shape.length) {
      throw new PickleError(file, "_rebuild_tensor_v2: size and stride differ in rank");
    }
    return new TensorRef({
      dtype: storage.dtype,
      shape,
      stride: st,
      offset: offset as number,
      storage: storage.key,
    });
  };
  const parameter: PyCallable = ([t]) => {
    if (!(t instanceof TensorRef)) {
      throw new PickleError(file, "_rebuild_parameter of something not a tensor");
    }
    return t;
  };
  const g: Record<string, PyCallable | "value"> = {
    "collections.OrderedDict": () => new PyDict(),
    "torch._utils._rebuild_tensor_v2": rebuild,
    "torch._utils._rebuild_parameter": parameter,
    "torch._utils._rebuild_parameter_with_state": parameter,
    "torch.UntypedStorage": "value",
    // torch.Size((256, 256)) in hqq's meta records: the shape as a plain list.
    "torch.Size": ([dims]) => {
      if (!(dims instanceof PyTuple) || !dims.items.every((n) => Number.isInteger(n) && (n as number) >= 0)) {
        throw new PickleError(file, "torch.Size of something not a tuple of non-negative integers");
      }
      return [...dims.items] as number[];
    },
  };
  for (const s of Object.keys(STORAGE_DTYPES)) g[`torch.${s}`] = "value";
  for (const d of TORCH_DTYPES) g[`torch.${d}`] = "value";
  return g;
}

/**
 * A plain value stored beside the tensors (hqq's qmodel.pt keeps each layer's meta record this
 * way): a number, string, boolean, null, a list of integers (torch.Size) or a torch dtype's name.
 */
export type TorchValue = number | string | boolean | null | number[];

export class TorchFile {
  private constructor(
    readonly path: string,
    private zip: ZipFile,
    private prefix: string,
    private tensors: Map<string, TorchTensorInfo>,
    private plain: Map<string, TorchValue>,
  ) {}

  static async open(path: string): Promise<TorchFile> {
    let zip: ZipFile;
    try {
      zip = await ZipFile.open(path);
    } catch (e) {
      if (!(e instanceof ZipError)) throw new TorchFileError(path, `cannot open: ${(e as Error).message}`);
      const head = await readHead(path);
      if (LEGACY_MAGIC.every((b, i) => head[i] === b) || head[0] === 0x80) {
        throw new TorchFileError(
          path,
          "legacy torch.save format (PyTorch < 1.6) is not read: re-save it with a current torch " +
            "(torch.save(torch.load(f), f)) or convert it to safetensors",
        );
      }
      throw new TorchFileError(path, `not a PyTorch zip checkpoint (${e.message})`);
    }
    const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new TorchFileError(path, `expected one <archive>/data.pkl entry, found ${pkls.length}`);
    }
    const prefix = pkls[0].slice(0, -"data.pkl".length);
    const order = zip.entries.has(`${prefix}byteorder`)
      ? new TextDecoder().decode(await zip.read(`${prefix}byteorder`)).trim()
      : "little";
    if (order !== "little") throw new TorchFileError(path, `byteorder "${order}" is not read (only little)`);

    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: unknown) => {
      const t = pid instanceof PyTuple ? pid.items : [];
      const [kind, type, key, , numel] = t;
      if (kind !== "storage" || !(type instanceof PyGlobal) || typeof key !== "string") {
        throw new PickleError(path, "persistent id is not a torch storage reference");
      }
      const dtype = STORAGE_DTYPES[type.name];
      if (!dtype) throw new PickleError(path, `storage type ${type.qualname} is not read`);
      if (!Number.isInteger(numel)) throw new PickleError(path, `storage ${key}: bad element count`);
      let s = storages.get(key);
      if (!s) storages.set(key, s = new StorageRef(key, dtype, numel as number));
      return s;
    };
    const root = unpickle(await zip.read(pkls[0]), {
      file: path,
      globals: stateDictGlobals(path),
      persistentLoad,
    });
    if (!(root instanceof PyDict)) {
      throw new TorchFileError(path, "the pickle is not a dict of tensors (a state dict)");
    }
    const tensors = new Map<string, TorchTensorInfo>();
    const plain = new Map<string, TorchValue>();
    // A state dict, or (hqq's qmodel.pt) a dict of module name → that module's state dict, whose
    // entries are flattened to "module.key" as nn.Module.state_dict names them.
    const walk = (d: PyDict, prefix: string, depth: number) => {
      for (const [k, t] of d.map) {
        if (typeof k !== "string") throw new TorchFileError(path, "a state-dict key is not a string");
        const name = prefix + k;
        if (t instanceof TensorRef) tensors.set(name, t.info);
        else if (t instanceof PyDict && depth < 2) walk(t, `${name}.`, depth + 1);
        else if (prefix && isPlain(t)) plain.set(name, t instanceof PyGlobal ? t.qualname : t as TorchValue);
        else throw new TorchFileError(path, `entry ${name} is not a tensor`);
      }
    };
    walk(root, "", 0);
    // Every view must lie inside its storage, and the storage inside the archive.
    for (const [name, t] of tensors) {
      const entry = `${prefix}data/${t.storage}`;
      const e = zip.entries.get(entry);
      if (!e) {
        throw new TorchFileError(path, `tensor ${name}: its storage ${entry} is missing from the archive`);
      }
      const s = storages.get(t.storage)!;
      const bytes = DTYPE_BYTES[t.dtype];
      if (e.size < s.numel * bytes) {
        throw new TorchFileError(
          path,
          `tensor ${name}: storage ${t.storage} holds ${e.size} bytes, its header says ${s.numel} × ${t.dtype}`,
        );
      }
      const span = viewSpan(t);
      if (span > 0 && t.offset + span > s.numel) {
        throw new TorchFileError(
          path,
          `tensor ${name}: shape [${t.shape}] stride [${t.stride}] at offset ${t.offset} needs ` +
            `${t.offset + span} elements, storage ${t.storage} has ${s.numel}`,
        );
      }
    }
    return new TorchFile(path, zip, prefix, tensors, plain);
  }

  /** The plain (non-tensor) entries of a module's state dict, by flattened name. */
  values(): Map<string, TorchValue> {
    return this.plain;
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TorchTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new TorchFileError(this.path, `no tensor named ${name}`);
    return t;
  }

  /** One tensor's bytes, contiguous (row-major), read from its storage by offset. */
  async readBytes(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const t = this.info(name);
    const el = DTYPE_BYTES[t.dtype];
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel === 0) return new Uint8Array(new ArrayBuffer(0));
    const span = viewSpan(t);
    const raw = await this.zip.read(`${this.prefix}data/${t.storage}`, t.offset * el, span * el);
    if (isContiguous(t)) return raw;
    const out = new Uint8Array(new ArrayBuffer(numel * el));
    const idx = new Array(t.shape.length).fill(0);
    for (let i = 0; i < numel; i++) {
      let src = 0;
      for (let d = 0; d < idx.length; d++) src += idx[d] * t.stride[d];
      out.set(raw.subarray(src * el, src * el + el), i * el);
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }
}

function isPlain(v: unknown): boolean {
  return v === null || ["number", "string", "boolean"].includes(typeof v) || v instanceof PyGlobal ||
    (Array.isArray(v) && v.every((n) => Number.isInteger(n)));
}

/** Elements from the view's first to one past its last (0 for an empty tensor). */
function viewSpan(t: TorchTensorInfo): number {
  if (t.shape.some((d) => d === 0)) return 0;
  return 1 + t.shape.reduce((s, d, i) => s + (d - 1) * t.stride[i], 0);
}

function isContiguous(t: TorchTensorInfo): boolean {
  let want = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    if (t.shape[d] !== 1 && t.stride[d] !== want) return false;
    want *= t.shape[d];
  }
  return true;
}

async function readHead(path: string): Promise<Uint8Array> {
  const f = await Deno.open(path, { read: true });
  try {
    const n = Math.min(16, (await f.stat()).size);
    return await readAt(f, 0, n, () => new TorchFileError(path, "unreadable"));
  } finally {
    f.close();
  }
}
