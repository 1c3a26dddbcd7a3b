/// HTTPHeaders is an ordered list of header fields with case-insensitive lookup by name.
///
/// Request headers come out of ``HTTPRequestParser`` with lowercased names (field names are
/// case-insensitive, RFC 9110 §5.1), so lookups on parsed requests compare bytes directly.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)

    @usableFromInline var fields: [Element]

    public init() { fields = [] }

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field called `name` with one field holding `value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        fields.append((name: name, value: value))
    }

    public mutating func remove(name: String) {
        fields.removeAll { Self.equalsIgnoringCase($0.name, name) }
    }

    /// The first value of the field called `name`, or nil.
    public subscript(name: String) -> String? {
        // By index, borrowing each name in place: `for field in fields` copied every field
        // out, a retain and a release of both its strings per field per lookup.
        for index in fields.indices where Self.equalsIgnoringCase(fields[index].name, name) {
            return fields[index].value
        }
        return nil
    }

    /// Every value of the fields called `name`, in order.
    public func values(for name: String) -> [String] {
        fields.compactMap { Self.equalsIgnoringCase($0.name, name) ? $0.value : nil }
    }

    public func contains(name: String) -> Bool { self[name] != nil }

    public func makeIterator() -> IndexingIterator<[Element]> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// ASCII case-insensitive comparison: header names are tokens, so ASCII is all there is.
    ///
    /// Lengths first, then the bytes in place: each header lookup (`x-request-id` and
    /// `user-agent` on every request) compares against every field, and the generic
    /// `elementsEqual` over two UTF-8 views cost about 300 instructions per request.
    @inlinable
    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a, b = b  // withUTF8 is mutating; native strings are not copied
        return a.withUTF8 { x in
            b.withUTF8 { y in
                for i in 0..<x.count where x[i] != y[i] {
                    guard x[i] | 0x20 == y[i] | 0x20, isLetter(x[i]) else { return false }
                }
                return true
            }
        }
    }

    @inlinable
    static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }
}
