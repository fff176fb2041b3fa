import Foundation
import LopperModel

/// Locations of the test material under `Tests/Fixtures`.
///
/// Small fixtures are committed (made by `make_fixtures.py`); the real development models are
/// fetched by `fetch_real_models.py` into `Tests/Fixtures/real` and are absent on a fresh clone
/// until then. CI fetches them, so tests that need them are skipped only outside CI.
public enum Fixtures {
    /// `Tests/Fixtures` of this checkout, found from this source file's location.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures")

    /// Path of a committed fixture: `model("conv_chain")` → `Tests/Fixtures/models/conv_chain.onnx`.
    public static func model(_ name: String) -> String {
        root.appendingPathComponent("models/\(name).onnx").path
    }

    /// Path of a fetched real model or data file (it may not exist).
    public static func real(_ file: String) -> String {
        root.appendingPathComponent("real/\(file)").path
    }

    public static let ocrDetector = real("ch_PP-OCRv4_det_infer.onnx")
    public static let ocrClassifier = real("ch_ppocr_mobile_v2.0_cls_infer.onnx")
    public static let digitsClassifier = real("digits_mlp.onnx")
    /// The YOLOv8-style detector of `make_yolov8.py` at the n scale, 320 × 320 (built, not fetched).
    public static let yolov8Detector = real("yolov8n_320.onnx")
    /// all-MiniLM-L6-v2 from its PyPI wheel, as `make_minilm.py` writes it (PyTorch export style).
    public static let sentenceEncoder = real("minilm_l6.onnx")

    /// Whether the real models were fetched. In CI their absence is an error, not a skip.
    public static var hasRealModels: Bool {
        let present = [ocrDetector, ocrClassifier, digitsClassifier, yolov8Detector, sentenceEncoder].allSatisfy { FileManager.default.fileExists(atPath: $0) }
        if !present && isCI {
            fatalError("CI must fetch the real models first: python3 Tests/Fixtures/fetch_real_models.py")
        }
        return present
    }

    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    /// The committed fixtures that run in ONNX Runtime (all but the deliberately broken ones).
    public static let runnableFixtures = ["conv_chain", "residual", "c2f_block", "paddle_constants",
                                          "transformer_encoder", "transformer_shape_computed", "nhwc_input", "mobilenet_block",
                                          "yolov8_tiny", "channel_slice", "wake_word", "recurrent_variants", "control_flow", "more_ops"]

    /// Concrete input shapes for fixtures and real models whose inputs have symbolic sizes beyond
    /// the batch, keyed by file name without extension.
    public static let inputShapes: [String: [Int]] = [
        "transformer_encoder": [1, 16, 64],
        "transformer_shape_computed": [1, 16, 64],
        "ch_PP-OCRv4_det_infer": [1, 3, 320, 320],
        "ch_ppocr_mobile_v2.0_cls_infer": [1, 3, 48, 192],
    ]

    /// The input shape to use for a model file, by its name (nil when the declared one will do).
    public static func inputShape(for path: String) -> [Int]? {
        inputShapes[URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent]
    }

    /// `--shape x=…` arguments of `onnx_reference.py` for a model file (its single input is `x`).
    public static func shapeArguments(for path: String) -> [String] {
        inputShape(for: path).map { ["--shape", "x=" + $0.map(String.init).joined(separator: "x")] } ?? []
    }

    /// Writes `samples` random calibration inputs `x` of `shape` (per sample), uniform in [-2, 2],
    /// to `calib.npz` in `directory`, and returns its path.
    public static func randomCalibration(in directory: URL, seed: UInt64, samples: Int, shape: [Int]) throws -> String {
        var random = SeededGenerator(seed: seed)
        let path = directory.appendingPathComponent("calib.npz").path
        let count = samples * shape.reduce(1, *)
        try NumPy.writeArchive(["x": TensorData(floats: random.floats(count, in: -2...2), shape: [samples] + shape)], to: path)
        return path
    }

    /// A fresh temporary directory, removed by the caller when done.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
