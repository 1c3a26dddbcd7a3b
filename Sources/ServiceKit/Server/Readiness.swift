import Synchronization

/// Readiness says whether the service wants new traffic. It starts ready; ``HTTPServer`` marks
/// it not ready the moment a graceful shutdown begins, so a readiness probe answers 503 while
/// the liveness probe (`/health`) still answers 200 and load balancers stop routing here.
///
/// A forker can also hold it not ready while a dependency (a database) is unavailable.
public final class Readiness: Sendable {
    private let ready = Atomic<Bool>(true)
    private let draining = Atomic<Bool>(false)

    public init() {}

    /// Whether the readiness probe should answer 200.
    public var isReady: Bool { ready.load(ordering: .acquiring) && !isDraining }

    /// Whether a graceful shutdown has begun (then the service never becomes ready again).
    public var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// Marks the service ready or not, for reasons of the application's own.
    public func set(ready value: Bool) { ready.store(value, ordering: .releasing) }

    func beginDraining() { draining.store(true, ordering: .releasing) }
}
