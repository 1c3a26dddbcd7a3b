import Synchronization
import Testing
@testable import ServiceKit

/// CORS through the router's own dispatch: preflights answered by the middleware (also for a
/// path with only a GET route, through its 405), actual requests decorated only for allowed
/// origins, `Vary: Origin` whenever the answer depends on the origin.
@Suite struct CORSTests {
    static let app = "https://app.example"
    static let evil = "https://evil.example"

    /// Counts the calls that reached a handler.
    final class Calls: Sendable {
        let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
    }

    /// `/items` has only a GET route; `/teapot` refuses with an HTTPError; `/open` is
    /// registered before the CORS middleware.
    func router(_ cors: CORS, calls: Calls = Calls()) -> Router {
        var router = Router()
        router.get("/open") { _ in .text("open") }
        router.use(cors)
        router.get("/items") { _ in
            calls.count.add(1, ordering: .relaxed)
            return Response(status: 200, headers: ["X-Total": "3"], body: Array("items".utf8))
        }
        router.get("/teapot") { _ in throw HTTPError(status: 418, reason: "short and stout") }
        return router
    }

    static let listed = CORS(
        allowedOrigins: .only([app, "https://other.example"]), allowedMethods: ["GET", "POST", "DELETE"],
        allowedHeaders: ["Content-Type", "X-Api-Key"], exposedHeaders: ["X-Total"], allowCredentials: true,
        maxAge: .seconds(600))

    func preflight(
        _ router: Router, origin: String = app, method: String = "DELETE", headers: String? = nil, path: String = "/items"
    ) async -> Response {
        var fields: HTTPHeaders = ["Origin": origin, "Access-Control-Request-Method": method]
        if let headers { fields.add(name: "Access-Control-Request-Headers", value: headers) }
        return await router.respond(to: Request("OPTIONS", path, headers: fields))
    }

    func corsFields(_ response: Response) -> [String] {
        response.headers.map(\.name).filter { $0.lowercased().hasPrefix("access-control-") }
    }

    @Test func anAllowedPreflightOnAGetOnlyPathIsAnsweredWithoutCallingTheHandler() async throws {
        let calls = Calls()
        let router = router(Self.listed, calls: calls)
        let response = await preflight(router, headers: "content-type, X-API-Key")
        #expect(response.status == 204)
        #expect(response.body.isEmpty)
        #expect(response.headers["Access-Control-Allow-Origin"] == Self.app)
        #expect(response.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE")
        #expect(response.headers["Access-Control-Allow-Headers"] == "Content-Type, X-Api-Key")
        #expect(response.headers["Access-Control-Allow-Credentials"] == "true")
        #expect(response.headers["Access-Control-Max-Age"] == "600")
        #expect(response.headers["Allow"] == nil, "not the 405 it went through")
        let vary = try #require(response.headers["Vary"])
        #expect(vary.contains("Origin"))
        #expect(vary.contains("Access-Control-Request-Method"))
        #expect(calls.value == 0)
    }

    @Test(arguments: [
        (evil, "GET", nil as String?),  // an origin not listed
        (app, "PUT", nil),  // a method not allowed
        (app, "GET", "Content-Type, X-Secret"),  // a header not allowed
    ])
    func aRefusedPreflightGetsNoCORSHeaders(origin: String, method: String, headers: String?) async throws {
        let calls = Calls()
        let response = await preflight(router(Self.listed, calls: calls), origin: origin, method: method, headers: headers)
        #expect(response.status == 204)
        #expect(corsFields(response).isEmpty)
        #expect(response.headers["Vary"]?.contains("Origin") == true)
        #expect(calls.value == 0)
    }

    @Test func anActualRequestFromAnAllowedOriginIsDecorated() async throws {
        let calls = Calls()
        let response = await router(Self.listed, calls: calls).respond(
            to: Request("GET", "/items", headers: ["Origin": "https://APP.example"]))
        #expect(response.status == 200)
        #expect(response.body == Array("items".utf8))
        #expect(response.headers["Access-Control-Allow-Origin"] == "https://APP.example", "the origin echoed as sent")
        #expect(response.headers["Access-Control-Allow-Credentials"] == "true")
        #expect(response.headers["Access-Control-Expose-Headers"] == "X-Total")
        #expect(response.headers["Vary"] == "Origin")
        #expect(calls.value == 1)
    }

    @Test func aDisallowedOriginStillRunsButGetsNoCORSHeaders() async throws {
        let calls = Calls()
        let router = router(Self.listed, calls: calls)
        let response = await router.respond(to: Request("GET", "/items", headers: ["Origin": Self.evil]))
        #expect(response.status == 200)
        #expect(response.body == Array("items".utf8))
        #expect(corsFields(response).isEmpty)
        #expect(response.headers["Vary"] == "Origin")
        #expect(calls.value == 1)

        let noOrigin = await router.respond(to: Request("GET", "/items"))
        #expect(noOrigin.status == 200)
        #expect(corsFields(noOrigin).isEmpty)
        #expect(noOrigin.headers["Vary"] == "Origin", "a cache must not serve it to a listed origin")
    }

    @Test func anyOriginWithoutCredentialsAnswersStarWithoutVary() async throws {
        let router = router(CORS(allowedOrigins: .any, allowedHeaders: []))
        let response = await router.respond(to: Request("GET", "/items", headers: ["Origin": Self.evil]))
        #expect(response.headers["Access-Control-Allow-Origin"] == "*")
        #expect(response.headers["Vary"] == nil)
        #expect(response.headers["Access-Control-Allow-Credentials"] == nil)
        #expect(response.headers["Access-Control-Expose-Headers"] == nil)

        let answer = await preflight(router, origin: Self.evil, method: "POST")
        #expect(answer.headers["Access-Control-Allow-Origin"] == "*")
        #expect(answer.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST")
        #expect(answer.headers["Access-Control-Allow-Headers"] == nil, "none configured")
        #expect(answer.headers["Access-Control-Max-Age"] == nil)
    }

    @Test func anyOriginWithCredentialsEchoesTheOriginAndVaries() async throws {
        let router = router(CORS(allowedOrigins: .any, allowCredentials: true))
        let response = await router.respond(to: Request("GET", "/items", headers: ["Origin": Self.evil]))
        #expect(response.headers["Access-Control-Allow-Origin"] == Self.evil)
        #expect(response.headers["Access-Control-Allow-Credentials"] == "true")
        #expect(response.headers["Vary"] == "Origin")
    }

    @Test func refusalsCarryTheCORSHeadersSoThePageCanReadThem() async throws {
        let router = router(Self.listed)
        let teapot = await router.respond(to: Request("GET", "/teapot", headers: ["Origin": Self.app]))
        #expect(teapot.status == 418)
        #expect(teapot.headers["Access-Control-Allow-Origin"] == Self.app)
        #expect(String(decoding: teapot.body, as: UTF8.self) == #"{"error":"short and stout","status":418}"#)

        // An OPTIONS without Access-Control-Request-Method is no preflight: the path's 405.
        let options = await router.respond(to: Request("OPTIONS", "/items", headers: ["Origin": Self.app]))
        #expect(options.status == 405)
        #expect(options.headers["Allow"] == "GET, HEAD")
        #expect(options.headers["Access-Control-Allow-Origin"] == Self.app)
    }

    @Test func anEmptyOriginListAllowsNoOne() async throws {
        let router = router(CORS(allowedOrigins: .only([])))
        let response = await router.respond(to: Request("GET", "/items", headers: ["Origin": Self.app]))
        #expect(response.status == 200)
        #expect(corsFields(response).isEmpty)
        let answer = await preflight(router, method: "GET")
        #expect(answer.status == 204)
        #expect(corsFields(answer).isEmpty)
    }

    @Test func routesOutsideTheMiddlewareAreUntouched() async throws {
        let router = router(Self.listed)
        let response = await router.respond(to: Request("GET", "/open", headers: ["Origin": Self.app]))
        #expect(response.status == 200)
        #expect(corsFields(response).isEmpty)
        #expect(response.headers["Vary"] == nil)
        // No route at all: a 404 runs no middleware, preflight or not.
        let missing = await preflight(router, path: "/nowhere")
        #expect(missing.status == 404)
        #expect(corsFields(missing).isEmpty)
    }
}
