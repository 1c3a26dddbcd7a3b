import FoundationEssentials

extension Request {
    /// Decodes the body as JSON, or throws a 400 ``HTTPError`` whose reason says what is wrong
    /// (a 415 when the client declared another content type: see ``isJSONMediaType(_:)``; a
    /// request without Content-Type is read as JSON).
    public func decode<T: Decodable>(_ type: T.Type, as decoder: JSONDecoder = JSONDecoder()) throws(HTTPError) -> T {
        if let contentType = headers["content-type"], !Self.isJSONMediaType(contentType) {
            throw HTTPError(status: 415, reason: "expected Content-Type application/json")
        }
        guard !body.isEmpty else { throw .badRequest("request body is empty; expected JSON") }
        do {
            return try decoder.decode(T.self, from: Data(body))
        } catch let error as DecodingError {
            throw .badRequest("invalid JSON body: \(Self.describe(error))")
        } catch {
            throw .badRequest("invalid JSON body")
        }
    }

    /// Whether a Content-Type value is `application/json` (RFC 9110 §8.3.1): type and subtype
    /// compared case-insensitively, then any well-formed parameters, which are ignored
    /// (application/json defines none, and JSON is UTF-8 whatever a charset says, RFC 8259 §11).
    /// `application/jsonx`, `application/json x` and `+json` types such as
    /// `application/merge-patch+json` are not: each names another format with its own meaning,
    /// which a handler that decodes a plain JSON document must not take for one.
    static func isJSONMediaType(_ value: String) -> Bool {
        MediaType.value(value, is: "application/json")
    }

    /// Bodies from this size on are decoded off the event loop (``offLoop(_:)``): a 1 MiB body
    /// takes tens of milliseconds to decode, which the loop's other connections would wait for.
    public static let offLoopDecodeBytes = 64 * 1024

    /// Decodes the body as JSON, as the synchronous ``decode(_:as:)`` does; a body of
    /// ``offLoopDecodeBytes`` or more is decoded off the event loop.
    public func decode<T: Decodable & Sendable>(
        _ type: T.Type, as decoder: JSONDecoder = JSONDecoder()
    ) async throws(HTTPError) -> T {
        // A synchronous closure, so that the call inside is the synchronous overload.
        let decode: @Sendable () throws(HTTPError) -> T = { () throws(HTTPError) -> T in try self.decode(type, as: decoder) }
        guard body.count >= Self.offLoopDecodeBytes else { return try decode() }
        return try await offLoop(decode)
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the top level" : "'" + keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)) should be \(Self.jsonTypeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)) should be \(Self.jsonTypeName(type)), not null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context.codingPath)) has an invalid value"
        @unknown default:
            return "cannot decode"
        }
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default: return "an object or array"
        }
    }
}

extension Response {
    /// A JSON response encoding `value`; a value that cannot be encoded is a thrown error the
    /// server turns into a 500.
    public static func json<T: Encodable>(_ value: T, status: Int = 200, encoder: JSONEncoder = Response.jsonEncoder) throws -> Response {
        .json(raw: Array(try encoder.encode(value)), status: status)
    }

    /// Sorted keys, so responses are stable for clients and tests.
    public static var jsonEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
