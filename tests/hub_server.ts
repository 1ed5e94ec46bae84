// A local HTTP server shaped like the Hugging Face Hub, for download tests through HF_ENDPOINT:
// /api/{models,datasets}/<repo>/revision/<rev> (→ sha), /api/.../tree/<rev>?recursive=true (files
// with git blob oids, LFS sha256 for *.safetensors and *.parquet), and <repo>/resolve/<rev>/<path>
// with Range support. `breakOnce` cuts the named file's first response half way (a dropped link).

import { createHash } from "node:crypto";

export interface HubRepo {
  type: "model" | "dataset";
  id: string;
  /** Local folder served as the repo's files. */
  dir: string;
}

export interface FakeHub {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const isLfs = (p: string) => /\.(safetensors|parquet|gz|bin)$/.test(p);

export async function startFakeHub(
  repos: HubRepo[],
  o: { token?: string; breakOnce?: string } = {},
): Promise<FakeHub> {
  const files = new Map<string, { path: string; bytes: Uint8Array }[]>();
  for (const r of repos) {
    const list: { path: string; bytes: Uint8Array }[] = [];
    const walk = async (sub: string) => {
      for await (const e of Deno.readDir(`${r.dir}/${sub}`)) {
        const rel = sub ? `${sub}/${e.name}` : e.name;
        if (e.isDirectory) await walk(rel);
        else list.push({ path: rel, bytes: await Deno.readFile(`${r.dir}/${rel}`) });
      }
    };
    await walk("");
    files.set(`${r.type}s/${r.id}`, list);
  }
  const requests: string[] = [];
  let broken = false;
  const entry = (f: { path: string; bytes: Uint8Array }) => {
    const oid = createHash("sha1").update(`blob ${f.bytes.length}\0`).update(f.bytes).digest("hex");
    return {
      type: "file",
      path: f.path,
      size: isLfs(f.path) ? 134 : f.bytes.length,
      oid,
      ...(isLfs(f.path)
        ? {
          lfs: {
            oid: createHash("sha256").update(f.bytes).digest("hex"),
            size: f.bytes.length,
            pointerSize: 134,
          },
        }
        : {}),
    };
  };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const u = new URL(req.url);
    requests.push(
      `${req.method} ${u.pathname}${req.headers.get("range") ? ` ${req.headers.get("range")}` : ""}`,
    );
    if (o.token && req.headers.get("authorization") !== `Bearer ${o.token}`) {
      return new Response(JSON.stringify({ error: "Invalid credentials" }), { status: 401 });
    }
    let m = u.pathname.match(/^\/api\/(models|datasets)\/(.+?)\/(revision|tree)\/([^/]+)(?:\/(.+))?$/);
    if (m) {
      const list = files.get(`${m[1]}/${m[2]}`);
      if (!list) return new Response(JSON.stringify({ error: "Repository not found" }), { status: 404 });
      if (m[3] === "revision") return Response.json({ id: m[2], _id: "x", sha: COMMIT, private: false });
      const under = m[5] ? decodeURIComponent(m[5]) + "/" : "";
      return Response.json(list.filter((f) => f.path.startsWith(under)).map(entry));
    }
    m = u.pathname.match(/^\/(datasets\/)?(.+)\/resolve\/([^/]+)\/(.+)$/);
    if (m) {
      const list = files.get(`${m[1] ? "datasets" : "models"}/${m[2]}`);
      const f = list?.find((f) => f.path === decodeURIComponent(m![4]));
      if (!f) return new Response("Entry not found", { status: 404 });
      const range = req.headers.get("range")?.match(/^bytes=(\d+)-$/);
      const start = range ? Number(range[1]) : 0;
      if (start >= f.bytes.length && range) return new Response(null, { status: 416 });
      let body: Uint8Array | ReadableStream<Uint8Array> = f.bytes.subarray(start);
      if (o.breakOnce === f.path && !broken) {
        broken = true;
        const half = f.bytes.subarray(0, Math.floor(f.bytes.length / 2));
        let sent = false;
        body = new ReadableStream({
          async pull(c) {
            if (!sent) return (sent = true), c.enqueue(half);
            await new Promise((r) => setTimeout(r, 100));
            c.error(new Error("connection reset (test)"));
          },
        });
      }
      return new Response(body as BodyInit, {
        status: range ? 206 : 200,
        headers: { "content-length": String(f.bytes.length - start), "x-repo-commit": COMMIT },
      });
    }
    return new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** Point the Hub variables at the fake Hub with a fresh cache and no token; returns the undo. */
export async function useHub(url: string): Promise<() => void> {
  const saved = ["HF_ENDPOINT", "HF_HOME", "HF_TOKEN"].map((k) => [k, Deno.env.get(k)] as const);
  Deno.env.set("HF_ENDPOINT", url);
  Deno.env.set("HF_HOME", await Deno.makeTempDir());
  Deno.env.delete("HF_TOKEN");
  return () => {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  };
}
