@testable import App
@testable import ServiceKit
import TestSupport

/// The service executable's command line: the runtime's settings, then the app's.
let serviceProgram = Program(
    name: serviceExecutableName, version: BuildInfo.version, revision: BuildInfo.revision,
    settings: RuntimeSettings.all + AppSettings.all)
