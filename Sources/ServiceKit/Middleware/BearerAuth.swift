/// BearerAuth admits only requests that present one shared secret as a bearer token (RFC 6750):
/// `router.group("/admin", middleware: [BearerAuth(token: secret)]) { ... }`.
///
/// A request passes when its one `Authorization` field is `Bearer <token>` with exactly the
/// configured token; the scheme name is matched case-insensitively (RFC 7235 §2.1), and one or
/// more spaces may follow it. Otherwise it is refused with `401`, the JSON error body and a
/// challenge: `WWW-Authenticate: Bearer` when no bearer token was presented (no field, another
/// scheme, an empty token, several fields), `WWW-Authenticate: Bearer error="invalid_token"`
/// when one was presented and is wrong (RFC 6750 §3.1). `next` is not called.
///
/// The comparison takes time that depends only on the length of the presented token, which
/// the client knows: not on where it first differs from the configured one, nor on the
/// configured token's length or content. Every presented byte is compared (against the
/// configured token zero-padded to a power of two), and a length mismatch is folded into the
/// same result instead of returning early.
///
/// An empty configured token refuses every request (fails closed): a missing secret, such as
/// an unset environment variable, must not open the routes.
public struct BearerAuth: Middleware {
    /// The configured token, zero-padded to a power-of-two length.
    private let padded: [UInt8]
    private let length: Int

    public init(token: String) {
        length = token.utf8.count
        var size = 1
        while size < length { size *= 2 }
        padded = Array(token.utf8) + [UInt8](repeating: 0, count: size - length)
    }

    static let missing = HTTPError(status: 401, reason: "missing bearer token", headers: ["WWW-Authenticate": "Bearer"])
    static let invalid = HTTPError(
        status: 401, reason: "invalid bearer token", headers: ["WWW-Authenticate": #"Bearer error="invalid_token""#])

    public func handle(_ request: Request, next: Handler) async throws -> Response {
        let fields = request.headers.values(for: "authorization")
        guard fields.count == 1, let presented = Self.bearerToken(in: fields[0]) else { throw Self.missing }
        guard matches(presented) else { throw Self.invalid }
        return try await next(request)
    }

    /// The token of a `Bearer` credential (`Bearer abc`, `bearer  abc`); nil for another
    /// scheme or an empty token.
    static func bearerToken(in field: String) -> Substring.UTF8View? {
        let bytes = field.utf8
        let scheme = "bearer".utf8
        guard bytes.count > scheme.count else { return nil }
        var index = bytes.startIndex
        for expected in scheme {
            // ASCII lowercase: setting 0x20 maps A-Z onto a-z and leaves `bearer`'s letters be.
            guard bytes[index] | 0x20 == expected else { return nil }
            index = bytes.index(after: index)
        }
        guard bytes[index] == UInt8(ascii: " ") else { return nil }
        while index < bytes.endIndex && bytes[index] == UInt8(ascii: " ") { index = bytes.index(after: index) }
        let token = field[index...].utf8
        return token.isEmpty ? nil : token
    }

    /// Whether `presented` is the configured token, in time that depends on its length only.
    func matches(_ presented: Substring.UTF8View) -> Bool {
        guard length > 0 else { return false }
        let mask = padded.count - 1
        return padded.withUnsafeBufferPointer { expected in
            var difference = UInt(bitPattern: presented.count ^ length)
            var index = 0
            for byte in presented {
                difference |= UInt(byte ^ expected[index & mask])
                index &+= 1
            }
            return difference == 0
        }
    }
}
