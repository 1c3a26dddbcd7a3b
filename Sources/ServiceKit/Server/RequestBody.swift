/// RequestBody is a request body read as it arrives, in chunks (``Request/bodyStream``), for a
/// route registered with ``RequestBodyMode/streamed(maxBytes:)``.
///
/// `for try await chunk in body { ... }` reads it: chunks of at most 64 KiB, as the client
/// sends them, chunked coding removed. Nothing is read before the handler asks, and nothing is
/// buffered beyond the chunk in hand, so an upload of any size costs the memory of one chunk.
///
/// What a read throws: ``HTTPError`` 413 past the route's limit, 408 when the client sends
/// nothing for the server's read timeout, 400 for malformed chunked coding; thrown on from the
/// handler, each is answered with its status (and the connection closed). A client that
/// closes its connection mid-body ends the read with `CancellationError`, and the request is
/// logged as 499.
///
/// A handler that returns without reading the whole body leaves the connection in a defined
/// state: up to 256 KiB of what is left is read and discarded so the connection can serve
/// its next request; past that, or when the client still waits for its `100 Continue`, the
/// response says `Connection: close` and the connection closes.
///
/// Read it only from the handler's task: it reads the connection's socket on its event loop.
/// A read from anywhere else throws.
public final class RequestBody: AsyncSequence, @unchecked Sendable {
    public typealias Element = [UInt8]

    /// Where the bytes come from: the connection, or (for ``Router/respond(to:)``) memory.
    enum Source {
        case connection(RequestBodyReader)
        case memory([UInt8], offset: Int, limit: Int)
    }

    private var source: Source

    init(reader: RequestBodyReader) {
        source = .connection(reader)
    }

    /// A body held in memory, read in chunks of at most 64 KiB; more than `limit` bytes is a
    /// 413, as on the wire.
    init(bytes: [UInt8], limit: Int) {
        source = .memory(bytes, offset: 0, limit: limit)
    }

    /// The next chunk, or nil at the end of the body.
    public func next() async throws -> [UInt8]? {
        switch source {
        case .connection(let reader):
            return try await reader.next()
        case .memory(let bytes, let offset, let limit):
            guard bytes.count <= limit else { throw HTTPError.payloadTooLarge }
            guard offset < bytes.count else { return nil }
            let end = Swift.min(offset + RequestBodyReader.chunkSize, bytes.count)
            source = .memory(bytes, offset: end, limit: limit)
            return Array(bytes[offset..<end])
        }
    }

    /// The rest of the body in one array: a 413 when it holds more than `maxBytes`.
    public func collect(upTo maxBytes: Int) async throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try await next() {
            guard chunk.count <= maxBytes - all.count else { throw HTTPError.payloadTooLarge }
            all.append(contentsOf: chunk)
        }
        return all
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let body: RequestBody
        public mutating func next() async throws -> [UInt8]? { try await body.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}

/// RequestBodyReader reads a streamed request body from its connection, for ``RequestBody``,
/// into a buffer of its own while the handler runs. Loop thread only.
final class RequestBodyReader {
    /// The most bytes one chunk holds, and the input buffer's size while a body streams.
    static let chunkSize = 64 * 1024
    /// How much of a body left unread the server reads and discards to keep the connection.
    static let discardLimit = 256 * 1024

    /// Body bytes read and not yet decoded: at first what the connection had read past the
    /// head, and at the end whatever the client sent after the body (a pipelined request),
    /// which the connection takes back (``takeLeftover()``).
    private var buffer = InputBuffer(capacity: RequestBodyReader.chunkSize)
    private var decoder: HTTPBodyDecoder
    let server: HTTPServer
    let connection: Connection
    let state: LoopState
    /// Whether the client waits for `100 Continue` before it sends the body.
    private var awaitingContinue: Bool
    /// The error that ended the body early; the connection cannot serve another request.
    private(set) var failure: (any Error)?
    /// Whether the connection has taken its bytes back: later reads throw.
    private var closed = false

    init(buffered: UnsafeRawBufferPointer, decoder: HTTPBodyDecoder, awaitingContinue: Bool, server: HTTPServer,
         connection: Connection, state: LoopState) {
        buffer.append(buffered)
        self.decoder = decoder
        self.awaitingContinue = awaitingContinue
        self.server = server
        self.connection = connection
        self.state = state
    }


    func next() async throws -> [UInt8]? {
        guard !closed, state.loop.inLoop else {
            throw HTTPError(status: 500, reason: "request body read outside its request")
        }
        if let failure { throw failure }
        do {
            return try await readChunk()
        } catch {
            failure = error
            throw error
        }
    }

    /// Ends the reader and gives the connection what the client sent after the body.
    func takeLeftover(into input: inout InputBuffer) {
        closed = true
        input.append(buffer.readable)
        buffer.consume(buffer.count)
    }

    private func readChunk() async throws -> [UInt8]? {
        guard !decoder.isComplete else { return nil }
        let stream = connection.stream
        if awaitingContinue {
            awaitingContinue = false
            guard await server.writeAll(HTTPResponseSerializer.continueResponse, stream, loop: state.loop) else {
                connection.clientGone = true
                throw CancellationError()
            }
        }
        var chunk: [UInt8] = []
        while true {
            if !buffer.isEmpty {
                let consumed = try decoder.decode(buffer.readable, into: &chunk)
                buffer.consume(consumed)
                if !chunk.isEmpty { return chunk }
                if decoder.isComplete { return nil }
            }
            // The buffer holds a partial chunk-size line or trailer at most: room is made by
            // moving it to the front, and a line that fills 64 KiB is refused.
            guard let space = buffer.writableSpace(limit: Self.chunkSize) else {
                throw HTTPError(status: 400, reason: "chunk-size line or trailer too long")
            }
            let deadline = EventLoop.deadline(after: server.configuration.readTimeout)
            switch await server.read(stream, into: space, deadline: deadline, loop: state.loop) {
            case .bytes(let count):
                buffer.didWrite(count)
                state.metrics.receivedBytes &+= count
            case .end:
                connection.clientGone = true
                throw CancellationError()
            case .timedOut:
                throw HTTPError(status: 408, reason: "request body timeout")
            case .interrupted:
                if connection.forceClosed { throw CancellationError() }
            case .failed, .parked:
                connection.clientGone = true
                throw CancellationError()
            }
        }
    }

    /// After the handler: reads and discards what it left of the body, up to ``discardLimit``.
    /// Returns whether the connection can serve another request.
    func discardRest() async -> Bool {
        // A failed body leaves the stream unframed; a client still waiting for its 100 Continue
        // has sent nothing of the body and may or may not send it now.
        if failure != nil { return false }
        if awaitingContinue { return decoder.isComplete }
        var discarded = 0
        while !decoder.isComplete {
            guard discarded <= Self.discardLimit else { return false }
            do {
                guard let chunk = try await readChunk() else { break }
                discarded += chunk.count
            } catch {
                failure = error
                return false
            }
        }
        return true
    }
}
