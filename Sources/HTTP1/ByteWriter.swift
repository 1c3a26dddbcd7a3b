/// ByteWriter copies bytes into memory reserved beforehand, with no capacity or uniqueness
/// checks per piece. Used through ``Swift/Array/appendBytes(atMost:_:)``.
///
/// A response head or a log line is a dozen small pieces; appending each to an `[UInt8]` costs
/// about 90 instructions (uniqueness, capacity, the generic copy), writing it here about 15.
public struct ByteWriter: ~Copyable {
    @usableFromInline let base: UnsafeMutablePointer<UInt8>
    @usableFromInline let capacity: Int
    /// Bytes written so far.
    public var count: Int { written }
    @usableFromInline var written: Int

    @inlinable
    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
        written = 0
    }

    @inlinable @inline(__always)
    public mutating func write(_ byte: UInt8) {
        precondition(count < capacity, "ByteWriter overflow")
        base[count] = byte
        written += 1
    }

    @inlinable @inline(__always)
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= capacity - count, "ByteWriter overflow")
        guard let source = bytes.baseAddress else { return }
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        written += bytes.count
    }

    @inlinable @inline(__always)
    public mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        write(UnsafeRawBufferPointer(bytes))
    }

    @inlinable @inline(__always)
    public mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { write($0) }
    }

    @inlinable @inline(__always)
    public mutating func write(utf8 text: String) {
        text.withUTF8Bytes { write($0) }
    }

    @inlinable @inline(__always)
    public mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Lets `body` fill exactly `byteCount` bytes in place.
    @inlinable @inline(__always)
    public mutating func write(byteCount: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Void) {
        precondition(byteCount >= 0 && byteCount <= capacity - count, "ByteWriter overflow")
        body(base + count)
        written += byteCount
    }

    /// The decimal digits of `value` (at most 20 bytes).
    @inlinable
    public mutating func writeDecimal(_ value: UInt64) {
        if value < 10 {
            write(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        var digits = 2
        var limit: UInt64 = 100
        while value >= limit && digits < 20 {
            digits += 1
            limit = limit &* 10
        }
        precondition(digits <= capacity - count, "ByteWriter overflow")
        var rest = value
        var index = count + digits
        repeat {
            index -= 1
            base[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        } while rest > 0
        written += digits
    }
}

extension Array where Element == UInt8 {
    /// Appends what `body` writes, at most `maxCount` bytes, with one capacity check for all of it.
    @inlinable
    public mutating func appendBytes<R>(atMost maxCount: Int, _ body: (inout ByteWriter) -> R) -> R {
        var result: R?
        append(addingCapacity: maxCount) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                var writer = ByteWriter(base: buffer.baseAddress! + initialized, capacity: buffer.count - initialized)
                result = body(&writer)
                initialized += writer.count
            }
        }
        return result!
    }
}

extension String {
    /// Calls `body` with the string's UTF-8 bytes in place. `withUTF8` is mutating, so calling
    /// it on a parameter needs a local copy, which costs a retain and a release; a native
    /// string (every string on Linux) lends its storage without one.
    @inlinable @inline(__always)
    public func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return try copy.withUTF8(body)
    }
}
