import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Streaming against the real binary: what an upload costs in memory.
@Suite(.serialized) struct StreamingBinaryTests {
    /// 1 GiB through `POST /upload`, which reads its body as it arrives: the process's peak
    /// RSS grows by less than 16 MiB (a chunk at a time, never the body).
    @Test func aGibibyteUploadRaisesRSSByLessThan16MiB() throws {
        let service = try ServiceProcess(["--host", "127.0.0.1", "--port", "0", "--access-log=false"])
        let port = try service.waitForPort()
        let pid = service.process.processIdentifier
        let client = try TestClient(port: port, timeout: 60)
        try client.send("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
        let before = try ProcessStats.residentBytes(pid)

        let total = 1 << 30
        try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: \(total)\r\n\r\n")
        let piece = [UInt8](repeating: UInt8(ascii: "u"), count: 1 << 20)
        for _ in 0..<(total / piece.count) { try client.send(piece) }
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.bodyText == #"{"bytes":\#(total)}"#)

        // Not under .ci/sanitizers: AddressSanitizer holds freed memory in quarantine (256 MiB),
        // ThreadSanitizer shadows it, so RSS says nothing of the service there.
        let sanitized = ProcessInfo.processInfo.environment["ASAN_OPTIONS"] != nil
            || ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil
        let peak = try ProcessStats.peakResidentBytes(pid)
        if !sanitized {
            #expect(peak - before < 16 * 1024 * 1024, "peak RSS \(peak) against \(before) before the upload")
        }
        service.signal(SIGTERM)
        #expect(service.waitForExit(timeout: 10))
        #expect(service.finish().status == 0)
    }
}
