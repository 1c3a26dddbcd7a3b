// The entry point stays this small: code written at the top level here is main-actor isolated
// in Swift 6, and signal or event-loop callbacks declared here would trap at run time.
import ServiceKit

ServiceRuntime.runAndExit(
    name: "service", version: BuildInfo.version, revision: BuildInfo.revision,
    settings: AppSettings.all
) { startup in
    ServiceApplication(router: Routes.router(maxDelay: startup.settings[AppSettings.maxDelay]))
}
