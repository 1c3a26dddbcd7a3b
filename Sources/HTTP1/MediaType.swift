/// MediaType reads Content-Type values (RFC 9110 §8.3.1).
public enum MediaType {
    /// Whether the field value `value` is the media type `lowercased` (`type/subtype`, in
    /// lowercase): optional whitespace, the type and subtype compared case-insensitively and
    /// nothing else, then any well-formed parameters, which are not compared.
    ///
    ///     media-type = type "/" subtype parameters
    ///     parameters = *( OWS ";" OWS [ parameter ] )
    ///     parameter  = token "=" ( token / quoted-string )
    public static func value(_ value: String, is lowercased: String) -> Bool {
        var value = value  // withUTF8 is mutating; a native string is not copied
        return value.withUTF8 { bytes in
            var i = 0
            while i < bytes.count, isOWS(bytes[i]) { i += 1 }
            for expected in lowercased.utf8 {
                guard i < bytes.count, ASCII.lowercased(bytes[i]) == expected else { return false }
                i += 1
            }
            while true {
                while i < bytes.count, isOWS(bytes[i]) { i += 1 }
                if i == bytes.count { return true }
                guard bytes[i] == UInt8(ascii: ";") else { return false }
                i += 1
                while i < bytes.count, isOWS(bytes[i]) { i += 1 }
                if i == bytes.count || bytes[i] == UInt8(ascii: ";") { continue }
                let nameStart = i
                while i < bytes.count, ASCII.isToken(bytes[i]) { i += 1 }
                guard i > nameStart, i < bytes.count, bytes[i] == UInt8(ascii: "=") else { return false }
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
                    // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
                    i += 1
                    while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                        if bytes[i] == UInt8(ascii: "\\") { i += 1 }
                        guard i < bytes.count, ASCII.isFieldValue(bytes[i]) else { return false }
                        i += 1
                    }
                    guard i < bytes.count else { return false }
                    i += 1
                } else {
                    let valueStart = i
                    while i < bytes.count, ASCII.isToken(bytes[i]) { i += 1 }
                    guard i > valueStart else { return false }
                }
            }
        }
    }

    @inline(__always)
    static func isOWS(_ byte: UInt8) -> Bool { byte == ASCII.space || byte == ASCII.tab }
}
