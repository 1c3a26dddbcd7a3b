extension HTTPServer {
    /// What writing a streamed response did, for the connection's loop and its access log.
    struct StreamOutcome {
        /// Whether the response went out whole, so the connection may serve another request.
        var sent: Bool
        /// Whether its framing lets the connection stay open (not a body ended by the close).
        var keepAlive: Bool
        /// The status sent, or logged: a body that failed before sending anything is answered
        /// as a handler's error is, and 499 when the client left first.
        var status: Int
        /// Body bytes written.
        var bytes: Int
    }

    /// Writes a response whose body is a ``ResponseStream``: the head (held back until the
    /// body's first write or flush), then the body as the stream writes it, framed by its
    /// `Content-Length`, as chunks (HTTP/1.1) or by the connection's close (HTTP/1.0).
    ///
    /// While the body runs with nothing more buffered from the client, a hang-up cancels the
    /// task, as it does for a handler (see ``serve(_:on:)``).
    func sendStream(
        _ response: Response, _ body: ResponseStream, for head: HTTPRequestHead, requestID: String, keepAlive: Bool,
        watchHangup: Bool, connection: Connection, state: LoopState, output: inout [UInt8]
    ) async -> StreamOutcome {
        let stream = connection.stream
        let noBody = HTTPStatus.forbidsBody(response.status) || head.method == "HEAD"
        let length = body.contentLength.map { max($0, 0) }
        let chunked = length == nil && head.version == .http1_1 && !HTTPStatus.forbidsBody(response.status)
        // A body of unknown length to an HTTP/1.0 client ends with the connection.
        let framedKeepAlive = keepAlive && (length != nil || chunked || noBody)
        let connectionField: String? = !framedKeepAlive ? "close" : (head.version == .http1_0 ? "keep-alive" : nil)
        output.removeAll(keepingCapacity: true)
        let skipped = HTTPResponseSerializer.writeHead(
            status: response.status, headers: response.headers,
            contentLength: HTTPStatus.forbidsBody(response.status) ? nil : length, date: state.date,
            connection: connectionField, requestID: requestID, chunked: chunked, into: &output)
        if skipped > 0 {
            logger.warning("response header fields dropped: invalid name or value", metadata: ["count": "\(skipped)"])
        }
        if noBody {
            let sent = await writeAll(output, stream, loop: state.loop)
            if sent { state.metrics.sentBytes &+= output.count }
            return StreamOutcome(sent: sent, keepAlive: framedKeepAlive, status: response.status, bytes: 0)
        }

        let writer = ResponseWriter(
            wire: ResponseWriter.Wire(server: self, stream: stream, state: state), head: output,
            contentLength: length, chunked: chunked)
        output = []
        if watchHangup {
            connection.watchesHangup = true
            if state.loop.sawHangup(stream.fd) { clientHungUp(stream.fd, on: state) }
        }
        var failure: (any Error)?
        do {
            try await body.body(writer)
        } catch {
            failure = error
        }
        connection.watchesHangup = false
        output = writer.pending
        output.removeAll(keepingCapacity: true)

        if let failure {
            let clientGone = connection.clientGone || writer.broken?.kind == .clientGone
            if !writer.sentAny && !connection.forceClosed {
                // Nothing went out: answered as a handler's error is.
                if clientGone {
                    return StreamOutcome(sent: false, keepAlive: false, status: Self.clientClosedRequest, bytes: 0)
                }
                let answer = Router.answer(
                    to: failure, method: head.method, path: head.path, requestID: requestID, logger: logger)
                let sent = await send(answer, for: head, requestID: requestID, keepAlive: keepAlive, stream: stream,
                                      state: state, output: &output)
                return StreamOutcome(sent: sent, keepAlive: keepAlive, status: answer.status, bytes: answer.body.count)
            }
            if !clientGone && !connection.forceClosed {
                logger.error("response stream failed", metadata: [
                    "error": "\(String(describing: failure))", "method": "\(head.method)", "path": "\(head.path)",
                    "request_id": "\(requestID)", "bytes": "\(writer.bytesWritten)",
                ])
            }
            if !chunked && length == nil {
                // Close-delimited: only a reset tells the client that the body is incomplete.
                stream.socket.setAbortiveClose()
            }
            return StreamOutcome(sent: false, keepAlive: false, status: response.status, bytes: writer.bytesWritten)
        }
        let finished = await writer.finish()
        if !finished, writer.broken?.kind == .lengthShort {
            logger.error("response stream ended short of its Content-Length", metadata: [
                "method": "\(head.method)", "path": "\(head.path)", "request_id": "\(requestID)",
                "bytes": "\(writer.bytesWritten)", "content_length": "\(length ?? 0)",
            ])
        }
        return StreamOutcome(
            sent: finished, keepAlive: framedKeepAlive, status: response.status, bytes: writer.bytesWritten)
    }
}
