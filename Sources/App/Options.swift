// The command line and environment of the `service` executable.
//
// Every setting can come from a flag or an environment variable (twelve-factor style, for
// containers); a flag wins over the environment, which wins over the built-in default. The
// options are kept as raw strings so that a bad value gets the same one-line message whether it
// came from a flag or from the environment, naming whichever the operator actually set.

import ArgumentParser
import Logging
import ServiceKit

/// Everything `main` needs to start the service.
struct AppConfiguration: Sendable, Equatable {
    var server: ServerConfiguration
    var logLevel: Logger.Level
    /// `-health-check` was given: probe the running instance instead of serving.
    var healthCheck: Bool
    /// How long `-health-check` waits for the whole exchange.
    var healthCheckTimeout: Duration
    /// Serve `/metrics` (Prometheus text format).
    var metrics = true
    /// The port `/metrics` is served on, on the same host; 0 serves it on the main listener.
    var metricsPort = 0
    /// Whether scrapes of `/metrics` get access-log lines.
    var metricsAccessLog = false

    /// The defaults; `--help` shows these, so they live in one place.
    init(
        server: ServerConfiguration = ServerConfiguration(), logLevel: Logger.Level = .info, healthCheck: Bool = false,
        healthCheckTimeout: Duration = .seconds(2)
    ) {
        self.server = server
        self.logLevel = logLevel
        self.healthCheck = healthCheck
        self.healthCheckTimeout = healthCheckTimeout
    }
}

/// What `main` should do with a command line.
enum CommandLineOutcome: Equatable {
    /// Start the service with this configuration.
    case run(AppConfiguration)
    /// Print `message` (with a trailing newline) to standard error or standard output, then exit
    /// with `code`: 0 for `--help`, 2 for any usage error (like Go's flag package).
    case exit(code: Int32, message: String, toStandardError: Bool)
}

/// Turns the command line (without argv[0]) and the environment into a configuration or an exit.
///
/// Pure: it reads nothing but its arguments, prints nothing and never exits, so tests can call it.
func parseCommandLine(_ arguments: [String], environment: [String: String]) -> CommandLineOutcome {
    let given: GivenSettings
    if let plain = GivenSettings(plainArguments: arguments) {
        given = plain
    } else {
        let command: ServiceCommand
        do {
            command = try ServiceCommand.parse(arguments)
        } catch {
            // ArgumentParser reports --help (and its other built-in requests) as errors with a
            // success exit code; those go to standard output.
            if ServiceCommand.exitCode(for: error).isSuccess {
                return .exit(code: 0, message: ServiceCommand.fullMessage(for: error), toStandardError: false)
            }
            // Its failures use 64 (EX_USAGE) or 1; we use 2 for all of them, as Go's flag package does.
            // `message(for:)` is the error alone, without the usage block `fullMessage` appends.
            return .exit(code: 2, message: oneLine(ServiceCommand.message(for: error)), toStandardError: true)
        }
        given = command.given
    }
    do {
        return .run(try given.configuration(environment: environment))
    } catch {
        return .exit(code: 2, message: error.message, toStandardError: true)
    }
}

/// Joins a possibly multi-line message into one line, so every usage error is a single line.
private func oneLine(_ message: String) -> String {
    message.split(whereSeparator: \.isNewline)
        .map { $0.trimmingPrefix(while: \.isWhitespace) }
        .joined(separator: " ")
}

/// The settings `service` reads. The raw value is the long flag name; the environment variable is
/// the same name upper-cased with underscores, so the two can never drift apart.
enum Setting: String, CaseIterable {
    case host
    case port
    case readHeaderTimeout = "read-header-timeout"
    case readTimeout = "read-timeout"
    case idleTimeout = "idle-timeout"
    case writeTimeout = "write-timeout"
    case maxHeaderBytes = "max-header-bytes"
    case maxBodyBytes = "max-body-bytes"
    case maxConnections = "max-connections"
    case eventLoops = "event-loops"
    case shutdownDelay = "shutdown-delay"
    case drainTimeout = "drain-timeout"
    case drainLinger = "drain-linger"
    case healthCheckTimeout = "health-check-timeout"
    case accessLog = "access-log"
    case logLevel = "log-level"
    case metrics
    case metricsPort = "metrics-port"
    case metricsAccessLog = "metrics-access-log"

    /// `--read-header-timeout`
    var flag: String { "--" + rawValue }

    /// `READ_HEADER_TIMEOUT`
    var environmentVariable: String {
        // Not `replacing("-", with: "_")`: that generic algorithm lives in _StringProcessing,
        // and this is the only use of it at startup; calling it faults in about 300 KiB of the
        // static binary's text (that module and _RegexParser) that stays resident.
        String(rawValue.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    /// The default as `--help` shows it, read from the same values the service starts with.
    var defaultText: String {
        let defaults = AppConfiguration()
        let server = defaults.server
        return switch self {
        case .host: server.host
        case .port: String(server.port)
        case .readHeaderTimeout: server.readHeaderTimeout.goString
        case .readTimeout: server.readTimeout.goString
        case .idleTimeout: server.idleTimeout.goString
        case .writeTimeout: server.writeTimeout.goString
        case .maxHeaderBytes: String(server.maxHeaderBytes)
        case .maxBodyBytes: String(server.maxBodyBytes)
        case .maxConnections: String(server.maxConnections)
        case .eventLoops: String(server.eventLoops)
        case .shutdownDelay: server.shutdownDelay.goString
        case .drainTimeout: server.drainTimeout.goString
        case .drainLinger: server.drainLinger.goString
        case .healthCheckTimeout: defaults.healthCheckTimeout.goString
        case .accessLog: String(server.accessLog)
        case .logLevel: defaults.logLevel.rawValue
        case .metrics: String(defaults.metrics)
        case .metricsPort: String(defaults.metricsPort)
        case .metricsAccessLog: String(defaults.metricsAccessLog)
        }
    }

    private var abstract: String {
        switch self {
        case .host: "Address to listen on: an IPv4 or IPv6 literal"
        case .port: "TCP port to listen on; 0 picks a free one"
        case .readHeaderTimeout: "Time allowed to read a request's header section; must be > 0"
        case .readTimeout: "Time allowed to read a request body; 0 disables"
        case .idleTimeout: "How long a keep-alive connection may wait for its next request; 0 disables"
        case .writeTimeout: "Time allowed to write one response; 0 disables"
        case .maxHeaderBytes: "Largest request line plus header section, in bytes; at least 1024"
        case .maxBodyBytes: "Largest request body, in bytes"
        case .maxConnections: "Most open client connections; past it, new ones get a 503"
        case .eventLoops: "Number of event loop threads; 0 means one per CPU core"
        case .shutdownDelay: "After SIGTERM, how long to keep serving (readiness already 503) before the listener closes"
        case .drainTimeout: "After the listener closes, how long open connections may finish before they are closed; must be > 0"
        case .drainLinger: "During the drain, how long an idle keep-alive connection may send one more request; 0 closes it at once"
        case .healthCheckTimeout: "With -health-check: how long to wait for the running server's answer; must be > 0"
        case .accessLog: "Log every request as a JSON line: true or false"
        case .logLevel: "Least severe level logged: trace, debug, info, notice, warning, error or critical"
        case .metrics: "Serve Prometheus metrics at GET /metrics: true or false"
        case .metricsPort: "Serve /metrics on this port of the same host instead of the main listener; 0 means the main listener"
        case .metricsAccessLog: "Log scrapes of /metrics in the access log: true or false"
        }
    }

    private var valueName: String {
        switch self {
        case .host: "address"
        case .port: "port"
        case .readHeaderTimeout, .readTimeout, .idleTimeout, .writeTimeout, .drainTimeout, .shutdownDelay, .drainLinger,
            .healthCheckTimeout:
            "duration"
        case .maxHeaderBytes, .maxBodyBytes: "bytes"
        case .maxConnections, .eventLoops: "count"
        case .accessLog, .metrics, .metricsAccessLog: "bool"
        case .logLevel: "level"
        case .metricsPort: "port"
        }
    }

    /// The help line: `TCP port to listen on; 0 picks a free one (env: PORT, default: 8080)`.
    var help: ArgumentHelp {
        ArgumentHelp(
            "\(abstract) (env: \(environmentVariable), default: \(defaultText))",
            valueName: valueName
        )
    }
}

/// The `service` command. Every option is optional so that "not given" can fall through to the
/// environment and then to the default; see ``GivenSettings/configuration(environment:)``.
struct ServiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Runs the HTTP service.",
        discussion: """
            Every option can also be set with the environment variable shown beside it; a flag \
            wins over its variable, which wins over the default. An empty variable counts as \
            unset. Durations use Go's syntax, such as 500ms, 10s, 1m30s or 1.5h.
            """,
        version: "\(BuildInfo.version) (\(BuildInfo.revision))"
    )

    @Option(name: .customLong(Setting.host.rawValue), help: Setting.host.help)
    var host: String?

    @Option(name: .customLong(Setting.port.rawValue), help: Setting.port.help)
    var port: String?

    @Option(name: .customLong(Setting.readHeaderTimeout.rawValue), help: Setting.readHeaderTimeout.help)
    var readHeaderTimeout: String?

    @Option(name: .customLong(Setting.readTimeout.rawValue), help: Setting.readTimeout.help)
    var readTimeout: String?

    @Option(name: .customLong(Setting.idleTimeout.rawValue), help: Setting.idleTimeout.help)
    var idleTimeout: String?

    @Option(name: .customLong(Setting.writeTimeout.rawValue), help: Setting.writeTimeout.help)
    var writeTimeout: String?

    @Option(name: .customLong(Setting.maxHeaderBytes.rawValue), help: Setting.maxHeaderBytes.help)
    var maxHeaderBytes: String?

    @Option(name: .customLong(Setting.maxBodyBytes.rawValue), help: Setting.maxBodyBytes.help)
    var maxBodyBytes: String?

    @Option(name: .customLong(Setting.maxConnections.rawValue), help: Setting.maxConnections.help)
    var maxConnections: String?

    @Option(name: .customLong(Setting.eventLoops.rawValue), help: Setting.eventLoops.help)
    var eventLoops: String?

    @Option(name: .customLong(Setting.shutdownDelay.rawValue), help: Setting.shutdownDelay.help)
    var shutdownDelay: String?

    @Option(name: .customLong(Setting.drainTimeout.rawValue), help: Setting.drainTimeout.help)
    var drainTimeout: String?

    @Option(name: .customLong(Setting.drainLinger.rawValue), help: Setting.drainLinger.help)
    var drainLinger: String?

    @Option(name: .customLong(Setting.healthCheckTimeout.rawValue), help: Setting.healthCheckTimeout.help)
    var healthCheckTimeout: String?

    @Option(name: .customLong(Setting.accessLog.rawValue), help: Setting.accessLog.help)
    var accessLog: String?

    @Option(name: .customLong(Setting.logLevel.rawValue), help: Setting.logLevel.help)
    var logLevel: String?

    // Go-style single dash, because container health checks copied from Go services call
    // `service -health-check`.
    @Flag(
        name: .customLong("health-check", withSingleDash: true),
        help: "Probe GET /health of the server running on this host and port (over loopback), exit 0 on 200, 1 otherwise"
    )
    var healthCheck = false

    /// The values given, for ``GivenSettings/configuration(environment:)``.
    var given: GivenSettings {
        let flags: [(Setting, String?)] = [
            (.host, host), (.port, port), (.readHeaderTimeout, readHeaderTimeout), (.readTimeout, readTimeout),
            (.idleTimeout, idleTimeout), (.writeTimeout, writeTimeout), (.maxHeaderBytes, maxHeaderBytes),
            (.maxBodyBytes, maxBodyBytes), (.maxConnections, maxConnections), (.eventLoops, eventLoops),
            (.shutdownDelay, shutdownDelay), (.drainTimeout, drainTimeout), (.drainLinger, drainLinger),
            (.healthCheckTimeout, healthCheckTimeout), (.accessLog, accessLog), (.logLevel, logLevel),
        ]
        var given = GivenSettings(healthCheck: healthCheck)
        for case let (setting, value?) in flags { given.values[setting] = value }
        return given
    }
}

/// The settings given on the command line, as raw strings: what ``ServiceCommand`` parsed, or
/// what ``init(plainArguments:)`` read without it.
struct GivenSettings: Equatable {
    var values: [Setting: String] = [:]
    var healthCheck = false

    /// Reads a command line made only of the forms a deployment writes: `--setting=value`,
    /// `--setting value` and `-health-check`, each setting at most once. Returns nil for
    /// anything else (`--help`, `--version`, an unknown or repeated name, a missing or empty
    /// value, a value starting with `-`, a positional argument), which ArgumentParser then parses,
    /// so its messages and its rules stay the only ones.
    ///
    /// Why not always ArgumentParser: it builds its model of the command by reflection, and the
    /// runtime type and conformance lookups that takes were 1.4 ms of a 4.7 ms start to the
    /// "service started" line (static build; 1.7 -> 0.3 ms) and 0.4 MiB of idle RSS, text the
    /// server never uses again.
    init?(plainArguments arguments: [String]) {
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "-health-check" {
                guard !healthCheck else { return nil }
                healthCheck = true
                continue
            }
            guard argument.hasPrefix("--") else { return nil }
            let name: Substring
            let value: String
            if let equals = argument.firstIndex(of: "=") {
                name = argument[argument.index(argument.startIndex, offsetBy: 2)..<equals]
                value = String(argument[argument.index(after: equals)...])
            } else {
                guard index < arguments.endIndex else { return nil }
                name = argument.dropFirst(2)
                value = arguments[index]
                index += 1
            }
            guard let setting = Setting(rawValue: String(name)), values[setting] == nil,
                  !value.isEmpty, !value.hasPrefix("-")
            else { return nil }
            values[setting] = value
        }
    }

    init(healthCheck: Bool = false) {
        self.healthCheck = healthCheck
    }

    /// Resolves every setting (flag, then environment, then default) and validates it.
    func configuration(environment: [String: String]) throws(InvalidSettingError) -> AppConfiguration {
        var app = AppConfiguration()
        app.healthCheck = healthCheck

        // Resolves one setting; leaves `target` at its default when neither source sets it.
        func resolve<Value>(
            _ setting: Setting,
            _ parser: ValueParser<Value>,
            into target: inout Value
        ) throws(InvalidSettingError) {
            let source: String
            let raw: String
            if let flagValue = values[setting] {
                (source, raw) = (setting.flag, flagValue)
            } else if let variable = environment[setting.environmentVariable], !variable.isEmpty {
                // Empty counts as unset: `PORT=` in a compose file or .env usually means "no value".
                (source, raw) = (setting.environmentVariable, variable)
            } else {
                return
            }
            guard let value = parser.parse(raw) else {
                // debugDescription quotes the value and escapes control characters, so the
                // message stays on one line whatever was passed.
                throw InvalidSettingError(
                    message: "invalid value \(raw.debugDescription) for \(source): expected \(parser.expected)"
                )
            }
            target = value
        }

        try resolve(.host, .ipAddress, into: &app.server.host)
        try resolve(.port, .integer(in: 0...65535), into: &app.server.port)
        try resolve(.readHeaderTimeout, .positiveDuration, into: &app.server.readHeaderTimeout)
        try resolve(.readTimeout, .durationOrZero, into: &app.server.readTimeout)
        try resolve(.idleTimeout, .durationOrZero, into: &app.server.idleTimeout)
        try resolve(.writeTimeout, .durationOrZero, into: &app.server.writeTimeout)
        try resolve(.maxHeaderBytes, .integer(atLeast: 1024), into: &app.server.maxHeaderBytes)
        try resolve(.maxBodyBytes, .integer(atLeast: 0), into: &app.server.maxBodyBytes)
        try resolve(.maxConnections, .integer(atLeast: 1), into: &app.server.maxConnections)
        try resolve(.eventLoops, .integer(atLeast: 0), into: &app.server.eventLoops)
        try resolve(.shutdownDelay, .durationOrZero, into: &app.server.shutdownDelay)
        try resolve(.drainTimeout, .positiveDuration, into: &app.server.drainTimeout)
        try resolve(.drainLinger, .durationOrZero, into: &app.server.drainLinger)
        try resolve(.healthCheckTimeout, .positiveDuration, into: &app.healthCheckTimeout)
        try resolve(.accessLog, .boolean, into: &app.server.accessLog)
        try resolve(.logLevel, .logLevel, into: &app.logLevel)
        try resolve(.metrics, .boolean, into: &app.metrics)
        try resolve(.metricsPort, .integer(in: 0...65535), into: &app.metricsPort)
        try resolve(.metricsAccessLog, .boolean, into: &app.metricsAccessLog)
        if app.metrics, app.metricsPort != 0, app.metricsPort == app.server.port {
            throw InvalidSettingError(
                message: "--metrics-port \(app.metricsPort) is the service's own port: use 0 to serve /metrics there")
        }
        return app
    }
}

/// A setting's value did not parse or is out of range; `message` is the one line to show.
struct InvalidSettingError: Error, Equatable {
    var message: String
}

/// Parses one kind of setting value, and says in words what it accepts for error messages.
struct ValueParser<Value> {
    /// Completes "expected …", e.g. "an integer from 0 to 65535".
    var expected: String
    var parse: (String) -> Value?
}

extension ValueParser where Value == Int {
    static func integer(in range: ClosedRange<Int>) -> Self {
        Self(expected: "an integer from \(range.lowerBound) to \(range.upperBound)") { text in
            Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    static func integer(atLeast minimum: Int) -> Self {
        Self(expected: "an integer of at least \(minimum)") { text in
            Int(text).flatMap { $0 >= minimum ? $0 : nil }
        }
    }
}

extension ValueParser where Value == Duration {
    /// For timeouts where zero means "no timeout".
    static var durationOrZero: Self {
        Self(expected: "a duration such as 500ms, 10s or 2m (0 disables)") { Duration(goString: $0) }
    }

    /// For timeouts that must stay in force: a zero header timeout would invite slowloris, and a
    /// zero drain timeout would drop every in-flight request at shutdown.
    static var positiveDuration: Self {
        Self(expected: "a duration such as 500ms, 10s or 2m") { text in
            Duration(goString: text).flatMap { $0 > .zero ? $0 : nil }
        }
    }
}

extension ValueParser where Value == Bool {
    /// Go's strconv.ParseBool spellings (any case) plus the yes/no and on/off common in
    /// container configs.
    static var boolean: Self {
        Self(expected: "true or false (or 1/0, yes/no, on/off)") { text in
            switch text.lowercased() {
            case "true", "t", "1", "yes", "on": true
            case "false", "f", "0", "no", "off": false
            default: nil
            }
        }
    }
}

extension ValueParser where Value == Logger.Level {
    static var logLevel: Self {
        let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        return Self(expected: "one of \(names)") { Logger.Level(rawValue: $0.lowercased()) }
    }
}

extension ValueParser where Value == String {
    /// An IPv4 or IPv6 literal, checked with inet_pton: the listener binds an address, and
    /// resolving a name here would make start-up depend on DNS.
    static var ipAddress: Self {
        Self(expected: "an IPv4 or IPv6 address such as 0.0.0.0, 127.0.0.1 or ::1") { text in
            isIPAddressLiteral(text) ? text : nil
        }
    }
}

/// Whether `text` is an IPv4 (dotted quad) or IPv6 literal, without brackets or zone.
private func isIPAddressLiteral(_ text: String) -> Bool {
    // A NUL would end the C string early and let "127.0.0.1\0junk" through.
    guard !text.utf8.contains(0) else { return false }
    var ipv4 = in_addr()
    var ipv6 = in6_addr()
    return text.withCString { cString in
        inet_pton(AF_INET, cString, &ipv4) == 1 || inet_pton(AF_INET6, cString, &ipv6) == 1
    }
}
