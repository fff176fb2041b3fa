import Foundation
import LopperModel
import LopperRuntime
@testable import LopperSensitivity
import LopperTesting
import Testing

/// Detection agreement against hand-computed values and the numpy reference (`metric_reference.py`).
@Suite struct DetectionMetricTests {
    static let decoding = DetectionDecoding(layout: .yolov8, classes: 2, confidence: 0.25, iou: 0.45)

    /// A YOLOv8-layout output `[1, 4 + 2, 4]` from (cx, cy, w, h, score of class 0, of class 1)
    /// rows; anchors beyond the rows given score 0.
    static func yolov8(_ boxes: [[Float]]) -> Tensor {
        let fields = 6, anchors = 4
        var values = [Float](repeating: 0, count: fields * anchors)
        for (a, box) in boxes.enumerated() { for f in 0..<fields { values[f * anchors + a] = box[f] } }
        return Tensor(floats: values, shape: [1, fields, anchors])
    }

    func mAP(_ kind: MetricKind, dense: [Tensor], candidate: [Tensor], decoding: DetectionDecoding = Self.decoding) throws -> Double {
        var accumulator = MetricAccumulator(kind: kind, output: "y", topK: 1, detection: decoding)
        for (d, c) in zip(dense, candidate) { try accumulator.add(dense: ["y": d], candidate: ["y": c], labels: nil) }
        return accumulator.value
    }

    @Test func handComputed() throws {
        // Dense: two class-0 objects; a duplicate of the first (IoU 0.8 > 0.45) is suppressed by
        // NMS, and a box below the confidence threshold is dropped.
        let dense = Self.yolov8([[10, 10, 10, 10, 0.9, 0.1], [50, 50, 10, 10, 0.8, 0.0],
                                 [10, 11, 10, 10, 0.7, 0.0], [90, 90, 10, 10, 0.2, 0.1]])
        #expect(try mAP(.detectionMAP50, dense: [dense], candidate: [dense]) == 1)
        #expect(try mAP(.detectionMAP, dense: [dense], candidate: [dense]) == 1)
        // Pruned: the first object found (rank 1, true positive), then a false positive (rank 2).
        // Precision 1 up to recall 0.5, nothing beyond: 51 of the 101 recall points.
        let pruned = Self.yolov8([[10, 10, 10, 10, 0.9, 0.0], [80, 20, 10, 10, 0.8, 0.0]])
        #expect(try mAP(.detectionMAP50, dense: [dense], candidate: [pruned]) == 51.0 / 101)
        // Shifted by 2 pixels: IoU 8·10 / (200 − 80) = 2/3, a match at 0.5…0.65 only (4 of 10).
        let shifted = Self.yolov8([[12, 10, 10, 10, 0.9, 0.0], [52, 50, 10, 10, 0.8, 0.0]])
        #expect(try mAP(.detectionMAP50, dense: [dense], candidate: [shifted]) == 1)
        #expect(abs(try mAP(.detectionMAP, dense: [dense], candidate: [shifted]) - 0.4) < 1e-12)
        // The right box with the wrong class: class 0 found nothing, class 1 had no dense box.
        let wrongClass = Self.yolov8([[10, 10, 10, 10, 0.1, 0.9]])
        #expect(try mAP(.detectionMAP50, dense: [dense], candidate: [wrongClass]) == 0)
        // Nothing detected by either model is agreement.
        let empty = Self.yolov8([[10, 10, 10, 10, 0.1, 0.1]])
        #expect(try mAP(.detectionMAP50, dense: [empty], candidate: [empty]) == 1)
    }

    @Test func yolov5LayoutMultipliesObjectness() throws {
        // [1, boxes, 5 + 2]: objectness 0.4 × class 0.5 = 0.2 < 0.25, so only the first box counts.
        let dense = Tensor(floats: [10, 10, 10, 10, 0.9, 0.9, 0.1, 50, 50, 10, 10, 0.4, 0.5, 0.1], shape: [1, 2, 7])
        let pruned = Tensor(floats: [10, 10, 10, 10, 0.9, 0.9, 0.1, 50, 50, 10, 10, 0.9, 0.9, 0.1], shape: [1, 2, 7])
        let decoding = DetectionDecoding(layout: .yolov5, classes: 2)
        // Pruned: rank 1 true positive, rank 2 false positive (precision 0.5 at recall 1): AP = 1.
        #expect(try mAP(.detectionMAP50, dense: [dense], candidate: [pruned], decoding: decoding) == 1)
        #expect(try mAP(.detectionMAP50, dense: [pruned], candidate: [dense], decoding: decoding) == 51.0 / 101)
    }

    @Test func badShapesNameTheOutput() throws {
        var accumulator = MetricAccumulator(kind: .detectionMAP50, output: "y", topK: 1, detection: Self.decoding)
        let wrong = Tensor(floats: [Float](repeating: 0, count: 14), shape: [1, 7, 2])
        #expect { try accumulator.add(dense: ["y": wrong], candidate: ["y": wrong], labels: nil) } throws: {
            "\($0)".contains("output 'y' has 7 values per box on axis 1; the yolov8 layout with 2 classes needs 6")
        }
        #expect(throws: (any Error).self) { try SweepSpec(model: "m", calibration: "c", metric: .detectionMAP).validate() }
    }

    @Test func againstLabelledBoxes() throws {
        // The label is the second object: the pruned model ranks a false positive first (score
        // 0.9), then finds it (precision 1/2 at recall 1), so AP = 0.5 at every recall point.
        let truth = [[Detection(box: Box(x1: 45, y1: 45, x2: 55, y2: 55), score: 1, classIndex: 0)]]
        let output = Self.yolov8([[10, 10, 10, 10, 0.9, 0.1], [50, 50, 10, 10, 0.8, 0.0]])
        var accumulator = MetricAccumulator(kind: .detectionMAP50, output: "y", topK: 1, detection: Self.decoding, groundTruth: truth)
        try accumulator.add(dense: ["y": output], candidate: ["y": output], labels: nil)
        #expect(accumulator.value == 0.5)
        #expect { try accumulator.add(dense: ["y": output], candidate: ["y": output], labels: nil) } throws: {
            "\($0)".contains("more samples than box labels")
        }

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("boxes.npy").path
        func read(_ rows: [[Float]], samples: Int = 1) throws -> [[Detection]] {
            try NumPy.write(TensorData(floats: rows.flatMap { $0 }, shape: [rows.count, rows.first?.count ?? 6]), to: path)
            return try DetectionDecoding.readLabels(path, samples: samples, available: 2, classes: 2)
        }
        // Sample 1 is beyond the samples used: ignored.
        #expect(try read([[0, 1, 50, 50, 10, 20], [1, 0, 5, 5, 2, 2]]) == [[Detection(box: Box(x1: 45, y1: 40, x2: 55, y2: 60), score: 1, classIndex: 1)]])
        #expect { try read([[0, 2, 50, 50, 10, 20]]) } throws: { "\($0)".contains("\(path): row 0: class 2.0 is outside 0..<2") }
        #expect { try read([[2, 0, 50, 50, 10, 20]]) } throws: { "\($0)".contains("row 0: sample 2.0 is not one of the 2 calibration samples") }
        #expect { try read([[0, 0, 50, 50, -1, 20]]) } throws: { "\($0)".contains("row 0: a box needs finite coordinates") }
        #expect { try read([[0, 0, 50, 50, 10]]) } throws: { "\($0)".contains("shape [m, 6], found [1, 5]") }
    }

    @Test func sweepFileDetectionSection() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("detector.yaml").path
        func load(_ text: String) throws -> SweepSpec {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return try SweepSpec.load(yaml: path)
        }
        let head = "model: m.onnx\ncalibration: c.npz\nmetric: detection-map\n"
        let spec = try load(head + "detection:\n  layout: yolov5\n  classes: 3\n  iou: 0.6\n")
        #expect(spec.detection == DetectionDecoding(layout: .yolov5, classes: 3, confidence: 0.25, iou: 0.6))
        #expect { try load(head) } throws: { "\($0)".contains("needs a detection section") }
        #expect { try load(head + "detection:\n  layout: yolov8\n  classes: 3\n  nms: 0.5\n") } throws: { "\($0)".contains("nms") }
        #expect { try load(head + "detection:\n  layout: yolov9\n  classes: 3\n") } throws: { "\($0)".contains("yolov9") }
        #expect { try load(head + "detection:\n  layout: yolov8\n  classes: 3\n  confidence: 1.5\n") } throws: {
            "\($0)".contains("detection.confidence") && "\($0)".contains("1.5")
        }
    }

    /// Many overlapping boxes in two images, three classes; the pruned output is the dense one
    /// with noise. Lopper's decoding, NMS and mAP match the numpy reference's.
    @Test(.enabled(if: Reference.isAvailable)) func matchesNumpyReference() throws {
        let classes = 3, anchors = 60, fields = 4 + classes
        var random = SeededGenerator(seed: 5)
        var dense: [Float] = [], pruned: [Float] = []
        for _ in 0..<2 {
            var image = [Float](repeating: 0, count: fields * anchors)
            for a in 0..<anchors {
                let values: [Float] = [Float.random(in: 10...90, using: &random), Float.random(in: 10...90, using: &random),
                                       Float.random(in: 5...30, using: &random), Float.random(in: 5...30, using: &random)]
                    + random.floats(classes, in: 0...1)
                for f in 0..<fields { image[f * anchors + a] = values[f] }
            }
            dense += image
            pruned += image.enumerated().map { index, v in
                index < 4 * anchors ? v + Float.random(in: -3...3, using: &random) : min(1, max(0, v + Float.random(in: -0.2...0.2, using: &random)))
            }
        }
        let shape = [2, fields, anchors]
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let densePath = directory.appendingPathComponent("dense.npy").path, prunedPath = directory.appendingPathComponent("pruned.npy").path
        try NumPy.write(TensorData(floats: dense, shape: shape), to: densePath)
        try NumPy.write(TensorData(floats: pruned, shape: shape), to: prunedPath)
        let decoding = DetectionDecoding(layout: .yolov8, classes: classes, confidence: 0.5, iou: 0.5)
        let reference = try Reference.call(["detection", densePath, prunedPath, "--layout", "yolov8", "--classes", "3",
                                            "--conf", "0.5", "--iou", "0.5"], script: "metric_reference.py")
        let denseTensor = Tensor(floats: dense, shape: shape), prunedTensor = Tensor(floats: pruned, shape: shape)
        let map50 = try mAP(.detectionMAP50, dense: [denseTensor], candidate: [prunedTensor], decoding: decoding)
        let map = try mAP(.detectionMAP, dense: [denseTensor], candidate: [prunedTensor], decoding: decoding)
        #expect((reference["dense_boxes"] as? Int ?? 0) > 20, "the example must exercise NMS and matching: \(reference)")
        #expect(abs(map50 - (reference["map50"] as? Double ?? -1)) < 1e-9, "\(map50) vs \(reference)")
        #expect(abs(map - (reference["map"] as? Double ?? -1)) < 1e-9, "\(map) vs \(reference)")
        #expect(map < map50 && map50 < 1, "noise must cost agreement: \(map50), \(map)")
    }
}
