#!/usr/bin/env python3
"""Sentence-encoder exports judged in ONNX Runtime: agreement with the dense model's embeddings,
and paraphrase retrieval on held-out pairs.

    python3 Docs/bench/embedding_pairs.py DENSE.onnx DATA.npz [DATA.npz ...] --models DIR [DIR ...]
        [--pairs DATA.npz]

Each DIR is an export folder (its model.onnx; also baseline-*.onnx beside it) or an .onnx file.
For every data file: the mean cosine between each sentence's mean-pooled embedding (over the
attention mask) and the dense model's. For the --pairs file (sentences 2i and 2i+1 are
paraphrases): the share of sentences whose nearest other sentence is their paraphrase, and the
paraphrase margin: per sentence, its cosine with its paraphrase minus its largest cosine with
any other sentence, averaged (how far apart the encoder keeps meanings).
"""
import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort


def embeddings(model, data):
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    hidden = session.run(None, {name: data[name] for name in names})[0].astype(np.float64)
    mask = data["attention_mask"][:, :, None].astype(np.float64)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def retrieval(vectors):
    """Paraphrase retrieval (top-1 share) and the mean paraphrase margin."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    rows = np.arange(len(vectors))
    partner = rows ^ 1
    paraphrase = similarity[rows, partner].copy()
    similarity[rows, partner] = -np.inf
    margin = paraphrase - similarity.max(1)
    return float(np.mean(margin > 0)), float(np.mean(margin))


def models_in(paths):
    for path in map(Path, paths):
        if path.suffix == ".onnx":
            yield path.name, path
            continue
        label = f"{path.parent.name}/{path.name}"  # exports/<profile>
        yield label, path / "model.onnx"
        for baseline in sorted(path.glob("baseline-*.onnx")):
            yield f"{label} {baseline.stem}", baseline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dense", type=Path)
    parser.add_argument("data", type=Path, nargs="+")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--pairs", type=Path, help="a data file of paraphrase pairs (2i, 2i+1)")
    args = parser.parse_args()
    files = {path: dict(np.load(path)) for path in args.data + ([args.pairs] if args.pairs else [])}
    dense = {path: embeddings(args.dense, data) for path, data in files.items()}
    columns = [f"cosine {p.stem}" for p in args.data] + (["pair retrieval", "paraphrase margin"] if args.pairs else [])
    print("| model | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    rows = [("dense", args.dense)] + list(models_in(args.models))
    for name, model in rows:
        cells = []
        for path in args.data:
            cells.append(f"{np.mean(np.sum(embeddings(model, files[path]) * dense[path], 1)):.4f}")
        if args.pairs:
            share, margin = retrieval(embeddings(model, files[args.pairs]))
            cells += [f"{share:.3f}", f"{margin:.4f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
