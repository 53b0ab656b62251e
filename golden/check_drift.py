#!/usr/bin/python3
# Drift check: regenerates every golden fixture into a temp dir with golden/gen.py and
# compares it with the committed files. Run:   /usr/bin/python3 golden/check_drift.py
# Exit 0 = no drift; 1 = drift (a report lists every difference); 2 = generator failed.
# Tensors must match in names, dtypes and shapes; F32 values within
# |new − committed| ≤ 1e-6 + 1e-5·|committed| (BLAS may differ in the last bits across
# machines); I32 values, YAML configs, metadata and the manifest (except
# generator.torch, the version string) must match exactly.
# Omits: any check of the TypeScript side (that is the vitest golden suite's job).

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stio import read_safetensors  # noqa: E402

ATOL, RTOL = 1e-6, 1e-5
SUBDIRS = ("ops", "models", "train")


def referenced_files(manifest):
    files = []
    for key in ("ops", "models", "train"):
        for e in manifest.get(key, []):
            files.append(e["file"])
            if "config" in e:
                files.append(e["config"])
    return files


def compare_tensors(rel, old_path, new_path, problems):
    old, old_meta, old_dt = read_safetensors(old_path)
    new, new_meta, new_dt = read_safetensors(new_path)
    if old_meta != new_meta:
        problems.append(f"{rel}: __metadata__ differs: {old_meta} vs {new_meta}")
    for name in sorted(set(old) - set(new)):
        problems.append(f"{rel}: tensor {name} is no longer generated")
    for name in sorted(set(new) - set(old)):
        problems.append(f"{rel}: tensor {name} is new (not committed)")
    for name in sorted(set(old) & set(new)):
        a, b = new[name], old[name]
        if old_dt[name] != new_dt[name] or a.shape != b.shape:
            problems.append(f"{rel}: {name}: committed {old_dt[name]}{list(b.shape)}, "
                            f"regenerated {new_dt[name]}{list(a.shape)}")
            continue
        if old_dt[name] == "I32":
            if not np.array_equal(a, b):
                problems.append(f"{rel}: {name}: integer values differ")
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
            problems.append(f"{rel}: {name}: non-finite values")
            continue
        excess = np.abs(a64 - b64) - (ATOL + RTOL * np.abs(b64))
        if (excess > 0).any():
            i = np.unravel_index(int(np.argmax(excess)), excess.shape)
            problems.append(
                f"{rel}: {name}: {int((excess > 0).sum())}/{a.size} values drift; worst at "
                f"{list(i)}: committed {b64[i]:.9g}, regenerated {a64[i]:.9g}")


def compare_manifest(old, new, problems):
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    for m in (old, new):
        m.get("generator", {}).pop("torch", None)
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if isinstance(old.get(key), list) and isinstance(new.get(key), list):
                on = {e.get("name"): e for e in old[key]}
                nn = {e.get("name"): e for e in new[key]}
                for n in sorted(set(on) | set(nn), key=str):
                    if on.get(n) != nn.get(n):
                        problems.append(f"manifest.json: {key} entry {n!r}: committed "
                                        f"{on.get(n)}, regenerated {nn.get(n)}")
                if list(on) != list(nn):
                    problems.append(f"manifest.json: {key} order differs")
            else:
                problems.append(f"manifest.json: {key!r}: committed {old.get(key)!r}, "
                                f"regenerated {new.get(key)!r}")


def check(golden, fresh):
    problems = []
    old_manifest = json.loads((golden / "manifest.json").read_text())
    new_manifest = json.loads((fresh / "manifest.json").read_text())
    compare_manifest(old_manifest, new_manifest, problems)
    old_files, new_files = set(referenced_files(old_manifest)), set(referenced_files(new_manifest))
    for rel in sorted(old_files | new_files):
        op, np_ = golden / rel, fresh / rel
        if not op.exists():
            problems.append(f"{rel}: missing from the committed fixtures")
        elif not np_.exists():
            problems.append(f"{rel}: committed but no longer generated")
        elif rel.endswith(".safetensors"):
            compare_tensors(rel, op, np_, problems)
        elif op.read_bytes() != np_.read_bytes():
            problems.append(f"{rel}: text differs")
    for sub in SUBDIRS:
        for f in sorted((golden / sub).glob("*")):
            rel = f"{sub}/{f.name}"
            if f.suffix in (".safetensors", ".yml") and rel not in old_files:
                problems.append(f"{rel}: stale file, not referenced by manifest.json")
    return problems, len(old_files | new_files)


def main():
    ap = argparse.ArgumentParser(description="Regenerate the golden fixtures and compare.")
    ap.add_argument("--golden", default=str(HERE), help="committed fixtures (default golden/)")
    ap.add_argument("--keep", action="store_true", help="keep the regenerated temp dir")
    args = ap.parse_args()
    golden = Path(args.golden)
    tmp = Path(tempfile.mkdtemp(prefix="golden-drift-"))
    try:
        run = subprocess.run([sys.executable, str(HERE / "gen.py"), "--out", str(tmp), "--quiet"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout + run.stderr, file=sys.stderr)
            print("golden drift check: the generator failed", file=sys.stderr)
            return 2
        problems, nfiles = check(golden, tmp)
    finally:
        if args.keep:
            print(f"regenerated fixtures kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        print(f"golden drift check FAILED: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print("If the change is intended, regenerate with `/usr/bin/python3 golden/gen.py` "
              "and commit golden/.", file=sys.stderr)
        return 1
    print(f"golden drift check OK: {nfiles} files match (|diff| <= {ATOL:g} + {RTOL:g}*|ref|)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
