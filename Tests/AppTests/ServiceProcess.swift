import Foundation
import TestSupport

/// ServiceProcess runs the built service executable (`serviceExecutableName`) as a child process, the way an operator
/// runs it, and reads its JSON log lines. (Unchecked Sendable: its output buffer is guarded by
/// a lock; the rest is set once in `init`.)
final class ServiceProcess: @unchecked Sendable {
    /// The executable sits beside the test bundle in SwiftPM's build folder, unless
    /// `SERVICE_BINARY` names another one: CI points it at the shipped static binary (LTO,
    /// identical-code folding) so the same tests judge the artifact that goes in the image.
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["SERVICE_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(serviceExecutableName)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: "/nonexistent/\(serviceExecutableName)")
    }

    /// A port nothing listens on right now: bind port 0, read the number, close.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw TestClient.Failure(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    let process = Process()
    let stdout = Pipe()
    let stderr = Pipe()
    private let collected = NSLock()
    private var outputData = Data()
    private var outputClosed = false
    private var output: Data {
        collected.lock()
        defer { collected.unlock() }
        return outputData
    }

    /// Opened by ``startReading()`` for a process started with `holdingOutput`.
    private let readingGate = DispatchSemaphore(value: 0)

    /// Starts the service with `arguments`, or `launcher` (e.g. `unshare ...`) followed by the
    /// service and `arguments`. With `holdingOutput`, nothing reads its standard output (a
    /// blocking pipe, as Docker's log driver gives it) until ``startReading()``.
    init(
        _ arguments: [String], environment: [String: String] = [:], launcher: [String] = [],
        holdingOutput: Bool = false
    ) throws {
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = Array(launcher.dropFirst()) + [Self.binary.path] + arguments
        } else {
            process.executableURL = Self.binary
            process.arguments = arguments
        }
        process.environment = environment
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // A reader thread, so waiting for a line can time out instead of blocking in read.
        let handle = stdout.fileHandleForReading
        Thread.detachNewThread { [self] in
            if holdingOutput { readingGate.wait() }
            while true {
                let chunk = handle.availableData
                collected.lock()
                if chunk.isEmpty { outputClosed = true } else { outputData.append(chunk) }
                collected.unlock()
                if chunk.isEmpty { return }
            }
        }
    }

    /// Lets a process started with `holdingOutput` have its standard output read.
    func startReading() { readingGate.signal() }

    private var isOutputClosed: Bool {
        collected.lock()
        defer { collected.unlock() }
        return outputClosed
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Reads stdout until a line containing `text` appears (or the process ends).
    func waitForLine(containing text: String, timeout: TimeInterval = 10) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: { $0.contains(text) }) { return line }
            if isOutputClosed { return nil }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return nil
    }

    /// The port from the startup line, once it is there.
    func waitForPort() throws -> Int {
        guard let line = waitForLine(containing: "service started"),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let port = object["port"] as? Int
        else { throw TestClient.Failure(description: "no startup line; stderr: \(errorText)") }
        return port
    }

    var lines: [String] { String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init) }

    var errorText: String { String(decoding: stderr.fileHandleForReading.availableData, as: UTF8.self) }

    func signal(_ number: Int32 = SIGTERM) { kill(process.processIdentifier, number) }

    /// Waits for the exit and collects the rest of the output.
    func finish() -> (status: Int32, stdout: String, stderr: String) {
        process.waitUntilExit()
        while !isOutputClosed { Thread.sleep(forTimeInterval: 0.005) }
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Waits up to `timeout` for the exit; false if the process is still running then.
    func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        return !process.isRunning
    }
}
