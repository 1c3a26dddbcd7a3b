import Synchronization
import Testing
@testable import ServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A loop gives freed memory back after clients leave (``LoopState/trimHeapIfDue()``), and
/// connection cycling at low concurrency never pays for a trim. Asserted on the server's trim
/// count, not on RSS (Benchmarks/conn-memory.py reports what the trims return).
@Suite struct HeapTrimTests {
    private func trims(_ server: HTTPServer) -> Int { server.heapTrims.load(ordering: .relaxed) }

    @Test func aLoopTrimsAfterManyConnectionsClose() async throws {
        try await withServer(configure: { $0.eventLoops = 1 }) { port, server in
            try await onOwnThread {
                // Partial requests: each connection keeps its task and buffers and never parks,
                // so only the closes can make the trim due.
                let count = LoopState.trimAfter + 16
                var clients: [TestClient] = []
                for _ in 0..<count {
                    let client = try TestClient(port: port)
                    try client.send("GET /health HTTP/1.1\r\n")
                    clients.append(client)
                }
                try check(eventually { server.connectionCount == count }, "\(server.connectionCount) connections")
                try check(server.parksTotal.load(ordering: .relaxed) == 0, "a connection parked")
                let before = trims(server)
                clients.removeAll()  // closes them
                try check(eventually { server.connectionCount == 0 }, "\(server.connectionCount) left")
                try check(eventually { trims(server) > before }, "no trim after \(count) closes")
            }
        }
    }

    @Test func connectionCyclingAtLowConcurrencyDoesNotTrim() async throws {
        try await withServer(configure: { $0.eventLoops = 1 }) { port, server in
            try await onOwnThread {
                let before = trims(server)
                for _ in 0..<(LoopState.trimAfter * 3) {
                    let client = try TestClient(port: port)
                    try client.send("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    try check(try client.readResponse().status == 200, "not a 200")
                    try check(client.isClosedByServer(), "not closed")
                }
                try check(eventually { server.connectionCount == 0 }, "\(server.connectionCount) left")
                usleep(200_000)
                try check(trims(server) == before, "\(trims(server) - before) trims")
            }
        }
    }
}
