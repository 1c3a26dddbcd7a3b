/// The service's executable: its product name in Package.swift, which is also the program name
/// `main.swift` gives `ServiceRuntime` (the `logger` of its own log lines). The tests find the
/// built binary by it. `scripts/rename` rewrites this line along with the product.
public let serviceExecutableName = "service"
