import CServiceKit
import ServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs blocking test code (raw-socket clients, `usleep` polling) on a thread of its own and
/// returns its result.
///
/// Swift Testing runs suites in parallel on the cooperative pool, which has one thread per core
/// (two here). A test that blocks one of them for seconds can starve another test's server
/// shutdown, whose drain polls with `Task.sleep`, and time it out. Tests whose blocking spans
/// seconds use this, so they hold a thread of their own instead.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let work = ThreadWork { continuation.resume(with: Result { try body() }) }
        let context = Unmanaged.passRetained(work).toOpaque()
        let started = csystem_thread_start({ context in
            guard let context else { return }
            Unmanaged<ThreadWork>.fromOpaque(context).takeRetainedValue().run()
        }, context)
        if started != 0 {
            Unmanaged<ThreadWork>.fromOpaque(context).release()
            continuation.resume(throwing: TestFailure())
        }
    }
}

private final class ThreadWork: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

// Checks for code on a client thread of its own (``onOwnThread(_:)``), where Swift Testing's
// `#expect` has no test to record into: a failed check throws ``Check`` with what was expected.

struct Check: Error, CustomStringConvertible {
    var description: String
}

func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
    if !condition { throw Check(description: what()) }
}

/// Polls until `condition` holds, for up to `seconds`; returns whether it did.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}
