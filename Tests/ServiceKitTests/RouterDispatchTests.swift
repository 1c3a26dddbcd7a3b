import Foundation
import Logging
import Testing
@testable import ServiceKit

/// `router.respond(to:)` against the server itself: the same router, the same requests, the
/// same answers.
@Suite struct RouterDispatchTests {
    static func router() -> Router {
        var router = Router()
        router.get("/ok") { request in .text("ok \(request.query("q") ?? "-")") }
        router.post("/ok") { request in Response(status: 201, body: request.body) }
        router.get("/users/:id") { request in .text("user \(request.parameter("id") ?? "-")") }
        router.get("/limited") { _ in throw HTTPError(status: 429, reason: "slow down", headers: ["Retry-After": "7"]) }
        router.get("/invalid") { _ in throw HTTPError(status: 422, reason: "name must not be empty") }
        router.get("/fail") { _ in throw TestFailure() }
        router.group("/guarded", middleware: [MiddlewareFunction { request, next in
            guard request.headers["authorization"] == "Bearer yes" else {
                throw HTTPError(status: 401, reason: "unauthorized", headers: ["WWW-Authenticate": "Bearer"])
            }
            return try await next(request)
        }]) { group in
            group.get("/") { _ in .text("inside") }
        }
        return router
    }

    /// Method, target, extra header lines.
    static let cases: [(String, String, String)] = [
        ("GET", "/ok?q=1", ""),
        ("HEAD", "/ok", ""),
        ("GET", "/users/a%20b", ""),
        ("DELETE", "/ok", ""),
        ("PUT", "/users/1", ""),
        ("GET", "/nowhere", ""),
        ("GET", "/ok/", ""),
        ("OPTIONS", "*", ""),
        ("GET", "/limited", ""),
        ("GET", "/invalid", ""),
        ("GET", "/fail", ""),
        ("GET", "/guarded", ""),
        ("GET", "/guarded", "Authorization: Bearer yes\r\n"),
        ("POST", "/guarded", ""),
    ]

    @Test func respondAnswersWhatTheServerAnswers() async throws {
        let router = Self.router()
        let log = CapturedLog()
        try await withServer(router: router, log: log) { port, _ in
            for (method, target, extra) in Self.cases {
                let client = try TestClient(port: port)
                try client.send("\(method) \(target) HTTP/1.1\r\nHost: t\r\nX-Request-ID: req-1\r\n\(extra)\r\n")
                let wire = try client.readResponse(head: method == "HEAD")

                var headers: HTTPHeaders = [:]
                for line in extra.split(separator: "\r\n") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    headers.add(name: String(parts[0]), value: parts[1].trimmingCharacters(in: .whitespaces))
                }
                let local = await router.respond(to: Request(method, target, headers: headers, id: "req-1"))
                let label = "\(method) \(target) \(extra)"
                #expect(local.status == wire.status, "\(label)")
                #expect(local.body == wire.body, "\(label)")
                // Every field but the ones the server adds when it writes.
                let written: Set<String> = ["date", "content-length", "connection"]
                let wireFields = wire.headers.filter { !written.contains($0.name.lowercased()) }
                #expect(local.headers.map { "\($0.name.lowercased()): \($0.value)" }
                    == wireFields.map { "\($0.name.lowercased()): \($0.value)" }, "\(label)")
            }
        }
        // The 500's cause is logged with its request ID, by both.
        let serverLine = try #require(log.lines.first { $0.contains("handler failed") })
        #expect(serverLine.contains(#""request_id":"req-1""#))
        let localLog = CapturedLog()
        _ = await router.respond(to: Request("GET", "/fail", id: "req-2", logger: localLog.logger("server")))
        let localLine = try #require(localLog.lines.first { $0.contains("handler failed") })
        #expect(localLine.contains(#""request_id":"req-2""#))
        #expect(localLine.contains(#""path":"\/fail""#) || localLine.contains(#""path":"/fail""#))
    }

    @Test func requestLoggerLinesCarryTheRequestIDAndRouteThroughTheServersHandler() async throws {
        var router = Router()
        router.get("/hello/:name") { request in
            request.logger.info("greeting someone", metadata: ["name": "\(request.parameter("name") ?? "")"])
            return .text("hi")
        }
        let log = CapturedLog()
        try await withServer(router: router, log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/hello/Ada", "X-Request-ID: trace-me\r\n"))
            #expect(try client.readResponse().status == 200)
        }
        let line = try #require(log.lines.first { $0.contains("greeting someone") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["request_id"] as? String == "trace-me")
        #expect(object["route"] as? String == "/hello/:name")
        #expect(object["name"] as? String == "Ada")
        #expect(object["logger"] as? String == "server", "the server's logger, so the same JSON handler")
    }
}
