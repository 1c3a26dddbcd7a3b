import Logging
import ServiceKit
import Testing

@testable import App

/// Applies an expected change to the default configuration.
typealias ConfigurationChange = @Sendable (inout AppConfiguration) -> Void

/// The configuration `parseCommandLine` produced, or nil (with a recorded issue) if it chose to exit.
private func configuration(
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> AppConfiguration? {
    switch parseCommandLine(arguments, environment: environment) {
    case .run(let configuration):
        return configuration
    case .exit(let code, let message, _):
        Issue.record("expected to run, got exit \(code): \(message)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The defaults with `change` applied.
private func defaults(_ change: ConfigurationChange) -> AppConfiguration {
    var expected = AppConfiguration()
    change(&expected)
    return expected
}

/// Collapses runs of whitespace, so help text can be searched regardless of where it wraps.
private func normalizingWhitespace(_ text: String) -> String {
    text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
}

@Suite("Command line and environment")
struct OptionsTests {
    // MARK: Defaults

    @Test("no flags and an empty environment give the defaults")
    func defaultsWithNothingSet() {
        #expect(parseCommandLine([], environment: [:]) == .run(AppConfiguration()))
    }

    @Test("the defaults are the documented production values")
    func defaultValues() {
        let app = AppConfiguration()
        #expect(app.server.host == "0.0.0.0")
        #expect(app.server.port == 8080)
        #expect(app.server.readHeaderTimeout == .seconds(10))
        #expect(app.server.readTimeout == .seconds(60))
        #expect(app.server.idleTimeout == .seconds(120))
        #expect(app.server.writeTimeout == .seconds(60))
        #expect(app.server.maxHeaderBytes == 16384)
        #expect(app.server.maxBodyBytes == 1_048_576)
        #expect(app.server.maxConnections == 10000)
        #expect(app.server.eventLoops == 0)
        #expect(app.server.drainTimeout == .seconds(25))
        #expect(app.server.accessLog == true)
        #expect(app.logLevel == .info)
        #expect(app.healthCheck == false)
    }

    @Test("unrelated and empty environment variables are ignored")
    func ignoresUnrelatedAndEmptyVariables() {
        let environment = ["PATH": "/usr/bin", "HOME": "/root", "PORT": "", "LOG_LEVEL": ""]
        #expect(parseCommandLine([], environment: environment) == .run(AppConfiguration()))
    }

    // MARK: Valid values

    @Test("environment variable names", arguments: [
        (Setting.host, "HOST"), (.port, "PORT"),
        (.readHeaderTimeout, "READ_HEADER_TIMEOUT"), (.readTimeout, "READ_TIMEOUT"),
        (.idleTimeout, "IDLE_TIMEOUT"), (.writeTimeout, "WRITE_TIMEOUT"),
        (.maxHeaderBytes, "MAX_HEADER_BYTES"), (.maxBodyBytes, "MAX_BODY_BYTES"),
        (.maxConnections, "MAX_CONNECTIONS"), (.eventLoops, "EVENT_LOOPS"),
        (.drainTimeout, "DRAIN_TIMEOUT"), (.accessLog, "ACCESS_LOG"), (.logLevel, "LOG_LEVEL"),
    ])
    func environmentVariableNames(setting: Setting, name: String) {
        #expect(setting.environmentVariable == name)
    }

    // Every setting, each with a non-default value, and the change it makes.
    static let validValues: [(Setting, String, ConfigurationChange)] = [
        (.host, "127.0.0.1", { $0.server.host = "127.0.0.1" }),
        (.host, "::1", { $0.server.host = "::1" }),
        (.host, "fe80::1:2", { $0.server.host = "fe80::1:2" }),
        (.host, "::", { $0.server.host = "::" }),
        (.port, "0", { $0.server.port = 0 }),
        (.port, "9090", { $0.server.port = 9090 }),
        (.port, "65535", { $0.server.port = 65535 }),
        (.readHeaderTimeout, "500ms", { $0.server.readHeaderTimeout = .milliseconds(500) }),
        (.readTimeout, "1m30s", { $0.server.readTimeout = .seconds(90) }),
        (.readTimeout, "0", { $0.server.readTimeout = .zero }),
        (.idleTimeout, "0s", { $0.server.idleTimeout = .zero }),
        (.idleTimeout, "5m", { $0.server.idleTimeout = .seconds(300) }),
        (.writeTimeout, "0", { $0.server.writeTimeout = .zero }),
        (.writeTimeout, "1.5s", { $0.server.writeTimeout = .milliseconds(1500) }),
        (.maxHeaderBytes, "1024", { $0.server.maxHeaderBytes = 1024 }),
        (.maxBodyBytes, "0", { $0.server.maxBodyBytes = 0 }),
        (.maxBodyBytes, "10485760", { $0.server.maxBodyBytes = 10_485_760 }),
        (.maxConnections, "1", { $0.server.maxConnections = 1 }),
        (.eventLoops, "4", { $0.server.eventLoops = 4 }),
        (.drainTimeout, "1h", { $0.server.drainTimeout = .seconds(3600) }),
        (.accessLog, "false", { $0.server.accessLog = false }),
        (.accessLog, "0", { $0.server.accessLog = false }),
        (.accessLog, "no", { $0.server.accessLog = false }),
        (.accessLog, "OFF", { $0.server.accessLog = false }),
        (.accessLog, "False", { $0.server.accessLog = false }),
        (.accessLog, "1", { $0.server.accessLog = true }),
        (.accessLog, "yes", { $0.server.accessLog = true }),
        (.accessLog, "on", { $0.server.accessLog = true }),
        (.logLevel, "trace", { $0.logLevel = .trace }),
        (.logLevel, "debug", { $0.logLevel = .debug }),
        (.logLevel, "notice", { $0.logLevel = .notice }),
        (.logLevel, "warning", { $0.logLevel = .warning }),
        (.logLevel, "error", { $0.logLevel = .error }),
        (.logLevel, "CRITICAL", { $0.logLevel = .critical }),
    ]

    @Test("each environment variable overrides its default", arguments: validValues)
    func environmentOverridesDefault(setting: Setting, value: String, change: ConfigurationChange) {
        let app = configuration(environment: [setting.environmentVariable: value])
        #expect(app == defaults(change))
    }

    @Test("each flag overrides its default", arguments: validValues)
    func flagOverridesDefault(setting: Setting, value: String, change: ConfigurationChange) {
        #expect(configuration([setting.flag, value]) == defaults(change))
        #expect(configuration(["\(setting.flag)=\(value)"]) == defaults(change))
    }

    @Test("each flag overrides its environment variable, even an invalid one", arguments: validValues)
    func flagOverridesEnvironment(setting: Setting, value: String, change: ConfigurationChange) {
        // The variable is never read when the flag is given, so its bad value is no error.
        let app = configuration([setting.flag, value], environment: [setting.environmentVariable: "bogus"])
        #expect(app == defaults(change))
    }

    @Test("flags and variables combine, the flag winning where both are set")
    func flagsAndEnvironmentCombine() {
        let app = configuration(
            ["--port", "9001", "--log-level", "debug"],
            environment: ["PORT": "9000", "HOST": "::1", "IDLE_TIMEOUT": "0"]
        )
        #expect(app == defaults {
            $0.server.port = 9001
            $0.server.host = "::1"
            $0.server.idleTimeout = .zero
            $0.logLevel = .debug
        })
    }

    @Test("the last of a repeated flag wins")
    func repeatedFlag() {
        #expect(configuration(["--port", "1", "--port", "2"])?.server.port == 2)
    }

    @Test("-health-check is parsed with a single dash")
    func healthCheckFlag() {
        #expect(configuration(["-health-check"]) == defaults { $0.healthCheck = true })
        #expect(configuration(["-health-check", "--port", "1"]) == defaults {
            $0.healthCheck = true
            $0.server.port = 1
        })
    }

    // MARK: Plain command lines, read without ArgumentParser

    /// Every setting in both spellings, then a few together.
    static let plainCommandLines: [[String]] = Setting.allCases.flatMap { setting -> [[String]] in
        let value = validValues.first { $0.0 == setting }?.1 ?? "1"
        return [[setting.flag, value], ["\(setting.flag)=\(value)"]]
    } + [
        [],
        ["-health-check"],
        ["--host", "127.0.0.1", "--port=0", "-health-check", "--access-log=false"],
        ["--host=::1", "--drain-linger", "0", "--log-level", "DEBUG"],
    ]

    @Test("a plain command line is read as ArgumentParser reads it", arguments: plainCommandLines)
    func plainCommandLineMatchesArgumentParser(arguments: [String]) throws {
        let plain = try #require(GivenSettings(plainArguments: arguments))
        #expect(plain == (try ServiceCommand.parse(arguments)).given)
    }

    @Test("anything else is left to ArgumentParser", arguments: [
        ["--help"], ["-h"], ["--version"], ["--port", "1", "--port", "2"], ["--port=-1"], ["--port", "-1"],
        ["--port="], ["--port"], ["serve"], ["--prot", "80"], ["-health-check", "-health-check"],
        ["--health-check"], ["--"], ["--port", "80", "--help"], ["-port", "80"],
    ])
    func otherCommandLinesGoToArgumentParser(arguments: [String]) {
        #expect(GivenSettings(plainArguments: arguments) == nil)
    }

    // MARK: Invalid values

    // A bad value for every setting, and a phrase the message must contain saying what is expected.
    static let invalidValues: [(Setting, String, String)] = [
        (.host, "not-an-ip", "an IPv4 or IPv6 address"),
        (.host, "localhost", "an IPv4 or IPv6 address"),
        (.host, "[::1]", "an IPv4 or IPv6 address"),
        (.host, "1.2.3", "an IPv4 or IPv6 address"),
        (.host, "256.0.0.1", "an IPv4 or IPv6 address"),
        (.host, " 127.0.0.1", "an IPv4 or IPv6 address"),
        (.port, "70000", "an integer from 0 to 65535"),
        (.port, "65536", "an integer from 0 to 65535"),
        (.port, "-1", "an integer from 0 to 65535"),
        (.port, "http", "an integer from 0 to 65535"),
        (.port, "80.5", "an integer from 0 to 65535"),
        (.readHeaderTimeout, "abc", "a duration such as 500ms, 10s or 2m"),
        (.readHeaderTimeout, "0", "a duration such as 500ms, 10s or 2m"),
        (.readHeaderTimeout, "0s", "a duration such as 500ms, 10s or 2m"),
        (.readHeaderTimeout, "10", "a duration such as 500ms, 10s or 2m"),
        (.readTimeout, "-5s", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.idleTimeout, "1d", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.writeTimeout, "10 s", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.maxHeaderBytes, "1023", "an integer of at least 1024"),
        (.maxHeaderBytes, "16k", "an integer of at least 1024"),
        (.maxBodyBytes, "-1", "an integer of at least 0"),
        (.maxConnections, "0", "an integer of at least 1"),
        (.eventLoops, "-1", "an integer of at least 0"),
        (.eventLoops, "many", "an integer of at least 0"),
        (.drainTimeout, "0", "a duration such as 500ms, 10s or 2m"),
        (.drainTimeout, "1e3s", "a duration such as 500ms, 10s or 2m"),
        (.accessLog, "maybe", "true or false"),
        (.accessLog, "2", "true or false"),
        (.logLevel, "loud", "one of trace, debug, info, notice, warning, error, critical"),
        (.logLevel, "warn", "one of trace, debug, info, notice, warning, error, critical"),
    ]

    @Test("a bad environment value exits 2 naming the variable, the value and what is expected", arguments: invalidValues)
    func invalidEnvironmentValue(setting: Setting, value: String, expected: String) {
        guard case .exit(let code, let message, let toStandardError) = parseCommandLine(
            [], environment: [setting.environmentVariable: value]
        ) else {
            Issue.record("expected exit")
            return
        }
        #expect(code == 2)
        #expect(toStandardError)
        #expect(message.hasPrefix("invalid value \"\(value)\" for \(setting.environmentVariable): expected \(expected)"))
        #expect(!message.contains("\n"))
    }

    @Test("a bad flag value exits 2 naming the flag, the value and what is expected", arguments: invalidValues)
    func invalidFlagValue(setting: Setting, value: String, expected: String) {
        guard case .exit(let code, let message, let toStandardError) = parseCommandLine(
            ["\(setting.flag)=\(value)"], environment: [:]
        ) else {
            Issue.record("expected exit")
            return
        }
        #expect(code == 2)
        #expect(toStandardError)
        #expect(message.hasPrefix("invalid value \"\(value)\" for \(setting.flag): expected \(expected)"))
        #expect(!message.contains("\n"))
    }

    @Test("the message for READ_HEADER_TIMEOUT=abc reads as documented")
    func documentedEnvironmentMessage() {
        #expect(parseCommandLine([], environment: ["READ_HEADER_TIMEOUT": "abc"]) == .exit(
            code: 2,
            message: "invalid value \"abc\" for READ_HEADER_TIMEOUT: expected a duration such as 500ms, 10s or 2m",
            toStandardError: true
        ))
    }

    @Test("a value with a newline is quoted and escaped, keeping the message on one line")
    func controlCharactersAreEscaped() {
        let outcome = parseCommandLine([], environment: ["PORT": "80\n81"])
        #expect(outcome == .exit(
            code: 2,
            message: #"invalid value "80\n81" for PORT: expected an integer from 0 to 65535"#,
            toStandardError: true
        ))
    }

    @Test("the first bad setting is reported even when several are bad")
    func firstErrorWins() {
        guard case .exit(2, let message, true) = parseCommandLine(
            ["--port", "99999"], environment: ["LOG_LEVEL": "loud"]
        ) else {
            Issue.record("expected exit 2")
            return
        }
        #expect(message.contains("--port"))
    }

    // MARK: ArgumentParser's own errors

    @Test("usage errors exit 2 with one line naming the offending argument", arguments: [
        (["--prot", "80"], "--prot"),
        (["--unknown"], "--unknown"),
        (["--health-check"], "--health-check"),  // the flag takes a single dash, like Go's
        (["-port", "80"], "-port"),
        (["--port"], "--port"),  // missing value
        (["serve"], "serve"),  // unexpected positional argument
    ])
    func usageErrors(arguments: [String], named: String) {
        guard case .exit(let code, let message, let toStandardError) = parseCommandLine(arguments, environment: [:]) else {
            Issue.record("expected exit for \(arguments)")
            return
        }
        #expect(code == 2)
        #expect(toStandardError)
        #expect(message.contains(named))
        #expect(!message.isEmpty && !message.contains("\n"))
    }

    // MARK: Help

    @Test("--help and -h exit 0 with the full help on standard output", arguments: ["--help", "-h"])
    func help(flag: String) {
        guard case .exit(let code, let message, let toStandardError) = parseCommandLine([flag], environment: [:]) else {
            Issue.record("expected exit")
            return
        }
        #expect(code == 0)
        #expect(!toStandardError)
        let help = normalizingWhitespace(message)
        #expect(help.contains("USAGE: service"))
        for setting in Setting.allCases {
            #expect(help.contains(setting.flag + " <"), "\(setting.flag)")
            #expect(help.contains("(env: \(setting.environmentVariable), default: \(setting.defaultText))"), "\(setting)")
        }
        #expect(help.contains("-health-check Probe GET /health"))
    }

    @Test("--version prints the stamped version and revision and exits 0")
    func version() {
        guard case .exit(let code, let message, let toStandardError) = parseCommandLine(["--version"], environment: [:]) else {
            Issue.record("expected exit")
            return
        }
        #expect(code == 0)
        #expect(!toStandardError)
        #expect(message == "\(BuildInfo.version) (\(BuildInfo.revision))")
    }

    @Test("--help shows each default as the service starts with it")
    func helpDefaults() {
        guard case .exit(0, let message, false) = parseCommandLine(["--help"], environment: [:]) else {
            Issue.record("expected help")
            return
        }
        let help = normalizingWhitespace(message)
        for expected in [
            "--port <port> TCP port to listen on; 0 picks a free one (env: PORT, default: 8080)",
            "(env: HOST, default: 0.0.0.0)",
            "(env: READ_HEADER_TIMEOUT, default: 10s)",
            "(env: READ_TIMEOUT, default: 1m0s)",
            "(env: IDLE_TIMEOUT, default: 2m0s)",
            "(env: WRITE_TIMEOUT, default: 1m0s)",
            "(env: MAX_HEADER_BYTES, default: 16384)",
            "(env: MAX_BODY_BYTES, default: 1048576)",
            "(env: MAX_CONNECTIONS, default: 10000)",
            "(env: EVENT_LOOPS, default: 0)",
            "(env: DRAIN_TIMEOUT, default: 25s)",
            "(env: ACCESS_LOG, default: true)",
            "(env: LOG_LEVEL, default: info)",
        ] {
            #expect(help.contains(expected), "\(expected)")
        }
    }

    @Test("--help wins over bad values elsewhere")
    func helpWithBadValues() {
        guard case .exit(0, _, false) = parseCommandLine(["--port", "99999", "--help"], environment: ["PORT": "x"]) else {
            Issue.record("expected help")
            return
        }
    }
}
