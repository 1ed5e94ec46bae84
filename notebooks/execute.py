#!/usr/bin/env python3
"""Execute Deno-kernel notebooks headless and keep every output.

nbconvert/nbclient stop reading a cell's IOPub messages at `status: idle`; Deno 2.9's kernel
sometimes sends idle before the cell's stream/display messages, so they lose outputs at random
(platform.md section 4). This executor routes IOPub by parent msg_id and, after the execute_reply
and idle, keeps draining until IOPub has been quiet for --quiet-ms.

The kernelspec is the project-local one (notebooks/jupyter/kernels/deno, found through
JUPYTER_PATH), so `deno` resolves from PATH rather than a path baked into a user's kernelspec.

Exit status 1 when a cell errors (an `error` reply, or a quantlab error display from
lib/notebook/nb.ts), when a code cell that should show something has no output, or when a
notebook runs past --timeout seconds. --allow-errors keeps going and exits 0 on cell errors.
"""

import argparse
import json
import os
import queue
import sys
import time

import nbformat
from jupyter_client.manager import start_new_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
ERROR_MIME = "application/vnd.quantlab.error+json"


def merge_streams(outputs):
    merged = []
    for o in outputs:
        if o.output_type == "stream" and merged and merged[-1].output_type == "stream" and merged[-1].name == o.name:
            merged[-1].text += o.text
        else:
            merged.append(o)
    return merged


def run_cell(kc, code, deadline, quiet_s):
    msg_id = kc.execute(code, store_history=True, allow_stdin=False)
    outputs, reply, idle = [], None, False
    last = time.monotonic()
    while True:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError("time limit reached")
        if reply is not None and idle and now - last > quiet_s:
            break
        try:
            msg = kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            msg = None
        if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
            last = time.monotonic()
            t, c = msg["msg_type"], msg["content"]
            if t == "status":
                idle = idle or c["execution_state"] == "idle"
            elif t in ("stream", "display_data", "execute_result", "error"):
                outputs.append(nbformat.v4.output_from_msg(msg))
            elif t == "clear_output":
                outputs = []
        if reply is None:
            try:
                r = kc.get_shell_msg(timeout=0)
                if r["parent_header"].get("msg_id") == msg_id:
                    reply = r["content"]
                    last = time.monotonic()
            except queue.Empty:
                pass
    return merge_streams(outputs), reply


def cell_failed(outputs, reply):
    if reply.get("status") == "error" or any(o.output_type == "error" for o in outputs):
        return True
    return any(o.output_type == "display_data" and ERROR_MIME in o.get("data", {}) for o in outputs)


def execute(path, out_path, timeout, quiet_s, allow_errors, env):
    nb = nbformat.read(path, as_version=4)
    km, kc = start_new_kernel(kernel_name="deno", cwd=os.path.dirname(os.path.abspath(path)), env=env)
    problems = []
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    try:
        count = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            count += 1
            try:
                outputs, reply = run_cell(kc, cell.source, deadline, quiet_s)
            except TimeoutError:
                problems.append(f"cell {i}: still running after the notebook's {timeout} s limit")
                break
            cell.outputs = outputs
            cell.execution_count = count
            if cell_failed(outputs, reply):
                problems.append(f"cell {i}: error: {first_error(outputs, reply)}")
                if not allow_errors:
                    break
            elif not outputs and "no-output" not in cell.metadata.get("tags", []):
                problems.append(f"cell {i}: no output (tag the cell no-output if that is expected)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    nb.metadata.setdefault("quantlab", {})["seconds"] = round(time.monotonic() - t0, 1)
    if out_path:
        nbformat.write(nb, out_path)
    return problems


def first_error(outputs, reply):
    for o in outputs:
        if o.output_type == "error":
            return f"{o.ename}: {o.evalue}"
        if o.output_type == "display_data" and ERROR_MIME in o.get("data", {}):
            return o.data[ERROR_MIME].get("message", "")
    return f"{reply.get('ename')}: {reply.get('evalue')}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--out-dir", help="write executed notebooks here (default: print a summary only)")
    ap.add_argument("--in-place", action="store_true", help="write outputs back into the notebooks")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default 300)")
    ap.add_argument("--quiet-ms", type=float, default=150, help="IOPub silence that ends a cell (default 150)")
    ap.add_argument("--allow-errors", action="store_true")
    args = ap.parse_args()

    env = dict(os.environ)
    env.setdefault("JUPYTER_PATH", os.path.join(HERE, "jupyter"))
    env["JUPYTER_PATH"] = os.path.join(HERE, "jupyter")
    env["NO_COLOR"] = "1"
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    failed = 0
    for path in args.notebooks:
        out = path if args.in_place else (os.path.join(args.out_dir, os.path.basename(path)) if args.out_dir else None)
        if out and args.out_dir:
            os.makedirs(args.out_dir, exist_ok=True)
        t0 = time.monotonic()
        problems = execute(path, out, args.timeout, args.quiet_ms / 1000, args.allow_errors, env)
        status = "ok" if not problems else "FAILED"
        print(f"{status} {path} ({time.monotonic() - t0:.1f} s)", flush=True)
        for p in problems:
            print(f"  {p}", flush=True)
        if problems and not (args.allow_errors and all(": error:" in p for p in problems)):
            failed += 1
    print(f"notebooks: {len(args.notebooks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
