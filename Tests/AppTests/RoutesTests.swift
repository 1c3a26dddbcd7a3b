import Foundation
import Testing
@testable import App
@testable import ServiceKit
import TestSupport

/// The example routes, answered in process by `router.respond(to:)`: the server's own dispatch,
/// with no socket.
@Suite struct RoutesTests {
    let router = Routes.router(Dependencies())

    /// Answers one request through `router` (the example app's by default).
    func call(
        _ method: String, _ target: String, body: String = "", contentType: String? = "application/json",
        headers: HTTPHeaders = [:], on router: Router? = nil
    ) async throws -> Response {
        var headers = headers
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        return await (router ?? self.router).respond(to: Request(method, target, headers: headers, body: Array(body.utf8)))
    }

    func json(_ response: Response) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test func delayHonoursItsCeiling() async throws {
        var dependencies = Dependencies()
        dependencies.maxDelay = .milliseconds(20)
        let short = Routes.router(dependencies)
        func call(_ target: String) async throws -> Int { try await self.call("GET", target, on: short).status }
        #expect(try await call("/delay?ms=20") == 200)
        #expect(try await call("/delay?ms=21") == 400)
        #expect(try await call("/delay?ms=-1") == 400)
        // The default ceiling is 10 s.
        #expect(AppSettings.maxDelay.defaultValue == .seconds(10))
    }

    @Test func eventsStreamsCountEvents() async throws {
        let response = try await call("GET", "/events?count=3&interval=0")
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "text/event-stream; charset=utf-8")
        let body = String(decoding: try await response.collectBody(), as: UTF8.self)
        #expect(body == "id: 1\ndata: {\"n\":1}\n\nid: 2\ndata: {\"n\":2}\n\nid: 3\ndata: {\"n\":3}\n\n")
        for bad in ["count=0", "count=10001", "count=x", "interval=-1", "interval=60001", "interval="] {
            let refused = try await call("GET", "/events?\(bad)")
            #expect(refused.status == 400, "\(bad)")
            #expect(refused.stream == nil)
        }
    }

    @Test func downloadStreamsTheBytesAskedFor() async throws {
        let response = try await call("GET", "/download?bytes=150000")
        #expect(response.status == 200)
        #expect(response.stream?.contentLength == nil, "chunked: produced as it goes")
        #expect(try await response.collectBody() == [UInt8](repeating: UInt8(ascii: "x"), count: 150_000))
        #expect(try await call("GET", "/download?bytes=0").collectBody().isEmpty)
        #expect(try await call("GET", "/download").collectBody().count == 1 << 20)
        for bad in ["bytes=-1", "bytes=x", "bytes=17179869185"] {
            #expect(try await call("GET", "/download?\(bad)").status == 400, "\(bad)")
        }
    }

    @Test func uploadCountsAStreamedBody() async throws {
        let response = try await call("POST", "/upload", body: String(repeating: "u", count: 200_000), contentType: nil)
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"bytes":200000}"#)
        #expect(String(decoding: try await call("POST", "/upload", contentType: nil).body, as: UTF8.self) == #"{"bytes":0}"#)
    }

    @Test func helloReadsThePathAndQuery() async throws {
        #expect(try json(try await call("GET", "/hello/Ada"))["message"] as? String == "Hello, Ada!")
        #expect(try json(try await call("GET", "/hello/Ada%20L?greeting=Hi+there"))["message"] as? String == "Hi there, Ada L!")
        #expect(try await call("GET", "/hello/x?greeting=\(String(repeating: "a", count: 65))").status == 400)
    }

    @Test func createGreetingDecodesJSON() async throws {
        let created = try await call("POST", "/greetings", body: #"{"name":"Grace","greeting":"Hey"}"#)
        #expect(created.status == 201)
        #expect(try json(created)["message"] as? String == "Hey, Grace!")
        let defaulted = try await call("POST", "/greetings", body: #"{"name":"  Grace \t"}"#)
        #expect(try json(defaulted)["message"] as? String == "Hello, Grace!")
    }

    @Test(arguments: [
        (#"{"nam":"x"}"#, 400, "missing field 'name'"),
        (#"{"name":42}"#, 400, "'name' should be a string"),
        (#"{"name":"a""#, 400, "invalid JSON body"),
        ("", 400, "request body is empty"),
        (#"{"name":"   "}"#, 422, "name must be 1 to 100 Unicode code points"),
        (#"{"name":"Ada","greeting":"\#(String(repeating: "h", count: 65))"}"#, 422, "greeting must be at most 64 Unicode code points"),
    ])
    func createGreetingRejectsBadInputClearly(body: String, status: Int, message: String) async throws {
        let response = try await call("POST", "/greetings", body: body)
        #expect(response.status == status)
        let error = try json(response)["error"] as? String
        #expect(error?.contains(message) == true, "\(error ?? "nil")")
    }

    /// A name padded with a megabyte of whitespace is trimmed (off the event loop) to its text.
    @Test func aNamePaddedWithWhitespaceIsTrimmedToItsText() async throws {
        let padding = String(repeating: " ", count: 1_000_000)
        let response = try await call("POST", "/greetings", body: #"{"name":"\#(padding)Ada\t\#(padding)"}"#)
        #expect(response.status == 201)
        #expect(try json(response)["message"] as? String == "Hello, Ada!")
        #expect(Routes.trimmed("\u{2003}Ada Lovelace\u{3000}\n") == "Ada Lovelace")
        #expect(Routes.trimmed(" \t ").isEmpty)
    }

    /// The limits bound what is echoed back, so they count Unicode scalars: one letter followed
    /// by any number of combining marks is one Character (grapheme cluster) but as many scalars.
    @Test func lengthLimitsCountUnicodeScalarsNotCharacters() async throws {
        func percentEncoded(_ text: String) -> String {
            text.utf8.map { "%" + String($0, radix: 16, uppercase: true) }.joined()
        }
        let stacked = "a" + String(repeating: "\u{301}", count: 200)
        #expect(stacked.count == 1 && stacked.unicodeScalars.count == 201)
        let greeting = try await call("GET", "/hello/x?greeting=\(percentEncoded(stacked))")
        #expect(greeting.status == 400)
        #expect(try json(greeting)["error"] as? String == "greeting must be at most 64 Unicode code points")
        // At the limit in scalars, whatever their UTF-8 length.
        #expect(try await call("GET", "/hello/x?greeting=\(percentEncoded(String(repeating: "\u{E9}", count: 64)))").status == 200)
        #expect(try await call("GET", "/hello/x?greeting=\(percentEncoded(String(repeating: "\u{E9}", count: 65)))").status == 400)

        let name = try await call("POST", "/greetings", body: #"{"name":"\#(stacked)"}"#)
        #expect(name.status == 422)
        #expect(try json(name)["error"] as? String == "name must be 1 to 100 Unicode code points")
        #expect(try await call("POST", "/greetings", body: #"{"name":"\#(String(repeating: "\u{E9}", count: 100))"}"#).status == 201)
        #expect(try await call("POST", "/greetings", body: #"{"name":"\#(String(repeating: "\u{E9}", count: 101))"}"#).status == 422)
    }

    @Test func createGreetingWantsJSONContentType() async throws {
        let response = try await call("POST", "/greetings", body: #"{"name":"x"}"#, contentType: "text/plain")
        #expect(response.status == 415)
    }

    /// The media type is compared whole (RFC 9110 §8.3.1): type and subtype in any case, then
    /// well-formed parameters; no other type, and no `+json` type, is taken for JSON.
    @Test(arguments: [
        ("application/json", 201), ("Application/JSON", 201), ("application/json; charset=utf-8", 201),
        ("application/json;charset=\"utf-8\"", 201), ("  application/json  ", 201), ("application/json ;a=b;\tc=d", 201),
        ("application/json;", 201), ("application/json; ; a=b", 201), ("application/json; a=\"q\\\"d;x\"", 201),
        (nil, 201),
        ("application/jsonx", 415), ("application/json x", 415), ("application/json-seq", 415), ("application/json5", 415),
        ("application/merge-patch+json", 415), ("application/problem+json", 415), ("application/vnd.api+json", 415),
        ("text/json", 415), ("application/ json", 415), ("application /json", 415), ("application/json,text/plain", 415),
        ("application/json; charset", 415), ("application/json; =x", 415), ("application/json; a=", 415),
        ("application/json; a=\"open", 415), ("application/json; a b=c", 415), ("application", 415), ("", 415),
        ("text/plain; x=application/json", 415),
    ] as [(String?, Int)])
    func createGreetingComparesTheMediaTypeExactly(contentType: String?, status: Int) async throws {
        let response = try await call("POST", "/greetings", body: #"{"name":"x"}"#, contentType: contentType)
        #expect(response.status == status, "\(contentType ?? "no Content-Type")")
    }
}
