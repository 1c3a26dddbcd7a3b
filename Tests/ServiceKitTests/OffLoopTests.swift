import Foundation
import Synchronization
import Testing
@testable import ServiceKit

/// Heavy work in a handler, run off the event loop, leaves the loop's other connections served.
@Suite struct OffLoopTests {
    /// Where a decoder ran: on an event loop or not.
    struct Probe: Decodable, Sendable {
        let onLoop: Bool
        init(from decoder: any Decoder) throws {
            onLoop = EventLoop.current != nil
            _ = try decoder.singleValueContainer().decode(String.self)
        }
    }

    @Test func theBodyRunsOffTheLoopAndTheHandlerResumesOnIt() async throws {
        var router = Router()
        router.get("/where") { _ in
            let before = EventLoop.current != nil
            let inside = await offLoop { EventLoop.current != nil }
            let after = EventLoop.current != nil
            return .text("\(before) \(inside) \(after)")
        }
        try await withServer(router: router) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/where"))
            #expect(try client.readResponse().bodyText == "true false true")
        }
    }

    @Test func aHandlerComputingOffTheLoopLeavesItsLoopAnswering() async throws {
        final class Flags: Sendable {
            let spinning = Atomic<Bool>(false)
            let probeAnswered = Atomic<Bool>(false)
            var isSpinning: Bool { spinning.load(ordering: .relaxed) }
        }
        let flags = Flags()
        var router = testRouter()
        router.get("/heavy") { _ in
            let spins = await offLoop {
                flags.spinning.store(true, ordering: .relaxed)
                defer { flags.spinning.store(false, ordering: .relaxed) }
                // Holds its thread, as a large decode or a password hash would, until the probe
                // below has its answer (20 s at most). On the loop, the probe could not be
                // answered while this runs. (It sleeps in 1 ms steps rather than spin, so that a
                // sanitizer run's other tests keep the core.)
                let until = ContinuousClock.now + .seconds(20)
                var count = 0
                while !flags.probeAnswered.load(ordering: .relaxed) && ContinuousClock.now < until {
                    count += 1
                    usleep(1000)
                }
                return count
            }
            return .text("spun \(spins > 0)")
        }
        // One loop: the heavy request and the probe share it.
        try await withServer(router: router, configure: { $0.eventLoops = 1 }) { port, _ in
            let heavy = try TestClient(port: port, timeout: 30)
            try heavy.send(get("/heavy"))
            for _ in 0..<1000 where !flags.isSpinning { try await Task.sleep(for: .milliseconds(5)) }
            try #require(flags.isSpinning)
            let probe = try TestClient(port: port, timeout: 30)
            try probe.send(get("/health"))
            #expect(try probe.readResponse().status == 200)
            #expect(flags.isSpinning, "the probe waited for the heavy handler")
            flags.probeAnswered.store(true, ordering: .relaxed)
            #expect(try heavy.readResponse().bodyText == "spun true")
        }
    }

    @Test func largeBodiesAreDecodedOffTheLoopAndSmallOnesOnIt() async throws {
        var router = Router()
        router.post("/probe") { request in
            let probe = try await request.decode(Probe.self)
            return .text(probe.onLoop ? "on loop" : "off loop")
        }
        try await withServer(router: router) { port, _ in
            let client = try TestClient(port: port)
            for (size, expected) in [(10, "on loop"), (Request.offLoopDecodeBytes, "off loop")] {
                let body = "\"" + String(repeating: "a", count: size) + "\""
                try client.send("POST /probe HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
                #expect(try client.readResponse().bodyText == expected)
            }
        }
    }
}
