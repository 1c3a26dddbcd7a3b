@testable import HTTP1

/// Small limits so the size rules can be exercised with short literals.
let smallLimits = HTTPLimits(maxHeaderBytes: 256, maxRequestLineBytes: 64, maxHeaderCount: 5, maxBodyBytes: 100)

/// Calls the parser on a byte array.
func parse(
    _ bytes: [UInt8], scanFrom: Int = 0, limits: HTTPLimits = HTTPLimits()
) -> HTTPRequestParser.HeadResult {
    bytes.withUnsafeBytes { HTTPRequestParser.parseHead($0, scanFrom: scanFrom, limits: limits) }
}

/// Calls the parser on the UTF-8 bytes of a string.
func parse(
    _ text: String, scanFrom: Int = 0, limits: HTTPLimits = HTTPLimits()
) -> HTTPRequestParser.HeadResult {
    parse(Array(text.utf8), scanFrom: scanFrom, limits: limits)
}

extension HTTPRequestParser.HeadResult {
    /// The head and length of a `.complete` result, or nil.
    var complete: (head: HTTPRequestHead, length: Int)? {
        if case .complete(let head, let length) = self { return (head, length) }
        return nil
    }

    /// The head of a `.complete` result, or nil.
    var head: HTTPRequestHead? { complete?.head }

    /// The error of a `.failure` result, or nil.
    var error: HTTPError? {
        if case .failure(let error) = self { return error }
        return nil
    }

    /// The status of a `.failure` result, or nil.
    var status: Int? { error?.status }

    /// The resume offset of an `.incomplete` result, or nil.
    var resumeAt: Int? {
        if case .incomplete(let resumeAt) = self { return resumeAt }
        return nil
    }
}

/// Feeds `bytes` to the parser in growing prefixes, cut at `cuts` (offsets, ascending), passing
/// each `.incomplete` result's `resumeAt` back as `scanFrom`. Returns the first result that is not
/// `.incomplete`, or the last result when the whole input was fed.
func parseIncrementally(
    _ bytes: [UInt8], cuts: [Int], limits: HTTPLimits = HTTPLimits()
) -> HTTPRequestParser.HeadResult {
    var scanFrom = 0
    var result = HTTPRequestParser.HeadResult.incomplete(resumeAt: 0)
    for end in cuts + [bytes.count] where end > 0 && end <= bytes.count {
        result = parse(Array(bytes[0..<end]), scanFrom: scanFrom, limits: limits)
        guard case .incomplete(let resumeAt) = result else { return result }
        scanFrom = resumeAt
    }
    return result
}

/// Feeds `bytes` to the parser one byte at a time (see ``parseIncrementally(_:cuts:limits:)``).
func parseByteByByte(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) -> HTTPRequestParser.HeadResult {
    parseIncrementally(bytes, cuts: Array(1..<max(bytes.count, 1)), limits: limits)
}

/// Runs a decoder over `input` split into pieces of `pieceSize` bytes (the whole input at once
/// when nil), the way a connection hands it buffered input: unconsumed bytes stay at the front
/// and the next read is appended. Returns the decoded body and how many input bytes were consumed
/// in total; stops at completion.
func decodeBody(
    _ input: [UInt8], framing: BodyFraming, limits: HTTPLimits = smallLimits, pieceSize: Int? = nil
) throws(HTTPError) -> (body: [UInt8], consumed: Int, complete: Bool) {
    var decoder = try HTTPBodyDecoder(framing: framing, limits: limits)
    var body: [UInt8] = []
    var pending: [UInt8] = []
    var consumed = 0
    var offset = 0
    let step = max(pieceSize ?? input.count, 1)
    while !decoder.isComplete && offset < input.count {
        let end = min(offset + step, input.count)
        pending.append(contentsOf: input[offset..<end])
        offset = end
        let used = try pending.withUnsafeBytes { raw in
            Result { () throws(HTTPError) -> Int in try decoder.decode(raw, into: &body) }
        }.get()
        pending.removeFirst(used)
        consumed += used
    }
    return (body, consumed, decoder.isComplete)
}

/// Runs a decoder over `input` in one call and returns the error it throws, or nil.
func decodeError(_ input: String, framing: BodyFraming = .chunked, limits: HTTPLimits = smallLimits) -> HTTPError? {
    do {
        _ = try decodeBody(Array(input.utf8), framing: framing, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// The UTF-8 bytes of a string.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
