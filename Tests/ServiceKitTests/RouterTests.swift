import Testing
@testable import ServiceKit

extension Request {
    /// A request for handler tests: the head a parser would produce for `method target`.
    static func test(_ method: String, _ path: String, query: String? = nil) -> Request {
        Request(head: HTTPRequestHead(
            method: method, target: path + (query.map { "?" + $0 } ?? ""), path: path, query: query,
            version: .http1_1, headers: [:], framing: .none, keepAlive: true, expectsContinue: false))
    }
}

@Suite struct RouterTests {
    static func tagged(_ tag: String) -> Handler { { _ in .text(tag) } }

    var router: Router {
        var router = Router()
        router.get("/health", Self.tagged("health"))
        router.get("/users/:id", Self.tagged("get user"))
        router.put("/users/:id", Self.tagged("put user"))
        router.get("/users/:id/posts/:post", Self.tagged("post"))
        router.get("/users/me", Self.tagged("me"))
        router.post("/users", Self.tagged("create"))
        router.on("PATCH", "/users/:id", Self.tagged("patch user"))
        return router
    }

    /// The tag of the handler found, or the outcome.
    func lookup(_ method: String, _ path: String) async throws -> String {
        switch router.match(method: method, path: path) {
        case .found(let handler, let parameters, let route):
            let body = try await handler(.test(method, path)).body
            let params = parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            return String(decoding: body, as: UTF8.self) + (params.isEmpty ? "" : " " + params) + " @" + route.template
        case .notFound:
            return "404"
        case .methodNotAllowed(let allow, let route, _):
            return "405 " + allow.joined(separator: ",") + " @" + route.template
        }
    }

    @Test(arguments: [
        ("GET", "/health", "health @/health"),
        ("HEAD", "/health", "health @/health"),
        ("GET", "/health/", "404"),
        ("GET", "//health", "404"),
        ("GET", "/health//", "404"),
        ("GET", "/h%65alth", "404"),
        ("POST", "/users/", "404"),
        ("GET", "/users/", "404"),
        ("GET", "/users//posts/2", "404"),
        ("GET", "/users/1/posts/", "404"),
        ("GET", "/users/1/", "404"),
        ("GET", "//users/1", "404"),
        ("OPTIONS", "*", "404"),
        ("CONNECT", "example.com:443", "404"),
        ("GET", "/users/42", "get user id=42 @/users/:id"),
        ("PUT", "/users/42", "put user id=42 @/users/:id"),
        ("PATCH", "/users/7", "patch user id=7 @/users/:id"),
        ("GET", "/users/a%20b", "get user id=a b @/users/:id"),
        ("GET", "/users/1/posts/2", "post id=1,post=2 @/users/:id/posts/:post"),
        ("GET", "/users/me", "me @/users/me"),
        ("POST", "/users", "create @/users"),
        ("GET", "/missing", "404"),
        ("GET", "/users", "405 POST @/users"),
        ("GET", "/users/1/posts", "404"),
        ("GET", "/Health", "404"),
        ("POST", "/health", "405 GET,HEAD @/health"),
        ("DELETE", "/users/1", "405 GET,HEAD,PATCH,PUT @/users/:id"),
        ("GET", "/users/%zz", "404"),
    ])
    func matches(method: String, path: String, expected: String) async throws {
        #expect(try await lookup(method, path) == expected)
    }

    /// A front proxy's exact-path rule (nginx's `location = /metrics`) and the router must
    /// agree on what a path names: every other spelling of a registered path is a 404.
    @Test func pathsMatchExactlyIncludingSlashes() async throws {
        var router = Router()
        router.get("/", Self.tagged("root"))
        router.get("/docs/", Self.tagged("docs"))
        router.get("/a/:x/b", Self.tagged("param"))
        #expect(router.templates == ["/", "/docs/", "/a/:x/b"])
        let expected: [(String, String?)] = [
            ("/", "root"), ("//", nil), ("/docs/", "docs"), ("/docs", nil), ("/docs//", nil), ("//docs/", nil),
            ("/a/1/b", "param"), ("/a//b", nil), ("/a/1/b/", nil), ("/a/1//b", nil), ("", nil), ("a/1/b", nil),
        ]
        for (path, tag) in expected {
            switch router.match(method: "GET", path: path) {
            case .found(let handler, _, _):
                #expect(try await handler(.test("GET", path)).body == Array((tag ?? "").utf8), "\(path)")
                #expect(tag != nil, "\(path) was served")
            case .notFound:
                #expect(tag == nil, "\(path) was not served")
            case .methodNotAllowed:
                Issue.record("\(path): 405")
            }
        }
    }

    @Test func registeringTheSameRouteAgainReplacesTheHandler() async throws {
        var router = Router()
        router.get("/a", Self.tagged("first"))
        router.get("/a", Self.tagged("second"))
        router.get("/b/:x", Self.tagged("first"))
        router.get("/b/:x", Self.tagged("second"))
        for path in ["/a", "/b/1"] {
            guard case .found(let handler, _, _) = router.match(method: "GET", path: path) else {
                Issue.record("no match for \(path)")
                continue
            }
            #expect(try await handler(.test("GET", path)).body == Array("second".utf8))
        }
    }

    @Test func routesAreNumberedInRegistrationOrderAndKeepTheirNumber() {
        var router = Router()
        router.get("/b", Self.tagged("b"))
        router.get("/a/:id", Self.tagged("a"))
        router.post("/b", Self.tagged("b post"))
        router.put("/a/:id", accessLog: false, Self.tagged("a put"))
        #expect(router.templates == ["/b", "/a/:id"])
        guard case .found(_, _, let b) = router.match(method: "POST", path: "/b"),
              case .found(_, _, let a) = router.match(method: "GET", path: "/a/1"),
              case .methodNotAllowed(_, let a405, _) = router.match(method: "DELETE", path: "/a/2")
        else {
            Issue.record("no match")
            return
        }
        #expect(b == RouteInfo(template: "/b", index: 0, accessLog: true))
        #expect(a == RouteInfo(template: "/a/:id", index: 1, accessLog: false), "the last registration decides")
        #expect(a405 == a)
    }

    @Test func anExplicitHeadRouteWinsOverGet() async throws {
        var router = Router()
        router.get("/x", Self.tagged("get"))
        router.on("HEAD", "/x", Self.tagged("head"))
        guard case .found(let handler, _, _) = router.match(method: "HEAD", path: "/x") else {
            Issue.record("no match")
            return
        }
        #expect(try await handler(.test("HEAD", "/x")).body == Array("head".utf8))
    }

    @Test(arguments: [
        ("a=1&b=2", "b", "2"),
        ("a=1&a=2", "a", "1"),
        ("q=hello+world%21", "q", "hello world!"),
        ("flag", "flag", ""),
        ("x=%E2%9C%93", "x", "✓"),
        ("k%20y=v", "k y", "v"),
    ])
    func queryParameters(query: String, name: String, expected: String) {
        #expect(Request.test("GET", "/", query: query).query(name) == expected)
    }

    @Test func missingOrMalformedQueryParametersAreNil() {
        let request = Request.test("GET", "/", query: "a=%zz")
        #expect(request.query("b") == nil)
        #expect(request.query("a") == nil, "a malformed escape is no value")
    }
}

@Suite struct HTTPDateTests {
    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (1_709_208_000, "Thu, 29 Feb 2024 12:00:00 GMT"),
        (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ])
    func formatsIMFFixdate(seconds: Int, expected: String) {
        #expect(String(decoding: HTTPDate.format(seconds: seconds), as: UTF8.self) == expected)
    }
}

@Suite struct SocketAddressTests {
    @Test func parsesLiteralsOnly() {
        #expect(SocketAddress(host: "127.0.0.1", port: 80)?.description == "127.0.0.1:80")
        #expect(SocketAddress(host: "::1", port: 8080)?.description == "[::1]:8080")
        #expect(SocketAddress(host: "[::]", port: 0)?.description == "[::]:0")
        #expect(SocketAddress(host: "localhost", port: 80) == nil)
        #expect(SocketAddress(host: "1.2.3.4", port: 65536) == nil)
        #expect(SocketAddress(host: "1.2.3.4", port: -1) == nil)
    }
}
