import Logging
import Synchronization
import GoDuration

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// DrainResult is what a graceful shutdown did.
public struct DrainResult: Sendable, Equatable {
    /// Connections still open at the drain deadline (or when the shutdown was forced), closed then.
    public var closedAtDeadline: Int
    /// Of those, the ones with a request under way, whose handlers were cancelled.
    public var cutRequests: Int
    /// Whether ``HTTPServer/forceShutdown()`` cut the drain short.
    public var forced: Bool
}

/// DrainIncompleteError is thrown by ``HTTPServer/run()`` when the drain had to close
/// connections, so that the process exits non-zero.
public struct DrainIncompleteError: Error, CustomStringConvertible {
    public var result: DrainResult
    public var description: String {
        "drain incomplete: \(result.closedAtDeadline) connection(s) closed, \(result.cutRequests) request(s) cut"
            + (result.forced ? " (forced)" : " at the drain deadline")
    }
}

extension HTTPServer {
    /// Drains the server, in this order, logging each step with counts:
    ///
    /// 1. readiness turns 503 (``Readiness/isDraining``); liveness is unaffected;
    /// 2. for `shutdownDelay`, connections are still accepted and served as usual, so load
    ///    balancers can stop routing here first;
    /// 3. the listener closes: new connections are refused;
    /// 4. requests in flight run to completion and their responses say `Connection: close`;
    ///    each keep-alive connection that was idle gets `drainLinger` to send one more request
    ///    (answered with `Connection: close`) before it is closed. Go's `Shutdown` closes idle
    ///    connections at once, which loses the request a client was just sending;
    /// 5. once no connection is left it returns, within milliseconds;
    /// 6. at the drain deadline (`drainTimeout` after the listener closed) the remaining
    ///    connections are reset, their handlers cancelled and each cut request logged; it
    ///    returns at most one second later whatever the handlers do.
    ///
    /// ``forceShutdown()`` (a second SIGTERM) skips to step 6 at once. Calling `shutdown` again
    /// while one runs waits for that one.
    ///
    /// - Parameters:
    ///   - shutdownDelay: step 2; defaults to the configuration's.
    ///   - drainTimeout: step 6; defaults to the configuration's.
    @discardableResult
    public func shutdown(shutdownDelay: Duration? = nil, drainTimeout: Duration? = nil) async -> DrainResult {
        let running: (loops: [LoopState], listener: Socket)? = state.withLock { state in
            switch state {
            case .running(let listener, let address, let loops):
                state = .draining(address: address, loops: loops)
                return (loops, listener)
            case .initial:
                state = .stopped
                return nil
            case .draining, .stopped:
                return nil
            }
        }
        guard let (loops, listener) = running else {
            await waitUntilStopped()
            return DrainResult(closedAtDeadline: 0, cutRequests: 0, forced: forceRequested.load(ordering: .relaxed))
        }
        let delay = shutdownDelay ?? configuration.shutdownDelay
        let timeout = drainTimeout ?? configuration.drainTimeout
        let started = EventLoop.now()

        // 1. Readiness.
        readiness.beginDraining()
        logger.info("shutdown: started; readiness answers 503", metadata: [
            "open_connections": .stringConvertible(connectionCount),
            "shutdown_delay": "\(delay.goString)", "drain_timeout": "\(timeout.goString)",
            "drain_linger": "\(configuration.drainLinger.goString)",
        ])

        // 2. The pre-drain delay: business as usual.
        if delay > .zero {
            await pause(until: EventLoop.deadline(after: delay), interruptible: true) { true }
            logger.info("shutdown: pre-drain delay over", metadata: [
                "open_connections": .stringConvertible(connectionCount), "forced": .stringConvertible(isForced),
            ])
        }

        // 3. Close the listener, and only then (4) start answering with `Connection: close`:
        // clients reconnect as soon as they read it, and a connection that completed its
        // handshake while the listener was still open would be reset when it closed.
        listenerClosing.store(true, ordering: .relaxed)
        loops[0].loop.execute { loops[0].loop.cancelWaits(listener.fd) }
        await pause(until: EventLoop.now() + 200_000_000, interruptible: false) {
            !self.listenerClosed.load(ordering: .acquiring)
        }

        // 4. Mark the loops draining; wake idle connections so they wait at most the linger
        // for a next request, and streamed responses sleeping between writes.
        let lingerDeadline = isForced ? EventLoop.now() : EventLoop.deadline(after: configuration.drainLinger, orNow: true)
        let counts = Mutex<(loops: Int, idle: Int, active: Int)>((0, 0, 0))
        for state in loops {
            state.loop.execute {
                state.draining = true
                state.lingerDeadline = lingerDeadline
                var idle = 0
                for connection in state.connections.values where connection.phase == .idle {
                    idle += 1
                    state.loop.cancelWaits(connection.socket.fd)
                }
                // Streamed responses sleeping between writes learn of the shutdown now.
                for id in state.shutdownSleepers { state.loop.wake(sleeper: id) }
                let active = state.connections.count - idle
                counts.withLock { $0 = ($0.loops + 1, $0.idle + idle, $0.active + active) }
            }
        }
        // Bounded: a loop stuck in a handler that never yields must not stall the shutdown.
        await pause(until: EventLoop.now() + 200_000_000, interruptible: false) {
            counts.withLock { $0.loops } < loops.count
        }
        let (_, idle, active) = counts.withLock { $0 }
        logger.info("shutdown: listener closed; draining", metadata: [
            "open_connections": .stringConvertible(connectionCount),
            "idle_connections": .stringConvertible(idle), "active_connections": .stringConvertible(active),
        ])

        // 5. Wait for the connections to finish.
        let drainDeadline = isForced ? EventLoop.now() : EventLoop.deadline(after: timeout, orNow: true)
        await pause(until: drainDeadline, interruptible: true) { self.connectionCount > 0 }

        // 6. The deadline: close what is left.
        var result = DrainResult(closedAtDeadline: 0, cutRequests: 0, forced: isForced)
        let remaining = connectionCount
        if remaining == 0 {
            logger.info("shutdown: drained", metadata: [
                "duration_ms": .stringConvertible(Self.milliseconds(since: started)),
            ])
        } else {
            result.closedAtDeadline = remaining
            logger.warning(isForced ? "shutdown: forced; closing connections" : "shutdown: drain deadline passed; closing connections",
                           metadata: ["open_connections": .stringConvertible(remaining)])
            let cut = Atomic<Int>(0)
            let logger = self.logger
            for state in loops {
                state.loop.execute {
                    for connection in state.connections.values {
                        if let request = connection.inFlight {
                            cut.add(1, ordering: .relaxed)
                            logger.warning("shutdown: request cut", metadata: [
                                "method": .string(request.method), "path": .string(request.path),
                                "request_id": .string(request.requestID),
                            ])
                        }
                        connection.forceClosed = true
                        connection.socket.setAbortiveClose()
                        _ = systemShutdown(connection.socket.fd, Int32(SHUT_RDWR))
                        state.loop.cancelWaits(connection.socket.fd)
                        connection.task?.cancel()
                    }
                }
            }
            // Handlers that ignore cancellation get one second, then the process goes anyway.
            await pause(until: EventLoop.now() + 1_000_000_000, interruptible: false) { self.connectionCount > 0 }
            result.cutRequests = cut.load(ordering: .relaxed)
        }

        for state in loops { state.loop.stop() }
        logger.info("shutdown: done", metadata: [
            "duration_ms": .stringConvertible(Self.milliseconds(since: started)),
            "closed_at_deadline": .stringConvertible(result.closedAtDeadline),
            "cut_requests": .stringConvertible(result.cutRequests),
            "forced": .stringConvertible(result.forced),
        ])
        self.state.withLock { $0 = .stopped }
        let waiters = stoppedWaiters.withLock { value in
            value.stopped = true
            defer { value.waiters = [] }
            return value.waiters
        }
        waiters.forEach { $0.resume() }
        return result
    }

    /// Cuts a drain short: connections still open are closed now (a second SIGTERM). Safe from
    /// any thread; before a shutdown has begun it makes the coming one immediate.
    public func forceShutdown() {
        if !forceRequested.exchange(true, ordering: .relaxed) {
            logger.warning("shutdown: forced")
        }
    }

    var isForced: Bool { forceRequested.load(ordering: .relaxed) }

    /// Returns once ``shutdown(shutdownDelay:drainTimeout:)`` has finished.
    public func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let done = stoppedWaiters.withLock { value in
                if value.stopped { return true }
                value.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Sleeps while `condition` holds, until `deadline` (monotonic nanoseconds), or until a
    /// forced shutdown when `interruptible`.
    ///
    /// It polls, with steps that start at 50 µs and double up to 2 ms (Go's `Shutdown` backs off
    /// the same way). What it waits for on an idle server (the listener to close, each loop to
    /// take note of the drain) happens within about 100 µs; fixed 2 ms steps made those two
    /// waits 4 ms of the 5.7 ms from SIGTERM to exit. A long drain still polls every 2 ms.
    private func pause(until deadline: UInt64, interruptible: Bool, while condition: () -> Bool) async {
        var step: UInt64 = 50_000
        while condition() && EventLoop.now() < deadline && !(interruptible && isForced) {
            try? await Task.sleep(for: .nanoseconds(step))
            step = min(step * 2, 2_000_000)
        }
    }

    static func milliseconds(since start: UInt64) -> Int {
        Int((EventLoop.now() &- start) / 1_000_000)
    }
}
