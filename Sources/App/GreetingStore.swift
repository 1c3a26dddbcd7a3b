import Logging
import ServiceKit
import ServiceLifecycle
import Synchronization

/// A greeting the service made, as the store keeps it.
struct StoredGreeting: Codable, Equatable, Sendable {
    var message: String
    /// Seconds since the Unix epoch.
    var createdAt: Int64

    enum CodingKeys: String, CodingKey {
        case message
        case createdAt = "created_at"
    }
}

/// Where the greetings handlers keep what they made: a protocol, so a real service puts a
/// database behind it and tests a stub.
protocol GreetingStore: Sendable {
    func add(_ greeting: StoredGreeting) async throws
    /// The most recent greetings, newest first.
    func recent(limit: Int) async throws -> [StoredGreeting]
    /// Drops greetings created before `cutoff`; returns how many.
    func prune(createdBefore cutoff: Int64) async throws -> Int
}

/// The in-memory store: the last `capacity` greetings, so memory stays bounded whatever
/// clients post.
final class InMemoryGreetingStore: GreetingStore {
    private let greetings = Mutex<[StoredGreeting]>([])
    let capacity: Int

    init(capacity: Int = 1000) { self.capacity = capacity }

    func add(_ greeting: StoredGreeting) {
        greetings.withLock { list in
            if list.count == capacity { list.removeFirst() }
            list.append(greeting)
        }
    }

    func recent(limit: Int) -> [StoredGreeting] {
        greetings.withLock { Array($0.suffix(max(0, limit)).reversed()) }
    }

    func prune(createdBefore cutoff: Int64) -> Int {
        greetings.withLock { list in
            let before = list.count
            list.removeAll { $0.createdAt < cutoff }
            return before - list.count
        }
    }
}

/// A background job: every `interval`, drops greetings older than `retention`. It runs in the
/// service group before the HTTP server, so it stops only after the server has drained.
struct GreetingPruner: Service {
    let store: any GreetingStore
    let interval: Duration
    let retention: Duration
    let logger: Logger
    /// Seconds since the Unix epoch.
    let now: @Sendable () -> Int64

    func run() async throws {
        while true {
            // The sleep throws only when a graceful shutdown starts or the task is cancelled
            // (a drain that ran out of time): either way the job is over.
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { break }
            let pruned = try await store.prune(createdBefore: now() - retention.components.seconds)
            if pruned > 0 { logger.debug("pruned old greetings", metadata: ["count": "\(pruned)"]) }
        }
        logger.debug("greeting pruner stopped")
    }
}
