import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization
import CServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// HTTPServer serves HTTP/1.1 on a TCP listener with one event loop per core.
///
/// Each connection is a task whose executor preference is the loop watching its socket; its
/// code reads top to bottom (read a request, call the handler, write the response, repeat)
/// like a goroutine under Go's netpoller. It is a swift-service-lifecycle `Service`: run it in
/// a `ServiceGroup` and a SIGTERM drains it.
public final class HTTPServer: Service, @unchecked Sendable {
    public let configuration: ServerConfiguration
    let router: Router
    let logger: Logger
    let accessLog: AccessLog
    let limits: HTTPLimits
    /// Nil when the server was made without a metrics factory.
    public let metrics: ServerMetrics?
    /// The tracer that gets a span per request; nil records none (the default when no tracer
    /// is bootstrapped), though every request still has its ``RequestTrace`` in the logs.
    public let tracing: ServerTracing?
    /// `tracing != nil`, as a plain flag: testing the optional struct (an existential and a
    /// closure) went through its value witness, about 80 instructions a request.
    let tracesRequests: Bool
    #if TLS
    /// The certificate and key new connections get, or nil for plain HTTP (set once, in init).
    public private(set) var tls: TLSCertificates?
    #endif

    enum State {
        case initial
        case running(listener: Socket, address: SocketAddress, loops: [LoopState])
        case draining(address: SocketAddress, loops: [LoopState])
        case stopped
    }

    let state = Mutex(State.initial)
    let openConnections = Atomic<Int>(0)
    let parkedConnections = Atomic<Int>(0)
    /// How many times a connection has parked since the server started.
    let parksTotal = Atomic<Int>(0)
    /// Above this many connections with a task on one loop, an idle connection parks as soon as
    /// it has nothing to read rather than after the grace (tests lower it).
    let eagerParkAbove = Atomic<Int>(HTTPServer.defaultEagerParkAbove)
    /// How many times a loop has given freed heap memory back to the system (``LoopState/trimHeapIfDue()``).
    let heapTrims = Atomic<Int>(0)
    let rejectedConnections = Atomic<Int>(0)
    let acceptedConnections = Atomic<Int>(0)
    /// Set when the listener is to close (after the pre-drain delay): the accept loop stops.
    let listenerClosing = Atomic<Bool>(false)
    /// Set by the accept loop once the listener is closed.
    let listenerClosed = Atomic<Bool>(false)
    /// Set by ``forceShutdown()``: the drain skips what is left of its delay and deadline.
    let forceRequested = Atomic<Bool>(false)
    let stoppedWaiters = Mutex<(stopped: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    /// Says whether the service wants traffic; not ready from the first moment of a shutdown.
    public let readiness: Readiness

    /// - Parameters:
    ///   - configuration: address, limits and timeouts.
    ///   - router: the routes to serve.
    ///   - logger: for the server's own events (startup, errors, shutdown).
    ///   - accessLogger: for one line per request; defaults to `logger` relabelled `access`.
    ///   - readiness: the state a readiness route reports; the server marks it draining when
    ///     a graceful shutdown begins.
    ///   - metricsFactory: where the server's metrics go (``ServerMetrics``); nil records none.
    ///   - tracing: the tracer that gets a span per request; by default the bootstrapped one
    ///     (`InstrumentationSystem.bootstrap`), if any (``ServerTracing``).
    public init(
        configuration: ServerConfiguration, router: Router, logger: Logger, accessLogger: Logger? = nil,
        readiness: Readiness = Readiness(), metricsFactory: (any MetricsFactory)? = nil,
        tracing: ServerTracing? = .bootstrapped()
    ) {
        self.configuration = configuration
        self.tracing = tracing
        tracesRequests = tracing != nil
        metrics = metricsFactory.map { ServerMetrics(factory: $0, routes: router.templates) }
        self.readiness = readiness
        self.router = router
        self.logger = logger
        accessLog = AccessLog(logger: accessLogger ?? Logger(label: "access"))
        limits = HTTPLimits(
            maxHeaderBytes: configuration.maxHeaderBytes,
            maxRequestLineBytes: min(8 * 1024, configuration.maxHeaderBytes),
            maxBodyBytes: configuration.maxBodyBytes
        )
    }

    #if TLS
    /// A server that speaks HTTPS with `tls` (HTTP/1.1 over TLS 1.2 or 1.3); nil serves plain HTTP.
    public convenience init(
        configuration: ServerConfiguration, router: Router, logger: Logger, accessLogger: Logger? = nil,
        readiness: Readiness = Readiness(), metricsFactory: (any MetricsFactory)? = nil,
        tracing: ServerTracing? = .bootstrapped(), tls: TLSCertificates?
    ) {
        self.init(configuration: configuration, router: router, logger: logger, accessLogger: accessLogger,
                  readiness: readiness, metricsFactory: metricsFactory, tracing: tracing)
        self.tls = tls
    }
    #endif

    /// The bound address once ``start()`` returned; its port is the real one when 0 was asked.
    public var localAddress: SocketAddress? {
        state.withLock { state in
            switch state {
            case .running(_, let address, _), .draining(let address, _): return address
            case .initial, .stopped: return nil
            }
        }
    }

    /// The number of open client connections.
    public var connectionCount: Int { openConnections.load(ordering: .relaxed) }

    /// Of those, the ones parked: idle keep-alive connections that hold no task and no buffers
    /// until their client sends again (``EventLoop/park(_:deadline:)``).
    public var parkedConnectionCount: Int { parkedConnections.load(ordering: .relaxed) }

    /// Binds the listener and starts the event loops. Errors (address in use, permission
    /// denied, a bad address) are thrown before anything is served.
    public func start() throws(SystemError) {
        guard case .initial = state.withLock({ $0 }) else { return }
        guard let address = SocketAddress(host: configuration.host, port: configuration.port) else {
            throw SystemError(call: "inet_pton(\(configuration.host))", errno: EINVAL)
        }
        let listener = try Socket.listen(on: address)
        let bound: SocketAddress
        do {
            bound = try listener.localAddress()
        } catch {
            listener.close()
            throw error
        }
        // So that the loops' heap trims return what connections that left have freed.
        csystem_configure_heap()
        let count = configuration.eventLoops > 0 ? configuration.eventLoops : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        // The sinks this server's loops log to: lines they append are batched until the loop
        // flushes them at the end of its iteration.
        var ownSinks = [LogSink.standardOutput]
        for sink in [accessLog.direct?.sink, (logger.handler as? JSONLogHandler)?.sink].compactMap({ $0 })
        where !ownSinks.contains(where: { $0 === sink }) {
            ownSinks.append(sink)
        }
        let sinks = ownSinks
        var loops: [LoopState] = []
        for index in 0..<count {
            do {
                let loop = try EventLoop(index: index)
                let loopState = LoopState(loop: loop, routeLabels: metrics?.routes.count ?? 0)
                loopState.serverPort = bound.port
                let metrics = metrics
                loop.execute {
                    LogSink.beginBatchingOnCurrentThread()
                    loop.addIterationHook {
                        if let metrics, loopState.metrics.isFlushDue() { loopState.metrics.flush(into: metrics) }
                        self.accessLog.handOver(&loopState.logBatch)
                        for sink in sinks { sink.flush() }
                        if let micros = loopState.trimHeapIfDue() {
                            self.heapTrims.add(1, ordering: .relaxed)
                            self.logger.debug("heap trimmed after connections parked or closed", metadata: [
                                "loop": .stringConvertible(index), "duration_us": .stringConvertible(micros),
                            ])
                        }
                    }
                    loop.parkedHandler = { fd, result in self.parkedConnectionWoke(fd, result, on: loopState) }
                    loop.hangupHandler = { fd in self.clientHungUp(fd, on: loopState) }
                }
                loops.append(loopState)
            } catch {
                loops.forEach { $0.loop.stop() }
                listener.close()
                throw error
            }
        }
        state.withLock { $0 = .running(listener: listener, address: bound, loops: loops) }
        let acceptLoop = loops[0]
        Task(executorPreference: acceptLoop.loop) {
            await self.acceptConnections(listener, on: acceptLoop, loops: loops)
        }
    }

    /// Called once ``run()`` begins serving, with the bound address. In a `ServiceGroup` the
    /// signal handlers are installed by then, so a "started" log line written here promises
    /// that a SIGTERM from now on drains the server rather than killing the process.
    public var onRun: (@Sendable (SocketAddress?) -> Void)? {
        get { onRunHook.withLock { $0 } }
        set { onRunHook.withLock { $0 = newValue } }
    }
    private let onRunHook = Mutex<(@Sendable (SocketAddress?) -> Void)?>(nil)

    /// Runs the server until a graceful shutdown (SIGTERM in a `ServiceGroup`) or cancellation,
    /// then drains it. Starts it first if ``start()`` was not called.
    ///
    /// - Throws: ``DrainIncompleteError`` when the drain deadline (or ``forceShutdown()``) had
    ///   to close connections, so the process can exit non-zero; errors from ``start()``.
    public func run() async throws {
        try start()
        onRun?(localAddress)
        let result: DrainResult
        do {
            try await gracefulShutdown()
            result = await shutdown()
        } catch {
            // Cancelled rather than asked to shut down gracefully: no grace.
            forceShutdown()
            result = await shutdown()
        }
        if result.closedAtDeadline > 0 { throw DrainIncompleteError(result: result) }
    }

    // MARK: Metrics

    /// Brings the server's metrics up to date, for a scrape: each loop hands over its pending
    /// counts and durations and counts its connections by state, then the gauges are set. Does
    /// nothing when the server has no metrics or has stopped.
    public func collectMetrics() async {
        guard let metrics else { return }
        let loops: [LoopState] = state.withLock { state in
            switch state {
            case .running(_, _, let loops), .draining(_, let loops): loops
            case .initial, .stopped: []
            }
        }
        var byState = [0, 0, 0]
        var inFlight = 0
        for loopState in loops {
            let counts: [Int]? = await withCheckedContinuation { continuation in
                let taken = loopState.loop.execute {
                    loopState.metrics.flush(into: metrics)
                    var counts = [0, 0, 0, 0]
                    for connection in loopState.connections.values {
                        counts[connection.metricsState] += 1
                        if connection.inFlight != nil { counts[3] += 1 }
                    }
                    continuation.resume(returning: counts)
                }
                if !taken { continuation.resume(returning: nil) }
            }
            guard let counts else { continue }
            for index in byState.indices { byState[index] += counts[index] }
            inFlight += counts[3]
        }
        let handles = metrics.handles
        for (gauge, count) in zip(handles.connections, byState) { gauge.record(count) }
        handles.inFlight.record(inFlight)
        handles.draining.record(readiness.isDraining ? 1 : 0)
        metrics.report(
            acceptedTotal: acceptedConnections.load(ordering: .relaxed),
            refusedTotal: rejectedConnections.load(ordering: .relaxed))
    }

    // MARK: Accepting

    private func acceptConnections(_ listener: Socket, on acceptLoop: LoopState, loops: [LoopState]) async {
        let loop = acceptLoop.loop
        do {
            try loop.register(listener.fd)
        } catch {
            logger.critical("cannot watch the listener", metadata: ["error": "\(error)"])
            return
        }
        var next = 0
        var descriptorsExhausted = false
        func hand(_ client: Socket, _ remote: SocketAddress?) {
            if openConnections.load(ordering: .relaxed) >= configuration.maxConnections {
                refuse(client)
                return
            }
            openConnections.add(1, ordering: .relaxed)
            acceptedConnections.add(1, ordering: .relaxed)
            let target = loops[next % loops.count]
            next &+= 1
            let connection = Connection(socket: client, remote: remote)
            if target === acceptLoop {
                start(connection, on: target)
            } else {
                target.loop.execute { self.start(connection, on: target) }
            }
        }

        while !listenerClosing.load(ordering: .relaxed) {
            let accepted: (Socket, SocketAddress?)?
            do {
                accepted = try listener.accept()
            } catch {
                // EMFILE/ENFILE leave the connection in the backlog and the listener readable:
                // retrying at once would spin a core. Log once, back off, try again.
                if error.errno == EMFILE || error.errno == ENFILE || error.errno == ENOBUFS || error.errno == ENOMEM {
                    if !descriptorsExhausted {
                        logger.error("accept failed; backing off", metadata: ["error": "\(error)"])
                        descriptorsExhausted = true
                    }
                } else {
                    logger.error("accept failed", metadata: ["error": "\(error)"])
                }
                await loop.sleep(until: EventLoop.now() + 100_000_000)
                continue
            }
            guard let (client, remote) = accepted else {
                // Woken with `.cancelled` when the drain closes the listener: the loop condition ends it.
                _ = await loop.waitReadable(listener.fd)
                continue
            }
            if descriptorsExhausted {
                logger.notice("accepting again")
                descriptorsExhausted = false
            }
            hand(client, remote)
        }
        // Connections whose handshake completed before this point wait in the backlog, and
        // closing the listener would reset them: a client would lose the request it just sent.
        // Take them first; the drain's linger gives each one request.
        while let accepted = try? listener.accept() {
            hand(accepted.0, accepted.1)
        }
        loop.deregister(listener.fd)
        listener.close()
        listenerClosed.store(true, ordering: .releasing)
    }

    /// Sets a new connection up on its loop and starts its task (loop thread only: it enters
    /// the loop's table).
    private func start(_ connection: Connection, on state: LoopState) {
        state.connections[connection.socket.fd] = connection
        state.peakSinceTrim = max(state.peakSinceTrim, state.connections.count)
        do {
            try state.loop.register(connection.socket.fd)
            // Responses go out in one write each; Nagle would only delay them.
            try connection.socket.setOption(Platform.tcpProtocol, TCP_NODELAY, 1)
        } catch {
            logger.warning("cannot set up connection", metadata: ["error": "\(error)"])
            close(connection, on: state)
            return
        }
        // The first request's header timer (and the TLS handshake's) runs from accept (slowloris).
        connection.deadline = EventLoop.deadline(after: configuration.readHeaderTimeout)
        #if TLS
        if tls != nil {
            // A TLS connection starts parked: no task, no OpenSSL session and no buffers until its
            // first bytes arrive (``parkedConnectionWoke(_:_:on:)`` makes the session then). A
            // session and a task made at accept cost 47 KiB per connection that sends nothing (a
            // flood of bare TCP connects; Go: 11.6), a parked connection 0.2 KiB. Registering an
            // already readable socket raises its edge at once, so bytes that came before this
            // park still wake it. Idle for the drain: it gets the linger, as a keep-alive
            // connection that has sent nothing more does.
            connection.phase = .idle
            // Accepted just before the drain began and started after it: the linger applies too.
            if state.draining { connection.deadline = min(connection.deadline, state.lingerDeadline) }
            state.loop.park(connection.socket.fd, deadline: connection.deadline)
            countPark(on: state)
            return
        }
        #endif
        resume(connection, on: state)
    }

    /// Past the connection cap: a 503 and a close, without giving the connection a task.
    private func refuse(_ socket: Socket) {
        rejectedConnections.add(1, ordering: .relaxed)
        var plaintext = true
        #if TLS
        // No TLS session for a connection refused: a plaintext 503 would be garbage to it.
        plaintext = tls == nil
        #endif
        if plaintext {
            // Read what the client already sent so the close does not turn into a reset that
            // discards the 503 before the client reads it.
            var scratch = [UInt8](repeating: 0, count: 4096)
            _ = scratch.withUnsafeMutableBytes { try? socket.read(into: $0) }
            let body = #"{"error":"too many connections","status":503}"#
            let response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\nRetry-After: 1\r\n\r\n\(body)"
            _ = Array(response.utf8).withUnsafeBytes { try? socket.write($0) }
            socket.shutdownWrite()
        }
        socket.close()
        let rejected = rejectedConnections.load(ordering: .relaxed)
        if rejected & (rejected - 1) == 0 {
            // Powers of two: a flood logs a handful of lines, not one per connection.
            logger.warning("connection limit reached; refusing connections",
                           metadata: ["max_connections": "\(configuration.maxConnections)", "refused_total": "\(rejected)"])
        }
    }

}
