import Testing
@testable import HTTP1

@Suite("Eight-byte scans")
struct ByteWordsTests {
    /// A word of `filler` bytes with `byte` at `position` (memory order).
    static func word(_ byte: UInt8, at position: Int, filler: UInt8) -> UInt64 {
        var bytes = [UInt8](repeating: filler, count: 8)
        bytes[position] = byte
        return bytes.withUnsafeBytes { ByteWords.load($0.baseAddress!, at: 0) }
    }

    @Test("each test sees every byte value at every position, beside fillers that could borrow", arguments: [0x00, 0x41, 0x7F, 0x80, 0xFF] as [UInt8])
    func everyByteAtEveryPosition(filler: UInt8) {
        for position in 0..<8 {
            for value in 0...255 {
                let byte = UInt8(value)
                let word = Self.word(byte, at: position, filler: filler)
                let bytes = [UInt8](repeating: filler, count: 7) + [byte]
                #expect((ByteWords.anyBelow(0x20, in: word) != 0) == bytes.contains { $0 < 0x20 }, "\(byte) at \(position)")
                #expect((ByteWords.anyEqual(0x22, in: word) != 0) == bytes.contains(0x22), "\(byte) at \(position)")
                #expect((ByteWords.anyEqual(0x7F, in: word) != 0) == bytes.contains(0x7F), "\(byte) at \(position)")
                #expect((ByteWords.anyHigh(word) != 0) == bytes.contains { $0 >= 0x80 }, "\(byte) at \(position)")
            }
        }
    }

    @Test("random words agree with a byte-by-byte reference")
    func randomWords() {
        var generator = SystemRandomNumberGenerator()
        // Bytes drawn mostly near the boundaries the tests use.
        let interesting: [UInt8] = [0x00, 0x01, 0x09, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F, 0x80, 0xE2, 0xFF]
        for _ in 0..<50_000 {
            let bytes = (0..<8).map { _ in
                Bool.random(using: &generator) ? interesting.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            let word = bytes.withUnsafeBytes { ByteWords.load($0.baseAddress!, at: 0) }
            for limit in [1, 0x20, 0x41, 0x80] as [UInt8] {
                if (ByteWords.anyBelow(limit, in: word) != 0) != bytes.contains(where: { $0 < limit }) {
                    Issue.record("anyBelow(\(limit)) wrong for \(bytes)")
                    return
                }
            }
            for target in [0x00, 0x22, 0x5C, 0x7F, 0xE2] as [UInt8] {
                if (ByteWords.anyEqual(target, in: word) != 0) != bytes.contains(target) {
                    Issue.record("anyEqual(\(target)) wrong for \(bytes)")
                    return
                }
            }
        }
    }

    @Test("a field-value range scan agrees with the byte test, at every offset and length")
    func fieldValueRanges() {
        var generator = SystemRandomNumberGenerator()
        let bad: [UInt8] = [0x00, 0x0A, 0x0D, 0x1F, 0x7F]
        for _ in 0..<3_000 {
            var bytes = (0..<40).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            // Tabs and obs-text are allowed and must not be mistaken for bad bytes.
            for _ in 0..<Int.random(in: 0...3, using: &generator) {
                bytes[Int.random(in: 0..<40, using: &generator)] = Bool.random(using: &generator) ? 0x09 : 0xC3
            }
            if Bool.random(using: &generator) {
                bytes[Int.random(in: 0..<40, using: &generator)] = bad.randomElement(using: &generator)!
            }
            let lower = Int.random(in: 0...40, using: &generator)
            let upper = Int.random(in: lower...40, using: &generator)
            let expected = bytes[lower..<upper].allSatisfy(ASCII.isFieldValue)
            let scanned = bytes.withUnsafeBytes { ASCII.isFieldValue($0, lower..<upper) }
            if scanned != expected {
                Issue.record("\(bytes[lower..<upper]): \(scanned), expected \(expected)")
                return
            }
        }
    }

    @Test("a response header value with a control byte past the first word is still refused")
    func serializerRefusesLateControls() {
        for position in 0..<24 {
            var value = Array(repeating: UInt8(ascii: "v"), count: 24)
            value[position] = 0x0A
            var buffer: [UInt8] = []
            let skipped = HTTPResponseSerializer.writeHead(
                status: 200, headers: HTTPHeaders([("X-Echo", String(decoding: value, as: UTF8.self))]),
                contentLength: 0, date: Array("Thu, 01 Jan 1970 00:00:00 GMT".utf8), connection: nil, into: &buffer)
            #expect(skipped == 1, "LF at \(position)")
            #expect(!String(decoding: buffer, as: UTF8.self).contains("X-Echo"), "LF at \(position)")
        }
    }
}
