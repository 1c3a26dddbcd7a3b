#if TLS
import Foundation
@testable import ServiceKit

/// A blocking TLS client over ``TestClient``'s socket (its receive timeout bounds every read).
final class TLSTestClient {
    let plain: TestClient
    let context: TLSClientContext
    let session: TLSSession
    private var buffer: [UInt8] = []

    struct Failure: Error, CustomStringConvertible { var description: String }

    init(port: Int, trusting caFile: String? = nil, tls11: Bool = false, timeout: Double = 5) throws {
        plain = try TestClient(port: port, timeout: timeout)
        context = try TLSClientContext(trusting: caFile)
        if tls11 { context.limitToTLS11() }
        guard let session = TLSSession(client: context, fd: plain.fd) else { throw Failure(description: "no session") }
        self.session = session
        while true {
            switch session.handshake() {
            case .done: return
            case .waitReadable, .waitWritable: throw Failure(description: "handshake timed out")
            case .plaintextHTTP: throw Failure(description: "not TLS")
            case .failed(let reason): throw Failure(description: reason)
            }
        }
    }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            guard case .done(let n) = bytes.withUnsafeBytes({ session.write($0) }) else {
                throw Failure(description: "write failed")
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Reads one response with a Content-Length body; the head's lines and the body.
    func readResponse() throws -> (status: Int, head: String, body: String) {
        while true {
            if let end = find(Array("\r\n\r\n".utf8)) {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count >= end + 4 + length {
                    let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
                    buffer.removeFirst(end + 4 + length)
                    let status = Int(head.split(separator: " ")[1]) ?? 0
                    return (status, head, body)
                }
            }
            guard try fill() else { throw Failure(description: "closed before a whole response") }
        }
    }

    /// Everything the server sends until it ends the session.
    func readUntilClose() throws -> [UInt8] {
        while try fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// Whether the server ended the session (close_notify or EOF) before sending more.
    func isClosedByServer() -> Bool {
        guard buffer.isEmpty else { return false }
        return (try? fill()) == false
    }

    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        switch chunk.withUnsafeMutableBytes({ session.read(into: $0) }) {
        case .done(let n):
            buffer.append(contentsOf: chunk[..<n])
            return true
        case .end: return false
        case .waitReadable, .waitWritable: throw Failure(description: "read timed out")
        case .failed: return false
        }
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for i in 0...(buffer.count - needle.count) where buffer[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}

/// Starts an HTTPS server on 127.0.0.1:0 with a fresh certificate.
func withTLSServer(
    router: Router = testRouter(),
    log: CapturedLog = CapturedLog(),
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (_ port: Int, _ server: HTTPServer, _ certificate: TestCertificate) async throws -> Void
) async throws {
    let certificate = try TestCertificate()
    defer { certificate.remove() }
    let certificates = try TLSCertificates(certificateFile: certificate.certificateFile, keyFile: certificate.keyFile)
    let server = HTTPServer(configuration: testConfiguration(configure), router: router, logger: log.logger("server"),
                            accessLogger: log.logger("access"), tls: certificates)
    try await serving(server) { try await body($0, server, certificate) }
}
#endif
