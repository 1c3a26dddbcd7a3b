import Synchronization
import Testing
@testable import ServiceKit

/// Records the order in which middleware and handlers run.
final class Trace: Sendable {
    private let steps = Mutex<[String]>([])
    func add(_ step: String) { steps.withLock { $0.append(step) } }
    var all: [String] { steps.withLock { $0 } }
}

/// A middleware that notes its name on the way in and out, and tags the response.
struct Tagging: Middleware {
    let name: String
    let trace: Trace

    func handle(_ request: Request, next: Handler) async throws -> Response {
        trace.add("\(name) in")
        var response = try await next(request)
        trace.add("\(name) out")
        response.headers.add(name: "X-Through", value: name)
        return response
    }
}

@Suite struct MiddlewareTests {
    @Test func routerGroupAndRouteMiddlewareNestOutermostFirst() async {
        let trace = Trace()
        var router = Router()
        router.get("/before") { _ in .text("before") }
        router.use(Tagging(name: "router", trace: trace))
        router.group("/api", middleware: [Tagging(name: "group", trace: trace)]) { api in
            api.use(Tagging(name: "inner", trace: trace))
            api.get("/items", middleware: [Tagging(name: "route", trace: trace)]) { _ in
                trace.add("handler")
                return .text("items")
            }
            api.get("/") { _ in .text("api root") }
        }
        router.get("/after") { _ in .text("after") }

        let items = await router.respond(to: Request("GET", "/api/items"))
        #expect(String(decoding: items.body, as: UTF8.self) == "items")
        #expect(trace.all == [
            "router in", "group in", "inner in", "route in", "handler", "route out", "inner out", "group out",
            "router out",
        ])
        #expect(items.headers.values(named: "X-Through") == ["route", "inner", "group", "router"])

        // `/` inside a group is the group's own path; the group's middleware stays inside it.
        let root = await router.respond(to: Request("GET", "/api"))
        #expect(String(decoding: root.body, as: UTF8.self) == "api root")
        #expect(root.headers.values(named: "X-Through") == ["inner", "group", "router"])
        #expect(await router.respond(to: Request("GET", "/after")).headers.values(named: "X-Through") == ["router"])
        // Routes registered before `use` are not wrapped.
        #expect(await router.respond(to: Request("GET", "/before")).headers.values(named: "X-Through") == [])
    }

    @Test func aMiddlewareCanAnswerWithoutCallingTheHandler() async {
        var router = Router()
        let handlerRan = Mutex(false)
        router.use { request, next in
            request.headers["x-stop"] != nil ? .text("stopped", status: 403) : try await next(request)
        }
        router.get("/x") { _ in
            handlerRan.withLock { $0 = true }
            return .text("ran")
        }
        let stopped = await router.respond(to: Request("GET", "/x", headers: ["X-Stop": "1"]))
        #expect(stopped.status == 403)
        #expect(!handlerRan.withLock { $0 })
        #expect(await router.respond(to: Request("GET", "/x")).status == 200)
        #expect(handlerRan.withLock { $0 })
    }

    @Test func whatAMiddlewareThrowsIsAnsweredAsAHandlersErrorIs() async {
        var router = Router()
        router.group("/refused", middleware: [MiddlewareFunction { _, _ in
            throw HTTPError(status: 429, reason: "slow down", headers: ["Retry-After": "3"])
        }]) { group in
            group.get("/") { _ in .text("never") }
        }
        router.group("/broken", middleware: [MiddlewareFunction { _, _ in throw TestFailure() }]) { group in
            group.get("/") { _ in .text("never") }
        }
        let refused = await router.respond(to: Request("GET", "/refused"))
        #expect(refused.status == 429)
        #expect(refused.headers["retry-after"] == "3")
        #expect(String(decoding: refused.body, as: UTF8.self) == #"{"error":"slow down","status":429}"#)
        let broken = await router.respond(to: Request("GET", "/broken", id: "abc"))
        #expect(broken.status == 500)
        #expect(String(decoding: broken.body, as: UTF8.self) == #"{"error":"internal server error","status":500}"#)
        #expect(broken.headers["x-request-id"] == "abc")
    }

    @Test func middlewareSeesTheRouteTemplateAndParameters() async {
        var router = Router()
        router.use { request, next in
            var response = try await next(request)
            response.headers.add(name: "X-Route", value: request.route ?? "-")
            response.headers.add(name: "X-Id", value: request.parameter("id") ?? "-")
            return response
        }
        router.get("/users/:id") { _ in .text("user") }
        let response = await router.respond(to: Request("GET", "/users/42"))
        #expect(response.headers["x-route"] == "/users/:id")
        #expect(response.headers["x-id"] == "42")
    }

    @Test func a405RunsThroughThePathsMiddlewareAnd404RunsNone() async {
        let trace = Trace()
        var router = Router()
        router.use(Tagging(name: "outer", trace: trace))
        router.get("/only-get") { _ in .text("got") }
        let refused = await router.respond(to: Request("DELETE", "/only-get"))
        #expect(refused.status == 405)
        #expect(refused.headers["allow"] == "GET, HEAD")
        #expect(refused.headers.values(named: "X-Through") == [], "the refusal is thrown through the middleware")
        #expect(trace.all == ["outer in"])
        let missing = await router.respond(to: Request("GET", "/nowhere"))
        #expect(missing.status == 404)
        #expect(trace.all == ["outer in"])
    }
}

extension HTTPHeaders {
    /// Every value of `name`, in order.
    func values(named name: String) -> [String] {
        filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}
