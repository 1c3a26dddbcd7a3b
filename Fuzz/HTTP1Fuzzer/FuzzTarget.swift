// libFuzzer target for the HTTP1 module: the request-head parser, the body decoder, the
// media-type check and the response serializer. It is compiled into the HTTP1 module itself
// (no SwiftPM), so internal API is reachable:
//
//   swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name HTTP1 \
//       Sources/HTTP1/*.swift Fuzz/HTTP1Fuzzer/FuzzTarget.swift -o .build-fuzz/http1-fuzzer
//
// `.ci/fuzz` builds and runs it; Fuzz/README.md describes the input layout (8 control bytes,
// then the bytes a client sends) and every property checked here. A property that fails calls
// fatalError with a message, which libFuzzer reports as a crash and saves the input.

// MARK: - Entry point

@_cdecl("LLVMFuzzerTestOneInput")
public func http1FuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= FuzzInput.controlBytes else { return 0 }
    let input = FuzzInput(UnsafeBufferPointer(start: data, count: size))
    Fuzz.run(input)
    return 0
}

// MARK: - Input layout

/// The fuzz input: 8 control bytes, then the connection's bytes (`payload`).
struct FuzzInput {
    static let controlBytes = 8

    var limits: HTTPLimits
    /// Seeds the cut points used to feed the head parser incrementally.
    var headSeed: UInt64
    /// Seeds the cut points used to feed the body decoder in pieces.
    var bodySeed: UInt64
    /// Seeds the status and fields given to the response serializer.
    var serializerSeed: UInt64
    var payload: [UInt8]

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        let c = Array(bytes[0..<Self.controlBytes])
        // 0xFF in a limit byte means the production default, anything else a small limit.
        func pick(_ byte: UInt8, _ small: (Int) -> Int, _ defaultValue: Int) -> Int {
            byte == 0xFF ? defaultValue : small(Int(byte))
        }
        let defaults = HTTPLimits()
        limits = HTTPLimits(
            maxHeaderBytes: pick(c[0], { 64 + 8 * $0 }, defaults.maxHeaderBytes),
            maxRequestLineBytes: pick(c[1], { 16 + 4 * $0 }, defaults.maxRequestLineBytes),
            maxHeaderCount: pick(c[2], { 1 + $0 }, defaults.maxHeaderCount),
            // 0xFE: as large as the configuration accepts (`--max-body-bytes 9223372036854775807`).
            maxBodyBytes: c[3] == 0xFE ? Int.max : pick(c[3], { 4 * $0 }, defaults.maxBodyBytes),
            maxChunkLineBytes: pick(c[4], { 8 + $0 }, defaults.maxChunkLineBytes)
        )
        headSeed = UInt64(c[5])
        bodySeed = UInt64(c[6])
        serializerSeed = UInt64(c[7])
        payload = Array(bytes[Self.controlBytes...])
    }
}

/// The engine's SplitMix64 (Sources/ServiceKit/Server/SplitMix64.swift, compiled in by
/// .ci/fuzz): small, deterministic, good enough to spread cut points.
extension SplitMix64 {
    init(seed: UInt64, salt: Int) { self.init(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: salt)) }
    /// A value in 0...upper.
    mutating func upTo(_ upper: Int) -> Int { Int(next() % UInt64(upper + 1)) }
    /// Up to eight ascending cut points strictly inside 0..<count.
    mutating func cuts(in count: Int) -> [Int] {
        guard count > 1 else { return [] }
        let howMany = 1 + upTo(7)
        return Set((0..<howMany).map { _ in 1 + upTo(count - 2) }).sorted()
    }
}

// MARK: - Helpers

/// Fails the run: libFuzzer sees a crash and saves the input.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("property failed: \(message())") }
}

/// Runs `body` on a heap copy of `bytes` of exactly their size, so AddressSanitizer reports any
/// read past the end (an Array's spare capacity would hide it).
func withExactCopy<R>(_ bytes: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    return body(UnsafeRawBufferPointer(copy))
}

func parseHead(_ bytes: ArraySlice<UInt8>, scanFrom: Int = 0, limits: HTTPLimits) -> HTTPRequestParser.HeadResult {
    withExactCopy(bytes) { HTTPRequestParser.parseHead($0, scanFrom: scanFrom, limits: limits) }
}

extension HTTPRequestParser.HeadResult {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}

let sizeStatuses: Set<Int> = [414, 431]

// MARK: - Properties

enum Fuzz {
    static func run(_ input: FuzzInput) {
        let limits = input.limits
        var headRNG = SplitMix64(seed: input.headSeed, salt: input.payload.count)
        var bodyRNG = SplitMix64(seed: input.bodySeed, salt: input.payload.count)
        var serializerRNG = SplitMix64(seed: input.serializerSeed, salt: input.payload.count)

        serializerNeverSplitsTheHead(input.payload, &serializerRNG)

        // The connection's loop: a head, its body, the next head... (pipelining).
        var offset = 0
        for _ in 0..<8 where offset < input.payload.count {
            let rest = input.payload[offset...]
            let result = parseHead(rest, limits: limits)
            checkHeadResult(result, rest, limits)
            incrementalFeedingAgrees(rest, whole: result, limits, &headRNG)
            guard case .complete(let head, let length) = result else { return }
            if length < rest.count {
                // What follows the head does not change it.
                let alone = parseHead(rest.prefix(length), limits: limits)
                check(alone == result, "the head alone gave \(alone), with what follows \(result)")
            }
            headRoundTrips(head, limits)
            headersSerializeCleanly(head, &serializerRNG)

            let body = rest.dropFirst(length)
            guard let consumed = checkBody(body, framing: head.framing, limits, &bodyRNG) else { return }
            offset += length + consumed
        }
    }

    // MARK: Head

    /// Leading CRLF pairs, which the parser skips (RFC 9112 §2.2).
    static func leadingEmptyLines(_ bytes: ArraySlice<UInt8>) -> Int {
        var n = 0
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex, bytes[i] == 13, bytes[i + 1] == 10 {
            n += 2
            i += 2
        }
        return n
    }

    static func checkHeadResult(_ result: HTTPRequestParser.HeadResult, _ bytes: ArraySlice<UInt8>, _ limits: HTTPLimits) {
        let leading = leadingEmptyLines(bytes)
        let b = Array(bytes)
        switch result {
        case .incomplete(let resumeAt):
            check(resumeAt >= 0 && resumeAt <= b.count, "resumeAt \(resumeAt) outside 0...\(b.count)")
            check(resumeAt == 0 || (resumeAt >= leading && b[resumeAt - 1] == 10), "resumeAt \(resumeAt) is not a line start")
            // The parser refuses rather than waiting past the limit: a bounded buffer suffices.
            check(leading < limits.maxHeaderBytes, "incomplete with \(leading) bytes of leading empty lines")
            check(b.count - leading <= limits.maxHeaderBytes + 2,
                  "incomplete with \(b.count - leading) head bytes, maxHeaderBytes \(limits.maxHeaderBytes)")
        case .complete(let head, let length):
            check(length > leading && length <= b.count, "complete length \(length) outside \(leading + 1)...\(b.count)")
            check(length - leading >= 4 && Array(b[(length - 4)..<length]) == [13, 10, 13, 10], "head does not end in CRLF CRLF")
            check(length - leading <= limits.maxHeaderBytes + 2, "head of \(length - leading) bytes over maxHeaderBytes \(limits.maxHeaderBytes)")
            for i in leading..<length where b[i] == 10 {
                check(i > leading && b[i - 1] == 13, "bare LF at \(i) in a complete head")
                if i < length - 3 {
                    check(!(b[i + 1] == 13 && b[i + 2] == 10), "empty line at \(i + 1) inside a complete head")
                }
            }
            checkHead(head, limits)
        case .failure(let error):
            check([400, 414, 417, 431, 501, 505].contains(error.status), "unexpected status \(error.status)")
            check(!error.reason.isEmpty, "empty reason")
        }
    }

    /// tchar (RFC 9110 §5.6.2), written out again rather than taken from the code under test.
    static let tokenBytes: Set<UInt8> = Set(
        Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&'*+-.^_`|~".utf8))

    static func isToken(_ byte: UInt8) -> Bool { tokenBytes.contains(byte) }

    static func trimmedLowercased(_ s: Substring) -> String {
        var t = Substring(s)
        while let f = t.first, f == " " || f == "\t" { t.removeFirst() }
        while let l = t.last, l == " " || l == "\t" { t.removeLast() }
        return String(decoding: t.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// A Content-Length value as its decimal digits without leading zeros ("0" for zero),
    /// or nil when it is not 1*DIGIT. Kept as text so values past Int.max stay distinct.
    static func contentLengthDigits(_ element: Substring) -> String? {
        let t = trimmedLowercased(element)
        guard !t.isEmpty, t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let digits = t.drop { $0 == "0" }
        return digits.isEmpty ? "0" : String(digits)
    }

    /// Whether decimal digits (no leading zeros) name a number too large for an Int.
    static func exceedsInt(_ digits: String) -> Bool {
        let max = String(Int.max)
        return digits.count > max.count || (digits.count == max.count && digits > max)
    }

    /// What the parser promises about a head it accepted.
    static func checkHead(_ head: HTTPRequestHead, _ limits: HTTPLimits) {
        check(!head.method.isEmpty && head.method.utf8.allSatisfy(isToken), "method \(head.method) is not a token")
        check(head.version == .http1_1 || head.version == .http1_0, "version \(head.version)")
        check(!head.target.isEmpty && head.target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "target has SP, controls or non-ASCII")
        check(!head.target.contains("#"), "target with a fragment")
        check(head.method.utf8.count + head.target.utf8.count + 10 <= limits.maxRequestLineBytes,
              "request line over maxRequestLineBytes \(limits.maxRequestLineBytes)")
        check(head.headers.count <= limits.maxHeaderCount, "\(head.headers.count) fields over maxHeaderCount \(limits.maxHeaderCount)")

        for (name, value) in head.headers {
            check(!name.isEmpty && name.utf8.allSatisfy { isToken($0) && !($0 >= 65 && $0 <= 90) }, "field name \(name) not a lowercase token")
            check(value.utf8.allSatisfy { $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }, "field value with a control")
            check(value.utf8.first.map { $0 != 9 && $0 != 32 } ?? true, "field value with leading OWS")
            check(value.utf8.last.map { $0 != 9 && $0 != 32 } ?? true, "field value with trailing OWS")
        }

        // Names are lowercased, so exact comparison finds a field; lookups ignore case.
        func values(_ name: String) -> [String] { head.headers.filter { $0.name == name }.map(\.value) }
        for (name, _) in head.headers {
            let mixedCase = String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
            check(head.headers.values(for: mixedCase) == values(name), "lookup of \(mixedCase) differs from \(name)")
            check(head.headers[mixedCase] == values(name).first, "subscript \(mixedCase)")
        }

        // Host (RFC 9112 §3.2): one at most, one in 1.1, and only of bytes Go's
        // httpguts.ValidHostHeader accepts (the parser checks the grammar, which is stricter).
        let hosts = values("host")
        check(hosts.count <= 1, "\(hosts.count) Host fields accepted")
        check(head.version != .http1_1 || hosts.count == 1, "HTTP/1.1 without Host accepted")
        let goHostBytes = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&()*+,-.:;=[']_~".utf8)
        check(hosts.allSatisfy { $0.utf8.allSatisfy(goHostBytes.contains) }, "Host \(hosts) accepted")

        // Framing (RFC 9112 §6.3): exactly one of none, Content-Length, chunked, decided by the fields.
        // Repeated Content-Length fields must all have the same text (as Go requires).
        let transferEncodings = values("transfer-encoding")
        let lengthValues = values("content-length")
        check(Set(lengthValues).count <= 1, "different Content-Length values \(lengthValues) accepted")
        let lengths = lengthValues.map { contentLengthDigits($0[...]) }
        switch head.framing {
        case .chunked:
            check(head.version == .http1_1, "chunked framing in HTTP/1.0")
            check(lengths.isEmpty, "chunked framing with a Content-Length")
            // One field holding `chunked` and nothing else, as Go requires.
            check(transferEncodings.map { trimmedLowercased($0[...]) } == ["chunked"],
                  "chunked framing from Transfer-Encoding \(transferEncodings)")
        case .contentLength(let n):
            check(transferEncodings.isEmpty, "Content-Length framing with a Transfer-Encoding")
            check(n > 0, "Content-Length framing of \(n)")
            // Every value is n; values too large for an Int are read as Int.max (and refused
            // whatever the limits, see checkBody).
            check(!lengths.isEmpty && lengths.allSatisfy { $0 == String(n) || (n == Int.max && $0.map(exceedsInt) == true) },
                  "Content-Length framing \(n) from values \(lengths)")
        case .none:
            check(transferEncodings.isEmpty, "no framing with a Transfer-Encoding")
            check(lengths.allSatisfy { $0 == "0" }, "no framing with Content-Length values \(lengths)")
        }

        // Content-Type (RFC 9110 §8.3.1): MediaType.value never traps, and takes a value for
        // application/json only when that is its type/subtype, whole, before any parameters.
        for value in values("content-type") {
            let json = MediaType.value(value, is: "application/json")
            let lower = trimmedLowercased(value[...])
            let rest = trimmedLowercased(lower.dropFirst("application/json".count))
            check(!json || (lower.hasPrefix("application/json") && (rest.isEmpty || rest.hasPrefix(";"))),
                  "Content-Type \(value.debugDescription) taken for application/json")
            check(json || lower != "application/json", "Content-Type \(value.debugDescription) not taken for application/json")
        }

        // Persistence (RFC 9112 §9.3).
        let connection = Set(values("connection").flatMap { $0.split(separator: ",") }.map(trimmedLowercased))
        let keepAlive = head.version == .http1_1 ? !connection.contains("close")
            : connection.contains("keep-alive") && !connection.contains("close")
        check(head.keepAlive == keepAlive, "keepAlive \(head.keepAlive) with Connection \(connection)")

        // Expect (RFC 9110 §10.1.1): 100-continue is the only expectation accepted, and it is
        // ignored in HTTP/1.0; an empty Expect expects nothing.
        let expectations = values("expect").map { trimmedLowercased(Substring($0)) }.filter { !$0.isEmpty }
        check(expectations.allSatisfy { $0 == "100-continue" }, "expectations \(expectations) accepted")
        check(head.expectsContinue == (head.version == .http1_1 && !expectations.isEmpty),
              "expectsContinue \(head.expectsContinue) with \(head.version) and Expect \(expectations)")

        // Target forms (RFC 9112 §3.2).
        let query = head.query.map { "?" + $0 } ?? ""
        if head.target.hasPrefix("/") {
            check(head.path + query == head.target, "origin-form path \(head.path) query \(query) from \(head.target)")
            check(!head.path.contains("?"), "path with a ?")
        } else if head.path == "*" && head.target == "*" {
            check(head.method == "OPTIONS" || head.method == "CONNECT", "* target for \(head.method)")
        } else if head.method == "CONNECT" && head.path == head.target {
            check(head.query == nil, "authority-form with a query")
        } else {
            let lower = head.target.lowercased()
            check(lower.hasPrefix("http://") || lower.hasPrefix("https://"), "target \(head.target) of no known form")
            check(head.path.hasPrefix("/") && !head.path.contains("?"), "absolute-form path \(head.path)")
            check(head.target.hasSuffix(head.path + query) || (head.path == "/" && head.target.hasSuffix(query)),
                  "absolute-form path \(head.path) query \(query) from \(head.target)")
        }
    }

    /// Feeding a head in pieces (the buffer growing, `resumeAt` passed back as `scanFrom`) gives
    /// what parsing the whole buffer at once gives. A piece that already fails may fail on a size
    /// limit before the rest would show a different error; it must fail all the same.
    static func incrementalFeedingAgrees(
        _ bytes: ArraySlice<UInt8>, whole: HTTPRequestParser.HeadResult, _ limits: HTTPLimits, _ rng: inout SplitMix64
    ) {
        var scanFrom = 0
        for cut in rng.cuts(in: bytes.count) {
            let prefix = bytes.prefix(cut)
            let partial = parseHead(prefix, scanFrom: scanFrom, limits: limits)
            checkHeadResult(partial, prefix, limits)
            switch partial {
            case .incomplete(let resumeAt):
                check(resumeAt >= scanFrom || resumeAt == 0, "resumeAt went back from \(scanFrom) to \(resumeAt)")
                scanFrom = resumeAt
                continue
            case .complete:
                check(partial == whole, "prefix of \(cut) bytes gave \(partial), the whole buffer \(whole)")
            case .failure(let error):
                if sizeStatuses.contains(error.status) {
                    check(whole.isFailure, "prefix of \(cut) bytes failed with \(error), the whole buffer gave \(whole)")
                } else {
                    check(partial == whole, "prefix of \(cut) bytes gave \(partial), the whole buffer \(whole)")
                }
            }
            return
        }
        let resumed = parseHead(bytes, scanFrom: scanFrom, limits: limits)
        check(resumed == whole, "resumed at \(scanFrom): \(resumed); whole buffer at once: \(whole)")
    }

    /// A parsed head written back canonically parses to the same head.
    static func headRoundTrips(_ head: HTTPRequestHead, _ limits: HTTPLimits) {
        var text = "\(head.method) \(head.target) \(head.version)\r\n"
        for (name, value) in head.headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8)
        let roomy = HTTPLimits(maxHeaderBytes: 1 << 20, maxRequestLineBytes: 1 << 20, maxHeaderCount: limits.maxHeaderCount)
        let again = parseHead(bytes[...], limits: roomy)
        check(again == .complete(head, length: bytes.count), "round trip of \(head) gave \(again)")
    }

    // MARK: Serializer

    /// Response fields built from the parsed request (all valid) are all written, and the head
    /// written is well framed.
    static func headersSerializeCleanly(_ head: HTTPRequestHead, _ rng: inout SplitMix64) {
        let (output, skipped) = serialize(head.headers, &rng)
        check(skipped == 0, "\(skipped) valid request fields skipped")
        checkResponseHead(output)
    }

    /// Fields made of arbitrary bytes (as a handler echoing input might set) never split the
    /// response head (CWE-113): the head has CRLF line ends only and ends at its first empty line.
    static func serializerNeverSplitsTheHead(_ payload: [UInt8], _ rng: inout SplitMix64) {
        var headers = HTTPHeaders()
        for line in payload.split(separator: 0x0A, maxSplits: 8, omittingEmptySubsequences: false).prefix(8) {
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            headers.add(name: String(decoding: line[..<colon], as: UTF8.self),
                        value: String(decoding: line[colon...].dropFirst(), as: UTF8.self))
        }
        let (output, skipped) = serialize(headers, &rng)
        check(skipped <= headers.count, "skipped \(skipped) of \(headers.count)")
        checkResponseHead(output)
    }

    /// Writes a response head with `headers` and a status, Content-Length and Connection drawn
    /// from `rng`, and checks it byte for byte against the head the serializer's contract
    /// describes: the server's own Date, Content-Length (not on 1xx or 204) and Connection, then
    /// the handler's fields in order, minus those four names (any case) and minus invalid ones,
    /// which are counted.
    static func serialize(_ headers: HTTPHeaders, _ rng: inout SplitMix64) -> (output: [UInt8], skipped: Int) {
        var output: [UInt8] = []
        let status = [200, 204, 100, 404, 500, 0, 1000, -1][rng.upTo(7)]
        let contentLength = [nil, 0, 17, -5][rng.upTo(3)]
        let connection = [nil, "close", "keep-alive"][rng.upTo(2)]
        let date = "Sun, 06 Nov 1994 08:49:37 GMT"
        let skipped = HTTPResponseSerializer.writeHead(
            status: status, headers: headers, contentLength: contentLength,
            date: Array(date.utf8), connection: connection, into: &output)

        let sent = min(max(status, 100), 999)
        var lines = ["HTTP/1.1 \(sent) \(HTTPStatus.reasonPhrase(sent))", "Date: \(date)"]
        if let contentLength, sent >= 200, sent != 204 { lines.append("Content-Length: \(max(contentLength, 0))") }
        if let connection { lines.append("Connection: \(connection)") }
        var invalid = 0
        for (name, value) in headers {
            let lowercased = String(decoding: name.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
            if ["date", "content-length", "connection", "transfer-encoding"].contains(lowercased) { continue }
            guard !name.isEmpty, name.utf8.allSatisfy(isToken),
                  value.utf8.allSatisfy({ $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                invalid += 1
                continue
            }
            lines.append("\(name): \(value)")
        }
        let expected = Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
        check(output == expected, "response head\n\(String(decoding: output, as: UTF8.self))\nexpected\n\(String(decoding: expected, as: UTF8.self))")
        check(skipped == invalid, "\(skipped) fields skipped, \(invalid) invalid")
        return (output, skipped)
    }

    static func checkResponseHead(_ b: [UInt8]) {
        check(b.count >= 4 && Array(b.suffix(4)) == [13, 10, 13, 10], "response head does not end in CRLF CRLF")
        for i in b.indices {
            if b[i] == 13 { check(i + 1 < b.count && b[i + 1] == 10, "CR not followed by LF at \(i)") }
            if b[i] == 10 { check(i > 0 && b[i - 1] == 13, "bare LF at \(i)") }
            check(b[i] != 0, "NUL at \(i)")
        }
        for i in 0..<(b.count - 4) {
            check(!(b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10), "empty line at \(i) inside the response head")
        }
        // Every field line is `token: value`.
        let lines = b.dropLast(4).split(separator: 10).dropFirst()
        for line in lines {
            let colon = line.firstIndex(of: UInt8(ascii: ":"))
            check(colon.map { $0 > line.startIndex && line[line.startIndex..<$0].allSatisfy(isToken) } ?? false,
                  "response field line without a token name")
        }
        check(b.starts(with: Array("HTTP/1.1 ".utf8)), "status line")
    }

    // MARK: Body

    struct Decoded: Equatable {
        var body: [UInt8]
        /// Input bytes consumed over all calls; 0 after an error (a connection closes then, so
        /// what earlier calls consumed does not matter).
        var consumed: Int
        var complete: Bool
        var error: HTTPError?
    }

    /// Runs a decoder the way a connection does: each piece is appended to what is still
    /// unconsumed, the decoder is called on that, consumed bytes are dropped; stops when complete.
    static func decode(_ input: ArraySlice<UInt8>, framing: BodyFraming, limits: HTTPLimits, cuts: [Int]) -> Decoded {
        var decoder: HTTPBodyDecoder
        do {
            decoder = try HTTPBodyDecoder(framing: framing, limits: limits)
        } catch {
            return Decoded(body: [], consumed: 0, complete: false, error: error)
        }
        var result = Decoded(body: [], consumed: 0, complete: decoder.isComplete, error: nil)
        var pending: [UInt8] = []
        var fed = input.startIndex
        for end in cuts.map({ input.startIndex + $0 }) + [input.endIndex] where !decoder.isComplete {
            pending += input[fed..<end]
            fed = end
            let outcome = withExactCopy(pending[...]) { raw in
                Result { () throws(HTTPError) -> Int in try decoder.decode(raw, into: &result.body) }
            }
            switch outcome {
            case .success(let used):
                check(used >= 0 && used <= pending.count, "consumed \(used) of \(pending.count)")
                check(used == pending.count || decoder.isComplete, "consumed \(used) of \(pending.count) and not complete")
                pending.removeFirst(used)
                result.consumed += used
            case .failure(let error):
                result.error = error
                result.consumed = 0
                return result
            }
            check(decoder.bodyBytes == result.body.count, "bodyBytes \(decoder.bodyBytes) but \(result.body.count) bytes appended")
            check(decoder.bodyBytes <= limits.maxBodyBytes, "body of \(decoder.bodyBytes) over maxBodyBytes \(limits.maxBodyBytes)")
        }
        result.complete = decoder.isComplete
        return result
    }

    /// Checks the body after a head; returns how many bytes it took when complete, nil otherwise.
    static func checkBody(_ input: ArraySlice<UInt8>, framing: BodyFraming, _ limits: HTTPLimits, _ rng: inout SplitMix64) -> Int? {
        let whole = decode(input, framing: framing, limits: limits, cuts: [])
        let pieces = decode(input, framing: framing, limits: limits, cuts: rng.cuts(in: input.count))
        check(whole == pieces, "decoding in one piece gave \(whole), in several \(pieces)")
        check(whole.body.count <= limits.maxBodyBytes, "body over maxBodyBytes")
        check(whole.consumed <= input.count, "consumed more than the input")

        switch framing {
        case .none:
            check(whole == Decoded(body: [], consumed: 0, complete: true, error: nil), "no body framing gave \(whole)")
        case .contentLength(let n):
            // Int.max stands for a value too large for an Int, "over any body limit anyway"
            // (HTTPRequestParser.parseContentLength): refused at init, whatever the limits.
            if n == Int.max {
                check(whole.error == .payloadTooLarge && whole.body.isEmpty, "saturated Content-Length gave \(whole)")
            } else if n > limits.maxBodyBytes {
                check(whole.error == .payloadTooLarge && whole.body.isEmpty, "Content-Length \(n) over the limit gave \(whole)")
            } else {
                let take = min(n, input.count)
                check(whole == Decoded(body: Array(input.prefix(take)), consumed: take, complete: take == n, error: nil),
                      "Content-Length \(n) gave \(whole)")
            }
        case .chunked:
            let expected = ReferenceChunked.decode(Array(input), limits: limits)
            check(expected.matches(whole), "chunked: decoder gave \(whole), reference \(expected)")
        }
        return whole.complete && whole.error == nil ? whole.consumed : nil
    }
}

// MARK: - Reference chunked decoder

/// A second reading of RFC 9112 §7.1 as the decoder implements it, written over a whole array
/// rather than as a resumable state machine: sizes saturate instead of being refused, and each
/// limit is turned into the input offset at which it is first exceeded. The decoder must stop at
/// the earliest of the syntax error and those offsets, with that error.
///
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = 1*HEXDIG [ *(SP / HTAB) ";" *field-vchar-or-space ] CRLF chunk-data CRLF
/// trailer      = *( token ":" *field-value-byte CRLF )
struct ReferenceChunked: CustomStringConvertible {
    enum End: Equatable {
        case complete(consumed: Int)
        case needMore
        /// A 400 for malformed coding at this offset.
        case malformed(at: Int)
    }

    var end: End
    /// Each decoded body byte's input offset.
    var bodyOffsets: [Int] = []
    var input: [UInt8]
    /// Where a limit is first exceeded, and the error it gives.
    var violations: [(at: Int, error: HTTPError)] = []

    var description: String { "\(end), body \(bodyOffsets.count) bytes, violations \(violations.map { "\($0.error.status)@\($0.at)" })" }

    static func isHex(_ b: UInt8) -> Bool { ASCII.hexValue(b) != nil }
    static func isFieldByte(_ b: UInt8) -> Bool { b == 9 || (b >= 0x20 && b != 0x7F) }

    static func decode(_ b: [UInt8], limits: HTTPLimits) -> ReferenceChunked {
        var r = ReferenceChunked(end: .needMore, input: b)
        var p = 0
        var bodySize = 0  // saturating

        /// The end of the line starting at `from`: the offset of its CR, or nil if not in `b`.
        func lineEnd(from: Int) -> Int? {
            var i = from
            while i < b.count, b[i] != 13 { i += 1 }
            return i < b.count ? i : nil
        }

        while true {
            // chunk-size line
            let lineStart = p
            var digitsEnd = p
            while digitsEnd < b.count, isHex(b[digitsEnd]) { digitsEnd += 1 }
            // Budget: the first digit at which the size read so far passes what is left.
            var size = 0
            var saturated = false  // the size is past Int.max, so past any budget
            for i in lineStart..<digitsEnd {
                saturated = saturated || size > (Int.max - 15) / 16
                size = saturated ? Int.max : size * 16 + ASCII.hexValue(b[i])!
                if saturated || size > limits.maxBodyBytes - bodySize {
                    r.violations.append((i, .payloadTooLarge))
                    break
                }
            }
            // The line's bytes are counted through its CR (the LF is not).
            let cr = lineEnd(from: lineStart)
            let lastLineByte = cr ?? (b.count - 1)
            if lastLineByte >= lineStart + limits.maxChunkLineBytes {
                r.violations.append((lineStart + limits.maxChunkLineBytes, .badRequest("chunk size line too long")))
            }
            if digitsEnd == b.count { return r.needMore() }
            if digitsEnd == lineStart { return r.finish(malformedAt: lineStart) }
            // After the size: CR, or BWS then ";" extension, or ";" extension.
            var q = digitsEnd
            while q < b.count, b[q] == 32 || b[q] == 9 { q += 1 }
            if q == b.count { return r.needMore() }
            if b[q] == 13 {
                if q > digitsEnd { return r.finish(malformedAt: q) }  // BWS not followed by ";"
            } else if b[q] == UInt8(ascii: ";") {
                q += 1
                while q < b.count, b[q] != 13 {
                    if !isFieldByte(b[q]) { return r.finish(malformedAt: q) }
                    q += 1
                }
                if q == b.count { return r.needMore() }
            } else {
                return r.finish(malformedAt: q)
            }
            // q is the CR
            if q + 1 == b.count { return r.needMore() }
            if b[q + 1] != 10 { return r.finish(malformedAt: q + 1) }
            p = q + 2
            if size == 0 { break }

            // chunk-data CRLF
            if size > b.count - p {
                r.bodyOffsets += Array(p..<b.count)
                return r.needMore()
            }
            let dataEnd = p + size
            r.bodyOffsets += Array(p..<dataEnd)
            bodySize += size
            p = dataEnd
            if p == b.count { return r.needMore() }
            if b[p] != 13 { return r.finish(malformedAt: p) }
            if p + 1 == b.count { return r.needMore() }
            if b[p + 1] != 10 { return r.finish(malformedAt: p + 1) }
            p += 2
        }

        // trailer-section CRLF: every byte counts against maxHeaderBytes, LFs included.
        let trailerStart = p
        var trailerEnd: Int?  // offset of the final LF when the section is complete
        var malformed: Int?
        lines: while true {
            if p == b.count { break }
            if b[p] == 13 {
                if p + 1 == b.count { p += 1; break }
                if b[p + 1] != 10 { malformed = p + 1; break }
                trailerEnd = p + 1
                break
            }
            // token ":" value CR LF
            var q = p
            while q < b.count, Self.isTokenByte(b[q]) { q += 1 }
            if q == b.count { p = q; break }
            if q == p || b[q] != UInt8(ascii: ":") { malformed = q; break }
            q += 1
            while q < b.count, b[q] != 13 {
                if !isFieldByte(b[q]) { malformed = q; break lines }
                q += 1
            }
            if q == b.count { p = q; break }
            if q + 1 == b.count { p = q + 1; break }
            if b[q + 1] != 10 { malformed = q + 1; break }
            p = q + 2
        }
        // The limit is checked on a byte before its syntax, except for the LF after a CR.
        let lastCounted = trailerEnd ?? malformed.map { b[$0 - 1] == 13 && b[$0] != 10 ? $0 - 1 : $0 } ?? (b.count - 1)
        if lastCounted >= trailerStart + limits.maxHeaderBytes {
            r.violations.append((trailerStart + limits.maxHeaderBytes, .headerFieldsTooLarge))
        }
        if let malformed { return r.finish(malformedAt: malformed) }
        if let trailerEnd {
            r.end = .complete(consumed: trailerEnd + 1)
            return r
        }
        return r.needMore()
    }

    static func isTokenByte(_ b: UInt8) -> Bool { Fuzz.isToken(b) }

    func needMore() -> ReferenceChunked {
        var r = self
        r.end = .needMore
        return r
    }

    func finish(malformedAt offset: Int) -> ReferenceChunked {
        var r = self
        r.end = .malformed(at: offset)
        return r
    }

    /// Whether the decoder's outcome is the one this reading predicts.
    func matches(_ d: Fuzz.Decoded) -> Bool {
        // The earliest stop: a violated limit or malformed coding.
        var stops = violations
        if case .malformed(let at) = end { stops.append((at, .badRequest("malformed"))) }
        guard let first = stops.map(\.at).min() else {
            switch end {
            case .complete(let consumed):
                return d.error == nil && d.complete && d.consumed == consumed && d.body == bodyOffsets.map { input[$0] }
            case .needMore:
                return d.error == nil && !d.complete && d.consumed == input.count && d.body == bodyOffsets.map { input[$0] }
            case .malformed:
                return false
            }
        }
        // At the same offset more than one check may fail; the decoder reports one of them.
        guard let error = d.error else { return false }
        let candidates = stops.filter { $0.at == first }.map(\.error)
        let statusMatches = candidates.contains { c in
            c.status == error.status && (c.reason == error.reason || c.reason == "malformed" && error.reason != "chunk size line too long")
        }
        // Body bytes before the stop were decoded.
        return statusMatches && d.body == bodyOffsets.filter { $0 < first }.map { input[$0] }
    }
}
