import Synchronization

/// Abandoned keeps what a test strands on purpose reachable until the process exits.
///
/// Two behaviours of the engine leave a task suspended for good, by design: the drain gives a
/// handler that ignores cancellation one second and then stops the loops without it (in the
/// service the process exits next), and a job enqueued on a stopped loop is dropped rather
/// than written to a descriptor number that may belong to something else by then. The stranded
/// task and everything it holds (its connection, the server, the router) form a cycle that
/// nothing else points to, which LeakSanitizer (`swift test --sanitize=address`, `.ci/sanitizers`)
/// reports as leaked. A test that strands a task deliberately hands its root here, so that
/// the leaks the sanitizer does report are ones nobody meant.
enum Abandoned {
    private static let objects = Mutex<[any Sendable]>([])

    static func keep(_ object: any Sendable) {
        objects.withLock { $0.append(object) }
    }
}
