/// A response body written while it is sent: Server-Sent Events, a long poll, an export
/// produced on the fly. See ``Response/init(status:headers:contentLength:stream:)``.
///
/// A class, so that it adds one pointer to every ``Response`` (nil for a whole body) rather
/// than three words and a closure context.
public final class ResponseStream: Sendable {
    /// The body's length, if known before it is written: sent as `Content-Length`, and the
    /// server checks that exactly this many bytes are written. Nil: the body is chunked (an
    /// HTTP/1.1 client) or ends with the connection (HTTP/1.0).
    public let contentLength: Int?
    /// Writes the body through the writer it is given, and returns when the body is complete.
    /// What it throws ends the response: see ``ResponseWriter``.
    public let body: @Sendable (ResponseWriter) async throws -> Void

    public init(contentLength: Int? = nil, body: @escaping @Sendable (ResponseWriter) async throws -> Void) {
        self.contentLength = contentLength
        self.body = body
    }
}

extension Response {
    /// A response whose body `stream` writes while it is sent, through a ``ResponseWriter``.
    ///
    /// The server writes the head when the body first writes or flushes; a `HEAD` request gets
    /// the head alone, and `stream` is not called. A `contentLength` (when known) is sent and
    /// enforced; otherwise an HTTP/1.1 client gets `Transfer-Encoding: chunked` and an HTTP/1.0
    /// client a body that ends with the connection.
    public init(
        status: Int = 200, headers: HTTPHeaders = [:], contentLength: Int? = nil,
        stream: @escaping @Sendable (ResponseWriter) async throws -> Void
    ) {
        self.init(status: status, headers: headers)
        self.stream = ResponseStream(contentLength: contentLength, body: stream)
    }

    /// A response whose body is the chunks of `chunks`, each written as it comes (an empty
    /// chunk writes nothing). An error the sequence throws ends the response as a thrown error
    /// does in ``init(status:headers:contentLength:stream:)``.
    public init<Chunks: AsyncSequence & Sendable>(
        status: Int = 200, headers: HTTPHeaders = [:], contentLength: Int? = nil, chunks: Chunks
    ) where Chunks.Element == [UInt8] {
        self.init(status: status, headers: headers, contentLength: contentLength) { writer in
            for try await chunk in chunks { try await writer.write(chunk) }
        }
    }

    /// The whole body: ``body``, or what ``stream`` writes, collected in memory. For tests,
    /// after ``Router/respond(to:)``; a stream is run to its end (its ``ResponseWriter`` sees no
    /// shutdown, and its sleeps are real).
    ///
    /// - Throws: what the stream throws, or ``ResponseStreamError`` when it writes more than
    ///   `maxBytes` or breaks its `contentLength`.
    public func collectBody(maxBytes: Int = 64 * 1024 * 1024) async throws -> [UInt8] {
        guard let stream else { return body }
        let writer = ResponseWriter(collectingAtMost: maxBytes, contentLength: stream.contentLength)
        try await stream.body(writer)
        try writer.finishCollecting()
        return writer.collected
    }
}

/// ResponseStreamError is what a ``ResponseWriter`` throws when the body cannot go on.
public struct ResponseStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The client closed or reset the connection, or read nothing for the write timeout.
        case clientGone
        /// The body wrote more bytes than its `contentLength`.
        case lengthExceeded
        /// The body ended with fewer bytes than its `contentLength`.
        case lengthShort
        /// ``Response/collectBody(maxBytes:)`` reached its limit.
        case tooLarge
        /// The writer was used from a task other than the one serving the request.
        case wrongTask
    }

    public var kind: Kind
    /// Body bytes written when it happened.
    public var bytesWritten: Int

    public var description: String {
        switch kind {
        case .clientGone: "response stream: the client is gone (\(bytesWritten) bytes written)"
        case .lengthExceeded: "response stream: more bytes than its Content-Length (\(bytesWritten) written)"
        case .lengthShort: "response stream: ended after \(bytesWritten) bytes, short of its Content-Length"
        case .tooLarge: "response stream: body larger than the collection limit"
        case .wrongTask: "response stream: writer used outside the request's task"
        }
    }
}

/// ResponseWriter writes a streamed response's body (``ResponseStream``) to its client.
///
/// Each ``write(_:)`` returns once its bytes are in the socket's send buffer: while the client
/// is not reading, it waits (backpressure; nothing is queued in the server), and a wait with no
/// progress for the server's write timeout ends the stream with
/// ``ResponseStreamError/Kind/clientGone``. A client that closes or resets its connection
/// cancels the request's task, so a body that sleeps between writes (``sleep(for:)``) stops
/// at once.
///
/// A body that throws ends the response early: if nothing was sent yet, the client gets the
/// answer to the error (as from a handler: an ``HTTPError``'s status, else a `500`); otherwise
/// the connection is closed without the body's end (no terminating chunk, or short of its
/// `Content-Length`), so the client sees a truncated response, never a silently short one.
/// The error is logged with the request ID.
///
/// Use it only from the task that runs the body: it belongs to the connection's event loop.
public final class ResponseWriter {
    /// The connection a writer sends to; nil when collecting in memory.
    struct Wire {
        let server: HTTPServer
        let stream: ByteStream
        let state: LoopState
    }

    let wire: Wire?
    let contentLength: Int?
    /// Whether writes are framed as chunks.
    let chunked: Bool
    /// Bytes to send before the next write's: the head, until the first flush, and the CRLF
    /// that ends a large chunk.
    var pending: [UInt8]
    /// Whether anything (the head included) has gone to the client.
    private(set) var sentAny = false
    /// Set once the stream cannot go on; every later write throws it.
    private(set) var broken: ResponseStreamError?
    /// Body bytes written so far, framing excluded.
    public private(set) var bytesWritten = 0

    /// In-memory collection (``Response/collectBody(maxBytes:)``).
    private(set) var collected: [UInt8] = []
    private let collectLimit: Int

    /// Chunks up to this size are copied behind their framing and sent with one write; larger
    /// ones are sent from the caller's array, after a write of the framing.
    static let copyLimit = 16 * 1024

    init(wire: Wire, head: [UInt8], contentLength: Int?, chunked: Bool) {
        self.wire = wire
        self.contentLength = contentLength
        self.chunked = chunked
        pending = head
        collectLimit = 0
    }

    init(collectingAtMost limit: Int, contentLength: Int?) {
        wire = nil
        self.contentLength = contentLength
        chunked = false
        pending = []
        collectLimit = limit
    }

    /// Whether the server has begun a graceful shutdown. A long-lived stream (Server-Sent
    /// Events, a long poll) should then end soon, with a last message if it has one: the
    /// drain waits for it only until the drain timeout, then cuts it.
    public var isShuttingDown: Bool { wire?.state.draining ?? false }

    /// Writes `bytes` as the body's next piece; an empty piece writes nothing.
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        try checkUsable(adding: bytes.count)
        guard let wire else {
            guard collected.count + bytes.count <= collectLimit else { throw fail(.tooLarge) }
            collected.append(contentsOf: bytes)
            bytesWritten += bytes.count
            return
        }
        if chunked { appendChunkSize(bytes.count) }
        if bytes.count <= Self.copyLimit {
            pending.append(contentsOf: bytes)
            if chunked { pending.append(contentsOf: Self.crlf) }
            try await send(wire)
        } else {
            try await send(wire)
            guard await wire.server.writeAll(bytes, wire.stream, loop: wire.state.loop, resetOnProgress: true) else {
                throw fail(.clientGone)
            }
            wire.state.metrics.sentBytes &+= bytes.count
            if chunked { pending.append(contentsOf: Self.crlf) }
        }
        bytesWritten += bytes.count
    }

    /// Writes `text` as UTF-8.
    public func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    /// Sends whatever is held back now: the head, before the body's first write (a Server-Sent
    /// Events client then sees the stream open before the first event).
    public func flush() async throws {
        try checkUsable(adding: 0)
        guard let wire, !pending.isEmpty else { return }
        try await send(wire)
    }

    /// Sleeps for `duration`, or until the server begins a graceful shutdown, whichever comes
    /// first: returns true when the whole duration passed, false for the shutdown (at once if
    /// it has begun). Throws `CancellationError` when the request's task is cancelled (the
    /// client left, or the drain deadline passed).
    @discardableResult
    public func sleep(for duration: Duration) async throws -> Bool {
        guard let wire else {
            try await EventLoop.sleep(for: duration)
            return true
        }
        let state = wire.state
        guard state.loop.inLoop else { throw fail(.wrongTask) }
        if state.draining { return false }
        let id = state.loop.takeSleeperID()
        state.shutdownSleepers.insert(id)
        let slept = await state.loop.interruptibleSleep(until: EventLoop.deadline(after: duration, orNow: true), id: id)
        state.shutdownSleepers.remove(id)
        if slept { return true }
        try Task.checkCancellation()
        return false
    }

    // MARK: The server's side

    /// Ends the body on the wire: the terminating chunk, or the held-back head of an empty
    /// body. Returns false when the connection must close: the stream broke, or it ended short
    /// of its `Content-Length` (logged by the caller).
    func finish() async -> Bool {
        guard broken == nil, let wire else { return false }
        if let contentLength, bytesWritten != contentLength {
            broken = ResponseStreamError(kind: .lengthShort, bytesWritten: bytesWritten)
            return false
        }
        if chunked { pending.append(contentsOf: Self.lastChunk) }
        guard !pending.isEmpty else { return true }
        do {
            try await send(wire)
            return true
        } catch {
            return false
        }
    }

    /// Checks a collected body against its `contentLength`.
    func finishCollecting() throws {
        if let contentLength, bytesWritten != contentLength { throw fail(.lengthShort) }
    }

    // MARK: Internals

    private func checkUsable(adding count: Int) throws {
        if let broken { throw broken }
        if let wire, !wire.state.loop.inLoop { throw ResponseStreamError(kind: .wrongTask, bytesWritten: bytesWritten) }
        if let contentLength, count > contentLength - bytesWritten { throw fail(.lengthExceeded) }
    }

    private func fail(_ kind: ResponseStreamError.Kind) -> ResponseStreamError {
        let error = ResponseStreamError(kind: kind, bytesWritten: bytesWritten)
        broken = error
        return error
    }

    /// Sends and empties ``pending``.
    private func send(_ wire: Wire) async throws {
        sentAny = true
        // Swapped out rather than copied, so the buffer is reused and not reallocated.
        var bytes: [UInt8] = []
        swap(&bytes, &pending)
        guard await wire.server.writeAll(bytes, wire.stream, loop: wire.state.loop, resetOnProgress: true) else {
            throw fail(.clientGone)
        }
        wire.state.metrics.sentBytes &+= bytes.count
        bytes.removeAll(keepingCapacity: true)
        if pending.isEmpty { pending = bytes }
    }

    private func appendChunkSize(_ count: Int) {
        // chunk-size in hex, then CRLF (RFC 9112 §7.1); at most 16 digits, an inline string.
        pending.append(contentsOf: String(count, radix: 16).utf8)
        pending.append(contentsOf: Self.crlf)
    }

    private static let crlf: [UInt8] = [13, 10]
    private static let lastChunk = Array("0\r\n\r\n".utf8)
}
