// Settings declared once: a ``Setting`` names a flag and its environment variable, its default,
// its parser (which validates) and its help, and whether its value is secret. The command-line
// parser, `--help`, the startup log line and the README's configuration table (checked by a
// test) are all read from these declarations.

import GoDuration
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One setting of the service: `--name value` on the command line or `NAME=value` in the
/// environment (the name upper-cased with underscores), else its default.
///
/// Declare it once as a static constant and read it typed from ``Settings``:
///
/// ```swift
/// static let apiToken = Setting(
///     "api-token", default: "", .text, help: "Bearer token the /admin routes require", secret: true)
/// let token = startup.settings[AppSettings.apiToken]
/// ```
public struct Setting<Value: Sendable & Equatable>: Sendable {
    /// The long flag's name without its dashes: `read-header-timeout`.
    public let name: String
    public let defaultValue: Value
    public let parser: ValueParser<Value>
    /// One sentence for `--help`; the environment variable and the default are appended to it.
    public let help: String
    /// The placeholder for the value in `--help` and in "missing value" messages: `<duration>`.
    public let valueName: String
    /// A secret's value is logged as `"***"`.
    public let isSecret: Bool
    /// The default as `--help` shows it.
    public let defaultText: String

    /// - Parameters:
    ///   - valueName: the placeholder in `--help`; nil takes the parser's (`duration`, `count`, ...).
    ///   - defaultText: the default as `--help` shows it; nil formats `default` with the parser.
    public init(
        _ name: String, default: Value, _ parser: ValueParser<Value>, help: String, valueName: String? = nil,
        secret: Bool = false, defaultText: String? = nil
    ) {
        self.name = name
        self.defaultValue = `default`
        self.parser = parser
        self.help = help
        self.valueName = valueName ?? parser.valueName
        self.isSecret = secret
        self.defaultText = defaultText ?? parser.format(`default`)
    }

    /// `--read-header-timeout`
    public var flag: String { "--" + name }

    /// `READ_HEADER_TIMEOUT`
    public var environmentVariable: String { environmentName(name) }
}

/// The name upper-cased, dashes turned into underscores.
func environmentName(_ name: String) -> String {
    // Not `replacing("-", with: "_")`: that generic algorithm lives in _StringProcessing, and
    // this would be its only use at startup; calling it faults in about 300 KiB of the static
    // binary's text (that module and _RegexParser) that stays resident.
    String(name.uppercased().map { $0 == "-" ? "_" : $0 })
}

/// A ``Setting`` of any value type, for the lists the parser, `--help` and the log read.
public struct AnySetting: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let valueName: String
    public let help: String
    public let defaultText: String
    public let isSecret: Bool
    /// Completes "expected …" in the message for a value that does not parse.
    let expected: String
    let defaultValue: any Sendable
    let parse: @Sendable (String) -> (any Sendable)?
    let isEqual: @Sendable (any Sendable, any Sendable) -> Bool
    let logValue: @Sendable (any Sendable) -> Logger.Metadata.Value

    public init<Value>(_ setting: Setting<Value>) {
        name = setting.name
        valueName = setting.valueName
        help = setting.help
        defaultText = setting.defaultText
        isSecret = setting.isSecret
        expected = setting.parser.expected
        defaultValue = setting.defaultValue
        let parser = setting.parser
        parse = { parser.parse($0) }
        isEqual = { ($0 as? Value) == ($1 as? Value) }
        logValue = { value in (value as? Value).map(parser.logValue) ?? "-" }
    }

    public var flag: String { "--" + name }
    public var environmentVariable: String { environmentName(name) }
    public var description: String { flag }

    /// `--port <port>`, as `--help` lists it.
    var usage: String { "\(flag) <\(valueName)>" }

    /// Whether `text` states this setting's default: it is the default's text, or it parses to
    /// the default value (`60s` for a default `--help` shows as `1m0s`).
    public func isDefault(_ text: String) -> Bool {
        text == defaultText || parse(text).map { isEqual($0, defaultValue) } == true
    }

    public static func == (lhs: AnySetting, rhs: AnySetting) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// The resolved value of every declared setting: from its flag, else its environment variable,
/// else its default.
public struct Settings: Sendable, Equatable {
    /// The declarations, in `--help` order.
    public let declarations: [AnySetting]
    /// The values that are not the default (given, or derived by the runtime), by name.
    private var values: [String: any Sendable] = [:]
    /// The names of the settings a flag or an environment variable set.
    private var given: Set<String> = []

    /// Every setting at its default.
    public init(_ declarations: [AnySetting]) {
        self.declarations = declarations
    }

    /// The setting's value. Setting it marks it given (as a flag or the environment would).
    public internal(set) subscript<Value>(_ setting: Setting<Value>) -> Value {
        get { values[setting.name].flatMap { $0 as? Value } ?? setting.defaultValue }
        set {
            values[setting.name] = newValue
            given.insert(setting.name)
        }
    }

    /// Whether a flag or an environment variable set it, rather than its default applying.
    public func isGiven<Value>(_ setting: Setting<Value>) -> Bool { given.contains(setting.name) }

    /// Sets a value the runtime derived, leaving the setting not given.
    mutating func derive<Value>(_ setting: Setting<Value>, _ value: Value) {
        values[setting.name] = value
    }

    /// Sets a parsed value, given by a flag or the environment.
    mutating func set(_ declaration: AnySetting, parsed: any Sendable) {
        values[declaration.name] = parsed
        given.insert(declaration.name)
    }

    /// The value of a declared setting, untyped.
    func value(of declaration: AnySetting) -> any Sendable { values[declaration.name] ?? declaration.defaultValue }

    /// Each setting for the startup log line, keyed by its name in snake case; a secret's
    /// value is `"***"` when given and empty when not.
    var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        for declaration in declarations {
            let key = String(declaration.name.map { $0 == "-" ? "_" : $0 })
            if declaration.isSecret {
                metadata[key] = given.contains(declaration.name) ? "***" : ""
            } else {
                metadata[key] = declaration.logValue(value(of: declaration))
            }
        }
        return metadata
    }

    public static func == (lhs: Settings, rhs: Settings) -> Bool {
        guard lhs.declarations.map(\.name) == rhs.declarations.map(\.name), lhs.given == rhs.given,
              Set(lhs.values.keys) == Set(rhs.values.keys)
        else { return false }
        return lhs.declarations.allSatisfy { $0.isEqual(lhs.value(of: $0), rhs.value(of: $0)) }
    }
}

/// Parses one kind of setting value, and says in words what it accepts for error messages.
public struct ValueParser<Value: Sendable>: Sendable {
    /// Completes "expected …", e.g. "an integer from 0 to 65535".
    public var expected: String
    /// The placeholder `--help` shows for the value unless the setting names its own.
    public var valueName: String
    public var parse: @Sendable (String) -> Value?
    /// The value as `--help` shows it (and the log, for values that are not numbers or booleans).
    public var format: @Sendable (Value) -> String
    /// The value in the startup log line.
    var logValue: @Sendable (Value) -> Logger.Metadata.Value

    public init(
        expected: String, valueName: String, parse: @escaping @Sendable (String) -> Value?,
        format: @escaping @Sendable (Value) -> String
    ) {
        self.init(expected: expected, valueName: valueName, parse: parse, format: format) { .string(format($0)) }
    }

    init(
        expected: String, valueName: String, parse: @escaping @Sendable (String) -> Value?,
        format: @escaping @Sendable (Value) -> String, logValue: @escaping @Sendable (Value) -> Logger.Metadata.Value
    ) {
        self.expected = expected
        self.valueName = valueName
        self.parse = parse
        self.format = format
        self.logValue = logValue
    }
}

extension ValueParser where Value == Int {
    public static func integer(in range: ClosedRange<Int>, valueName: String = "count") -> Self {
        integer(expected: "an integer from \(range.lowerBound) to \(range.upperBound)", valueName: valueName) {
            range.contains($0)
        }
    }

    public static func integer(atLeast minimum: Int, valueName: String = "count") -> Self {
        integer(expected: "an integer of at least \(minimum)", valueName: valueName) { $0 >= minimum }
    }

    private static func integer(expected: String, valueName: String, _ accepts: @escaping @Sendable (Int) -> Bool) -> Self {
        Self(
            expected: expected, valueName: valueName, parse: { Int($0).flatMap { accepts($0) ? $0 : nil } },
            format: { String($0) }, logValue: { .stringConvertible($0) })
    }
}

extension ValueParser where Value == Duration {
    /// For timeouts where zero means "no timeout". Go's syntax: `500ms`, `10s`, `1m30s`.
    public static var durationOrZero: Self {
        duration(expected: "a duration such as 500ms, 10s or 2m (0 disables)") { _ in true }
    }

    /// For timeouts that must stay in force: a zero header timeout would invite slowloris, and a
    /// zero drain timeout would drop every in-flight request at shutdown.
    public static var positiveDuration: Self {
        duration(expected: "a duration such as 500ms, 10s or 2m") { $0 > .zero }
    }

    private static func duration(expected: String, _ accepts: @escaping @Sendable (Duration) -> Bool) -> Self {
        Self(expected: expected, valueName: "duration", parse: { text in
            Duration(goString: text).flatMap { accepts($0) ? $0 : nil }
        }, format: { $0.goString })
    }
}

extension ValueParser where Value == Bool {
    /// Go's strconv.ParseBool spellings (any case) plus the yes/no and on/off common in
    /// container configs.
    public static var boolean: Self {
        Self(expected: "true or false (or 1/0, yes/no, on/off)", valueName: "bool", parse: { text in
            switch text.lowercased() {
            case "true", "t", "1", "yes", "on": true
            case "false", "f", "0", "no", "off": false
            default: nil
            }
        }, format: { String($0) }, logValue: { .stringConvertible($0) })
    }
}

extension ValueParser where Value == Logger.Level {
    public static var logLevel: Self {
        let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        return Self(expected: "one of \(names)", valueName: "level", parse: { Logger.Level(rawValue: $0.lowercased()) },
                    format: { $0.rawValue })
    }
}

extension ValueParser where Value == String {
    /// Any text without NUL. An empty environment variable counts as unset, so the default
    /// (typically empty) stands for "not set".
    public static var text: Self {
        Self(expected: "text without NUL", valueName: "text", parse: { $0.utf8.contains(0) ? nil : $0 }, format: { $0 })
    }

    /// A file path: any non-empty text without NUL (whether it can be read is checked at start).
    public static var path: Self {
        Self(expected: "a file path", valueName: "path", parse: { text in
            text.isEmpty || text.utf8.contains(0) ? nil : text
        }, format: { $0 })
    }

    /// An IPv4 or IPv6 literal, checked with inet_pton: the listener binds an address, and
    /// resolving a name here would make start-up depend on DNS.
    public static var ipAddress: Self {
        Self(expected: "an IPv4 or IPv6 address such as 0.0.0.0, 127.0.0.1 or ::1", valueName: "address", parse: { text in
            isIPAddressLiteral(text) ? text : nil
        }, format: { $0 })
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
