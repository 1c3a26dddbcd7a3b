@testable import App
@testable import ServiceKit

/// The `service` executable's command line: the runtime's settings, then the app's.
let serviceProgram = Program(
    name: "service", version: BuildInfo.version, revision: BuildInfo.revision,
    settings: RuntimeSettings.all + AppSettings.all)
