import Logging
import Testing

@testable import ServiceKit

private typealias R = RuntimeSettings

/// An application setting declared as an application declares one (the example app's
/// `--max-delay`), so the tables below cover a setting that follows the runtime's.
enum TestSettings {
    static let maxDelay = Setting(
        "max-delay", default: .seconds(10), .durationOrZero, help: "Longest wait GET /delay accepts; longer asks get a 400")
}

/// The command line under test: the runtime's settings, then the application's.
let program = Program(
    name: "service", version: "1.2.3", revision: "abc", settings: RuntimeSettings.all + [AnySetting(TestSettings.maxDelay)])

/// The settings by the names the tables below use.
extension AnySetting {
    static let host = AnySetting(R.host), port = AnySetting(R.port)
    static let readHeaderTimeout = AnySetting(R.readHeaderTimeout), readTimeout = AnySetting(R.readTimeout)
    static let idleTimeout = AnySetting(R.idleTimeout), writeTimeout = AnySetting(R.writeTimeout)
    static let maxHeaderBytes = AnySetting(R.maxHeaderBytes), maxBodyBytes = AnySetting(R.maxBodyBytes)
    static let maxConnections = AnySetting(R.maxConnections), eventLoops = AnySetting(R.eventLoops)
    static let shutdownDelay = AnySetting(R.shutdownDelay), drainTimeout = AnySetting(R.drainTimeout)
    static let drainLinger = AnySetting(R.drainLinger), healthCheckTimeout = AnySetting(R.healthCheckTimeout)
    static let accessLog = AnySetting(R.accessLog), logLevel = AnySetting(R.logLevel)
    static let metrics = AnySetting(R.metrics), metricsPort = AnySetting(R.metricsPort)
    static let metricsAccessLog = AnySetting(R.metricsAccessLog), tlsCertFile = AnySetting(R.tlsCertFile)
    static let tlsKeyFile = AnySetting(R.tlsKeyFile), healthCheckVerify = AnySetting(R.healthCheckVerify)
    static let tlsReloadInterval = AnySetting(R.tlsReloadInterval), maxDelay = AnySetting(TestSettings.maxDelay)
}

extension ParsedCommandLine {
    /// Every setting at its default, no -health-check.
    init() { self.init(settings: Settings(program.settings)) }

    subscript<Value>(_ setting: Setting<Value>) -> Value {
        get { settings[setting] }
        set { settings[setting] = newValue }
    }
}

/// Applies an expected change to the default configuration.
typealias ConfigurationChange = @Sendable (inout ParsedCommandLine) -> Void

/// The configuration `program.parse` produced, or nil (with a recorded issue) if it chose to exit.
private func configuration(
    _ arguments: [String] = [],
    environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> ParsedCommandLine? {
    switch program.parse(arguments, environment: environment) {
    case .run(let configuration):
        return configuration
    case .exit(let code, let message, _):
        Issue.record("expected to run, got exit \(code): \(message)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The defaults with `change` applied.
private func defaults(_ change: ConfigurationChange) -> ParsedCommandLine {
    var expected = ParsedCommandLine()
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
        #expect(program.parse([], environment: [:]) == .run(ParsedCommandLine()))
    }

    @Test("the defaults are the documented production values")
    func defaultValues() {
        let app = ParsedCommandLine()
        #expect(app.settings.server.host == "0.0.0.0")
        #expect(app.settings.server.port == 8080)
        #expect(app.settings.server.readHeaderTimeout == .seconds(10))
        #expect(app.settings.server.readTimeout == .seconds(60))
        #expect(app.settings.server.idleTimeout == .seconds(120))
        #expect(app.settings.server.writeTimeout == .seconds(60))
        #expect(app.settings.server.maxHeaderBytes == 16384)
        #expect(app.settings.server.maxBodyBytes == 1_048_576)
        #expect(app.settings.server.maxConnections == 10000)
        // Not given: main derives the cap from the container's memory limit (ConnectionBudget).
        #expect(!app.settings.isGiven(R.maxConnections))
        #expect(app.settings.server.eventLoops == 0)
        #expect(app.settings.server.drainTimeout == .seconds(25))
        #expect(app.settings.server.accessLog == true)
        #expect(app[R.logLevel] == .info)
        #expect(app.healthCheck == false)
    }

    @Test("unrelated and empty environment variables are ignored")
    func ignoresUnrelatedAndEmptyVariables() {
        let environment = ["PATH": "/usr/bin", "HOME": "/root", "PORT": "", "LOG_LEVEL": ""]
        #expect(program.parse([], environment: environment) == .run(ParsedCommandLine()))
    }

    // MARK: Valid values

    @Test("environment variable names", arguments: [
        (AnySetting.host, "HOST"), (.port, "PORT"),
        (.readHeaderTimeout, "READ_HEADER_TIMEOUT"), (.readTimeout, "READ_TIMEOUT"),
        (.idleTimeout, "IDLE_TIMEOUT"), (.writeTimeout, "WRITE_TIMEOUT"),
        (.maxHeaderBytes, "MAX_HEADER_BYTES"), (.maxBodyBytes, "MAX_BODY_BYTES"),
        (.maxConnections, "MAX_CONNECTIONS"), (.eventLoops, "EVENT_LOOPS"),
        (.shutdownDelay, "SHUTDOWN_DELAY"), (.drainTimeout, "DRAIN_TIMEOUT"), (.drainLinger, "DRAIN_LINGER"),
        (.healthCheckTimeout, "HEALTH_CHECK_TIMEOUT"), (.accessLog, "ACCESS_LOG"), (.logLevel, "LOG_LEVEL"),
    ])
    func environmentVariableNames(setting: AnySetting, name: String) {
        #expect(setting.environmentVariable == name)
    }

    // Every setting, each with a non-default value, and the change it makes.
    static let validValues: [(AnySetting, String, ConfigurationChange)] = [
        (.host, "127.0.0.1", { $0[R.host] = "127.0.0.1" }),
        (.host, "::1", { $0[R.host] = "::1" }),
        (.host, "fe80::1:2", { $0[R.host] = "fe80::1:2" }),
        (.host, "::", { $0[R.host] = "::" }),
        (.port, "0", { $0[R.port] = 0 }),
        (.port, "9090", { $0[R.port] = 9090 }),
        (.port, "65535", { $0[R.port] = 65535 }),
        (.readHeaderTimeout, "500ms", { $0[R.readHeaderTimeout] = .milliseconds(500) }),
        (.readTimeout, "1m30s", { $0[R.readTimeout] = .seconds(90) }),
        (.readTimeout, "0", { $0[R.readTimeout] = .zero }),
        (.idleTimeout, "0s", { $0[R.idleTimeout] = .zero }),
        (.idleTimeout, "5m", { $0[R.idleTimeout] = .seconds(300) }),
        (.writeTimeout, "0", { $0[R.writeTimeout] = .zero }),
        (.writeTimeout, "1.5s", { $0[R.writeTimeout] = .milliseconds(1500) }),
        (.maxHeaderBytes, "1024", { $0[R.maxHeaderBytes] = 1024 }),
        (.maxBodyBytes, "0", { $0[R.maxBodyBytes] = 0 }),
        (.maxBodyBytes, "10485760", { $0[R.maxBodyBytes] = 10_485_760 }),
        (.maxConnections, "1", { $0[R.maxConnections] = 1 }),
        (.eventLoops, "4", { $0[R.eventLoops] = 4 }),
        (.shutdownDelay, "5s", { $0[R.shutdownDelay] = .seconds(5) }),
        (.drainTimeout, "1h", { $0[R.drainTimeout] = .seconds(3600) }),
        (.drainLinger, "0", { $0[R.drainLinger] = .zero }),
        (.healthCheckTimeout, "500ms", { $0[R.healthCheckTimeout] = .milliseconds(500) }),
        (.accessLog, "false", { $0[R.accessLog] = false }),
        (.accessLog, "0", { $0[R.accessLog] = false }),
        (.accessLog, "no", { $0[R.accessLog] = false }),
        (.accessLog, "OFF", { $0[R.accessLog] = false }),
        (.accessLog, "False", { $0[R.accessLog] = false }),
        (.accessLog, "1", { $0[R.accessLog] = true }),
        (.accessLog, "yes", { $0[R.accessLog] = true }),
        (.accessLog, "on", { $0[R.accessLog] = true }),
        (.logLevel, "trace", { $0[R.logLevel] = .trace }),
        (.logLevel, "debug", { $0[R.logLevel] = .debug }),
        (.logLevel, "notice", { $0[R.logLevel] = .notice }),
        (.logLevel, "warning", { $0[R.logLevel] = .warning }),
        (.logLevel, "error", { $0[R.logLevel] = .error }),
        (.logLevel, "CRITICAL", { $0[R.logLevel] = .critical }),
        (.metrics, "false", { $0[R.metrics] = false }),
        (.metricsPort, "9090", { $0[R.metricsPort] = 9090 }),
        (.metricsAccessLog, "true", { $0[R.metricsAccessLog] = true }),
        (.healthCheckVerify, "false", { $0[R.healthCheckVerify] = false }),
        (.tlsReloadInterval, "10s", { $0[R.tlsReloadInterval] = .seconds(10) }),
        (.tlsReloadInterval, "0", { $0[R.tlsReloadInterval] = .zero }),
        (.maxDelay, "2m", { $0[TestSettings.maxDelay] = .seconds(120) }),
        (.maxDelay, "0", { $0[TestSettings.maxDelay] = .zero }),
    ]

    /// Settings valid only together, tested on their own below rather than in the tables.
    static let paired: Set<AnySetting> = [.tlsCertFile, .tlsKeyFile]

    @Test("each environment variable overrides its default", arguments: validValues)
    func environmentOverridesDefault(setting: AnySetting, value: String, change: ConfigurationChange) {
        let app = configuration(environment: [setting.environmentVariable: value])
        #expect(app == defaults(change))
    }

    @Test("each flag overrides its default", arguments: validValues)
    func flagOverridesDefault(setting: AnySetting, value: String, change: ConfigurationChange) {
        #expect(configuration([setting.flag, value]) == defaults(change))
        #expect(configuration(["\(setting.flag)=\(value)"]) == defaults(change))
    }

    @Test("each flag overrides its environment variable, even an invalid one", arguments: validValues)
    func flagOverridesEnvironment(setting: AnySetting, value: String, change: ConfigurationChange) {
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
            $0[R.port] = 9001
            $0[R.host] = "::1"
            $0[R.idleTimeout] = .zero
            $0[R.logLevel] = .debug
        })
    }

    @Test("-health-check is parsed with a single dash")
    func healthCheckFlag() {
        #expect(configuration(["-health-check"]) == defaults { $0.healthCheck = true })
        #expect(configuration(["-health-check", "--port", "1"]) == defaults {
            $0.healthCheck = true
            $0[R.port] = 1
        })
    }

    // MARK: Command-line syntax

    @Test("every setting has a valid and an invalid value in the tables above")
    func tablesCoverEverySetting() {
        // A new setting must be added to both tables, so that every test below covers it too.
        #expect(Set(Self.validValues.map(\.0)) == Set(program.settings).subtracting(Self.paired))
        #expect(Set(Self.invalidValues.map(\.0)) == Set(program.settings).subtracting(Self.paired))
    }

    @Test("the TLS files go together; without the TLS trait they are refused")
    func tlsFiles() {
        let pair = ["--tls-cert-file", "/c.pem", "--tls-key-file=/k.pem"]
        #if TLS
        #expect(configuration(pair) == defaults {
            $0[R.tlsCertFile] = "/c.pem"
            $0[R.tlsKeyFile] = "/k.pem"
        })
        #expect(configuration([], environment: ["TLS_CERT_FILE": "/e.pem", "TLS_KEY_FILE": "/f.pem"])?.settings.tlsEnabled == true)
        #else
        guard case .exit(2, let message, true) = program.parse(pair, environment: [:]) else {
            Issue.record("a build without TLS accepted TLS files")
            return
        }
        #expect(message.contains("this build has no TLS"))
        #endif
        for alone in [["--tls-cert-file=/c.pem"], ["--tls-key-file=/k.pem"]] {
            guard case .exit(2, let message, true) = program.parse(alone, environment: [:]) else {
                Issue.record("\(alone) accepted")
                continue
            }
            #expect(message == "--tls-cert-file and --tls-key-file go together: HTTPS needs both")
        }
        guard case .exit(2, let message, true) = program.parse(["--tls-cert-file="], environment: [:]) else {
            Issue.record("an empty path accepted")
            return
        }
        #expect(message.contains("missing value for --tls-cert-file"))
    }

    @Test("the last of a repeated setting wins, whatever the spelling")
    func repeatedSetting() {
        #expect(configuration(["--port", "1", "--port", "2"])?.settings.server.port == 2)
        #expect(configuration(["--port=1", "--port", "3"])?.settings.server.port == 3)
        #expect(configuration(["--port", "4", "--port=5", "-health-check", "-health-check"]) == defaults {
            $0[R.port] = 5
            $0.healthCheck = true
        })
    }

    @Test("--name=value and --name value read the same, valid or not",
          arguments: program.settings.filter { !OptionsTests.paired.contains($0) })
    func bothSpellingsReadTheSame(setting: AnySetting) throws {
        let valid = try #require(Self.validValues.first { $0.0 == setting }?.1)
        let separate = try GivenSettings(program: program, arguments: [setting.flag, valid])
        let joined = try GivenSettings(program: program, arguments: ["\(setting.flag)=\(valid)"])
        #expect(separate.values == [setting.name: valid])
        #expect(joined == separate)

        let invalid = try #require(Self.invalidValues.first { $0.0 == setting && !$0.1.hasPrefix("-") }?.1)
        let outcome = program.parse([setting.flag, invalid], environment: [:])
        guard case .exit(2, _, true) = outcome else {
            Issue.record("expected exit 2, got \(outcome)")
            return
        }
        #expect(program.parse(["\(setting.flag)=\(invalid)"], environment: [:]) == outcome)
    }

    @Test("a command line mixing both spellings and -health-check gives each setting its value")
    func mixedCommandLine() throws {
        let given = try GivenSettings(program: program, arguments: [
            "--host", "127.0.0.1", "--port=0", "-health-check", "--access-log=false", "--log-level", "DEBUG",
        ])
        #expect(given.values == ["host": "127.0.0.1", "port": "0", "access-log": "false", "log-level": "DEBUG"])
        #expect(given.healthCheck)
        #expect(try GivenSettings(program: program, arguments: []) == GivenSettings())
    }

    @Test("after =, a value may start with - or hold another =, and is checked like any value")
    func valueAfterEquals() throws {
        #expect(try GivenSettings(program: program, arguments: ["--port=-1"]).values == ["port": "-1"])
        #expect(try GivenSettings(program: program, arguments: ["--host=1.2.3.4=5"]).values == ["host": "1.2.3.4=5"])
        #expect(try GivenSettings(program: program, arguments: ["--host=--port"]).values == ["host": "--port"])
        #expect(program.parse(["--port=-1"], environment: [:]) == .exit(
            code: 2, message: #"invalid value "-1" for --port: expected an integer from 0 to 65535"#, toStandardError: true
        ))
        #expect(program.parse(["--read-timeout=-5s"], environment: [:]) == .exit(
            code: 2,
            message: #"invalid value "-5s" for --read-timeout: expected a duration such as 500ms, 10s or 2m (0 disables)"#,
            toStandardError: true
        ))
    }

    @Test("-- ends the options; a trailing one is accepted")
    func endOfOptions() {
        #expect(configuration(["--"]) == ParsedCommandLine())
        #expect(configuration(["--port", "1", "--"]) == defaults { $0[R.port] = 1 })
        #expect(configuration(["--port=1", "-health-check", "--"]) == defaults {
            $0[R.port] = 1
            $0.healthCheck = true
        })
    }

    // MARK: Invalid values

    // A bad value for every setting, and a phrase the message must contain saying what is expected.
    static let invalidValues: [(AnySetting, String, String)] = [
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
        (.readTimeout, "5", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.idleTimeout, "1d", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.writeTimeout, "10 s", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.maxHeaderBytes, "1023", "an integer of at least 1024"),
        (.maxHeaderBytes, "16k", "an integer of at least 1024"),
        (.maxBodyBytes, "-1", "an integer of at least 0"),
        (.maxBodyBytes, "1MB", "an integer of at least 0"),
        (.maxConnections, "0", "an integer of at least 1"),
        (.eventLoops, "-1", "an integer of at least 0"),
        (.eventLoops, "many", "an integer of at least 0"),
        (.shutdownDelay, "soon", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.drainTimeout, "0", "a duration such as 500ms, 10s or 2m"),
        (.drainTimeout, "1e3s", "a duration such as 500ms, 10s or 2m"),
        (.drainLinger, "-1s", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.metrics, "maybe", "true or false (or 1/0, yes/no, on/off)"),
        (.metricsPort, "65536", "an integer from 0 to 65535"),
        (.metricsAccessLog, "2", "true or false (or 1/0, yes/no, on/off)"),
        (.healthCheckVerify, "maybe", "true or false (or 1/0, yes/no, on/off)"),
        (.tlsReloadInterval, "hourly", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.maxDelay, "-5s", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.maxDelay, "forever", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.drainLinger, "forever", "a duration such as 500ms, 10s or 2m (0 disables)"),
        (.healthCheckTimeout, "0", "a duration such as 500ms, 10s or 2m"),
        (.accessLog, "maybe", "true or false"),
        (.accessLog, "2", "true or false"),
        (.logLevel, "loud", "one of trace, debug, info, notice, warning, error, critical"),
        (.logLevel, "warn", "one of trace, debug, info, notice, warning, error, critical"),
    ]

    @Test("a bad environment value exits 2 naming the variable, the value and what is expected", arguments: invalidValues)
    func invalidEnvironmentValue(setting: AnySetting, value: String, expected: String) {
        guard case .exit(let code, let message, let toStandardError) = program.parse(
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
    func invalidFlagValue(setting: AnySetting, value: String, expected: String) {
        guard case .exit(let code, let message, let toStandardError) = program.parse(
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
        #expect(program.parse([], environment: ["READ_HEADER_TIMEOUT": "abc"]) == .exit(
            code: 2,
            message: "invalid value \"abc\" for READ_HEADER_TIMEOUT: expected a duration such as 500ms, 10s or 2m",
            toStandardError: true
        ))
    }

    @Test("a value with a newline is quoted and escaped, keeping the message on one line")
    func controlCharactersAreEscaped() {
        let outcome = program.parse([], environment: ["PORT": "80\n81"])
        #expect(outcome == .exit(
            code: 2,
            message: #"invalid value "80\n81" for PORT: expected an integer from 0 to 65535"#,
            toStandardError: true
        ))
    }

    @Test("the first bad setting is reported even when several are bad")
    func firstErrorWins() {
        guard case .exit(2, let message, true) = program.parse(
            ["--port", "99999"], environment: ["LOG_LEVEL": "loud"]
        ) else {
            Issue.record("expected exit 2")
            return
        }
        #expect(message.contains("--port"))
    }

    // MARK: Usage errors

    @Test("usage errors exit 2 with one line on standard error", arguments: [
        // Unknown options, with a guess where one is close.
        (["--prot", "80"], #"unknown option "--prot"; did you mean --port?"#),
        (["--prot=80"], #"unknown option "--prot"; did you mean --port?"#),
        (["--drain-timeot", "1s"], #"unknown option "--drain-timeot"; did you mean --drain-timeout?"#),
        (["--verison"], #"unknown option "--verison"; did you mean --version?"#),
        (["--max-conn", "5"], #"unknown option "--max-conn"; did you mean --max-connections?"#),
        (["-v"], #"unknown option "-v"; did you mean --version?"#),
        // The right name with the wrong number of dashes.
        (["--health-check"], #"unknown option "--health-check"; did you mean -health-check?"#),
        (["-port", "80"], #"unknown option "-port"; did you mean --port?"#),
        (["-help"], #"unknown option "-help"; did you mean --help?"#),
        (["-health-check-timeout=1s"], #"unknown option "-health-check-timeout"; did you mean --health-check-timeout?"#),
        // Nothing close, or the start of several names: no guess.
        (["--unknown"], #"unknown option "--unknown""#),
        (["--max", "5"], #"unknown option "--max""#),
        (["-x"], #"unknown option "-x""#),
        (["--=5"], #"unknown option "--=5""#),
        (["--bad\nname"], #"unknown option "--bad\nname""#),
        // Missing values.
        (["--port"], "missing value for --port <port>"),
        (["--port="], "missing value for --port <port>"),
        (["--port", ""], "missing value for --port <port>"),
        (["--host", "--port", "80"], "missing value for --host <address>"),
        (["--host", "-health-check"], "missing value for --host <address>"),
        (["--port", "-1"], #"missing value for --port <port>; write --port=-1 for a value starting with "-""#),
        (["--read-timeout", "-5s"], #"missing value for --read-timeout <duration>; write --read-timeout=-5s for a value starting with "-""#),
        // Values for options that take none.
        (["-health-check=true"], "option -health-check takes no value"),
        (["--version=1"], "option --version takes no value"),
        (["--help=1"], "option --help takes no value"),
        // Arguments.
        (["serve"], #"unexpected argument "serve"; the service takes only options"#),
        (["--port", "80", "serve"], #"unexpected argument "serve"; the service takes only options"#),
        (["-"], #"unexpected argument "-"; the service takes only options"#),
        (["--", "serve"], #"unexpected argument "serve"; the service takes only options"#),
        (["--", "--port", "1"], #"unexpected argument "--port"; the service takes only options"#),
        // After --, --help and --version are arguments too.
        (["--", "--help"], #"unexpected argument "--help"; the service takes only options"#),
        (["--", "--version"], #"unexpected argument "--version"; the service takes only options"#),
        // The first mistake on the line is the one reported.
        (["serve", "--prot"], #"unexpected argument "serve"; the service takes only options"#),
    ])
    func usageErrors(arguments: [String], message: String) {
        #expect(program.parse(arguments, environment: [:]) == .exit(code: 2, message: message, toStandardError: true))
        #expect(!message.contains("\n"))
    }

    @Test("a usage error is reported before any bad value, from a flag or the environment")
    func usageErrorBeforeBadValues() {
        #expect(program.parse(["--port", "99999", "--prot", "1"], environment: ["LOG_LEVEL": "loud"]) == .exit(
            code: 2, message: #"unknown option "--prot"; did you mean --port?"#, toStandardError: true
        ))
    }

    // MARK: Help and version

    /// The help `program.parse` gives for `arguments`, or nil (with a recorded issue) for anything else.
    private func helpOutput(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        guard case .exit(0, let message, false) = program.parse(arguments, environment: ["PORT": "x"]),
              message.hasPrefix("OVERVIEW:")
        else {
            Issue.record("expected help for \(arguments)", sourceLocation: sourceLocation)
            return nil
        }
        return message
    }

    @Test("--help and -h give the same help, on standard output with exit 0")
    func helpAndShortHelp() throws {
        let long = try #require(helpOutput(["--help"]))
        #expect(helpOutput(["-h"]) == long)
        #expect(long == Help(program: program).text)
    }

    @Test("the help has the overview, the usage line and every option with its env variable and default")
    func helpContent() throws {
        let help = normalizingWhitespace(try #require(helpOutput(["--help"])))
        #expect(help.hasPrefix("OVERVIEW: Runs the HTTP service. "))
        #expect(help.contains(normalizingWhitespace(Help.discussion)))
        #expect(help.contains("USAGE: service <options> OPTIONS:"))
        for setting in program.settings {
            #expect(help.contains("\(setting.flag) <\(setting.valueName)> "), "\(setting)")
            #expect(help.contains("(env: \(setting.environmentVariable), default: \(setting.defaultText))"), "\(setting)")
        }
        #expect(help.contains("-health-check Probe GET /health of the server"))
        #expect(help.contains("--version Show the version."))
        #expect(help.hasSuffix("-h, --help Show help information."))
    }

    @Test("the help lists each option once, settings first in their declared order")
    func helpOrder() throws {
        let lines = try #require(helpOutput(["--help"])).split(separator: "\n", omittingEmptySubsequences: false)
        // An option's line starts with two spaces and a dash; its name is the first word.
        let options = lines.filter { $0.hasPrefix("  -") }.compactMap { $0.split(separator: " ").first }
        #expect(options == program.settings.map { Substring($0.flag) } + ["-health-check", "--version", "-h,"])
    }

    @Test("the help is laid out in two columns within 80 columns, as ArgumentParser laid it out")
    func helpLayout() throws {
        let text = try #require(helpOutput(["--help"]))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines {
            #expect(line.count <= 79, "\(line)")
            #expect(line.last != " ", "trailing space: \(line)")
        }
        // Under OPTIONS:, every line is an option with its help starting at column 26, an option
        // alone (too long to share its line), or a continuation of the help at column 26.
        let options = lines.drop { $0 != "OPTIONS:" }.dropFirst()
        #expect(options.count > program.settings.count)
        for line in options {
            let (left, right) = (line.prefix(26), line.dropFirst(26))
            let helpAt26 = right.first.map { $0 != " " } ?? false
            let continuation = left.allSatisfy { $0 == " " } && helpAt26
            let optionWithHelp = line.hasPrefix("  -") && left.hasSuffix("  ") && helpAt26
            let optionAlone = line.hasPrefix("  -") && !line.dropFirst(2).contains("  ")
            #expect(continuation || optionWithHelp || optionAlone, "\(line)")
        }
        // Two options as ArgumentParser printed them: one short enough to share its line with
        // its help, one that puts its help below.
        #expect(text.contains("""
              --port <port>           TCP port to listen on; 0 picks a free one (env: PORT,
                                      default: 8080)
              --read-header-timeout <duration>
                                      Time allowed to read a request's header section; must
                                      be > 0 (env: READ_HEADER_TIMEOUT, default: 10s)
              --read-timeout <duration>
            """))
        #expect(text.contains("""
            unset. Durations use Go's syntax, such as 500ms, 10s, 1m30s or 1.5h.

            USAGE: service <options>

            OPTIONS:
            """))
    }

    @Test("wrapping breaks at spaces, keeps a line up to the width, and gives a long word its own line")
    func wrap() {
        #expect(Help.wrap("aaa bbb ccc", width: 7) == ["aaa bbb", "ccc"])
        #expect(Help.wrap("aaa bbb ccc", width: 6) == ["aaa", "bbb", "ccc"])
        #expect(Help.wrap("a verylongword b", width: 5) == ["a", "verylongword", "b"])
        #expect(Help.wrap("", width: 5) == [])
    }

    @Test("--help shows each default as the service starts with it")
    func helpDefaults() throws {
        let help = normalizingWhitespace(try #require(helpOutput(["--help"])))
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
            "(env: SHUTDOWN_DELAY, default: 0s)",
            "(env: DRAIN_TIMEOUT, default: 25s)",
            "(env: DRAIN_LINGER, default: 1s)",
            "(env: HEALTH_CHECK_TIMEOUT, default: 2s)",
            "(env: ACCESS_LOG, default: true)",
            "(env: LOG_LEVEL, default: info)",
        ] {
            #expect(help.contains(expected), "\(expected)")
        }
    }

    @Test("--help or -h anywhere before -- wins over every other mistake and over --version", arguments: [
        ["--port", "99999", "--help"],
        ["--prot", "80", "-h"],
        ["--port", "1", "--port", "2", "--help"],
        ["serve", "--help"],
        ["--port", "--help"],
        ["-health-check=yes", "-h"],
        ["--version", "--help"],
        ["-h", "--version"],
        ["-h", "--", "serve"],
    ])
    func helpWins(arguments: [String]) {
        // helpOutput() passes a bad PORT too.
        #expect(helpOutput(arguments) == Help(program: program).text)
    }

    @Test("--version prints the stamped version and revision and exits 0")
    func version() {
        #expect(program.parse(["--version"], environment: [:]) == .exit(
            code: 0, message: "1.2.3 (abc)", toStandardError: false
        ))
    }

    @Test("--version wins over every mistake but --help", arguments: [
        ["--version", "--prot"],
        ["--port", "99999", "--version"],
        ["serve", "--version"],
        ["--version", "--", "serve"],
    ])
    func versionWins(arguments: [String]) {
        #expect(program.parse(arguments, environment: ["PORT": "x"]) == .exit(
            code: 0, message: "1.2.3 (abc)", toStandardError: false
        ))
    }
}
