/// PrometheusText parses and checks the Prometheus text exposition format (version 0.0.4), as
/// a scraper reads it: every line a comment or a well-formed sample, each family's TYPE before
/// its samples and its samples together, label values properly escaped, and histograms
/// consistent (cumulative buckets ending in `+Inf`, equal to `_count`, with a `_sum`).
struct PrometheusText {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Family {
        var name: String
        var type: String
        var help: String?
        var samples: [Sample] = []
    }

    struct Invalid: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    private(set) var families: [String: Family] = [:]

    init(_ text: String) throws {
        var helps: [String: String] = [:]
        var current: String?
        var finished: Set<String> = []
        guard text.isEmpty || text.hasSuffix("\n") else { throw Invalid(line: 0, reason: "no final newline") }
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = offset + 1
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }
                let name = String(parts[2])
                guard Self.isMetricName(name) else { throw Invalid(line: number, reason: "bad metric name \(name)") }
                if parts[1] == "HELP" {
                    guard helps[name] == nil else { throw Invalid(line: number, reason: "second HELP for \(name)") }
                    helps[name] = parts.count > 3 ? String(parts[3]) : ""
                } else {
                    let type = parts.count > 3 ? String(parts[3]) : ""
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(type) else {
                        throw Invalid(line: number, reason: "bad type \(type)")
                    }
                    guard families[name] == nil else { throw Invalid(line: number, reason: "second TYPE for \(name)") }
                    if let current { finished.insert(current) }
                    families[name] = Family(name: name, type: type)
                    current = name
                }
                continue
            }
            guard !line.isEmpty else { throw Invalid(line: number, reason: "empty line") }
            let sample = try Self.sample(line, number)
            let family = families.keys.first { sample.name == $0 || Self.isPart(sample.name, of: $0, families[$0]?.type) }
                ?? sample.name
            if families[family] == nil {
                // A sample with no TYPE line is untyped, a family of its own.
                if let current { finished.insert(current) }
                families[family] = Family(name: family, type: "untyped")
                current = family
            }
            guard family == current else {
                throw Invalid(line: number, reason: finished.contains(family)
                    ? "samples of \(family) are not together" : "sample of \(family) before its TYPE")
            }
            families[family]?.samples.append(sample)
        }
        for (name, help) in helps {
            guard families[name] != nil else { throw Invalid(line: 0, reason: "HELP for \(name) without TYPE") }
            families[name]?.help = help
        }
        for family in families.values where family.type == "histogram" {
            try Self.checkHistogram(family)
        }
    }

    /// `x_bucket`, `x_sum`, `x_count` belong to histogram `x`.
    static func isPart(_ sample: String, of family: String, _ type: String?) -> Bool {
        guard type == "histogram" || type == "summary" else { return false }
        return ["_bucket", "_sum", "_count"].contains { sample == family + $0 }
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { isWordByte($0) || $0 == UInt8(ascii: ":") }
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy(isWordByte)
    }

    static func isWordByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
    }

    static func value(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
    }

    /// `name{label="value",...} value [timestamp]`
    static func sample(_ line: Substring, _ number: Int) throws -> Sample {
        let bytes = Array(line.utf8)
        var index = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: "{"), bytes[index] != UInt8(ascii: " ") { index += 1 }
        let name = String(decoding: bytes[..<index], as: UTF8.self)
        guard isMetricName(name) else { throw Invalid(line: number, reason: "bad metric name \(name)") }
        var labels: [String: String] = [:]
        if index < bytes.count, bytes[index] == UInt8(ascii: "{") {
            index += 1
            while index < bytes.count, bytes[index] != UInt8(ascii: "}") {
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "=") { index += 1 }
                let label = String(decoding: bytes[start..<index], as: UTF8.self)
                guard isLabelName(label), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") else {
                    throw Invalid(line: number, reason: "bad label \(label)")
                }
                index += 2
                var value: [UInt8] = []
                while true {
                    guard index < bytes.count else { throw Invalid(line: number, reason: "unterminated label value") }
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") { break }
                    if byte == UInt8(ascii: "\\") {
                        guard index < bytes.count else { throw Invalid(line: number, reason: "bad escape") }
                        switch bytes[index] {
                        case UInt8(ascii: "\\"): value.append(UInt8(ascii: "\\"))
                        case UInt8(ascii: "\""): value.append(UInt8(ascii: "\""))
                        case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                        default: throw Invalid(line: number, reason: "bad escape")
                        }
                        index += 1
                    } else {
                        value.append(byte)
                    }
                }
                guard labels.updateValue(String(decoding: value, as: UTF8.self), forKey: label) == nil else {
                    throw Invalid(line: number, reason: "label \(label) twice")
                }
                if index < bytes.count, bytes[index] == UInt8(ascii: ",") { index += 1 }
            }
            guard index < bytes.count else { throw Invalid(line: number, reason: "unterminated labels") }
            index += 1
        }
        let rest = String(decoding: bytes[index...], as: UTF8.self)
        let fields = rest.split(separator: " ")
        guard rest.hasPrefix(" "), (1...2).contains(fields.count), let value = value(fields[0]) else {
            throw Invalid(line: number, reason: "bad value in \(line)")
        }
        if fields.count == 2, Int64(fields[1]) == nil { throw Invalid(line: number, reason: "bad timestamp") }
        return Sample(name: name, labels: labels, value: value)
    }

    static func checkHistogram(_ family: Family) throws {
        // Group by the labels other than `le`.
        var series: [[String: String]: (buckets: [(Double, Double)], sum: Double?, count: Double?)] = [:]
        for sample in family.samples {
            var key = sample.labels
            let le = key.removeValue(forKey: "le")
            var entry = series[key] ?? ([], nil, nil)
            switch sample.name {
            case family.name + "_bucket":
                guard let le, let bound = value(Substring(le)) else {
                    throw Invalid(line: 0, reason: "\(family.name): bucket without a valid le")
                }
                entry.buckets.append((bound, sample.value))
            case family.name + "_sum": entry.sum = sample.value
            case family.name + "_count": entry.count = sample.value
            default: throw Invalid(line: 0, reason: "\(family.name): stray sample \(sample.name)")
            }
            series[key] = entry
        }
        for (labels, entry) in series {
            let what = "\(family.name)\(labels)"
            guard let count = entry.count, entry.sum != nil else { throw Invalid(line: 0, reason: "\(what): no _sum or _count") }
            guard let last = entry.buckets.last, last.0 == .infinity, last.1 == count else {
                throw Invalid(line: 0, reason: "\(what): the +Inf bucket is missing or differs from _count")
            }
            for (previous, next) in zip(entry.buckets, entry.buckets.dropFirst()) {
                guard previous.0 < next.0, previous.1 <= next.1 else {
                    throw Invalid(line: 0, reason: "\(what): buckets not increasing and cumulative")
                }
            }
        }
    }

    /// The value of the one sample named `name` with these labels, if any.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        families.values.lazy.flatMap(\.samples).first { $0.name == name && $0.labels == labels }?.value
    }

    /// Every sample named `name`.
    func samples(_ name: String) -> [Sample] {
        families.values.flatMap(\.samples).filter { $0.name == name }
    }
}
