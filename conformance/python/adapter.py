#!/usr/bin/python3
# A TokenFormer conformance adapter in Python (torch float64), written from spec/conformance.md
# alone: it reads a suite (suite.json, <case>/case.json, <case>/inputs.safetensors), runs every
# case with the independent PyTorch math of golden/tfmath.py (through tfref.py) and writes a
# candidate folder (OUT/<case>/outputs.safetensors, OUT/candidate.json) for
# `tokenformer conformance check`. `--mutate NAME` plants one bug (tfref.MUTATIONS) to show that
# check catches it and says where (`--each-mutation` writes OUT/<name> for every bug in one run);
# `--store float16|bfloat16` rounds every op output through that
# dtype (computing in float32): the audit behind the f16/bf16 tolerance classes.
#
#   /usr/bin/python3 conformance/python/adapter.py SUITE OUT [--only GLOBS] [--mutate NAME]
#
# Omits: reading expected.safetensors (a candidate never sees the answers), and dtypes other than
# F32/I32 in inputs (the format has no others).

import argparse
import fnmatch
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "golden"))

from stio import read_safetensors, write_safetensors  # noqa: E402
import tfref  # noqa: E402
from cases import run_model_case, run_op_case  # noqa: E402

FORMAT, CANDIDATE, VERSION = "tokenformer-conformance", "tokenformer-conformance-candidate", 1


class BadSuite(Exception):
    pass


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BadSuite(f"{path}: {e}") from None


def read_suite(suite):
    s = read_json(Path(suite) / "suite.json")
    if s.get("format") != FORMAT or s.get("formatVersion") != VERSION:
        raise BadSuite(f"{suite}/suite.json: not a {FORMAT} version {VERSION} suite")
    return s


def read_case(suite, name):
    c = read_json(Path(suite) / name / "case.json")
    if c.get("name") != name or c.get("formatVersion") != VERSION:
        raise BadSuite(f"{suite}/{name}/case.json: name or formatVersion does not match")
    arrays, _, _ = read_safetensors(Path(suite) / name / "inputs.safetensors")
    for t in c["tensors"]:
        if t["role"] in ("input", "parameter", "cotangent"):
            if t["name"] not in arrays or list(arrays[t["name"]].shape) != t["shape"]:
                raise BadSuite(f"{name}: inputs.safetensors lacks {t['name']} {t['shape']}")
    return c, {n: torch.from_numpy(a.copy()) for n, a in arrays.items()}


def selected(names, only):
    if not only:
        return names
    pats = [p.strip() for p in only.split(",") if p.strip()]
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]


def is_ours(out):
    """Empty, or a candidate folder (candidate.json, and folders holding only outputs.safetensors)."""
    if not out.exists():
        return True
    entries = list(out.iterdir())
    if not entries:
        return True
    if not (out / "candidate.json").is_file():
        return False
    return all(e.name == "candidate.json" or (e.is_dir() and all(f.name == "outputs.safetensors" for f in e.iterdir()))
               for e in entries)


def write_outputs(path, outputs, expected_names):
    tensors = {}
    for name in expected_names:
        if name in outputs:
            tensors[name] = outputs[name].detach().to(torch.float32).contiguous()
    write_safetensors(path, tensors, {"format": "pt"})


def run_suite(suite_dir, suite, names, out, ops, label, quiet):
    """Runs the named cases with ops and writes the candidate folder out (staged, then renamed)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or not is_ours(out)):
        raise BadSuite(f"{out} exists and is not an empty folder or a candidate folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in names:
            case, inputs = read_case(suite_dir, name)
            run = run_op_case if case["kind"] == "op" else run_model_case
            outputs = run(case, inputs, ops)
            (staging / name).mkdir()
            write_outputs(staging / name / "outputs.safetensors", outputs, [t["name"] for t in case["tensors"] if "rule" in t])
            if not quiet:
                print(f"  {case['kind']:5s} {name}")
        (staging / "candidate.json").write_text(json.dumps(
            {"format": CANDIDATE, "formatVersion": VERSION, "implementation": label}, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="Python (torch float64) conformance adapter for TokenFormer.")
    ap.add_argument("suite")
    ap.add_argument("out")
    ap.add_argument("--only", help="comma-separated globs over case names")
    ap.add_argument("--mutate", choices=sorted(tfref.MUTATIONS), help="plant one bug (see --list-mutations)")
    ap.add_argument("--each-mutation", action="store_true",
                    help="one candidate folder OUT/<mutation> per planted bug, in one process (for tests)")
    ap.add_argument("--store", choices=["float16", "bfloat16"], help="round every op output through this dtype (f16/bf16 audit)")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="compute dtype (default float64)")
    ap.add_argument("--list-mutations", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.list_mutations:
        for k, v in tfref.MUTATIONS.items():
            print(f"{k:22s} {v}")
        return 0
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    store = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(args.store)
    dtype = torch.float32 if store is not None or args.dtype == "float32" else torch.float64
    label = "python adapter: torch " + ("float32 storing " + args.store if store else args.dtype)
    try:
        suite = read_suite(args.suite)
        names = selected([c["name"] for c in suite["cases"]], args.only)
        if not names:
            raise BadSuite(f"--only {args.only!r} selects no case")
        if args.each_mutation:
            out = Path(args.out)
            if out.exists() and any(out.iterdir()) and not all((e / "candidate.json").is_file() for e in out.iterdir()):
                raise BadSuite(f"{out} exists and is not a folder of candidate folders")
            for m in tfref.MUTATIONS:
                run_suite(args.suite, suite, names, out / m, tfref.Ops(m, dtype, store), f"{label}, mutation {m}", True)
        else:
            label += f", mutation {args.mutate}" if args.mutate else ""
            run_suite(args.suite, suite, names, args.out, tfref.Ops(args.mutate, dtype, store), label, args.quiet)
    except BadSuite as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"wrote outputs of {len(names)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
