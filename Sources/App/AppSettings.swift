import ServiceKit

/// The application's own settings: each is a flag and an environment variable, shown in
/// `--help` and the startup log line after the runtime's, and read typed from
/// `startup.settings[AppSettings.maxDelay]`. Add one here and to `all`, and a row to the
/// README's configuration table (a test checks they agree).
enum AppSettings {
    /// The longest wait `GET /delay` accepts: a modest ceiling, so anonymous clients cannot
    /// hold connections (and the drain) for long.
    static let maxDelay = Setting(
        "max-delay", default: .seconds(10), .durationOrZero, help: "Longest wait GET /delay accepts; longer asks get a 400")

    /// The bearer token the `/admin` routes require. Secret: the startup log shows `"***"`.
    static let apiToken = Setting(
        "api-token", default: "", .text, help: "Bearer token the /admin routes require; empty refuses them all",
        valueName: "token", secret: true, defaultText: "none")

    /// Requests per second each client address may make to the example routes (probes
    /// excepted), with bursts of as many; 0 turns the limit off.
    static let rateLimit = Setting(
        "rate-limit", default: 0, .integer(atLeast: 0),
        help: "Requests per second per client address on the app's routes, bursts of as many; 0 means no limit")

    /// In `--help` order, after the runtime's settings.
    static let all: [AnySetting] = [.init(maxDelay), .init(apiToken), .init(rateLimit)]
}
