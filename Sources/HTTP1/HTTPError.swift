/// HTTPError is a request the server refuses, with the status it answers and a short reason.
///
/// The reason goes into the JSON error body and the log, so it never echoes client bytes.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The response status: 400, 413, 414, 417, 431, 501 or 505.
    public var status: Int
    /// A short English reason, safe to show to the client.
    public var reason: String

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status) \(reason)" }

    public static func badRequest(_ reason: String) -> HTTPError { HTTPError(status: 400, reason: reason) }
    public static let payloadTooLarge = HTTPError(status: 413, reason: "request body too large")
    public static let uriTooLong = HTTPError(status: 414, reason: "request line too long")
    public static let headerFieldsTooLarge = HTTPError(status: 431, reason: "request header section too large")
    public static let expectationFailed = HTTPError(status: 417, reason: "unsupported expectation")
    public static let unsupportedTransferCoding = HTTPError(status: 501, reason: "unsupported transfer-coding")
    public static let versionNotSupported = HTTPError(status: 505, reason: "HTTP version not supported")
}
