#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// InputBuffer holds bytes read from a connection and not yet parsed: `[start, end)` of a
/// manually managed allocation. A noncopyable struct kept in the connection task's locals, so
/// the hot path pays no reference counting or exclusivity checks for it.
struct InputBuffer: ~Copyable {
    private(set) var storage: UnsafeMutableRawBufferPointer
    private(set) var start = 0
    private(set) var end = 0

    init(capacity: Int) {
        storage = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    var isEmpty: Bool { start == end }
    var count: Int { end - start }
    var capacity: Int { storage.count }

    /// The unparsed bytes.
    var readable: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[start..<end])
    }

    mutating func consume(_ count: Int) {
        start += count
        if start >= end {
            start = 0
            end = 0
        }
    }

    /// Makes room to read into: moves unparsed bytes to the front, growing (up to `limit`
    /// bytes) only when the unparsed bytes fill the buffer. Returns nil when full at the limit.
    mutating func writableSpace(limit: Int) -> UnsafeMutableRawBufferPointer? {
        if end == storage.count {
            if start > 0 {
                let count = end - start
                storage.baseAddress.map { base in _ = memmove(base, base + start, count) }
                start = 0
                end = count
            } else if storage.count < limit {
                let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: min(storage.count * 2, limit), alignment: 16)
                grown.copyMemory(from: UnsafeRawBufferPointer(storage))
                storage.deallocate()
                storage = grown
            } else {
                return nil
            }
        }
        return UnsafeMutableRawBufferPointer(rebasing: storage[end...])
    }

    mutating func didWrite(_ count: Int) { end += count }

    /// Appends `bytes`, growing the buffer to hold them.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if storage.count - end < bytes.count {
            let count = end - start
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(storage.count, count + bytes.count), alignment: 16)
            if count > 0, let base = grown.baseAddress, let old = storage.baseAddress {
                base.copyMemory(from: old + start, byteCount: count)
            }
            storage.deallocate()
            storage = grown
            start = 0
            end = count
        }
        guard let base = storage.baseAddress else { return }
        (base + end).copyMemory(from: source, byteCount: bytes.count)
        end += bytes.count
    }

    /// Gives back a buffer grown past `capacity` (a pipelined request behind a streamed body)
    /// once it is empty.
    mutating func shrink(to capacity: Int) {
        guard storage.count > capacity, start == end else { return }
        storage.deallocate()
        storage = .allocate(byteCount: capacity, alignment: 16)
        start = 0
        end = 0
    }
}
