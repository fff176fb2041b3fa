#!/usr/bin/env python3
"""Calibration images for the PP-OCRv4 detector: lines of rendered text on light backgrounds,
preprocessed as PaddleOCR's detector expects (RGB / 255, ImageNet mean and std, CHW).
Deterministic; writes Tests/Fixtures/real/det_calib.npz (key "x", float32 [8, 3, 320, 320]) and
a held-out split of other images, det_holdout.npz (same form, another seed).
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REAL = Path(__file__).resolve().parent / "real"
SPLITS = {"det_calib.npz": 2026, "det_holdout.npz": 2027}
WORDS = ("pruning sensitivity channel layer model edge device latency memory budget sparse "
         "tensor ONNX invoice total 2026 receipt label camera road sign speed limit exit "
         "coffee 4.50 menu open daily station platform 12 north".split())
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def image(rng, size=320):
    shade = int(rng.integers(200, 256))
    picture = Image.new("RGB", (size, size), (shade, shade - int(rng.integers(0, 20)), shade - int(rng.integers(0, 30))))
    draw = ImageDraw.Draw(picture)
    y = int(rng.integers(5, 30))
    while y < size - 30:
        font_size = int(rng.integers(16, 40))
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 5))))
        x = int(rng.integers(0, 60))
        ink = tuple(int(v) for v in rng.integers(0, 90, size=3))
        draw.text((x, y), words, fill=ink, font=ImageFont.load_default(size=font_size))
        y += font_size + int(rng.integers(8, 40))
    return (np.asarray(picture, dtype=np.float32) / 255 - MEAN) / STD


def main():
    REAL.mkdir(exist_ok=True)
    for name, seed in SPLITS.items():
        out = REAL / name
        if out.exists():
            continue
        rng = np.random.default_rng(seed)
        batch = np.stack([image(rng).transpose(2, 0, 1) for _ in range(8)]).astype(np.float32)
        np.savez(out, x=batch)
        print(f"ocr calibration: {batch.shape} -> {out}")


if __name__ == "__main__":
    main()
