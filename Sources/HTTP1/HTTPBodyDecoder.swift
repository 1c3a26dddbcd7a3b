/// HTTPBodyDecoder reads a request body out of buffered input, incrementally, per its
/// ``BodyFraming``, and refuses one over the limit before buffering it.
///
/// Chunked coding (RFC 9112 §7.1) is checked strictly: hex sizes only, CRLF after every chunk's
/// data, bounded chunk-size lines (extensions are skipped, not kept) and bounded trailers
/// (parsed and discarded).
public struct HTTPBodyDecoder: Sendable {
    enum State: Sendable, Equatable {
        case fixed(remaining: Int)
        case chunkSize(value: Int, digits: Int)
        case chunkExtensionSpace
        case chunkExtension
        case chunkSizeLF
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailerLineStart
        case trailerName(length: Int)
        case trailerValue
        case trailerLF(emptyLine: Bool)
        case done
    }

    var state: State
    let limits: HTTPLimits
    /// Decoded body bytes so far.
    public private(set) var bodyBytes = 0
    /// Bytes of the current chunk-size line, or of the trailer section.
    var lineBytes = 0
    /// The size of the chunk whose size line is being read, once its digits are in.
    var pendingChunkSize = 0

    /// Creates a decoder, or throws 413 when a Content-Length is already over the limit.
    public init(framing: BodyFraming, limits: HTTPLimits) throws(HTTPError) {
        self.limits = limits
        switch framing {
        case .none:
            state = .done
        case .contentLength(let length):
            guard length <= limits.maxBodyBytes else { throw .payloadTooLarge }
            state = length == 0 ? .done : .fixed(remaining: length)
        case .chunked:
            state = .chunkSize(value: 0, digits: 0)
        }
    }

    public var isComplete: Bool { state == .done }

    /// Consumes bytes from `input`, appending decoded body bytes to `body`.
    ///
    /// - Returns: how many bytes of `input` were consumed. When ``isComplete`` is true after the
    ///   call, the bytes after that count belong to the next request.
    public mutating func decode(_ input: UnsafeRawBufferPointer, into body: inout [UInt8]) throws(HTTPError) -> Int {
        var i = 0
        let count = input.count
        while i < count {
            switch state {
            case .done:
                return i
            case .fixed(let remaining):
                let take = min(remaining, count - i)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<(i + take)]))
                bodyBytes += take
                i += take
                state = remaining == take ? .done : .fixed(remaining: remaining - take)
            case .chunkSize(let value, let digits):
                let byte = input[i]
                lineBytes += 1
                if let hex = ASCII.hexValue(byte) {
                    // Sizes past the remaining budget are refused before any data is read.
                    let (shifted, overflow) = value.multipliedReportingOverflow(by: 16)
                    if overflow || shifted + hex > limits.maxBodyBytes - bodyBytes { throw .payloadTooLarge }
                    state = .chunkSize(value: shifted + hex, digits: digits + 1)
                } else if digits == 0 {
                    throw .badRequest("invalid chunk size")
                } else if byte == ASCII.cr {
                    pendingChunkSize = value
                    state = .chunkSizeLF
                } else if byte == UInt8(ascii: ";") {
                    pendingChunkSize = value
                    state = .chunkExtension
                } else if byte == ASCII.space || byte == ASCII.tab {
                    // BWS, allowed only before a ";" (RFC 9112 §7.1.1): "5 6" is not a size.
                    pendingChunkSize = value
                    state = .chunkExtensionSpace
                } else {
                    throw .badRequest("invalid chunk size")
                }
                i += 1
                if lineBytes > limits.maxChunkLineBytes { throw .badRequest("chunk size line too long") }
            case .chunkExtensionSpace:
                let byte = input[i]
                lineBytes += 1
                if byte == UInt8(ascii: ";") {
                    state = .chunkExtension
                } else if byte != ASCII.space && byte != ASCII.tab {
                    throw .badRequest("invalid chunk size")
                }
                i += 1
                if lineBytes > limits.maxChunkLineBytes { throw .badRequest("chunk size line too long") }
            case .chunkExtension:
                let byte = input[i]
                lineBytes += 1
                if byte == ASCII.cr {
                    state = .chunkSizeLF
                } else if !ASCII.isFieldValue(byte) {
                    throw .badRequest("invalid chunk extension")
                }
                i += 1
                if lineBytes > limits.maxChunkLineBytes { throw .badRequest("chunk size line too long") }
            case .chunkSizeLF:
                guard input[i] == ASCII.lf else { throw .badRequest("chunk size line not terminated by CRLF") }
                i += 1
                lineBytes = 0
                if pendingChunkSize == 0 {
                    state = .trailerLineStart
                } else {
                    state = .chunkData(remaining: pendingChunkSize)
                }
            case .chunkData(let remaining):
                let take = min(remaining, count - i)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<(i + take)]))
                bodyBytes += take
                i += take
                state = remaining == take ? .chunkDataCR : .chunkData(remaining: remaining - take)
            case .chunkDataCR:
                guard input[i] == ASCII.cr else { throw .badRequest("chunk data not followed by CRLF") }
                i += 1
                state = .chunkDataLF
            case .chunkDataLF:
                guard input[i] == ASCII.lf else { throw .badRequest("chunk data not followed by CRLF") }
                i += 1
                state = .chunkSize(value: 0, digits: 0)
            case .trailerLineStart:
                let byte = input[i]
                try countTrailerByte()
                if byte == ASCII.cr {
                    state = .trailerLF(emptyLine: true)
                } else if ASCII.isToken(byte) {
                    state = .trailerName(length: 1)
                } else {
                    throw .badRequest("invalid trailer field")
                }
                i += 1
            case .trailerName(let length):
                let byte = input[i]
                try countTrailerByte()
                if byte == ASCII.colon {
                    state = .trailerValue
                } else if ASCII.isToken(byte) {
                    state = .trailerName(length: length + 1)
                } else {
                    throw .badRequest("invalid trailer field")
                }
                i += 1
            case .trailerValue:
                let byte = input[i]
                try countTrailerByte()
                if byte == ASCII.cr {
                    state = .trailerLF(emptyLine: false)
                } else if !ASCII.isFieldValue(byte) {
                    throw .badRequest("invalid trailer field")
                }
                i += 1
            case .trailerLF(let emptyLine):
                guard input[i] == ASCII.lf else { throw .badRequest("trailer line not terminated by CRLF") }
                try countTrailerByte()
                i += 1
                state = emptyLine ? .done : .trailerLineStart
            }
        }
        return i
    }

    private mutating func countTrailerByte() throws(HTTPError) {
        lineBytes += 1
        if lineBytes > limits.maxHeaderBytes { throw .headerFieldsTooLarge }
    }
}
