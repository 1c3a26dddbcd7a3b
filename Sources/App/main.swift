// The entry point stays this small: code written at the top level here is main-actor isolated
// in Swift 6, and signal or event-loop callbacks declared here would trap at run time.
import ServiceKit

ServiceRuntime.runAndExit(
    name: "service", version: BuildInfo.version, revision: BuildInfo.revision, settings: AppSettings.all
) { startup in
    let dependencies = Dependencies(startup.settings)
    let pruner = GreetingPruner(
        store: dependencies.greetings, interval: .seconds(60), retention: .seconds(3600), logger: startup.logger,
        now: dependencies.now)
    // Listed services stop after the HTTP server has drained: the pruner outlives every request.
    return ServiceApplication(router: Routes.router(dependencies), services: [pruner])
}
