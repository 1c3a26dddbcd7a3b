/// HTTPLimits are the sizes a parser refuses to go past. They arrive as values so the parser
/// stays pure and testable with tiny limits.
public struct HTTPLimits: Sendable, Equatable {
    /// The request line plus header section (and, separately, the trailer section), in bytes.
    /// Past it: 431. Default 16 KiB.
    public var maxHeaderBytes: Int
    /// The request line alone. Past it: 414. Default 8 KiB, never more than `maxHeaderBytes`.
    public var maxRequestLineBytes: Int
    /// Header fields in one section. Past it: 431. Default 100.
    public var maxHeaderCount: Int
    /// A request body after chunked decoding. Past it: 413. Default 1 MiB; at most
    /// `Int.max - 1`, so a Content-Length too large for an Int (read as `Int.max`) is always past it.
    public var maxBodyBytes: Int
    /// One chunk-size line, extensions included. Past it: 400. Default 1 KiB.
    public var maxChunkLineBytes: Int

    public init(
        maxHeaderBytes: Int = 16 * 1024,
        maxRequestLineBytes: Int = 8 * 1024,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 1024 * 1024,
        maxChunkLineBytes: Int = 1024
    ) {
        self.maxHeaderBytes = max(maxHeaderBytes, 64)
        self.maxRequestLineBytes = min(max(maxRequestLineBytes, 16), self.maxHeaderBytes)
        self.maxHeaderCount = max(maxHeaderCount, 1)
        self.maxBodyBytes = min(max(maxBodyBytes, 0), Int.max - 1)
        self.maxChunkLineBytes = max(maxChunkLineBytes, 8)
    }
}
