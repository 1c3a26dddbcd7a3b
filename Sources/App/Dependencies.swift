import FoundationEssentials
import ServiceKit

/// Everything the handlers use, made once at start and handed to ``Routes/router(_:)``: tests
/// build one with stubs in place of the real parts.
struct Dependencies: Sendable {
    var greetings: any GreetingStore
    /// The bearer token `/admin` requires; empty refuses every request.
    var apiToken: String
    var maxDelay: Duration = AppSettings.maxDelay.defaultValue
    /// Requests per second per client address on the example routes; 0 means no limit.
    var rateLimit: Int = 0
    /// Seconds since the Unix epoch.
    var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }

    /// The service's own: an in-memory store and the settings it was started with.
    init(_ settings: Settings) {
        greetings = InMemoryGreetingStore()
        apiToken = settings[AppSettings.apiToken]
        maxDelay = settings[AppSettings.maxDelay]
        rateLimit = settings[AppSettings.rateLimit]
    }

    init(greetings: any GreetingStore = InMemoryGreetingStore(), apiToken: String = "") {
        self.greetings = greetings
        self.apiToken = apiToken
    }
}
