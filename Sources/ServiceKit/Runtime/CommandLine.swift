// The command line and environment of a service.
//
// Every setting can come from a flag or an environment variable (twelve-factor style, for
// containers); a flag wins over the environment, which wins over the built-in default. The
// options are kept as raw strings until every one is read, so that a bad value gets the same
// one-line message whether it came from a flag or from the environment, naming whichever the
// operator actually set.
//
// The command line is read by the small parser below, not by swift-argument-parser (which the
// `drill` tool uses): that library is about 0.5 MB of the static binary, and the image has a
// hard 16 MiB limit. The parser is driven by the ``Setting`` declarations, so a new setting is
// one declaration; it then parses, shows in `--help` and in the startup log line. Its rules:
//
// - `--name=value` and `--name value` mean the same. In the second form a value cannot start
//   with `-` (it would be read as a missing value); write `--port=-1` to pass one.
// - `-health-check` takes a single dash, Go style, because container health checks copied from
//   Go services call `service -health-check`. `--health-check` is an unknown option (its message
//   suggests `-health-check`): one spelling an option.
// - `--help` or `-h` anywhere before `--` prints the help and exits 0, whatever else is wrong
//   with the line; otherwise `--version` does the same with the version.
// - A setting given twice takes its last value, as with Go's flag package, so a value appended
//   to a command line overrides an earlier one.
// - `--` ends the options. The service takes no arguments, so anything after it is an error,
//   `--help` included; a `--` with nothing after it is accepted.
// - Any mistake is one line on standard error and exit status 2, like Go's flag package.

/// A service's command-line interface: its name and version, and the settings it reads.
struct Program: Sendable {
    var name: String
    var version: String
    var revision: String
    /// The runtime's settings, then the application's, in `--help` order.
    var settings: [AnySetting]
    /// The settings by name, for the parser.
    let byName: [String: AnySetting]

    init(name: String, version: String, revision: String, settings: [AnySetting]) {
        self.name = name
        self.version = version
        self.revision = revision
        self.settings = settings
        var byName: [String: AnySetting] = [:]
        for setting in settings {
            precondition(byName.updateValue(setting, forKey: setting.name) == nil, "two settings are named \(setting.name)")
        }
        self.byName = byName
    }

    /// `1.2.3 (abc123)`, what `--version` prints.
    var versionText: String { "\(version) (\(revision))" }

    /// Turns the command line (without argv[0]) and the environment into settings or an exit.
    ///
    /// Pure: it reads nothing but its arguments, prints nothing and never exits, so tests can call it.
    func parse(_ arguments: [String], environment: [String: String]) -> CommandLineOutcome {
        let request: CommandLineRequest
        do {
            request = try CommandLineRequest(parsing: arguments, program: self)
        } catch {
            return .exit(code: 2, message: error.message, toStandardError: true)
        }
        switch request {
        case .help:
            return .exit(code: 0, message: Help(program: self).text, toStandardError: false)
        case .version:
            return .exit(code: 0, message: versionText, toStandardError: false)
        case .run(let given):
            do {
                return .run(ParsedCommandLine(
                    settings: try given.settings(environment: environment, program: self), healthCheck: given.healthCheck))
            } catch {
                return .exit(code: 2, message: error.message, toStandardError: true)
            }
        }
    }
}

/// A command line that asks to run.
struct ParsedCommandLine: Sendable, Equatable {
    var settings: Settings
    /// `-health-check` was given: probe the running instance instead of serving.
    var healthCheck = false
}

/// What `main` should do with a command line.
enum CommandLineOutcome: Equatable {
    /// Start the service (or probe it) with these settings.
    case run(ParsedCommandLine)
    /// Print `message` (with a trailing newline) to standard error or standard output, then exit
    /// with `code`: 0 for `--help` and `--version`, 2 for any usage error (like Go's flag package).
    case exit(code: Int32, message: String, toStandardError: Bool)
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
    init(parsing arguments: [String], program: Program) throws(UsageError) {
        let options = arguments.prefix { $0 != Switch.endOfOptions }
        if options.contains(where: { $0 == Switch.help || $0 == Switch.shortHelp }) {
            self = .help
        } else if options.contains(Switch.version) {
            self = .version
        } else {
            self = .run(try GivenSettings(program: program, arguments: arguments))
        }
    }
}

/// A command line that does not parse; `message` is the one line to show.
struct UsageError: Error, Equatable {
    var message: String

    static func unknownOption(_ name: Substring, program: Program) -> UsageError {
        // debugDescription quotes and escapes what was typed, keeping the message on one line.
        let typed = String(name).debugDescription
        guard let known = closestOption(to: name, program: program) else {
            return UsageError(message: "unknown option \(typed)")
        }
        return UsageError(message: "unknown option \(typed); did you mean \(known)?")
    }

    static func takesNoValue(_ option: Substring) -> UsageError {
        UsageError(message: "option \(option) takes no value")
    }

    /// `next` is the argument that followed the option, if any.
    static func missingValue(_ setting: AnySetting, next: String?) -> UsageError {
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

/// The settings given on the command line, as raw strings by setting name;
/// ``settings(environment:program:)`` checks them.
struct GivenSettings: Equatable {
    var values: [String: String] = [:]
    var healthCheck = false

    init(healthCheck: Bool = false) {
        self.healthCheck = healthCheck
    }

    /// Reads the options of a command line that asks neither for help nor for the version (see
    /// ``CommandLineRequest/init(parsing:program:)``); the rules are at the top of this file.
    ///
    /// Cheap on purpose: it runs at every start. No reflection (ArgumentParser built its model of
    /// the command that way, and its runtime type and conformance lookups were 1.4 ms of a 4.7 ms
    /// start and 0.4 MiB of idle RSS), and no regex or `_StringProcessing` algorithms.
    init(program: Program, arguments: [String]) throws(UsageError) {
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
            guard name.hasPrefix("--"), let setting = program.byName[String(name.dropFirst(2))] else {
                if inlineValue != nil, Switch.all.contains(String(name)) { throw UsageError.takesNoValue(name) }
                // `--=x` has no name to show; show what was typed.
                throw UsageError.unknownOption(name == Switch.endOfOptions ? argument[...] : name, program: program)
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
            values[setting.name] = value
        }
    }

    /// Resolves every setting (flag, then environment, then default), validates each, then the
    /// runtime's checks across settings. The first bad setting, in declaration order, is the
    /// one reported.
    func settings(environment: [String: String], program: Program) throws(InvalidSettingError) -> Settings {
        var settings = Settings(program.settings)
        for setting in program.settings {
            let source: String
            let raw: String
            if let flagValue = values[setting.name] {
                (source, raw) = (setting.flag, flagValue)
            } else if let variable = environment[setting.environmentVariable], !variable.isEmpty {
                // Empty counts as unset: `PORT=` in a compose file or .env usually means "no value".
                (source, raw) = (setting.environmentVariable, variable)
            } else {
                continue
            }
            guard let value = setting.parse(raw) else {
                // debugDescription quotes the value and escapes control characters, so the
                // message stays on one line whatever was passed.
                throw InvalidSettingError(
                    message: "invalid value \(raw.debugDescription) for \(source): expected \(setting.expected)")
            }
            settings.set(setting, parsed: value)
        }
        try RuntimeSettings.validate(settings)
        return settings
    }
}

/// `--help`, laid out as swift-argument-parser lays it out: the overview, the usage line, then
/// every option with its help in a column of its own, wrapped to fit 80 columns. The settings'
/// entries come from their declarations.
struct Help {
    /// The longest line: an 80-column terminal less its last column, as ArgumentParser wraps
    /// (a line that fills the row makes some terminals add a blank line after it).
    static let width = 79
    /// Where each option's help starts; a longer option puts its help on the lines below it.
    static let helpColumn = 26

    static let discussion = """
        Every option can also be set with the environment variable shown beside it; a flag \
        wins over its variable, which wins over the default. An empty variable counts as \
        unset. Durations use Go's syntax, such as 500ms, 10s, 1m30s or 1.5h.
        """

    var program: Program

    /// The help line: `TCP port to listen on; 0 picks a free one (env: PORT, default: 8080)`.
    static func help(_ setting: AnySetting) -> String {
        "\(setting.help) (env: \(setting.environmentVariable), default: \(setting.defaultText))"
    }

    var text: String {
        var lines = ["OVERVIEW: Runs the HTTP service.", ""]
        lines += Self.wrap(Self.discussion, width: Self.width)
        lines += ["", "USAGE: \(program.name) <options>", "", "OPTIONS:"]
        let entries = program.settings.map { ($0.usage, Self.help($0)) } + [
            (
                Switch.healthCheck,
                "Probe GET /health of the server running on this host and port (over loopback), exit 0 on 200, 1 otherwise"
            ),
            (Switch.version, "Show the version."),
            ("\(Switch.shortHelp), \(Switch.help)", "Show help information."),
        ]
        let indent = String(repeating: " ", count: Self.helpColumn)
        for (option, help) in entries {
            let label = "  " + option
            var helpLines = Self.wrap(help, width: Self.width - Self.helpColumn)[...]
            // At least two spaces between the option and its help, or the help goes below.
            if label.count + 2 <= Self.helpColumn, let first = helpLines.popFirst() {
                lines.append(label + String(repeating: " ", count: Self.helpColumn - label.count) + first)
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
private func closestOption(to typed: Substring, program: Program) -> String? {
    func bare(_ option: Substring) -> Substring { option.drop { $0 == "-" } }
    let name = bare(typed)
    guard !name.isEmpty else { return nil }
    let known = program.settings.map(\.flag) + [Switch.healthCheck, Switch.version, Switch.help]
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
