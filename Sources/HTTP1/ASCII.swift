/// Byte classes of RFC 9110 §5.6.2 and §5.5, as bit masks and comparisons so the hot loops do
/// no memory access per byte.
@usableFromInline
enum ASCII {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")

    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    ///
    /// As two 64-bit masks (bytes 0-63 and 64-127) rather than a `static let` table: a global
    /// table costs a `swift_once` call on every access the optimizer does not hoist, which was
    /// about 60 calls (500 instructions) per request. `ASCIITests` checks the masks against
    /// the list above.
    static var tokenMaskLow: UInt64 { 0x03ff_6cfa_0000_0000 }
    static var tokenMaskHigh: UInt64 { 0x57ff_ffff_c7ff_fffe }

    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool { isIn(byte, low: tokenMaskLow, high: tokenMaskHigh) }

    /// Whether `byte` is in the class with bit `b` of `low` for bytes b below 64 and of `high`
    /// for bytes 64 + b below 128.
    @inline(__always)
    static func isIn(_ byte: UInt8, low: UInt64, high: UInt64) -> Bool {
        let mask = byte < 64 ? low : (byte < 128 ? high : 0)
        return (mask >> UInt64(byte & 63)) & 1 != 0
    }

    /// unreserved / sub-delims of RFC 3986 §2.2, §2.3: the bytes of a reg-name other than
    /// pct-encoded (§3.2.2), as masks like `isToken`'s. `ASCIITests` checks them against the list.
    /// ALPHA / DIGIT / "-" / "." / "_" / "~" / "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
    static var regNameMaskLow: UInt64 { 0x2bff_7fd2_0000_0000 }
    static var regNameMaskHigh: UInt64 { 0x47ff_fffe_87ff_fffe }

    @inline(__always)
    static func isRegName(_ byte: UInt8) -> Bool { isIn(byte, low: regNameMaskLow, high: regNameMaskHigh) }

    /// unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3)
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        default: isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") < 26
        }
    }

    @inline(__always)
    static func isHexDigit(_ byte: UInt8) -> Bool { isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") < 6 }

    /// field-vchar / SP / HTAB, obs-text included: what a field value may hold. NUL, CR, LF and
    /// the other controls are refused (RFC 9110 §5.5).
    @inline(__always)
    static func isFieldValue(_ byte: UInt8) -> Bool { byte >= 0x20 ? byte != 0x7F : byte == 0x09 }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

extension String {
    /// A string from raw bytes; bytes that are not UTF-8 become U+FFFD.
    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        self = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A lowercased string from token bytes (already checked to be ASCII).
    init(lowercasedToken bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        self = String(unsafeUninitializedCapacity: range.count) { out in
            var i = 0
            for index in range {
                out[i] = ASCII.lowercased(bytes[index])
                i += 1
            }
            return i
        }
    }
}
