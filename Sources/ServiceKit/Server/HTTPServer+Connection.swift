import Logging
import Tracing

extension HTTPServer {
    /// How long a keep-alive connection waits for its next request in its task before it is
    /// parked: its task ends, its buffers are freed, and the loop starts a new task when the
    /// client sends again (``EventLoop/park(_:deadline:)``). Parking every idle moment would
    /// cost a task per request under load; never parking kept about 12.6 KiB per idle
    /// connection (138.9 MiB for 10,000 of them, against 16.2 for nginx). Timeouts are checked
    /// every 50 ms, so a connection parks 50 to 100 ms after its last response.
    static let parkGraceNanoseconds: UInt64 = 50_000_000
    /// A `parkAfter` grace meaning "as soon as there is nothing to read".
    static let parkAtOnce: UInt64 = 1
    /// When a loop has more than this many connections with a task, an idle one parks at once.
    /// A flood of new connections (10,000 in 0.6 s here) otherwise keeps every connection's task
    /// and buffers for the grace after its answer: the peak RSS of scale.py's 10,000 (static
    /// binary) was 63.6 to 70.0 MiB with the grace alone, 32.9 MiB with this. Keep-alive traffic
    /// below it (wrk's 256 connections) never pays for a new task per request (A/B at 256
    /// connections: 6.8 to 7.2 µs of CPU per request against 7.1 to 7.2 without it).
    static let defaultEagerParkAbove = 1024

    /// The input buffer a connection starts with: room for a typical request head.
    static let inputCapacity = 4096

    /// Serves one connection until it closes or parks: read a request, call its handler, write
    /// the response, repeat. Runs on `state.loop`'s thread.
    func serve(_ connection: Connection, on state: LoopState) async {
        let stream = connection.stream
        let loop = state.loop
        let remote = connection.remote
        var parked = false
        defer {
            if !parked { close(connection, on: state) }
        }

        #if TLS
        if let tls = connection.tls, !tls.handshakeDone {
            guard await handshake(tls, connection, on: state) else { return }
        }
        #endif

        var input = InputBuffer(capacity: Self.inputCapacity)
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        let inputLimit = limits.maxHeaderBytes + 1024
        // The first wait keeps the timer the connection had (from accept, or from when it parked).
        var resuming = true

        while true {
            // Between requests. A connection with nothing buffered is idle: during a drain it
            // waits only until the linger deadline for one more request.
            if input.isEmpty { connection.phase = .idle }
            var deadline: UInt64
            if resuming {
                deadline = connection.deadline
                resuming = false
            } else {
                deadline = EventLoop.deadline(after: input.isEmpty ? configuration.idleTimeout : configuration.readHeaderTimeout)
            }
            if input.isEmpty && state.draining { deadline = min(deadline, state.lingerDeadline) }
            var scanFrom = 0
            var parsed: (head: HTTPRequestHead, length: Int)?

            while parsed == nil {
                if !input.isEmpty {
                    switch HTTPRequestParser.parseHead(input.readable, scanFrom: scanFrom, limits: limits) {
                    case .complete(let head, let length):
                        parsed = (head, length)
                        continue
                    case .incomplete(let resumeAt):
                        scanFrom = resumeAt
                    case .failure(let error):
                        await refuse(error, head: nil, stream: stream, remote: remote, state: state, output: &output)
                        return
                    }
                }
                guard let space = input.writableSpace(limit: inputLimit) else {
                    await refuse(.headerFieldsTooLarge, head: nil, stream: stream, remote: remote, state: state, output: &output)
                    return
                }
                let wasEmpty = input.isEmpty
                // Only a connection with nothing buffered parks, and none during a drain.
                let grace: UInt64
                if !wasEmpty || state.draining {
                    grace = 0
                } else if state.connections.count - state.parked > eagerParkAbove.load(ordering: .relaxed) {
                    grace = Self.parkAtOnce
                } else {
                    grace = Self.parkGraceNanoseconds
                }
                switch await read(stream, into: space, deadline: deadline, loop: loop, parkAfter: grace) {
                case .parked:
                    connection.deadline = deadline
                    connection.task = nil
                    parked = true
                    countPark(on: state)
                    parksTotal.add(1, ordering: .relaxed)
                    state.parksSinceTrim += 1
                    return
                case .bytes(let count):
                    input.didWrite(count)
                    state.metrics.receivedBytes &+= count
                    if wasEmpty {
                        // The first byte of a request starts its header timer (slowloris).
                        connection.phase = .active
                        if connection.answeredOne { deadline = EventLoop.deadline(after: configuration.readHeaderTimeout) }
                    }
                case .end:
                    if !wasEmpty {
                        logger.debug("client closed the connection mid-request", metadata: ["remote": "\(remote?.description ?? "-")"])
                    }
                    return
                case .timedOut:
                    if !input.isEmpty {
                        await refuse(HTTPError(status: 408, reason: "request header timeout"), head: nil,
                                     stream: stream, remote: remote, state: state, output: &output)
                    }
                    return
                case .interrupted:
                    // The drain began (idle connections are woken to shorten their wait) or
                    // the deadline closed the connection.
                    guard !connection.forceClosed, state.draining else { return }
                    if input.isEmpty { deadline = min(deadline, state.lingerDeadline) }
                case .failed:
                    return
                }
            }
            guard let (head, headLength) = parsed else { return }
            input.consume(headLength)
            connection.phase = .active
            let started = EventLoop.now()

            let resolved = router.resolve(method: head.method, path: head.path)
            // The body, decoded and bounded before the handler sees it; or, for a route that
            // streams its body, read as the handler asks (RequestBody).
            var body: [UInt8] = []
            var bodyReader: RequestBodyReader?
            do throws(HTTPError) {
                if let limit = resolved.streamedBodyLimit {
                    var routeLimits = limits
                    routeLimits.maxBodyBytes = limit
                    let decoder = try HTTPBodyDecoder(framing: head.framing, limits: routeLimits)
                    if !decoder.isComplete {
                        bodyReader = RequestBodyReader(
                            buffered: input.readable, decoder: decoder, awaitingContinue: head.expectsContinue && input.isEmpty,
                            server: self, connection: connection, state: state)
                        input.consume(input.count)
                    }
                } else {
                    var decoder = try HTTPBodyDecoder(framing: head.framing, limits: limits)
                    if !decoder.isComplete {
                        if head.expectsContinue && input.isEmpty {
                            guard await writeAll(HTTPResponseSerializer.continueResponse, stream, loop: loop) else { return }
                        }
                        let bodyDeadline = EventLoop.deadline(after: configuration.readTimeout)
                        while true {
                            if !input.isEmpty {
                                let consumed = try decoder.decode(input.readable, into: &body)
                                input.consume(consumed)
                                if decoder.isComplete { break }
                            }
                            guard let space = input.writableSpace(limit: inputLimit) else { return }
                            switch await read(stream, into: space, deadline: bodyDeadline, loop: loop) {
                            case .bytes(let count):
                                input.didWrite(count)
                                state.metrics.receivedBytes &+= count
                            case .end:
                                logger.debug("client closed the connection mid-body", metadata: ["remote": "\(remote?.description ?? "-")"])
                                return
                            case .timedOut:
                                throw HTTPError(status: 408, reason: "request body timeout")
                            case .interrupted:
                                if connection.forceClosed { return }
                            case .failed, .parked: return
                            }
                        }
                    }
                }
            } catch {
                await refuse(error, head: head, stream: stream, remote: remote, state: state, output: &output)
                return
            }

            let requestID = Self.saneRequestID(head.headers["x-request-id"]) ?? state.newRequestID()
            var response: Response
            // The route's metrics label and log flag, rather than the optional RouteInfo kept
            // across the awaits below: copied through its generic value witnesses there, it cost
            // about 400 instructions a request (callgrind, /health).
            let routeIndex = resolved.route?.index ?? router.templates.count
            let routeLogged = resolved.route?.accessLog ?? true
            connection.inFlight = Connection.InFlight(method: head.method, path: head.path, requestID: requestID)
            // A server span only with a tracer, and for a traced route (or none matched).
            var trace = state.newTrace(head.headers)
            if tracesRequests, let tracing, resolved.route?.traced ?? true {
                let started = tracing.startSpan(
                    head: head, route: resolved.route?.template, remote: remote, scheme: connection.scheme,
                    serverPort: state.serverPort)
                if let context = tracing.spanContext(started.context) {
                    trace = RequestTrace(
                        traceID: context.traceID, spanID: context.spanID, parentSpanID: trace.parentSpanID, flags: context.flags)
                }
                connection.span = started
            }
            let request = Request(
                head: head, body: body,
                bodyStream: resolved.streamedBodyLimit.map { limit in
                    bodyReader.map { RequestBody(reader: $0) } ?? RequestBody(bytes: [], limit: limit)
                },
                pathParameters: resolved.parameters, remoteAddress: remote, id: requestID,
                route: resolved.route?.template, trace: trace, logger: logger)
            // With nothing more buffered, the client's FIN or reset means it has gone (a
            // pipelined request behind this one means it has not), and the handler's task is
            // cancelled, as Go cancels `r.Context()`; a FIN that came with the request cancels
            // it before the handler starts. Cancellation is cooperative: a handler that returns
            // anyway has its response written, for a client that only half-closed; one that
            // throws is logged as 499 and answered with nothing.
            if input.isEmpty {
                connection.watchesHangup = true
                if loop.sawHangup(stream.fd) { clientHungUp(stream.fd, on: state) }
            }
            // The same dispatch as Router.respond(to:), which tests call without a socket.
            do {
                if tracesRequests, let span = connection.span {
                    response = try await Self.call(resolved.handler, with: request, in: span.context)
                } else {
                    response = try await resolved.handler(consume request)
                }
            } catch let error as HTTPError where !connection.clientGone {
                response = Response(error: error)
            } catch {
                connection.watchesHangup = false
                if connection.clientGone {
                    clientLeft(head: head, routeIndex: routeIndex, logged: routeLogged, started: started, requestID: requestID,
                               trace: trace, connection: connection, state: state)
                    if tracesRequests { endSpan(of: connection, status: Self.clientClosedRequest) }
                    return
                }
                // Cut by the drain deadline, the request was logged as "request cut".
                if !connection.forceClosed {
                    Router.logFailure(error, method: head.method, path: head.path, requestID: requestID, to: logger)
                }
                response = .internalServerError
            }
            connection.watchesHangup = false
            // What a streamed body's handler left unread is discarded, up to a bound, or the
            // connection closes after this response; what came after the body is the next
            // request's.
            var bodyDone = true
            if let bodyReader {
                bodyDone = await bodyReader.discardRest()
                bodyReader.takeLeftover(into: &input)
                input.shrink(to: Self.inputCapacity)
            }

            var keepAlive = head.keepAlive && !state.draining && !connection.clientGone && bodyDone
            let sent: Bool
            var status = response.status
            var bodyBytes = response.body.count
            if let body = response.stream {
                let outcome = await sendStream(
                    response, body, for: head, requestID: requestID, keepAlive: keepAlive, watchHangup: input.isEmpty,
                    connection: connection, state: state, output: &output)
                (sent, status, bodyBytes) = (outcome.sent, outcome.status, outcome.bytes)
                keepAlive = keepAlive && outcome.keepAlive
            } else {
                sent = await send(response, for: head, requestID: requestID, keepAlive: keepAlive,
                                  stream: stream, state: state, output: &output)
            }
            connection.inFlight = nil
            let elapsed = metrics != nil || configuration.accessLog ? EventLoop.now() &- started : 0
            if metrics != nil {
                state.metrics.record(route: routeIndex, method: head.method, status: status, nanoseconds: elapsed)
            }
            if routeLogged {
                logAccess(head: head, status: status, bytes: bodyBytes, elapsed: elapsed,
                          remote: connection.remoteHost, requestID: requestID, trace: trace, state: state)
            }
            if tracesRequests { endSpan(of: connection, status: status) }
            guard sent else { return }
            if !keepAlive {
                await lingeringClose(stream, loop: loop)
                return
            }
            connection.answeredOne = true
        }
    }

    /// Calls `handler` with `context` as the task's `InstrumentationContext.current`: a traced
    /// request's handler, which sees its server span as the parent of any span it starts.
    static func call(
        _ handler: Handler, with request: consuming Request, in context: InstrumentationContext
    ) async throws -> Response {
        try await InstrumentationContext.$current.withValue(context) { [request] in try await handler(request) }
    }

    /// Ends the server span of the request `connection` served, if it has one.
    func endSpan(of connection: Connection, status: Int) {
        guard let span = connection.span else { return }
        connection.span = nil
        ServerTracing.end(span, status: status)
    }

    /// The status logged and counted for a request whose client closed the connection before
    /// its response was written (nginx's 499): a client's doing, not a server error.
    public static let clientClosedRequest = 499

    /// The loop's call when a client hangs up while nothing reads its connection (loop thread
    /// only): if a handler is running for it, its task is cancelled (see ``serve(_:on:)``).
    func clientHungUp(_ fd: Int32, on state: LoopState) {
        guard let connection = state.connections[fd], connection.watchesHangup, !connection.clientGone else { return }
        connection.clientGone = true
        connection.task?.cancel()
    }

    /// Logs and counts a request whose client left while its handler ran: status 499 with the
    /// request ID, at once. Nothing is written back: the caller closes the connection, and a
    /// client that only half-closed reads the end of the stream with no response.
    private func clientLeft(
        head: HTTPRequestHead, routeIndex: Int, logged: Bool, started: UInt64, requestID: String, trace: RequestTrace,
        connection: Connection, state: LoopState
    ) {
        connection.inFlight = nil
        let elapsed = EventLoop.now() &- started
        if metrics != nil {
            state.metrics.record(route: routeIndex, method: head.method, status: Self.clientClosedRequest,
                                 nanoseconds: elapsed)
        }
        if logged {
            logAccess(head: head, status: Self.clientClosedRequest, bytes: 0, elapsed: elapsed,
                      remote: connection.remoteHost, requestID: requestID, trace: trace, state: state)
        }
    }

    #if TLS
    static let plaintextRefusal = Array(
        "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n".utf8)

    /// Completes a new connection's TLS handshake within its first header timer (from accept).
    /// A failure costs one log line and the connection.
    func handshake(_ tls: TLSSession, _ connection: Connection, on state: LoopState) async -> Bool {
        var deadline = connection.deadline
        while true {
            let ready: EventLoop.WaitResult
            switch tls.handshake() {
            case .done:
                return true
            case .failed(let reason):
                logger.info("TLS handshake failed", metadata: [
                    "remote": "\(connection.remote?.description ?? "-")", "error": "\(reason)",
                ])
                return false
            case .plaintextHTTP:
                // As Go does: tell a plaintext client what went wrong, in plaintext.
                logger.info("TLS handshake failed: plaintext HTTP on the HTTPS port", metadata: [
                    "remote": "\(connection.remote?.description ?? "-")",
                ])
                _ = Self.plaintextRefusal.withUnsafeBytes { try? connection.socket.write($0) }
                connection.socket.shutdownWrite()
                return false
            case .waitReadable:
                ready = await state.loop.waitReadable(connection.socket.fd, deadline: deadline)
            case .waitWritable:
                ready = await state.loop.waitWritable(connection.socket.fd, deadline: deadline)
            }
            switch ready {
            case .ready:
                continue
            case .timedOut:
                logger.info("TLS handshake timed out", metadata: ["remote": "\(connection.remote?.description ?? "-")"])
                return false
            case .cancelled:
                // The drain began: the handshake may finish only until the linger deadline.
                guard !connection.forceClosed, state.draining else { return false }
                deadline = min(deadline, state.lingerDeadline)
            }
        }
    }
    #endif

    /// Closes a connection and forgets it (loop thread only).
    func close(_ connection: Connection, on state: LoopState) {
        #if TLS
        connection.tls?.close()
        #endif
        state.connections[connection.socket.fd] = nil
        state.closesSinceTrim += 1
        state.loop.deregister(connection.socket.fd)
        connection.socket.close()
        openConnections.subtract(1, ordering: .relaxed)
    }

    /// The loop's call for a parked connection (loop thread only): the client sent something,
    /// its timer ran out, or the drain or its deadline woke it.
    func parkedConnectionWoke(_ fd: Int32, _ result: EventLoop.WaitResult, on state: LoopState) {
        guard let connection = state.connections[fd] else { return }
        countPark(on: state, by: -1)
        switch result {
        case .ready:
            #if TLS
            if let tls, connection.tls == nil {
                // A new TLS connection's first bytes: its session starts now (see `start`).
                guard let session = TLSSession(context: tls.context, fd: fd) else {
                    logger.warning("cannot set up a TLS session")
                    close(connection, on: state)
                    return
                }
                connection.tls = session
            }
            #endif
            resume(connection, on: state)
        case .cancelled where state.draining && !connection.forceClosed:
            // The drain began: wait for one more request only until the linger deadline.
            connection.deadline = min(connection.deadline, state.lingerDeadline)
            state.loop.park(fd, deadline: connection.deadline)
            countPark(on: state)
        case .cancelled, .timedOut:
            #if TLS
            if tls != nil, connection.tls == nil, result == .timedOut, !state.draining {
                logger.info("TLS handshake timed out", metadata: ["remote": "\(connection.remote?.description ?? "-")"])
            }
            #endif
            close(connection, on: state)
        }
    }

    /// Keeps the parked counts, the server's and the loop's, in step (loop thread only).
    func countPark(on state: LoopState, by delta: Int = 1) {
        parkedConnections.add(delta, ordering: .relaxed)
        state.parked += delta
    }

    /// Gives a connection a task that serves it from where it stands (loop thread only).
    func resume(_ connection: Connection, on state: LoopState) {
        connection.task = Task(executorPreference: state.loop) {
            await self.serve(connection, on: state)
        }
    }

    enum ReadOutcome {
        case bytes(Int)
        /// The peer closed its side.
        case end
        case timedOut
        /// The wait was cancelled: the drain began or the connection is being closed.
        case interrupted
        case failed
        /// Nothing came within the grace: the socket is parked with the loop, waiting no more.
        case parked
    }

    /// Reads once, waiting for readability (until `deadline`) as long as nothing is there.
    ///
    /// With a `grace` (nanoseconds), a socket that stays silent that long is parked with the
    /// loop until `deadline` (``EventLoop/park(_:deadline:)``) and the result is `.parked`;
    /// with ``parkAtOnce``, as soon as it has nothing to read.
    @inline(__always)
    nonisolated(nonsending) func read(
        _ stream: ByteStream, into space: UnsafeMutableRawBufferPointer, deadline: UInt64, loop: EventLoop,
        parkAfter grace: UInt64 = 0
    ) async -> ReadOutcome {
        var parkAt: UInt64 = 0
        while true {
            // After a read that emptied the socket, with no poll since, skip the recv that
            // would only return EAGAIN (see EventLoop.noteDrained): 3 syscalls per keep-alive
            // request become 2.
            if !loop.isDrained(stream.fd) {
                switch stream.read(into: space) {
                case .done(let count):
                    if count < space.count && stream.shortReadEmpties { loop.noteDrained(stream.fd) }
                    return .bytes(count)
                case .end: return .end
                case .failed: return .failed
                case .waitReadable: break
                case .waitWritable:
                    // TLS only: the session must write (a key update's answer) before it reads on.
                    switch await loop.waitWritable(stream.fd, deadline: deadline) {
                    case .ready: continue
                    case .timedOut: return .timedOut
                    case .cancelled: return .interrupted
                    }
                }
            }
            var waitUntil = deadline
            if grace > 0 {
                // Parked right after a read that found nothing (or a short read with no poll
                // since), with no suspension in between: the next edge cannot be missed.
                let now = EventLoop.now()
                if parkAt == 0 { parkAt = grace == Self.parkAtOnce ? now : now &+ grace }
                if now >= parkAt && now < deadline {
                    loop.park(stream.fd, deadline: deadline)
                    return .parked
                }
                waitUntil = min(deadline, parkAt)
            }
            switch await loop.waitReadable(stream.fd, deadline: waitUntil) {
            case .ready: continue
            case .timedOut:
                // The grace ran out before the deadline: read once more, then park.
                if grace > 0 && EventLoop.now() < deadline { continue }
                return .timedOut
            case .cancelled: return .interrupted
            }
        }
    }

    /// Writes every byte, waiting for the client to read as needed: up to the write timeout
    /// from the first wait, or with `resetOnProgress` (a stream's writes, which may go on for
    /// hours) from the last write that made progress.
    nonisolated(nonsending) func writeAll(
        _ bytes: [UInt8], _ stream: ByteStream, loop: EventLoop, resetOnProgress: Bool = false
    ) async -> Bool {
        var offset = 0
        var deadline: UInt64?
        while offset < bytes.count {
            let step = bytes.withUnsafeBytes { raw in stream.write(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            let ready: EventLoop.WaitResult
            switch step {
            case .done(let written):
                offset += written
                if resetOnProgress { deadline = nil }
                continue
            case .end, .failed:
                return false
            case .waitWritable:
                if deadline == nil { deadline = EventLoop.deadline(after: configuration.writeTimeout) }
                ready = await loop.waitWritable(stream.fd, deadline: deadline ?? .max)
            case .waitReadable:
                // TLS only: the session must read before it can write on.
                if deadline == nil { deadline = EventLoop.deadline(after: configuration.writeTimeout) }
                ready = await loop.waitReadable(stream.fd, deadline: deadline ?? .max)
            }
            guard ready == .ready else {
                stream.socket.setAbortiveClose()
                return false
            }
        }
        return true
    }

    /// Serializes and writes a response. HEAD responses and 1xx/204/304 carry no body.
    ///
    /// Inlined: as a call of its own, with its own async frame, it cost about 190 instructions
    /// a request (callgrind, /health).
    @inline(__always)
    nonisolated(nonsending) func send(
        _ response: Response, for head: HTTPRequestHead?, requestID: String?, keepAlive: Bool,
        stream: ByteStream, state: LoopState, output: inout [UInt8]
    ) async -> Bool {
        let connection: String? = !keepAlive ? "close" : (head?.version == .http1_0 ? "keep-alive" : nil)
        let noBody = HTTPStatus.forbidsBody(response.status)
        output.removeAll(keepingCapacity: true)
        let skipped = HTTPResponseSerializer.writeHead(
            status: response.status, headers: response.headers, contentLength: noBody ? nil : response.body.count,
            date: state.date, connection: connection, requestID: requestID, into: &output)
        if skipped > 0 {
            logger.warning("response header fields dropped: invalid name or value", metadata: ["count": "\(skipped)"])
        }
        if head?.method != "HEAD" && !noBody {
            if response.body.count <= 64 * 1024 {
                output.append(contentsOf: response.body)
            } else {
                guard await writeAll(output, stream, loop: state.loop) else { return false }
                state.metrics.sentBytes &+= output.count
                guard await writeAll(response.body, stream, loop: state.loop) else { return false }
                state.metrics.sentBytes &+= response.body.count
                return true
            }
        }
        guard await writeAll(output, stream, loop: state.loop) else { return false }
        state.metrics.sentBytes &+= output.count
        return true
    }

    /// Answers a request the parser or a limit refused, and closes: after a framing error the
    /// stream can no longer be trusted to hold request boundaries.
    func refuse(
        _ error: HTTPError, head: HTTPRequestHead?, stream: ByteStream, remote: SocketAddress?,
        state: LoopState, output: inout [UInt8]
    ) async {
        let requestID = Self.saneRequestID(head?.headers["x-request-id"]) ?? state.newRequestID()
        let response = Response(error: error)
        let started = EventLoop.now()
        let sent = await send(response, for: head, requestID: requestID, keepAlive: false, stream: stream, state: state,
                              output: &output)
        let elapsed = EventLoop.now() &- started
        if metrics != nil {
            // The route, if the path names one, so refusals show under the route they were for.
            var route = router.templates.count
            if let head {
                switch router.match(method: head.method, path: head.path) {
                case .found(_, _, let matched), .methodNotAllowed(_, let matched, _): route = matched.index
                case .notFound: break
                }
            }
            state.metrics.record(route: route, method: head?.method ?? ServerMetrics.otherMethod,
                                 status: error.status, nanoseconds: elapsed)
        }
        if sent {
            await lingeringClose(stream, loop: state.loop)
        }
        if let head {
            logAccess(head: head, status: error.status, bytes: response.body.count, elapsed: elapsed,
                      remote: remote?.host ?? "-", requestID: requestID, trace: state.newTrace(head.headers), state: state)
        } else {
            accessLog.logger.info("request refused", metadata: [
                "status": .stringConvertible(error.status), "reason": "\(error.reason)",
                "remote": "\(remote?.description ?? "-")", "request_id": "\(requestID)",
            ])
        }
    }

    /// Half-closes, then reads and discards for a moment before closing, so a client that is
    /// still sending (a pipelined request, a body we refused) gets our response rather than a
    /// reset that discards it (RFC 9112 §9.6).
    nonisolated(nonsending) func lingeringClose(_ stream: ByteStream, loop: EventLoop) async {
        stream.shutdownWrite()
        let deadline = EventLoop.now() + 500_000_000
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        var discarded = 0
        while discarded < 256 * 1024 {
            guard case .bytes(let count) = await read(stream.plain, into: scratch, deadline: deadline, loop: loop) else { return }
            discarded += count
        }
    }

    func logAccess(
        head: HTTPRequestHead, status: Int, bytes: Int, elapsed: UInt64, remote: String, requestID: String,
        trace: RequestTrace, state: LoopState
    ) {
        guard configuration.accessLog else { return }
        let entry = AccessLogEntry(
            method: head.method, path: head.path, status: status, bytes: bytes,
            durationMicroseconds: elapsed / 1000, remote: remote,
            requestID: requestID, traceID: trace.traceID, spanID: trace.spanID, userAgent: head.headers["user-agent"] ?? "-")
        accessLog.log(entry, into: &state.logBatch)
    }

    /// An incoming `X-Request-ID` is reused only if it is 1 to 128 characters from a safe set,
    /// so it can be echoed in a header and a log line without surprises.
    static func saneRequestID(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 128 else { return nil }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "@"):
                continue
            default:
                return nil
            }
        }
        return value
    }
}
