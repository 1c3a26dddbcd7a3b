import Foundation

/// A self-signed certificate and key made with Debian's `openssl` command, in a fresh directory.
public struct TestCertificate {
    public let directory: URL
    public let certificateFile: String
    public let keyFile: String

    /// - Parameter name: the certificate's CN, to tell two apart.
    public init(name: String = "service-test") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificateFile = directory.appendingPathComponent("cert.pem").path
        keyFile = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", keyFile, "-out", certificateFile, "-days", "1", "-subj", "/CN=\(name)",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestClient.Failure(description: "openssl req exited \(process.terminationStatus)")
        }
    }

    /// Copies this pair over `other`'s files (a rotation as cert-manager does it).
    public func install(over other: TestCertificate) throws {
        for (from, to) in [(certificateFile, other.certificateFile), (keyFile, other.keyFile)] {
            try? FileManager.default.removeItem(atPath: to)
            try FileManager.default.copyItem(atPath: from, toPath: to)
        }
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }
}

