#!/usr/bin/python3
# Writes every golden fixture and golden/manifest.json (see golden/FORMAT.md).
# Run with Debian's system python, which has torch:   /usr/bin/python3 golden/gen.py
# (a pyenv `python3` earlier on PATH may lack torch). `--out DIR` writes elsewhere
# (golden/check_drift.py uses it). `--audit` adds the float32 conditioning checks used when
# choosing fixtures (machine-dependent, so never part of regeneration or drift).
# Omits: the math itself (tfmath.py) and the cases (gen_ops.py, gen_models.py).

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import gen_models  # noqa: E402
import gen_ops  # noqa: E402
from common import BASE_SEED  # noqa: E402
from stio import write_safetensors  # noqa: E402

REGENERATE = "/usr/bin/python3 golden/gen.py"
TOLERANCES = {
    "reference": {"values": {"rtol": 1e-4, "atol": 1e-5},
                  "grads": {"rel": 1e-3, "maxRel": 1e-6}},
    "gpu_f32": {"values": {"rtol": 1e-3, "atol": 1e-4},
                "grads": {"rel": 1e-2, "maxRel": 1e-4}},
}
SUBDIRS = ("ops", "models", "train")


def install(staging, out):
    """Replaces the fixture files in out with those in staging (a dropped case leaves
    nothing stale; a failed run, which never gets here, leaves out untouched)."""
    for sub in SUBDIRS:
        d = out / sub
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            if f.suffix in (".safetensors", ".yml"):
                f.unlink()
        for f in sorted((staging / sub).iterdir()):
            shutil.move(str(f), str(d / f.name))
    shutil.move(str(staging / "manifest.json"), str(out / "manifest.json"))


def write_ops(out, verbose):
    entries = []
    for name, op, build in gen_ops.op_cases():
        attrs, tensors = build(name)
        rel = f"ops/{name}.safetensors"
        write_safetensors(out / rel, tensors, {"op": op, "attrs": json.dumps(attrs)})
        entries.append({"name": name, "op": op, "file": rel, "attrs": attrs})
        if verbose:
            print(f"  op    {name}")
    return entries


def write_models(out, verbose, audit, over):
    entries = []
    for m in gen_models.MODELS:
        name = m["name"]
        cfg_rel, rel = f"models/{name}.yml", f"models/{name}.safetensors"
        (out / cfg_rel).write_text(gen_models.config_yaml(m))
        tensors, info = gen_models.model_fixture(m, audit)
        if audit and max(info["f32_cond"]) >= gen_models.AUDIT_MODEL_MARGIN:
            over.append(f"{name}: float32 rerun uses {max(info['f32_cond']):.3f} x tol "
                        f"(margin {gen_models.AUDIT_MODEL_MARGIN})")
        meta = {"config": json.dumps(gen_models.full_config(m), sort_keys=True),
                "init": gen_models.init_description(m)}
        write_safetensors(out / rel, tensors, meta)
        entries.append({"name": name, "config": cfg_rel, "file": rel,
                        "batch": m["batch"], "seq": m["seq"]})
        if verbose:
            cond = info["f32_cond"]
            audit_note = (f", float32 rerun uses {cond[0]:.2f} (logits) / {cond[1]:.2f} (grads) x tol"
                          if cond else "")
            print(f"  model {name}: loss {info['loss']:.4f}, "
                  f"min Θ-row norm / median {info['min_row_ratio']:.3f}{audit_note}")
    return entries


def write_train(out, verbose, audit, over):
    entries = []
    by_name = {m["name"]: m for m in gen_models.MODELS}
    for t in gen_models.TRAIN:
        rel = f"train/{t['name']}.safetensors"
        tensors, info = gen_models.train_fixture(t, by_name, audit)
        if audit and info["f32_drift"] >= gen_models.AUDIT_TRAIN_MARGIN:
            over.append(f"{t['name']}: float32 rerun drifts by {info['f32_drift']:.3f} x tol "
                        f"(margin {gen_models.AUDIT_TRAIN_MARGIN})")
        meta = {"model": t["model"], "lrs": json.dumps(t["lrs"]),
                "recipe": "torch.optim.AdamW betas (0.9,0.95) eps 1e-8 wd 0.1 (0 on final "
                          "norm); clip_grad_norm_ 1.0; float64"}
        write_safetensors(out / rel, tensors, meta)
        entries.append({"name": t["name"], "model": t["model"], "lrs": t["lrs"], "file": rel})
        if verbose:
            print(f"  train {t['name']}: losses {[round(x, 4) for x in info['losses']]}, "
                  f"grad norms {[round(x, 3) for x in info['grad_norms']]}, "
                  f"max move {info['max_move']:.2e}"
                  + (f", f32 rerun drift {info['f32_drift']:.2f} x tol" if audit else ""))
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(HERE), help="output directory (default: golden/)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--audit", action="store_true",
                    help="also rerun every model and training fixture in float32 and fail if it "
                         "uses over half the tolerance (when choosing fixtures; machine-dependent)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.time()
    staging = Path(tempfile.mkdtemp(prefix=".gen-", dir=out))
    try:
        manifest = build(staging, not args.quiet, args.audit)
        install(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not args.quiet:
        print(f"wrote {len(manifest['ops'])} op, {len(manifest['models'])} model, "
              f"{len(manifest['train'])} train fixtures to {out} in {time.time() - t0:.1f} s")


def build(out, verbose, audit=False):
    """Writes every fixture into out. With audit, raises (so nothing is installed) when a
    float32 rerun lands over its margin, after reporting every case."""
    over = []
    for sub in SUBDIRS:
        (out / sub).mkdir()
    manifest = {
        "format": 1,
        "regenerate": REGENERATE,
        "generator": {"torch": torch.__version__, "dtype": "float64 compute, float32 storage",
                      "seed": BASE_SEED},
        "tolerances": TOLERANCES,
        "ops": write_ops(out, verbose),
        "models": write_models(out, verbose, audit, over),
        "train": write_train(out, verbose, audit, over),
    }
    if over:
        raise SystemExit("audit: float32 reruns over their margin on this machine:\n  "
                         + "\n  ".join(over))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    main()
