import Testing
@testable import HTTP1

@Suite("ASCII byte classes")
struct ASCIITests {
    @Test("isToken is exactly RFC 9110's tchar, for all 256 byte values")
    func tokenMatchesTheGrammar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in 0...255 {
            #expect(ASCII.isToken(UInt8(byte)) == tchar.contains(UInt8(byte)), "byte \(byte)")
        }
    }

    @Test("isRegName is exactly RFC 3986's unreserved and sub-delims, isUnreserved the first, for all 256 byte values")
    func regNameMatchesTheGrammar() {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        let subDelims = Set("!$&'()*+,;=".utf8)
        for byte in 0...255 {
            #expect(ASCII.isRegName(UInt8(byte)) == unreserved.union(subDelims).contains(UInt8(byte)), "byte \(byte)")
            #expect(ASCII.isUnreserved(UInt8(byte)) == unreserved.contains(UInt8(byte)), "byte \(byte)")
            #expect(ASCII.isHexDigit(UInt8(byte)) == Set("0123456789abcdefABCDEF".utf8).contains(UInt8(byte)), "byte \(byte)")
        }
    }

    @Test("isFieldValue allows HTAB, SP, VCHAR and obs-text, and refuses the other controls and DEL")
    func fieldValueMatchesTheGrammar() {
        for byte in 0...255 {
            let allowed = byte == 0x09 || (0x20...0x7E).contains(byte) || byte >= 0x80
            #expect(ASCII.isFieldValue(UInt8(byte)) == allowed, "byte \(byte)")
        }
    }
}

@Suite("firstLF")
struct FirstLFTests {
    @Test("finds the first LF at or after the start, at every position and alignment, like a byte loop")
    func matchesAByteLoop() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...40 {
            for _ in 0..<20 {
                // Bytes near LF (0x09, 0x0A, 0x0B, 0x8A) to catch carries between bytes.
                let bytes = (0..<length).map { _ in [0x0A, 0x09, 0x0B, 0x8A, 0x00, 0xFF, 0x41][Int(generator.next() % 7)] as UInt8 }
                bytes.withUnsafeBytes { raw in
                    for from in 0...length {
                        let expected = (from..<length).first { bytes[$0] == 0x0A }
                        let found = HTTPRequestParser.firstLF(raw, from: from)
                        if found != expected { Issue.record("\(bytes) from \(from): \(String(describing: found))") }
                    }
                }
            }
        }
    }
}
