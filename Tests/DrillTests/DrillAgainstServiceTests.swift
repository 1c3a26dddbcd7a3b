import Testing
import TestSupport
@testable import Drill

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The drill against the real service binary: keep-alive load, SIGTERM, and not one request
/// lost. This is the promise the shutdown sequence makes, checked end to end.
@Suite(.serialized) struct DrillAgainstServiceTests {
    /// The service executable beside the test bundle in SwiftPM's build folder.
    static var serviceBinary: String? {
        var directory = CommandLine.arguments[0]
        while let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            directory = String(directory[..<slash])
            let candidate = directory + "/" + serviceExecutableName
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    func drill(path: String, serviceArguments: [String] = []) throws -> DrillResult {
        let binary = try #require(Self.serviceBinary, "the service binary is built beside the tests")
        var options = DrillOptions(target: .binary(path: binary, arguments: serviceArguments))
        options.connections = 16
        options.path = path
        options.signalAfter = .milliseconds(600)
        options.afterSignal = .seconds(3)
        return try runDrill(options)
    }

    /// The lost requests, one line each, for the failure message.
    func lostRequests(_ result: DrillResult) -> String {
        result.records.filter { $0.outcome.isLost }.prefix(10).map {
            "\($0.outcomeName) conn \($0.connection) req \($0.request) sent \($0.sent / 1_000_000) ms"
        }.joined(separator: "; ")
    }

    @Test func steadyKeepAliveLoadLosesNothingOnSIGTERM() throws {
        let result = try drill(path: "/health")
        #expect(result.summary.lost == 0, "\(lostRequests(result))")
        #expect(result.summary.okBefore > 100)
        // Every connection learned of the shutdown from a response, then found the listener closed.
        #expect(result.summary.okClose >= 16)
        #expect(result.summary.refused >= 1)
        #expect(result.exit.code == 0, "\(result.exit)")
        #expect((result.exitMilliseconds ?? .infinity) < 3000)
    }

    @Test func requestsInFlightAtTheSignalAreAllAnswered() throws {
        let result = try drill(path: "/delay?ms=200")
        #expect(result.summary.lost == 0, "\(lostRequests(result))")
        #expect(result.summary.okClose >= 16)
        #expect(result.exit.code == 0, "\(result.exit)")
    }

    /// Server-Sent Events streams open at the signal end with their last event and the
    /// terminating chunk: complete responses, not lost ones.
    @Test func eventStreamsOpenAtTheSignalEndCleanly() throws {
        let result = try drill(path: "/events?count=1000&interval=50")
        #expect(result.summary.lost == 0, "\(lostRequests(result))")
        #expect(result.summary.okAfter >= 16, "each connection's stream ended after the signal")
        #expect(result.exit.code == 0, "\(result.exit)")
        #expect((result.exitMilliseconds ?? .infinity) < 3000)
    }

    @Test func thePreDrainDelayKeepsServingThenDrainsWithoutLoss() throws {
        let result = try drill(path: "/health", serviceArguments: ["--shutdown-delay", "500ms"])
        #expect(result.summary.lost == 0, "\(lostRequests(result))")
        // Load went on being served during the delay.
        #expect(result.summary.okAfter > 16)
        #expect((result.exitMilliseconds ?? 0) >= 450)
        #expect(result.exit.code == 0, "\(result.exit)")
    }
}
