import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import ServiceKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An application service that records when its graceful shutdown arrives. Its run asks the
/// process to stop (a SIGTERM, as a container runtime sends it) once the group runs it.
private final class ShutdownRecorder: Service, CustomStringConvertible {
    let readiness: Readiness
    /// When the SIGTERM was sent, when the graceful shutdown reached this service, and whether
    /// readiness was draining by then.
    let recorded = Mutex<(signalled: ContinuousClock.Instant, stopped: ContinuousClock.Instant, draining: Bool)?>(nil)

    init(readiness: Readiness) { self.readiness = readiness }

    var description: String { "ShutdownRecorder" }

    func run() async throws {
        let signalled = ContinuousClock.now
        kill(getpid(), SIGTERM)
        try? await gracefulShutdown()
        let stopped = ContinuousClock.now
        recorded.withLock { $0 = (signalled, stopped, readiness.isDraining) }
    }
}

private struct BuildFailure: Error {}

/// ServiceRuntime run in-process, without bootstrapping the process's logging and metrics.
@Suite(.serialized) struct ServiceRuntimeTests {
    static let quiet = ["--host=127.0.0.1", "--port=0", "--metrics=false", "--log-level=critical"]

    @Test func applicationServicesStopOnlyAfterTheServerHasDrained() async throws {
        let recorder = Mutex<ShutdownRecorder?>(nil)
        // The server keeps serving 300 ms after SIGTERM, then closes its listener and drains; a
        // service the group stopped first would see its shutdown at once.
        let status = await ServiceRuntime.main(
            program, arguments: Self.quiet + ["--shutdown-delay=300ms"], environment: [:], bootstrapsProcess: false
        ) { startup in
            let service = ShutdownRecorder(readiness: startup.readiness)
            recorder.withLock { $0 = service }
            return ServiceApplication(router: Router(), services: [service])
        }
        #expect(status == 0)
        let recorded = try #require(recorder.withLock { $0 }?.recorded.withLock { $0 })
        #expect(recorded.stopped - recorded.signalled >= .milliseconds(300))
        #expect(recorded.draining)
    }

    @Test func aBuildThatThrowsIsAStartupFailure() async {
        let built = Mutex(false)
        let status = await ServiceRuntime.main(
            program, arguments: Self.quiet, environment: [:], bootstrapsProcess: false
        ) { startup in
            built.withLock { $0 = true }
            #expect(startup.settings[TestSettings.maxDelay] == .seconds(10))
            throw BuildFailure()
        }
        #expect(status == 1)
        #expect(built.withLock { $0 })
    }

    @Test func aBadCommandLineExits2BeforeTheApplicationIsBuilt() async {
        let status = await ServiceRuntime.main(
            program, arguments: ["--max-delay=soon"], environment: [:], bootstrapsProcess: false
        ) { _ in
            Issue.record("built")
            return ServiceApplication(router: Router())
        }
        #expect(status == 2)
    }

    @Test func theStartupLineShowsEverySettingAndHidesSecrets() throws {
        let token = Setting("api-token", default: "", .text, help: "A token", secret: true)
        let declarations = RuntimeSettings.all + [AnySetting(TestSettings.maxDelay), AnySetting(token)]
        var settings = Settings(declarations)
        func config() throws -> Logger.Metadata {
            let metadata = ServiceRuntime.startupMetadata(settings, version: "1", revision: "r", address: nil)
            guard case .dictionary(let config) = metadata["config"] else { throw BuildFailure() }
            return config
        }
        #expect(try config()["api_token"] == "")
        settings[token] = "s3cret"
        let config = try config()
        #expect(config["api_token"] == "***")
        #expect(!"\(config)".contains("s3cret"))
        #expect(config["max_delay"] == "10s")
        #expect(config["tls"]?.description == "false")
        // Every setting but the listener's, which the line states as its address and port.
        for declaration in declarations where declaration.name != "host" && declaration.name != "port" {
            #expect(config[String(declaration.name.map { $0 == "-" ? "_" : $0 })] != nil, "\(declaration.name)")
        }
        #expect(config["port"] == nil)
        guard case .stringConvertible(let bytes) = config["max_header_bytes"] else {
            Issue.record("max_header_bytes is not a number")
            return
        }
        #expect(bytes as? Int == 16384)
    }

    @Test func plainTextSettingsTakeAnyTextAndAnEmptyVariableLeavesTheDefault() {
        let token = Setting("api-token", default: "", .text, help: "A token", secret: true)
        let program = Program(name: "service", version: "1", revision: "r", settings: RuntimeSettings.all + [AnySetting(token)])
        guard case .run(let fromFlag) = program.parse(["--api-token=a b=c"], environment: ["API_TOKEN": "x"]),
              case .run(let unset) = program.parse([], environment: ["API_TOKEN": ""])
        else {
            Issue.record("refused")
            return
        }
        #expect(fromFlag.settings[token] == "a b=c")
        #expect(unset.settings[token] == "")
        #expect(!unset.settings.isGiven(token))
        #expect(program.parse(["--api-token="], environment: [:]) == .exit(
            code: 2, message: "missing value for --api-token <text>", toStandardError: true))
    }
}

@Suite struct ProbesTests {
    func call(_ router: Router, _ method: String, _ path: String) async throws -> Response? {
        guard case .found(let handler, _, _) = router.match(method: method, path: path) else { return nil }
        return try await handler(.test(method, path))
    }

    @Test func healthAndReadinessAnswerAsJSON() async throws {
        let readiness = Readiness()
        var router = Router()
        Probes.add(to: &router, readiness: readiness)
        let health = try #require(try await call(router, "GET", "/health"))
        #expect(health.status == 200)
        #expect(health.headers["content-type"] == "application/json")
        #expect(String(decoding: health.body, as: UTF8.self) == #"{"status":"ok"}"#)
        #expect(try await call(router, "HEAD", "/health")?.status == 200)
        guard case .methodNotAllowed = router.match(method: "POST", path: "/health") else {
            Issue.record("POST /health is not a 405")
            return
        }
        let ready = try #require(try await call(router, "GET", "/ready"))
        #expect(ready.status == 200)
        #expect(String(decoding: ready.body, as: UTF8.self) == #"{"status":"ready"}"#)
        readiness.set(ready: false)
        let draining = try #require(try await call(router, "GET", "/ready"))
        #expect(draining.status == 503)
        #expect(String(decoding: draining.body, as: UTF8.self) == #"{"status":"draining"}"#)
    }

    @Test func probesSkipTheApplicationsMiddlewareEvenInsideAGroup() async throws {
        var router = Router()
        router.use { _, _ in throw HTTPError(status: 401, reason: "no") }
        router.get("/app") { _ in .text("app") }
        router.group("/api") { api in
            Probes.add(to: &api, readiness: Readiness())
            api.get("/inside") { _ in .text("inside") }
        }
        #expect(await router.respond(to: Request("GET", "/app")).status == 401)
        #expect(await router.respond(to: Request("GET", "/api/inside")).status == 401)
        // Registered at the root, with no middleware, whatever was in force.
        #expect(await router.respond(to: Request("GET", "/health")).status == 200)
        #expect(await router.respond(to: Request("GET", "/ready")).status == 200)
        #expect(await router.respond(to: Request("GET", "/api/health")).status == 404)
        // And what a probe registration leaves behind is the stack that was in force.
        router.get("/later") { _ in .text("later") }
        #expect(await router.respond(to: Request("GET", "/later")).status == 401)
    }
}
