import Foundation
import LopperModel

/// How a detector's output tensor is read into boxes (the `detection:` section of a sweep spec).
public struct DetectionDecoding: Codable, Equatable, Sendable {
    public enum Layout: String, Codable, CaseIterable, Sendable {
        /// `[N, 4 + classes, anchors]`: centre x, y, width, height, then one score per class
        /// (YOLOv8 and later; the anchor-free DFL head already decoded into boxes).
        case yolov8
        /// `[N, anchors, 5 + classes]`: centre x, y, width, height, objectness, then class
        /// probabilities; a box's score is objectness × class probability (YOLOv5).
        case yolov5
    }

    public var layout: Layout
    public var classes: Int
    /// Boxes scoring below this are dropped before NMS.
    public var confidence: Double
    /// NMS drops a box overlapping a higher-scoring box of its class by more than this IoU.
    public var iou: Double
    /// Boxes kept per image after NMS, best first.
    public var maxDetections: Int

    public init(layout: Layout, classes: Int, confidence: Double = 0.25, iou: Double = 0.45, maxDetections: Int = 300) {
        self.layout = layout
        self.classes = classes
        self.confidence = confidence
        self.iou = iou
        self.maxDetections = maxDetections
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case layout, classes, confidence, iou, maxDetections = "max_detections"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(layout: try c.decode(Layout.self, forKey: .layout), classes: try c.decode(Int.self, forKey: .classes))
        confidence = try c.decodeIfPresent(Double.self, forKey: .confidence) ?? confidence
        iou = try c.decodeIfPresent(Double.self, forKey: .iou) ?? iou
        maxDetections = try c.decodeIfPresent(Int.self, forKey: .maxDetections) ?? maxDetections
    }

    /// Checks the settings; the message names the field.
    public func validate() throws {
        guard classes >= 1 else { throw ModelError("must be at least 1", field: "detection.classes") }
        guard confidence >= 0 && confidence < 1 else { throw ModelError("must be in [0, 1), got \(confidence)", field: "detection.confidence") }
        guard iou > 0 && iou <= 1 else { throw ModelError("must be in (0, 1], got \(iou)", field: "detection.iou") }
        guard maxDetections >= 1 else { throw ModelError("must be at least 1", field: "detection.max_detections") }
    }

    /// The detections of every image of a batch output, after the confidence threshold and NMS.
    func detections(_ values: [Double], shape: [Int], output: String) throws -> [[Detection]] {
        let fields = 4 + (layout == .yolov5 ? 1 : 0) + classes
        guard shape.count == 3 else {
            throw ModelError("output '\(output)' has shape \(shape); the \(layout.rawValue) layout needs 3 axes")
        }
        let fieldAxis = layout == .yolov8 ? 1 : 2
        guard shape[fieldAxis] == fields else {
            throw ModelError("output '\(output)' has \(shape[fieldAxis]) values per box on axis \(fieldAxis); "
                             + "the \(layout.rawValue) layout with \(classes) classes needs \(fields)")
        }
        let anchors = layout == .yolov8 ? shape[2] : shape[1]
        // Element (field f of anchor a) of image n.
        let fieldStride = layout == .yolov8 ? anchors : 1, anchorStride = layout == .yolov8 ? 1 : fields
        return (0..<shape[0]).map { image in
            let base = image * anchors * fields
            var candidates: [Detection] = []
            for anchor in 0..<anchors {
                func field(_ f: Int) -> Double { values[base + f * fieldStride + anchor * anchorStride] }
                let objectness = layout == .yolov5 ? field(4) : 1
                let first = fields - classes
                var best = 0
                for c in 1..<classes where field(first + c) > field(first + best) { best = c }
                let score = objectness * field(first + best)
                guard score >= confidence else { continue }
                let (x, y, w, h) = (field(0), field(1), field(2), field(3))
                candidates.append(Detection(box: Box(x1: x - w / 2, y1: y - h / 2, x2: x + w / 2, y2: y + h / 2),
                                            score: score, classIndex: best))
            }
            return suppressed(candidates)
        }
    }

    /// Greedy per-class NMS, best score first (ties by anchor order, so the result is deterministic).
    func suppressed(_ candidates: [Detection]) -> [Detection] {
        let order = candidates.indices.sorted { candidates[$0].score > candidates[$1].score || (candidates[$0].score == candidates[$1].score && $0 < $1) }
        var kept: [Detection] = []
        for index in order {
            let candidate = candidates[index]
            if kept.contains(where: { $0.classIndex == candidate.classIndex && $0.box.iou(candidate.box) > iou }) { continue }
            kept.append(candidate)
            if kept.count == maxDetections { break }
        }
        return kept
    }
}

extension DetectionDecoding {
    /// Ground-truth boxes per calibration sample from a `.npy` of rows (sample, class, centre x,
    /// centre y, width, height), in the coordinates of the model's output boxes.
    static func readLabels(_ path: String, samples: Int, available: Int, classes: Int) throws -> [[Detection]] {
        let data = try NumPy.read(path: path)
        guard data.shape.count == 2, data.shape[1] == 6 else {
            throw ModelError("box labels must be rows of (sample, class, cx, cy, w, h): shape [m, 6], found \(data.shape)", file: path)
        }
        let values = data.doubles()
        var boxes = [[Detection]](repeating: [], count: samples)
        for row in 0..<data.shape[0] {
            let v = Array(values[(row * 6)..<(row * 6 + 6)])
            guard v[0] == v[0].rounded(), v[0] >= 0, v[0] < Double(available) else {
                throw ModelError("row \(row): sample \(v[0]) is not one of the \(available) calibration samples", file: path)
            }
            guard v[1] == v[1].rounded(), v[1] >= 0, v[1] < Double(classes) else {
                throw ModelError("row \(row): class \(v[1]) is outside 0..<\(classes)", file: path)
            }
            guard v[4] >= 0, v[5] >= 0, v.allSatisfy(\.isFinite) else {
                throw ModelError("row \(row): a box needs finite coordinates and a size of 0 or more, found \(v[2...])", file: path)
            }
            guard Int(v[0]) < samples else { continue }
            boxes[Int(v[0])].append(Detection(box: Box(x1: v[2] - v[4] / 2, y1: v[3] - v[5] / 2, x2: v[2] + v[4] / 2, y2: v[3] + v[5] / 2),
                                              score: 1, classIndex: Int(v[1])))
        }
        return boxes
    }
}

struct Box: Equatable {
    var x1, y1, x2, y2: Double

    var area: Double { max(0, x2 - x1) * max(0, y2 - y1) }

    func iou(_ other: Box) -> Double {
        let w = max(0, min(x2, other.x2) - max(x1, other.x1)), h = max(0, min(y2, other.y2) - max(y1, other.y1))
        let overlap = w * h, union = area + other.area - overlap
        return union > 0 ? overlap / union : 0
    }
}

struct Detection: Equatable {
    var box: Box
    var score: Double
    var classIndex: Int
}

/// Mean average precision of predicted detections against reference ones (the dense model's,
/// as pseudo ground truth), COCO style: per class, predictions ranked by score are matched
/// greedily to the unmatched reference box of highest IoU at or above the threshold; AP is the
/// area under the precision envelope sampled at 101 recall points; mAP averages classes with a
/// reference box, then thresholds. No reference and no prediction at all counts as agreement (1).
enum MeanAveragePrecision {
    static let coarse: [Double] = [0.5]
    /// 0.5, 0.55, …, 0.95.
    static let coco: [Double] = (0..<10).map { 0.5 + 0.05 * Double($0) }

    static func value(predicted: [[Detection]], reference: [[Detection]], thresholds: [Double]) -> Double {
        let classes = Set((predicted + reference).joined().map(\.classIndex)).sorted()
        let scored = classes.filter { c in reference.contains { $0.contains { $0.classIndex == c } } }
        guard !scored.isEmpty else { return classes.isEmpty ? 1 : 0 }
        var total = 0.0
        for threshold in thresholds {
            total += scored.reduce(0) { $0 + averagePrecision(ofClass: $1, predicted, reference, threshold) } / Double(scored.count)
        }
        return total / Double(thresholds.count)
    }

    static func averagePrecision(ofClass c: Int, _ predicted: [[Detection]], _ reference: [[Detection]], _ threshold: Double) -> Double {
        var ranked: [(image: Int, detection: Detection, order: Int)] = []
        for (image, detections) in predicted.enumerated() {
            for detection in detections where detection.classIndex == c { ranked.append((image, detection, ranked.count)) }
        }
        ranked.sort { $0.detection.score > $1.detection.score || ($0.detection.score == $1.detection.score && $0.order < $1.order) }
        let truth = reference.map { $0.filter { $0.classIndex == c }.map(\.box) }
        let positives = truth.reduce(0) { $0 + $1.count }
        var matched = truth.map { Array(repeating: false, count: $0.count) }
        var truePositives = 0
        var precision: [Double] = [], recall: [Double] = []
        for (rank, entry) in ranked.enumerated() {
            var best = -1, bestIoU = threshold
            for (j, box) in truth[entry.image].enumerated() where !matched[entry.image][j] {
                let overlap = box.iou(entry.detection.box)
                if overlap >= bestIoU && (best < 0 || overlap > bestIoU) { best = j; bestIoU = overlap }
            }
            if best >= 0 { matched[entry.image][best] = true; truePositives += 1 }
            precision.append(Double(truePositives) / Double(rank + 1))
            recall.append(Double(truePositives) / Double(positives))
        }
        // Precision envelope: the best precision at this recall or beyond.
        for i in precision.indices.reversed().dropFirst() { precision[i] = max(precision[i], precision[i + 1]) }
        var area = 0.0
        for point in 0...100 {
            let level = Double(point) / 100
            if let i = recall.firstIndex(where: { $0 >= level }) { area += precision[i] }
        }
        return area / 101
    }
}
