/// Tests on eight bytes at once, for scans that look for a rare byte class in short ASCII text
/// (header values, log fields). A loop that tests byte by byte spends about eight
/// instructions a byte; a word costs about as much as one byte, then falls back to the byte
/// loop only when it holds a candidate.
///
/// Each test answers "does some byte of the word ..." exactly; which byte it was is left to
/// the byte loop, because a borrow may mark a neighbour too.
public enum ByteWords {
    /// Eight copies of `byte`.
    @inlinable @inline(__always)
    public static func broadcast(_ byte: UInt8) -> UInt64 { UInt64(byte) &* 0x0101_0101_0101_0101 }

    /// Non-zero when some byte of `word` is below `limit` (`limit` at most 128).
    @inlinable @inline(__always)
    public static func anyBelow(_ limit: UInt8, in word: UInt64) -> UInt64 {
        (word &- broadcast(limit)) & ~word & 0x8080_8080_8080_8080
    }

    /// Non-zero when some byte of `word` equals `byte`.
    @inlinable @inline(__always)
    public static func anyEqual(_ byte: UInt8, in word: UInt64) -> UInt64 {
        anyBelow(1, in: word ^ broadcast(byte))
    }

    /// Non-zero when some byte of `word` is 0x80 or above (not ASCII).
    @inlinable @inline(__always)
    public static func anyHigh(_ word: UInt64) -> UInt64 { word & 0x8080_8080_8080_8080 }

    /// The eight bytes at `offset` of `base`, at any alignment.
    @inlinable @inline(__always)
    public static func load(_ base: UnsafeRawPointer, at offset: Int) -> UInt64 {
        base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    }
}

extension ASCII {
    /// Whether every byte of `bytes[range]` may stand in a field value (``isFieldValue(_:)``),
    /// eight at a time while no word holds a control byte.
    static func isFieldValue(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard let base = bytes.baseAddress else { return range.isEmpty }
        var index = range.lowerBound
        while index &+ 8 <= range.upperBound {
            let word = ByteWords.load(base, at: index)
            // Tabs are controls too, so a word with one goes through the byte test.
            if ByteWords.anyBelow(0x20, in: word) | ByteWords.anyEqual(0x7F, in: word) != 0 {
                for offset in index..<(index &+ 8) where !isFieldValue(bytes[offset]) { return false }
            }
            index &+= 8
        }
        while index < range.upperBound {
            if !isFieldValue(bytes[index]) { return false }
            index &+= 1
        }
        return true
    }
}
