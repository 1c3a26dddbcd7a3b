#if TLS
import Foundation
import Testing
@testable import ServiceKit

/// HTTPS end to end: OpenSSL on both sides, a certificate made at test time.
@Suite struct TLSTests {
    @Test func handshakeAndRequestWithTLS13AndALPN() async throws {
        try await withTLSServer { port, _, certificate in
            let client = try TLSTestClient(port: port, trusting: certificate.certificateFile)
            #expect(client.session.version == "TLSv1.3")
            #expect(client.session.alpn == "http/1.1")
            #expect(client.session.peerSubject.contains("CN=service-test"))
            try client.send(get("/path/7?q=x"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.body == "id=7 q=x")
        }
    }

    @Test func keepAliveAndPipeliningOverTLS() async throws {
        try await withTLSServer { port, _, _ in
            let client = try TLSTestClient(port: port)
            for i in 0..<3 {
                try client.send(get("/path/\(i)"))
                #expect(try client.readResponse().body == "id=\(i) q=-")
            }
            // Three requests in one write, answered in order.
            try client.send(get("/path/a") + get("/path/b") + get("/path/c", "Connection: close\r\n"))
            for id in ["a", "b", "c"] {
                #expect(try client.readResponse().body == "id=\(id) q=-")
            }
            #expect(client.isClosedByServer())
        }
    }

    @Test func anIdleTLSConnectionParksAndServesItsNextRequest() async throws {
        try await withTLSServer { port, server, _ in
            let client = try TLSTestClient(port: port)
            try client.send(get("/path/1"))
            #expect(try client.readResponse().body == "id=1 q=-")
            // Past the park grace its task ends; the TLS session stays with the connection.
            for _ in 0..<100 where server.parkedConnectionCount < 1 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.parkedConnectionCount == 1)
            try client.send(get("/path/2"))
            #expect(try client.readResponse().body == "id=2 q=-")
        }
    }

    @Test func aLargeBodyBothWays() async throws {
        try await withTLSServer { port, _, _ in
            let client = try TLSTestClient(port: port)
            let body = String(repeating: "0123456789abcdef", count: 40_000)  // 640 KB, many records
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.body == body)
        }
    }

    @Test func streamsBothWaysOverTLS() async throws {
        var router = testRouter()
        router.get("/stream") { _ in
            Response { writer in
                for _ in 0..<50 { try await writer.write(String(repeating: "s", count: 1000)) }
            }
        }
        router.post("/count", body: .streamed(maxBytes: 1 << 20)) { request in
            var bytes = 0
            if let body = request.bodyStream {
                for try await chunk in body { bytes += chunk.count }
            }
            return .text("\(bytes)")
        }
        try await withTLSServer(router: router) { port, _, _ in
            let client = try TLSTestClient(port: port)
            let upload = String(repeating: "u", count: 300_000)
            try client.send("POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: \(upload.utf8.count)\r\n\r\n" + upload)
            #expect(try client.readResponse().body == "300000")
            try client.send(get("/stream", "Connection: close\r\n"))
            let raw = String(decoding: try client.readUntilClose(), as: UTF8.self)
            let parts = raw.components(separatedBy: "\r\n\r\n")
            #expect(parts.first?.contains("Transfer-Encoding: chunked") == true)
            #expect(raw.hasSuffix("\r\n0\r\n\r\n"), "the terminating chunk")
            #expect(parts.dropFirst().joined().filter { $0 == "s" }.count == 50_000)
        }
    }

    @Test func tls11IsRefused() async throws {
        let log = CapturedLog()
        try await withTLSServer(log: log) { port, _, _ in
            #expect(throws: (any Error).self) { try TLSTestClient(port: port, tls11: true) }
            // The server goes on serving.
            let client = try TLSTestClient(port: port)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
        }
        #expect(log.lines.contains { $0.contains("TLS handshake failed") && $0.contains("unsupported protocol") })
    }

    @Test func plaintextHTTPOnTheTLSPortGetsAPlaintext400() async throws {
        try await withTLSServer { port, _, _ in
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            // Read to the end: the server answers and closes.
            let text = String(decoding: try client.readUntilClose(), as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.0 400 Bad Request\r\n"))
            #expect(text.hasSuffix("Client sent an HTTP request to an HTTPS server.\n"))
        }
    }

    @Test func aBadClientHelloCostsOneLogLineAndTheConnection() async throws {
        let log = CapturedLog()
        try await withTLSServer(log: log) { port, _, _ in
            let client = try TestClient(port: port)
            // A TLS record header announcing a handshake, then nonsense.
            try client.send([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef])
            // A TLS alert at most, then the end of the stream (readUntilClose throws on its timeout).
            let answer = try client.readUntilClose()
            #expect(answer.count < 64)
            #expect(answer.first.map { $0 == 0x15 } ?? true, "an alert record, or nothing")
            let next = try TLSTestClient(port: port)
            try next.send(get("/health"))
            #expect(try next.readResponse().status == 200)
        }
        #expect(log.lines.filter { $0.contains("TLS handshake failed") }.count == 1)
    }

    /// A client that sends nothing (its connection holds no session yet), and one that stalls
    /// after the first bytes of a record.
    @Test(arguments: [[], [0x16, 0x03, 0x01] as [UInt8]])
    func aClientThatStallsBeforeOrMidHandshakeIsClosedAtTheHeaderTimeout(_ sent: [UInt8]) async throws {
        let log = CapturedLog()
        try await withTLSServer(log: log, configure: { $0.readHeaderTimeout = .milliseconds(300) }) { port, _, _ in
            let client = try TestClient(port: port, timeout: 3)
            if !sent.isEmpty { try client.send(sent) }
            let started = ContinuousClock.now
            #expect(client.isClosedByServer())
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(200) && waited < .seconds(2), "closed after \(waited)")
        }
        #expect(log.lines.contains { $0.contains("TLS handshake timed out") })
    }

    @Test func aTLSConnectionThatHasSentNothingHoldsNoSession() async throws {
        // A header timeout no busy machine reaches: the last check waits up to the client's
        // 1 s read timeout for a close that must not come.
        try await withTLSServer(configure: { $0.readHeaderTimeout = .seconds(60) }) { port, server, _ in
            let silent = try TestClient(port: port, timeout: 1)
            for _ in 0..<500 where server.connectionCount < 1 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.connectionCount == 1)
            // Parked from accept: no task, and no OpenSSL session until its first bytes.
            #expect(server.parkedConnectionCount == 1)
            #expect(await tlsSessionCounts(server) == [0, 1])
            // A client that sends its ClientHello gets one; the silent one still has none.
            let talker = try TLSTestClient(port: port)
            try talker.send(get("/health"))
            #expect(try talker.readResponse().status == 200)
            #expect(await tlsSessionCounts(server) == [1, 1])
            #expect(!silent.isClosedByServer())
        }
    }

    @Test func theDrainGivesASilentTLSConnectionItsLinger() async throws {
        let configure: (inout ServerConfiguration) -> Void = {
            $0.drainLinger = .milliseconds(300)
            $0.readHeaderTimeout = .seconds(60)
        }
        try await withTLSServer(configure: configure) { port, server, _ in
            let client = try TestClient(port: port, timeout: 5)
            for _ in 0..<500 where server.connectionCount < 1 { try await Task.sleep(for: .milliseconds(10)) }
            let started = ContinuousClock.now
            let result = await server.shutdown(drainTimeout: .seconds(30))
            let took = ContinuousClock.now - started
            #expect(result.closedAtDeadline == 0)
            // Closed at the linger (0.3 s), not at its header timeout (60 s) nor the drain
            // deadline (30 s). The bound is loose: the drain's own steps sleep on the
            // cooperative pool, which the suite's blocking test clients can hold for seconds.
            #expect(took < .seconds(15), "\(took)")
            #expect(client.isClosedByServer())
        }
    }

    @Test func aDrainOverTLSFinishesTheRequestInFlightWithConnectionClose() async throws {
        let gate = Gate()
        let log = CapturedLog()
        try await withTLSServer(router: testRouter(gate: gate), log: log) { port, server, _ in
            let client = try TLSTestClient(port: port)
            try client.send(get("/gate"))
            try await gate.waitForArrivals(1)
            let drained = Task { await server.shutdown(drainTimeout: .seconds(5)) }
            // Every loop is draining once the listener has closed.
            for _ in 0..<1000 where !log.lines.contains(where: { $0.contains("shutdown: listener closed; draining") }) {
                try await Task.sleep(for: .milliseconds(5))
            }
            gate.open()
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.head.contains("Connection: close"))
            #expect(client.isClosedByServer())
            let result = await drained.value
            #expect(result.closedAtDeadline == 0)
        }
    }

    @Test func reloadedCertificatesServeNewConnectionsAndABadPairKeepsTheOld() async throws {
        let log = CapturedLog()
        try await withTLSServer(log: log) { port, server, certificate in
            let before = try TLSTestClient(port: port)
            #expect(before.session.peerSubject.contains("CN=service-test"))
            let tls = try #require(server.tls)

            let renewed = try TestCertificate(name: "renewed")
            defer { renewed.remove() }
            try renewed.install(over: certificate)
            try tls.reload()
            let after = try TLSTestClient(port: port, trusting: certificate.certificateFile)
            #expect(after.session.peerSubject.contains("CN=renewed"))
            // The connection opened before keeps working.
            try before.send(get("/health"))
            #expect(try before.readResponse().status == 200)

            // A broken pair (the key of another certificate) is refused; the renewed one stays.
            let other = try TestCertificate(name: "other")
            defer { other.remove() }
            try FileManager.default.removeItem(atPath: certificate.keyFile)
            try FileManager.default.copyItem(atPath: other.keyFile, toPath: certificate.keyFile)
            #expect(throws: TLSConfigurationError.self) { try tls.reload() }
            let still = try TLSTestClient(port: port)
            #expect(still.session.peerSubject.contains("CN=renewed"))
        }
    }

    @Test func unusableFilesAreOneLineErrors() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let other = try TestCertificate(name: "other")
        defer { other.remove() }
        func reason(_ cert: String, _ key: String) -> String {
            do {
                _ = try TLSContext(certificateFile: cert, keyFile: key)
                return "loaded"
            } catch {
                return error.description
            }
        }
        #expect(reason(certificate.certificateFile, certificate.keyFile) == "loaded")
        #expect(reason("/no/such.pem", certificate.keyFile).hasPrefix("cannot read the certificate file /no/such.pem"))
        #expect(reason(certificate.certificateFile, "/no/key.pem").hasPrefix("cannot read the private key file"))
        #expect(reason(certificate.certificateFile, other.keyFile).hasPrefix("the private key does not match the certificate"))
        #expect(reason(certificate.keyFile, certificate.keyFile).hasPrefix("cannot load the certificate"))
        for text in [reason("/no/such.pem", "x"), reason(certificate.certificateFile, other.keyFile)] {
            #expect(!text.contains("\n"))
        }
    }
}

/// How many of the server's connections have a TLS session and how many have none, read on
/// their loops: `[with, without]`.
func tlsSessionCounts(_ server: HTTPServer) async -> [Int] {
    let loops: [LoopState] = server.state.withLock { state in
        switch state {
        case .running(_, _, let loops), .draining(_, let loops): loops
        case .initial, .stopped: []
        }
    }
    var counts = [0, 0]
    for loopState in loops {
        let (with, all) = await withCheckedContinuation { (continuation: CheckedContinuation<(Int, Int), Never>) in
            let taken = loopState.loop.execute {
                let with = loopState.connections.values.filter { $0.tls != nil }.count
                continuation.resume(returning: (with, loopState.connections.count))
            }
            if !taken { continuation.resume(returning: (0, 0)) }
        }
        counts[0] += with
        counts[1] += all - with
    }
    return counts
}
#endif
