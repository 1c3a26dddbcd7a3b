// The command line and environment of the `service` executable.
//
// Every setting can come from a flag or an environment variable (twelve-factor style, for
// containers); a flag wins over the environment, which wins over the built-in default. The
// options are kept as raw strings so that a bad value gets the same one-line message whether it
// came from a flag or from the environment, naming whichever the operator actually set.
//
// The command line is read by the small parser below, not by swift-argument-parser (which the
// `drill` tool still uses): that library is about 0.5 MB of the static binary, and the image
// has a hard 16 MiB limit. The parser is driven by `Setting.allCases`, so a new setting needs
// only its cases in `Setting`'s switches and a `resolve` call; it then parses and shows in
// `--help`. Its rules:
//
// - `--name=value` and `--name value` mean the same. In the second form a value cannot start
//   with `-` (it would be read as a missing value); write `--port=-1` to pass one.
// - `-health-check` takes a single dash, Go style, because container health checks copied from
//   Go services call `service -health-check`. `--health-check` stays an unknown option, as it
//   was with ArgumentParser (its message suggests `-health-check`): one spelling an option.
// - `--help` or `-h` anywhere before `--` prints the help and exits 0, whatever else is wrong
//   with the line; otherwise `--version` does the same with the version.
// - A setting given twice takes its last value, as with Go's flag package (and ArgumentParser
//   before), so a value appended to a command line overrides an earlier one.
// - `--` ends the options. The service takes no arguments, so anything after it is an error,
//   `--help` included; a `--` with nothing after it is accepted, as it was.
// - Any mistake is one line on standard error and exit status 2, like Go's flag package.

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
    /// PEM certificate chain and private key: both set turns the listener into HTTPS (a build
    /// with the TLS trait only).
    var tlsCertificateFile = ""
    var tlsKeyFile = ""
    /// With TLS, whether `-health-check` verifies that the server presents the certificate in
    /// `tlsCertificateFile` (or one chaining to it).
    var healthCheckVerify = true
    /// With TLS, how often the certificate and key files are checked for changes (and
    /// reloaded); zero leaves it to SIGHUP.
    var tlsReloadInterval: Duration = .seconds(60)
    /// The longest wait `GET /delay` accepts: a modest ceiling, so anonymous clients cannot
    /// hold connections (and the drain) for long.
    var maxDelay: Duration = .seconds(10)

    /// Whether `--max-connections` or `MAX_CONNECTIONS` set the cap; if not, the service derives
    /// it from the container's memory limit at start (``ConnectionBudget``).
    var maxConnectionsGiven = false

    var tlsEnabled: Bool { !tlsCertificateFile.isEmpty }

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
    /// with `code`: 0 for `--help` and `--version`, 2 for any usage error (like Go's flag package).
    case exit(code: Int32, message: String, toStandardError: Bool)
}

/// Turns the command line (without argv[0]) and the environment into a configuration or an exit.
///
/// Pure: it reads nothing but its arguments, prints nothing and never exits, so tests can call it.
func parseCommandLine(_ arguments: [String], environment: [String: String]) -> CommandLineOutcome {
    let request: CommandLineRequest
    do {
        request = try CommandLineRequest(parsing: arguments)
    } catch {
        return .exit(code: 2, message: error.message, toStandardError: true)
    }
    switch request {
    case .help:
        return .exit(code: 0, message: Help.text, toStandardError: false)
    case .version:
        return .exit(code: 0, message: "\(BuildInfo.version) (\(BuildInfo.revision))", toStandardError: false)
    case .run(let given):
        do {
            return .run(try given.configuration(environment: environment))
        } catch {
            return .exit(code: 2, message: error.message, toStandardError: true)
        }
    }
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
    case tlsCertFile = "tls-cert-file"
    case tlsKeyFile = "tls-key-file"
    case healthCheckVerify = "health-check-verify"
    case tlsReloadInterval = "tls-reload-interval"
    case maxDelay = "max-delay"

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
        case .tlsCertFile: "none"
        case .tlsKeyFile: "none"
        case .healthCheckVerify: String(defaults.healthCheckVerify)
        case .tlsReloadInterval: defaults.tlsReloadInterval.goString
        case .maxDelay: defaults.maxDelay.goString
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
        case .maxConnections: "Most open client connections, past which new ones get a 503; unset, what a container memory limit holds, at most 10000"
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
        case .tlsCertFile: "PEM certificate chain; with --tls-key-file, serve HTTPS (builds with the TLS trait)"
        case .tlsKeyFile: "PEM private key of --tls-cert-file"
        case .healthCheckVerify: "With -health-check over TLS: check the server presents the --tls-cert-file certificate"
        case .tlsReloadInterval: "With TLS: how often to check the certificate and key files and reload them if changed; 0 leaves it to SIGHUP"
        case .maxDelay: "Longest wait GET /delay accepts; longer asks get a 400"
        }
    }

    /// The placeholder for the value in `--help` and in "missing value" messages: `<duration>`.
    var valueName: String {
        switch self {
        case .host: "address"
        case .port: "port"
        case .readHeaderTimeout, .readTimeout, .idleTimeout, .writeTimeout, .drainTimeout, .shutdownDelay, .drainLinger,
            .healthCheckTimeout:
            "duration"
        case .maxHeaderBytes, .maxBodyBytes: "bytes"
        case .maxConnections, .eventLoops: "count"
        case .accessLog, .metrics, .metricsAccessLog, .healthCheckVerify: "bool"
        case .tlsCertFile, .tlsKeyFile: "path"
        case .tlsReloadInterval, .maxDelay: "duration"
        case .logLevel: "level"
        case .metricsPort: "port"
        }
    }

    /// `--port <port>`, as `--help` lists it.
    var usage: String { "\(flag) <\(valueName)>" }

    /// The help line: `TCP port to listen on; 0 picks a free one (env: PORT, default: 8080)`.
    var help: String {
        "\(abstract) (env: \(environmentVariable), default: \(defaultText))"
    }
}

/// The options that are not settings: they take no value.
enum Switch {
    static let healthCheck = "-health-check"
    static let help = "--help"
    static let shortHelp = "-h"
    static let version = "--version"
    /// Ends the options.
    static let endOfOptions = "--"

    /// Every spelling of an option that takes no value.
    static let all = [healthCheck, help, shortHelp, version]
}

/// What a command line asks for, before any setting's value is checked.
enum CommandLineRequest: Equatable {
    /// Serve (or health-check) with these settings.
    case run(GivenSettings)
    /// `--help` or `-h`.
    case help
    /// `--version`.
    case version

    /// Reads a command line (without argv[0]). `--help` and `-h` win over everything else, and
    /// `--version` over everything but them, so that a mistake elsewhere on the line (a typo, a
    /// value that is not valid yet) never hides the help the operator asked for. Only the
    /// options before `--` count.
    init(parsing arguments: [String]) throws(UsageError) {
        let options = arguments.prefix { $0 != Switch.endOfOptions }
        if options.contains(where: { $0 == Switch.help || $0 == Switch.shortHelp }) {
            self = .help
        } else if options.contains(Switch.version) {
            self = .version
        } else {
            self = .run(try GivenSettings(arguments: arguments))
        }
    }
}

/// A command line that does not parse; `message` is the one line to show.
struct UsageError: Error, Equatable {
    var message: String

    static func unknownOption(_ name: Substring) -> UsageError {
        // debugDescription quotes and escapes what was typed, keeping the message on one line.
        let typed = String(name).debugDescription
        guard let known = closestOption(to: name) else { return UsageError(message: "unknown option \(typed)") }
        return UsageError(message: "unknown option \(typed); did you mean \(known)?")
    }


    static func takesNoValue(_ option: Substring) -> UsageError {
        UsageError(message: "option \(option) takes no value")
    }

    /// `next` is the argument that followed the option, if any.
    static func missingValue(_ setting: Setting, next: String?) -> UsageError {
        let message = "missing value for \(setting.usage)"
        // `--port -1`: say how to pass a value that starts with a dash, unless the next argument
        // is itself an option (`--port --host ::1` just forgot the port).
        if let next, next.hasPrefix("-"), !next.hasPrefix("--"), !Switch.all.contains(next) {
            return UsageError(message: "\(message); write \(setting.flag)=\(next) for a value starting with \"-\"")
        }
        return UsageError(message: message)
    }

    static func unexpectedArgument(_ argument: String) -> UsageError {
        UsageError(message: "unexpected argument \(argument.debugDescription); the service takes only options")
    }
}

/// The settings given on the command line, as raw strings; ``configuration(environment:)``
/// checks them.
struct GivenSettings: Equatable {
    var values: [Setting: String] = [:]
    var healthCheck = false

    init(healthCheck: Bool = false) {
        self.healthCheck = healthCheck
    }

    /// Reads the options of a command line that asks neither for help nor for the version (see
    /// ``CommandLineRequest/init(parsing:)``); the rules are at the top of this file.
    ///
    /// Cheap on purpose: it runs at every start. No reflection (ArgumentParser built its model of
    /// the command that way, and its runtime type and conformance lookups were 1.4 ms of a 4.7 ms
    /// start and 0.4 MiB of idle RSS), and no regex or `_StringProcessing` algorithms.
    init(arguments: [String]) throws(UsageError) {
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            if argument == Switch.endOfOptions {
                if let extra = remaining.first { throw UsageError.unexpectedArgument(extra) }
                return
            }
            if argument == Switch.healthCheck {
                healthCheck = true
                continue
            }
            // `-` alone is an argument by convention (standard input), not an option.
            guard argument.hasPrefix("-"), argument != "-" else { throw UsageError.unexpectedArgument(argument) }

            let name: Substring
            let inlineValue: Substring?
            if let equals = argument.firstIndex(of: "=") {
                name = argument[..<equals]
                inlineValue = argument[argument.index(after: equals)...]
            } else {
                name = argument[...]
                inlineValue = nil
            }
            guard name.hasPrefix("--"), let setting = Setting(rawValue: String(name.dropFirst(2))) else {
                if inlineValue != nil, Switch.all.contains(String(name)) { throw UsageError.takesNoValue(name) }
                // `--=x` has no name to show; show what was typed.
                throw UsageError.unknownOption(name == Switch.endOfOptions ? argument[...] : name)
            }

            let value: String
            if let inlineValue {
                value = String(inlineValue)
            } else if let next = remaining.first, !next.hasPrefix("-") {
                value = next
                remaining = remaining.dropFirst()
            } else {
                throw UsageError.missingValue(setting, next: remaining.first)
            }
            // `--port=` is a mistake, not "unset": an empty variable means unset because compose
            // files write `PORT=` for "no value", but nobody types an empty flag on purpose.
            guard !value.isEmpty else { throw UsageError.missingValue(setting, next: nil) }
            values[setting] = value
        }
    }

    /// Resolves every setting (flag, then environment, then default) and validates it.
    func configuration(environment: [String: String]) throws(InvalidSettingError) -> AppConfiguration {
        var app = AppConfiguration()
        app.healthCheck = healthCheck

        // Resolves one setting; leaves `target` at its default when neither source sets it.
        // Returns whether the flag or the environment set it.
        @discardableResult
        func resolve<Value>(
            _ setting: Setting,
            _ parser: ValueParser<Value>,
            into target: inout Value
        ) throws(InvalidSettingError) -> Bool {
            let source: String
            let raw: String
            if let flagValue = values[setting] {
                (source, raw) = (setting.flag, flagValue)
            } else if let variable = environment[setting.environmentVariable], !variable.isEmpty {
                // Empty counts as unset: `PORT=` in a compose file or .env usually means "no value".
                (source, raw) = (setting.environmentVariable, variable)
            } else {
                return false
            }
            guard let value = parser.parse(raw) else {
                // debugDescription quotes the value and escapes control characters, so the
                // message stays on one line whatever was passed.
                throw InvalidSettingError(
                    message: "invalid value \(raw.debugDescription) for \(source): expected \(parser.expected)"
                )
            }
            target = value
            return true
        }

        try resolve(.host, .ipAddress, into: &app.server.host)
        try resolve(.port, .integer(in: 0...65535), into: &app.server.port)
        try resolve(.readHeaderTimeout, .positiveDuration, into: &app.server.readHeaderTimeout)
        try resolve(.readTimeout, .durationOrZero, into: &app.server.readTimeout)
        try resolve(.idleTimeout, .durationOrZero, into: &app.server.idleTimeout)
        try resolve(.writeTimeout, .durationOrZero, into: &app.server.writeTimeout)
        try resolve(.maxHeaderBytes, .integer(atLeast: 1024), into: &app.server.maxHeaderBytes)
        try resolve(.maxBodyBytes, .integer(atLeast: 0), into: &app.server.maxBodyBytes)
        app.maxConnectionsGiven = try resolve(.maxConnections, .integer(atLeast: 1), into: &app.server.maxConnections)
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
        try resolve(.tlsCertFile, .path, into: &app.tlsCertificateFile)
        try resolve(.tlsKeyFile, .path, into: &app.tlsKeyFile)
        try resolve(.healthCheckVerify, .boolean, into: &app.healthCheckVerify)
        try resolve(.tlsReloadInterval, .durationOrZero, into: &app.tlsReloadInterval)
        try resolve(.maxDelay, .durationOrZero, into: &app.maxDelay)
        if app.tlsCertificateFile.isEmpty != app.tlsKeyFile.isEmpty {
            throw InvalidSettingError(message: "--tls-cert-file and --tls-key-file go together: HTTPS needs both")
        }
        #if !TLS
        if app.tlsEnabled {
            throw InvalidSettingError(
                message: "--tls-cert-file: this build has no TLS; build with `swift build --traits TLS` (see README)")
        }
        #endif
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
    /// A file path: any non-empty text without NUL (whether it can be read is checked at start).
    static var path: Self {
        Self(expected: "a file path") { text in text.isEmpty || text.utf8.contains(0) ? nil : text }
    }

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

/// `service --help`, laid out as swift-argument-parser laid it out before this parser replaced
/// it: the overview, the usage line, then every option with its help in a column of its own,
/// wrapped to fit 80 columns. The settings' entries come from `Setting.allCases`.
enum Help {
    /// The longest line: an 80-column terminal less its last column, as ArgumentParser wrapped
    /// (a line that fills the row makes some terminals add a blank line after it).
    static let width = 79
    /// Where each option's help starts; a longer option puts its help on the lines below it.
    static let helpColumn = 26

    static let discussion = """
        Every option can also be set with the environment variable shown beside it; a flag \
        wins over its variable, which wins over the default. An empty variable counts as \
        unset. Durations use Go's syntax, such as 500ms, 10s, 1m30s or 1.5h.
        """

    static var text: String {
        var lines = ["OVERVIEW: Runs the HTTP service.", ""]
        lines += wrap(discussion, width: width)
        lines += ["", "USAGE: service <options>", "", "OPTIONS:"]
        let entries = Setting.allCases.map { ($0.usage, $0.help) } + [
            (
                Switch.healthCheck,
                "Probe GET /health of the server running on this host and port (over loopback), exit 0 on 200, 1 otherwise"
            ),
            (Switch.version, "Show the version."),
            ("\(Switch.shortHelp), \(Switch.help)", "Show help information."),
        ]
        let indent = String(repeating: " ", count: helpColumn)
        for (option, help) in entries {
            let label = "  " + option
            var helpLines = wrap(help, width: width - helpColumn)[...]
            // At least two spaces between the option and its help, or the help goes below.
            if label.count + 2 <= helpColumn, let first = helpLines.popFirst() {
                lines.append(label + String(repeating: " ", count: helpColumn - label.count) + first)
            } else {
                lines.append(label)
            }
            lines += helpLines.map { indent + $0 }
        }
        return lines.joined(separator: "\n")
    }

    /// Splits `text` at spaces into lines of at most `width` characters; a longer word gets a
    /// line of its own.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}

/// The known option an unknown one was probably meant to be: the same name with the other number
/// of dashes (`-port`, `--health-check`), a typo of at most two letters (`--prot`), or the start
/// of exactly one option's name (`--max-conn`). Nil when nothing is that close.
private func closestOption(to typed: Substring) -> String? {
    func bare(_ option: Substring) -> Substring { option.drop { $0 == "-" } }
    let name = bare(typed)
    guard !name.isEmpty else { return nil }
    let known = Setting.allCases.map(\.flag) + [Switch.healthCheck, Switch.version, Switch.help]
    if let same = known.first(where: { bare($0[...]) == name }) { return same }

    let typedBytes = Array(name.utf8)
    var closest: (option: String, distance: Int)?
    for option in known {
        let candidate = Array(bare(option[...]).utf8)
        // The distance is at least the difference in length; skip the work when that is too much.
        guard abs(candidate.count - typedBytes.count) <= 2 else { continue }
        let distance = editDistance(typedBytes, candidate)
        if distance <= 2, distance < (closest?.distance ?? .max) { closest = (option, distance) }
    }
    if let closest { return closest.option }

    let extended = known.filter { bare($0[...]).hasPrefix(name) }
    return extended.count == 1 ? extended.first : nil
}

/// Levenshtein distance: the fewest single-byte insertions, deletions and substitutions that
/// turn `a` into `b`.
private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    // previous[j]: the distance from the first i bytes of `a` to the first j bytes of `b`.
    var previous = Array(0...b.count)
    for (i, byteOfA) in a.enumerated() {
        var current = [i + 1]
        current.reserveCapacity(b.count + 1)
        for (j, byteOfB) in b.enumerated() {
            let substitution = previous[j] + (byteOfA == byteOfB ? 0 : 1)
            current.append(min(substitution, previous[j + 1] + 1, current[j] + 1))
        }
        previous = current
    }
    return previous.last ?? a.count
}
