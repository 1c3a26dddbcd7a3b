import Testing
@testable import HTTP1

// Inputs found by the fuzzer (Fuzz/README.md, .ci/fuzz), kept as small readable tests.

@Suite("Fuzz findings")
struct FuzzFindingTests {
    /// Fuzz input (control bytes FF FF FF FE FF: maxBodyBytes Int.max, the largest
    /// `--max-body-bytes` accepts): two different Content-Length values too large for an Int
    /// both saturated to Int.max, passed as "identical", and Int.max was not over the limit, so
    /// the server started reading a body of Int.max bytes.
    ///
    /// Repeated Content-Length values must be the same text, so two different values too large
    /// for an Int are refused before either is read as a number.
    @Test("with maxBodyBytes Int.max, a Content-Length too large for an Int is still a 413")
    func saturatedContentLengthWithLargestBodyLimit() throws {
        let limits = HTTPLimits(maxBodyBytes: Int.max)
        #expect(limits.maxBodyBytes == Int.max - 1)
        let request = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n"
        let head = try #require(parse(request, limits: limits).head)
        #expect(head.framing == .contentLength(Int.max))
        #expect(throws: HTTPError.payloadTooLarge) {
            _ = try HTTPBodyDecoder(framing: head.framing, limits: limits)
        }
        let two = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\nContent-Length: 18446744073709551617\r\n\r\n"
        #expect(parse(two, limits: limits).error == .badRequest("conflicting Content-Length values"))
    }
}
