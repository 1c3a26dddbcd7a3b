import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import App
@testable import ServiceKit

/// A store that records what it is given and can be told to fail: the stub a real service's
/// tests put where its database goes.
final class StubGreetingStore: GreetingStore {
    struct Unavailable: Error {}
    let added = Mutex<[StoredGreeting]>([])
    let failing: Bool

    init(failing: Bool = false) { self.failing = failing }

    func add(_ greeting: StoredGreeting) throws {
        if failing { throw Unavailable() }
        added.withLock { $0.append(greeting) }
    }

    func recent(limit: Int) throws -> [StoredGreeting] {
        if failing { throw Unavailable() }
        return added.withLock { Array($0.suffix(limit).reversed()) }
    }

    func prune(createdBefore cutoff: Int64) -> Int { 0 }
}

@Suite struct DependenciesTests {
    func respond(_ router: Router, _ method: String, _ target: String, body: String = "",
                 headers: HTTPHeaders = [:]) async -> Response {
        await router.respond(to: Request(method, target, headers: headers, body: Array(body.utf8)))
    }

    @Test func createdGreetingsGoToTheStoreTheRoutesWereBuiltWith() async throws {
        let store = StubGreetingStore()
        var dependencies = Dependencies(greetings: store)
        dependencies.now = { 1_700_000_000 }
        let router = Routes.router(dependencies)
        #expect(await respond(router, "POST", "/greetings", body: #"{"name":"Ada"}"#).status == 201)
        #expect(store.added.withLock { $0 } == [StoredGreeting(message: "Hello, Ada!", createdAt: 1_700_000_000)])
    }

    @Test func aFailingStoreIsAGeneric500WithTheRequestID() async throws {
        let router = Routes.router(Dependencies(greetings: StubGreetingStore(failing: true), apiToken: "t"))
        let response = await router.respond(
            to: Request("POST", "/greetings", headers: ["Content-Type": "application/json"],
                        body: Array(#"{"name":"Ada"}"#.utf8), id: "req-9"))
        #expect(response.status == 500)
        #expect(response.headers["x-request-id"] == "req-9")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"internal server error","status":500}"#)
    }

    @Test func adminNeedsTheBearerToken() async throws {
        let store = StubGreetingStore()
        try store.add(StoredGreeting(message: "Hi, Ada!", createdAt: 1))
        try store.add(StoredGreeting(message: "Hi, Grace!", createdAt: 2))
        let router = Routes.router(Dependencies(greetings: store, apiToken: "s3cret"))

        #expect(await respond(router, "GET", "/admin/greetings").status == 401)
        let wrong = await respond(router, "GET", "/admin/greetings", headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 401)
        #expect(wrong.headers["www-authenticate"]?.hasPrefix("Bearer") == true)

        let listed = await respond(router, "GET", "/admin/greetings?limit=1", headers: ["Authorization": "Bearer s3cret"])
        #expect(listed.status == 200)
        #expect(String(decoding: listed.body, as: UTF8.self) == #"{"greetings":[{"created_at":2,"message":"Hi, Grace!"}]}"#
            || String(decoding: listed.body, as: UTF8.self) == #"{"greetings":[{"message":"Hi, Grace!","created_at":2}]}"#)
        let badLimit = await respond(router, "GET", "/admin/greetings?limit=0", headers: ["Authorization": "Bearer s3cret"])
        #expect(badLimit.status == 400)
    }

    @Test func withoutATokenAdminRefusesEveryone() async {
        let router = Routes.router(Dependencies(apiToken: ""))
        #expect(await respond(router, "GET", "/admin/greetings").status == 401)
        #expect(await respond(router, "GET", "/admin/greetings", headers: ["Authorization": "Bearer "]).status == 401)
    }

    @Test func theRateLimitSettingLimitsEachClient() async throws {
        var dependencies = Dependencies()
        dependencies.rateLimit = 2
        let router = Routes.router(dependencies)
        let client = try #require(SocketAddress(host: "192.0.2.7", port: 40000))
        func hello() async -> Response {
            await router.respond(to: Request("GET", "/hello/Ada", remoteAddress: client))
        }
        #expect(await hello().status == 200)
        #expect(await hello().status == 200)
        let limited = await hello()
        #expect(limited.status == 429)
        #expect(limited.headers["retry-after"] != nil)
        // Without the setting, no limit.
        let open = Routes.router(Dependencies())
        for _ in 0..<5 {
            #expect(await open.respond(to: Request("GET", "/hello/Ada", remoteAddress: client)).status == 200)
        }
    }

    @Test func theInMemoryStoreKeepsItsNewestWithinItsCapacityAndPrunes() {
        let store = InMemoryGreetingStore(capacity: 3)
        for i in 1...5 { store.add(StoredGreeting(message: "m\(i)", createdAt: Int64(i))) }
        #expect(store.recent(limit: 10).map(\.message) == ["m5", "m4", "m3"])
        #expect(store.prune(createdBefore: 5) == 2)
        #expect(store.recent(limit: 10).map(\.message) == ["m5"])
    }

    @Test func thePrunerRunsUntilAGracefulShutdownAndThenStops() async throws {
        let store = InMemoryGreetingStore()
        store.add(StoredGreeting(message: "old", createdAt: 0))
        store.add(StoredGreeting(message: "new", createdAt: 10_000))
        let pruner = GreetingPruner(
            store: store, interval: .milliseconds(10), retention: .seconds(100), logger: Logger(label: "test"),
            now: { 10_050 })
        let group = ServiceGroup(services: [pruner], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<500 where store.recent(limit: 10).count != 1 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(store.recent(limit: 10).map(\.message) == ["new"])
            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
    }

    /// A drain that runs out of time cancels the service group's tasks instead: the pruner
    /// must return then too, not spin.
    @Test(.timeLimit(.minutes(1))) func aCancelledPrunerReturns() async throws {
        let pruner = GreetingPruner(
            store: InMemoryGreetingStore(), interval: .seconds(60), retention: .seconds(100),
            logger: Logger(label: "test"), now: { 0 })
        let task = Task { try await pruner.run() }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let clock = ContinuousClock()
        let started = clock.now
        try await task.value
        // Loose: other suites' blocking reads can keep the shared pool from resuming the task for
        // seconds (6.4 s seen in CI's TLS run). A pruner that spun would never return, and one
        // that slept out its 60 s interval would pass this bound by far.
        #expect(clock.now - started < .seconds(30))
    }
}
