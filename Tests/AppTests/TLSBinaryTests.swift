#if TLS
import Foundation
import Testing
import TestSupport

/// The `service` binary built with the TLS trait: HTTPS startup errors, `-health-check` over TLS,
/// and certificate rotation on SIGHUP.
@Suite(.serialized) struct TLSBinaryTests {
    func healthCheck(_ port: Int, certificate: TestCertificate, verify: Bool = true) throws -> (status: Int32, stderr: String) {
        let result = try ServiceProcess([
            "--port=\(port)", "--tls-cert-file=\(certificate.certificateFile)",
            "--tls-key-file=\(certificate.keyFile)", "--health-check-verify=\(verify)", "-health-check",
        ]).finish()
        return (result.status, result.stderr)
    }

    @Test func healthCheckOverTLSVerifiesTheServersOwnCertificate() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let stranger = try TestCertificate(name: "stranger")
        defer { stranger.remove() }
        let service = try ServiceProcess([
            "--host=127.0.0.1", "--port=0", "--tls-cert-file=\(certificate.certificateFile)",
            "--tls-key-file=\(certificate.keyFile)",
        ])
        let port = try service.waitForPort()
        #expect(service.waitForLine(containing: #""tls":true"#) != nil)

        #expect(try healthCheck(port, certificate: certificate).status == 0)
        // A probe that trusts another certificate refuses this server...
        let refused = try healthCheck(port, certificate: stranger)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("certificate verify failed"), "\(refused.stderr)")
        // ...unless told not to verify.
        #expect(try healthCheck(port, certificate: stranger, verify: false).status == 0)
        // A plaintext probe of the TLS port fails with the server's plaintext 400.
        let plain = try ServiceProcess(["--port=\(port)", "-health-check"]).finish()
        #expect(plain.status == 1)
        #expect(plain.stderr.contains("400"), "\(plain.stderr)")

        service.signal()
        #expect(service.finish().status == 0)
    }

    @Test func sighupRotatesTheCertificateAndABadPairKeepsTheOldOne() throws {
        let served = try TestCertificate(name: "first")
        defer { served.remove() }
        let original = try TestCertificate(name: "first-copy")
        defer { original.remove() }
        try served.install(over: original)  // `original` keeps a copy of the first pair
        let service = try ServiceProcess([
            "--host=127.0.0.1", "--port=0", "--tls-cert-file=\(served.certificateFile)",
            "--tls-key-file=\(served.keyFile)",
        ])
        let port = try service.waitForPort()

        // Renew the files in place: until SIGHUP the server still presents the first certificate.
        let renewed = try TestCertificate(name: "renewed")
        defer { renewed.remove() }
        try renewed.install(over: served)
        #expect(try healthCheck(port, certificate: served).status == 1)
        #expect(try healthCheck(port, certificate: original).status == 0)
        service.signal(SIGHUP)
        #expect(service.waitForLine(containing: "TLS certificate reloaded") != nil)
        #expect(try healthCheck(port, certificate: served).status == 0)

        // A broken pair: the reload fails, is logged, and the renewed certificate stays.
        let other = try TestCertificate(name: "other")
        defer { other.remove() }
        try FileManager.default.removeItem(atPath: served.keyFile)
        try FileManager.default.copyItem(atPath: other.keyFile, toPath: served.keyFile)
        service.signal(SIGHUP)
        let failure = try #require(service.waitForLine(containing: "TLS certificate reload failed"))
        #expect(failure.contains("does not match"))
        #expect(try healthCheck(port, certificate: renewed).status == 0)

        service.signal()
        #expect(service.finish().status == 0, "SIGHUP did not stop it; SIGTERM drains it")
    }

    @Test func changedCertificateFilesAreReloadedWithoutASignal() throws {
        let served = try TestCertificate(name: "first")
        defer { served.remove() }
        let service = try ServiceProcess([
            "--host=127.0.0.1", "--port=0", "--tls-cert-file=\(served.certificateFile)",
            "--tls-key-file=\(served.keyFile)", "--tls-reload-interval=100ms",
        ])
        let port = try service.waitForPort()
        let renewed = try TestCertificate(name: "renewed")
        defer { renewed.remove() }
        try renewed.install(over: served)
        #expect(service.waitForLine(containing: "TLS certificate files changed; reloaded", timeout: 5) != nil)
        #expect(try healthCheck(port, certificate: served).status == 0, "the server presents the renewed certificate")
        // Unchanged files are not reloaded again.
        Thread.sleep(forTimeInterval: 0.5)
        #expect(service.lines.filter { $0.contains("TLS certificate files changed") }.count == 1)
        service.signal()
        #expect(service.finish().status == 0)
    }

    @Test func sigtermDrainsARequestInFlightOverTLS() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let service = try ServiceProcess([
            "--host=127.0.0.1", "--port=0", "--tls-cert-file=\(certificate.certificateFile)",
            "--tls-key-file=\(certificate.keyFile)",
        ])
        let port = try service.waitForPort()
        // curl (as CI installs it) holds a request in flight over TLS while SIGTERM arrives.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-sS", "--cacert", certificate.certificateFile, "--max-time", "10", "-D", "-",
            "https://127.0.0.1:\(port)/delay?ms=600",
        ]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        Thread.sleep(forTimeInterval: 0.3)
        service.signal()
        curl.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(curl.terminationStatus == 0)
        #expect(text.hasPrefix("HTTP/1.1 200 OK"), "\(text)")
        #expect(text.lowercased().contains("connection: close"))
        #expect(text.hasSuffix(#"{"delayed_ms":600}"#))
        #expect(service.finish().status == 0)
    }

    @Test func unusableCertificateFilesAreAStartupErrorWithAJSONLine() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let other = try TestCertificate(name: "other")
        defer { other.remove() }
        for (cert, key, reason) in [
            ("/no/such.pem", certificate.keyFile, "cannot read the certificate file /no/such.pem"),
            (certificate.certificateFile, other.keyFile, "the private key does not match the certificate"),
        ] {
            let result = try ServiceProcess(["--port=0", "--tls-cert-file=\(cert)", "--tls-key-file=\(key)"]).finish()
            #expect(result.status == 1)
            let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("cannot load the TLS certificate") })
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["level"] as? String == "critical")
            #expect((object["error"] as? String)?.hasPrefix(reason) == true, "\(line)")
        }
    }
}
#endif
