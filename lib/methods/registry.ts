// The registry of methods and checkpoint formats: the CLI's --methods, flags and --help, the
// matrix, the presets' checks, the loader and the notebooks all read it, so that a method is
// one module (lib/methods/<name>.ts, or a notebook cell) registered here.

import type { LayerFormat } from "../model/format.ts";
import { AWQ_FORMAT } from "../quant/export_awq.ts";
import { BNB_FORMAT } from "../quant/export_bnb.ts";
import { GPTQ_FORMAT } from "../quant/export_gptq.ts";
import { HQQ_FORMAT } from "../quant/export_hqq.ts";
import { groupLabel, type Method, type MethodFlag, type RowSetting } from "./contract.ts";
import { autoround } from "./autoround.ts";
import { awq } from "./awq.ts";
import { awqAutoround } from "./awq_autoround.ts";
import { awqGptq } from "./awq_gptq.ts";
import { bnbInt8, fp4, nf4 } from "./bnb.ts";
import { fp } from "./fp.ts";
import { gptq } from "./gptq.ts";
import { hqq } from "./hqq.ts";
import { rtn } from "./rtn.ts";

const methods = new Map<string, Method>();
/** Flag name → its definition and the method that declared it first. */
const flagOwners = new Map<string, { flag: MethodFlag; method: string }>();

/** Flags of the harness itself: a method may not declare them. */
const reserved = new Set<string>();

/** Names the harness's own flags hold (lib/bench/options.ts calls this once). */
export function reserveFlags(names: Iterable<string>): void {
  for (const n of names) {
    const owner = flagOwners.get(n);
    if (owner) throw new Error(`flag --${n} is the harness's own, but method ${owner.method} declares it`);
    reserved.add(n);
  }
}

/**
 * Add a method. Its name must be new, its flags new or the very objects another method declared
 * (nf4 and fp4 share --double-quant), and not the harness's own. Returns the method.
 */
export function registerMethod(m: Method): Method {
  if (!/^[a-z0-9][a-z0-9+_-]*$/.test(m.name)) {
    throw new Error(`method name "${m.name}": lowercase letters, digits, +, _ and - only`);
  }
  if (methods.has(m.name)) throw new Error(`method ${m.name} is already registered`);
  for (const [name, flag] of Object.entries(m.flags)) {
    if (reserved.has(name)) throw new Error(`method ${m.name}: --${name} is one of the harness's own flags`);
    const owner = flagOwners.get(name);
    if (owner && owner.flag !== flag) {
      throw new Error(`method ${m.name}: --${name} is already ${owner.method}'s flag (with another meaning)`);
    }
  }
  for (const [name, flag] of Object.entries(m.flags)) {
    if (!flagOwners.has(name)) flagOwners.set(name, { flag, method: m.name });
  }
  methods.set(m.name, m);
  return m;
}

/** Remove a method registered at run time (a test's or a notebook's), e.g. to register it anew. */
export function unregisterMethod(name: string): void {
  const m = methods.get(name);
  if (!m || BUILTIN.includes(m)) throw new Error(`method ${name} is not a run-time registration`);
  methods.delete(name);
  for (const [flag, owner] of [...flagOwners]) {
    if (owner.method !== name) continue;
    flagOwners.delete(flag);
    // Another method may declare the same flag object: it owns it now.
    const heir = [...methods.values()].find((x) => x.flags[flag] === owner.flag);
    if (heir) flagOwners.set(flag, { flag: owner.flag, method: heir.name });
  }
}

/** The method called `name`; an unknown name is refused with the list. */
export function getMethod(name: string): Method {
  const m = methods.get(name);
  if (!m) throw new Error(`unknown method "${name}"; available now: ${methodNames().join(", ")}`);
  return m;
}

export const hasMethod = (name: string) => methods.has(name);
export const methodNames = () => [...methods.keys()];
export const allMethods = () => [...methods.values()];

/** Every method's flags, by flag name (each once). */
export function methodFlags(): Map<string, MethodFlag> {
  return new Map([...flagOwners].map(([n, o]) => [n, o.flag]));
}

/**
 * A row's table column ("W4 g128") and figure series ("gptq W4 g128"): its method's labels, or by
 * bits and group size (also for rows of a method not registered in this process).
 */
export function rowLabels(r: RowSetting): { column: string; series: string } {
  const m = methods.get(r.method);
  if (m?.label) return m.label(r);
  const column = `W${r.bits} ${groupLabel(r.group_size)}`;
  return { column, series: `${r.method} ${column}` };
}

/** The checkpoint formats the loader reads. */
export const FORMATS: readonly LayerFormat[] = [GPTQ_FORMAT, AWQ_FORMAT, HQQ_FORMAT, BNB_FORMAT];

const BUILTIN: Method[] = [fp, rtn, gptq, awq, autoround, hqq, nf4, fp4, bnbInt8, awqGptq, awqAutoround];
for (const m of BUILTIN) registerMethod(m);
