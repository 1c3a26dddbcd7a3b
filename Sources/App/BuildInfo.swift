// The version and source revision this binary was built from. The Dockerfile rewrites this
// file from its VERSION and REVISION build arguments before compiling (Swift has no
// `-ldflags -X`); a plain `swift build` reports the development defaults below.
enum BuildInfo {
    static let version = "0.1.0-dev"
    static let revision = "unknown"
}
