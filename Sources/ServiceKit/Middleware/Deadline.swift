/// Deadline bounds how long the routes it wraps may take to answer, as Go's
/// `http.TimeoutHandler` does: `router.group("/api", middleware: [Deadline(.seconds(2))]) { ... }`.
///
/// A handler (with the middleware inside this one) that answers or throws within `timeout` is
/// untouched: its response, or its error, is what the client gets. Past `timeout` the
/// handler's task is cancelled, one warning line is logged through ``Request/logger`` (so it
/// carries the request ID and route) with the `deadline`, and the client gets `503` with the
/// JSON error body (`{"error":"request deadline passed","status":503}`).
///
/// Cancellation is cooperative. A handler that honours it (any `try await` on a sleep, a
/// socket wait, a task-group child) is answered at the deadline. A handler that ignores it
/// (a loop that never checks, a blocking call) is waited for: its `503` goes out when it
/// returns, its result dropped. Go instead answers at once and lets the handler's goroutine
/// run on. That needs the handler to outlive the middleware's call, and ``Middleware`` hands
/// `next` over as a non-escaping closure, valid only until `handle` returns, so the handler
/// runs as a child of the request's task. The wait is also what keeps the server's drain and
/// its connection count honest: no handler runs on unseen after its request was answered.
///
/// The deadline is checked by the event loop's timers, so the `503` comes up to
/// ``EventLoop/timerResolutionNanoseconds`` late. A zero or negative `timeout` means no
/// deadline: requests pass straight through.
public struct Deadline: Middleware {
    /// How long a request may take before it is answered with `503`.
    public let timeout: Duration

    public init(_ timeout: Duration) {
        self.timeout = timeout
    }

    /// The refusal a request past its deadline gets.
    public static let refusal = HTTPError(status: 503, reason: "request deadline passed")

    private enum Outcome: Sendable {
        case answered(Result<Response, any Error>)
        case expired
    }

    public func handle(_ request: Request, next: Handler) async throws -> Response {
        guard timeout > .zero else { return try await next(request) }
        let timeout = self.timeout
        // The children inherit the request task's executor (its event loop), priority and
        // task-local values, and are cancelled with it when the client leaves.
        let outcome = await withoutActuallyEscaping(next) { next in
            await withTaskGroup(of: Outcome?.self) { group in
                group.addTask {
                    do {
                        return .answered(.success(try await next(request)))
                    } catch {
                        return .answered(.failure(error))
                    }
                }
                group.addTask {
                    // Cancelled: the handler answered first, or the request was cancelled.
                    guard (try? await EventLoop.sleep(for: timeout)) != nil else { return nil }
                    return .expired
                }
                var first: Outcome?
                while first == nil, let result = await group.next() { first = result }
                group.cancelAll()
                if case .expired = first {
                    request.logger.warning("request deadline passed", metadata: [
                        "deadline": "\(timeout.goString)", "method": "\(request.method)", "path": "\(request.path)",
                    ])
                }
                return first
            }
        }
        switch outcome {
        case .answered(let result)?: return try result.get()
        case .expired?, nil: throw Self.refusal
        }
    }
}
