import Foundation
import Testing
@testable import App
@testable import ServiceKit

/// The README's configuration table and the setting declarations (the runtime's and the
/// app's) say the same: every declaration has a row with its flag, its environment variable
/// and its default, and every row is a declaration or one of the switches.
@Suite struct ConfigurationTableTests {
    struct Row: Equatable {
        var flag: String
        var environmentVariable: String
        var defaultText: String
    }

    /// The rows of the table under `## Configuration`, cells without their backticks.
    static func readmeRows() throws -> [Row] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme.components(separatedBy: "\n## Configuration\n").dropFirst().first ?? ""
        let lines = section.components(separatedBy: "\n").drop { !$0.hasPrefix("| flag |") }.dropFirst(2)
        return lines.prefix { $0.hasPrefix("|") }.map { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            func code(_ cell: String) -> String {
                // The first code span, or the cell as it is: "`10000`, or what the memory limit holds".
                let parts = cell.components(separatedBy: "`")
                return parts.count >= 3 ? parts[1] : cell
            }
            return Row(flag: code(cells[0]), environmentVariable: code(cells[1]), defaultText: code(cells[2]))
        }
    }

    @Test func theReadmeTableMatchesTheDeclarations() throws {
        let rows = try Self.readmeRows()
        #expect(rows.count > 20, "the table was not found")
        let declarations = serviceProgram.settings
        for setting in declarations {
            guard let row = rows.first(where: { $0.flag == setting.flag }) else {
                Issue.record("README's configuration table has no row for \(setting.flag)")
                continue
            }
            #expect(row.environmentVariable == setting.environmentVariable, "\(setting.flag)")
            #expect(setting.isDefault(row.defaultText), "\(setting.flag): README says \(row.defaultText), the default is \(setting.defaultText)")
        }
        for row in rows where !declarations.contains(where: { $0.flag == row.flag }) {
            #expect(Switch.all.contains(row.flag), "README's row \(row.flag) is no setting")
            #expect(row.environmentVariable.isEmpty, "\(row.flag)")
        }
    }

    @Test func theAppDeclaresItsTokenSecret() {
        #expect(AppSettings.apiToken.isSecret)
        #expect(AnySetting(AppSettings.apiToken).environmentVariable == "API_TOKEN")
        // The app's settings follow the runtime's in --help, --max-delay first.
        #expect(serviceProgram.settings.suffix(AppSettings.all.count).map(\.flag)
            == ["--max-delay", "--api-token", "--rate-limit"])
    }
}
