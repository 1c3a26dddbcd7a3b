import Foundation
import Logging
import Testing
import Tracing
import W3CTraceContext
@testable import ServiceKit

/// W3C trace context on every request, its IDs in the logs, and server spans through
/// swift-distributed-tracing when a tracer is given.
@Suite struct TracingTests {
    static let callerTrace = "0af7651916cd43dd8448eb211c80319c"
    static let callerSpan = "b7ad6b7169203331"
    static let traceparent = "00-\(callerTrace)-\(callerSpan)-01"

    static func headers(_ fields: [(String, String)]) -> HTTPHeaders { HTTPHeaders(fields) }

    static func isHex(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    // MARK: The trace context a request gets

    @Test func aValidTraceparentIsContinuedWithANewSpan() {
        var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        let trace = RequestTrace.start(headers: Self.headers([("TraceParent", Self.traceparent)]), random: &random)
        #expect(trace.traceID.description == Self.callerTrace)
        #expect(trace.parentSpanID?.description == Self.callerSpan)
        #expect(trace.spanID.description != Self.callerSpan && trace.spanID != .null)
        #expect(trace.flags == .sampled)
        #expect(trace.traceparent == "00-\(Self.callerTrace)-\(trace.spanID)-01")
        #expect(Request("GET", "/", headers: Self.headers([("traceparent", Self.traceparent)])).tracestate == nil)
    }

    @Test func tracestateIsPassedOnAndSeveralFieldsAreOneList() {
        let request = Request("GET", "/", headers: Self.headers([
            ("traceparent", Self.traceparent), ("tracestate", "congo=t61rcWkgMzE"), ("tracestate", "rojo=00f067aa0ba902b7"),
        ]))
        #expect(request.trace.traceID.description == Self.callerTrace)
        #expect(request.tracestate == "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
    }

    /// W3C: a tracestate that cannot be parsed is dropped, the traceparent still counts.
    @Test(arguments: ["not a list", "UPPER=x", "a=b\u{1}", String(repeating: "a", count: 600) + "=1"])
    func aBadOrOverlongTracestateCostsOnlyTheState(tracestate: String) {
        let request = Request("GET", "/", headers: Self.headers([("traceparent", Self.traceparent), ("tracestate", tracestate)]))
        #expect(request.trace.traceID.description == Self.callerTrace)
        #expect(request.tracestate == nil)
    }

    /// The tracestate parser's cost grows with the square of a member's length: a long one
    /// is refused by its length, before parsing (64 KiB would take seconds to parse).
    @Test func aHugeTracestateIsRefusedCheaply() {
        let huge = String(repeating: "a", count: 64 * 1024)
        let request = Request("GET", "/", headers: Self.headers([("traceparent", Self.traceparent), ("tracestate", huge)]))
        let started = ContinuousClock.now
        for _ in 0..<100 { #expect(request.tracestate == nil) }
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    static let malformed: [String] = [
        "",
        "00-\(callerTrace)-\(callerSpan)",
        "00-\(callerTrace)-\(callerSpan)-0",
        "00-\(callerTrace)-\(callerSpan)-01-",
        "ff-\(callerTrace)-\(callerSpan)-01",
        "0-0\(callerTrace)-\(callerSpan)-01",
        "00_\(callerTrace)-\(callerSpan)-01",
        "00-00000000000000000000000000000000-\(callerSpan)-01",
        "00-\(callerTrace)-0000000000000000-01",
        "00-\(callerTrace.dropLast())g-\(callerSpan)-01",
        "00-\(callerTrace)-\(callerSpan)-zz",
        "00-\(callerTrace)-\(callerSpan)-01\u{0}",
        String(repeating: "0", count: 55),
        String(repeating: "-", count: 4096),
    ]

    @Test(arguments: malformed)
    func aMalformedTraceparentStartsANewTrace(traceparent: String) {
        var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        let headers = Self.headers([("traceparent", traceparent), ("tracestate", "a=b")])
        let trace = RequestTrace.start(headers: headers, random: &random)
        #expect(trace.parentSpanID == nil)
        #expect(trace.traceID != .null && trace.traceID.description != Self.callerTrace)
        #expect(trace.flags == [], "a trace nothing recorded is not sampled")
        #expect(Request("GET", "/", headers: headers).tracestate == nil, "tracestate means nothing without a valid traceparent")
    }

    @Test func twoTraceparentFieldsAreMalformed() {
        var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        let trace = RequestTrace.start(
            headers: Self.headers([("traceparent", Self.traceparent), ("traceparent", Self.traceparent)]), random: &random)
        #expect(trace.parentSpanID == nil)
        #expect(trace.traceID.description != Self.callerTrace)
    }

    /// Mutations of valid and invalid headers, 200,000 of them: whatever the bytes, the trace
    /// is the caller's exactly when the traceparent is valid, never null, and the tracestate
    /// a request offers is either nil or one the library accepts. (The trace header path is
    /// not in the libFuzzer build, which compiles HTTP1 alone; this is its fuzzing.)
    @Test func mutatedTraceHeadersNeverBreakTheInvariants() throws {
        var random = SplitMix64(seed: 0x5EED)
        let seeds = [Self.traceparent, "00-\(Self.callerTrace)-\(Self.callerSpan)-00", "ff-" + String(repeating: "f", count: 52)]
        let states = ["congo=t61rcWkgMzE", "a=1,b=2", "x@y=z", "", String(repeating: "k=v,", count: 40)]
        let alphabet = Array("0123456789abcdefABCDEF-=,@ \t\u{0}\u{7f}zé".unicodeScalars)
        // A tenth under the sanitizers, which run it ten to thirty times slower.
        let environment = ProcessInfo.processInfo.environment
        let rounds = environment["ASAN_OPTIONS"] != nil || environment["TSAN_OPTIONS"] != nil ? 20_000 : 200_000
        for round in 0..<rounds {
            var parent = Array(seeds[round % seeds.count].unicodeScalars)
            var state = Array(states[Int(random.next() % UInt64(states.count))].unicodeScalars)
            for _ in 0..<Int(random.next() % 4) {
                let position = Int(random.next() % UInt64(parent.count + 1))
                let scalar = alphabet[Int(random.next() % UInt64(alphabet.count))]
                switch random.next() % 3 {
                case 0 where position < parent.count: parent[position] = scalar
                case 1: parent.insert(scalar, at: position)
                default: if position < parent.count { parent.remove(at: position) }
                }
                if !state.isEmpty, random.next() % 2 == 0 {
                    state[Int(random.next() % UInt64(state.count))] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                }
            }
            let traceparent = String(String.UnicodeScalarView(parent))
            let tracestate = String(String.UnicodeScalarView(state))
            let headers = Self.headers([("traceparent", traceparent), ("tracestate", tracestate)])
            let valid = try? TraceContext(traceParentHeaderValue: traceparent)
            let trace = RequestTrace.start(headers: headers, random: &random)
            #expect(trace.traceID != .null && trace.spanID != .null)
            if let valid {
                try #require(trace.traceID == valid.traceID && trace.parentSpanID == valid.spanID && trace.flags == valid.flags)
            } else {
                try #require(trace.parentSpanID == nil && trace.flags == [])
            }
            if round % 16 == 0, let offered = Request("GET", "/", headers: headers).tracestate {
                #expect(valid != nil)
                #expect((try? TraceContext(traceParentHeaderValue: Self.traceparent, traceStateHeaderValue: offered)) != nil)
            }
        }
    }

    @Test func newTracesAndSpansDiffer() {
        var random = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        let traces = (0..<1000).map { _ in RequestTrace.start(headers: [:], random: &random) }
        #expect(Set(traces.map(\.traceID)).count == 1000)
        #expect(Set(traces.map(\.spanID)).count == 1000)
    }

    /// The register-wide hex writer against the standard library's formatting.
    @Test func hexDigitsMatchTheReference() {
        var random = SplitMix64(seed: 42)
        let values: [UInt64] = [0, .max, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 0x0a0a_0a0a_9f9f_9f9f]
            + (0..<10_000).map { _ in random.next() }
        for value in values {
            var bytes: [UInt8] = []
            bytes.appendBytes(atMost: 16) { $0.writeHex(value) }
            let reference = String(repeating: "0", count: 16 - String(value, radix: 16).count) + String(value, radix: 16)
            #expect(String(decoding: bytes, as: UTF8.self) == reference)
        }
        // Trace and span IDs round-trip through the words the log writes.
        let trace = TraceID(0x0af7_6519_16cd_43dd, 0x8448_eb21_1c80_319c)
        #expect(trace.description == Self.callerTrace)
        #expect(trace.words == (0x0af7_6519_16cd_43dd, 0x8448_eb21_1c80_319c))
        #expect(SpanID(0xb7ad_6b71_6920_3331).description == Self.callerSpan)
    }

    // MARK: Without a tracer: the IDs reach the logs

    /// `/logs` writes a line through request.logger and answers the outgoing traceparent.
    /// `/child` (with a tracer) starts a child span and answers the traceparent an outgoing
    /// call inside it would carry.
    func router(tracer: W3CTestTracer? = nil) -> Router {
        var router = testRouter()
        router.get("/logs") { request in
            request.logger.info("handler line")
            return .text(request.trace.traceparent)
        }
        router.get("/hello/:name") { request in .text("hello \(request.parameter("name") ?? "")") }
        router.get("/boom") { _ in throw TestFailure() }
        router.get("/teapot") { _ in throw HTTPError(status: 418, reason: "short and stout") }
        router.addProbe("GET", "/probe") { _ in .text("ok") }
        if let tracer {
            router.get("/child") { _ in
                try await tracer.withSpan("query", ofKind: .client) { _ in
                    var outgoing = HTTPHeaders()
                    tracer.inject(InstrumentationContext.current ?? .topLevel, into: &outgoing, using: HTTPHeadersInjector())
                    return .text(outgoing["traceparent"] ?? "none")
                }
            }
        }
        return router
    }

    static func object(_ line: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }

    static func lines(_ log: CapturedLog, requestID: String) -> [[String: Any]] {
        log.lines.compactMap(object).filter { $0["request_id"] as? String == requestID }
    }

    @Test func theAccessLogAndRequestLoggerCarryTheContinuedTrace() async throws {
        let log = CapturedLog()
        try await withServer(router: router(), log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/logs", "X-Request-ID: traced-1\r\ntraceparent: \(Self.traceparent)\r\n"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            try await waitUntil { Self.lines(log, requestID: "traced-1").count == 2 }
            let lines = Self.lines(log, requestID: "traced-1")
            try #require(lines.count == 2)
            let handler = try #require(lines.first { $0["msg"] as? String == "handler line" })
            let access = try #require(lines.first { $0["msg"] as? String == "request" })
            #expect(access["trace_id"] as? String == Self.callerTrace)
            #expect(handler["trace_id"] as? String == Self.callerTrace)
            let span = try #require(access["span_id"] as? String)
            #expect(Self.isHex(span, count: 16) && span != Self.callerSpan)
            #expect(handler["span_id"] as? String == span)
            // What the handler would send on an outgoing call: this trace, this span as parent.
            #expect(response.bodyText == "00-\(Self.callerTrace)-\(span)-01")
        }
    }

    @Test(arguments: ["traceparent: garbage\r\n", "traceparent: \(String(repeating: "f", count: 4000))\r\n", ""])
    func aRequestWithoutAValidTraceparentIsAnsweredWithANewTrace(header: String) async throws {
        let log = CapturedLog()
        try await withServer(router: router(), log: log) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/logs", "X-Request-ID: new-trace\r\n\(header)"))
            #expect(try client.readResponse().status == 200)
            try await waitUntil { Self.lines(log, requestID: "new-trace").count == 2 }
            let access = try #require(Self.lines(log, requestID: "new-trace").first { $0["msg"] as? String == "request" })
            let traceID = try #require(access["trace_id"] as? String)
            #expect(Self.isHex(traceID, count: 32) && traceID != String(repeating: "0", count: 32))
            #expect(Self.isHex(try #require(access["span_id"] as? String), count: 16))
        }
    }

    // MARK: With a tracer: server spans

    func tracing(_ tracer: W3CTestTracer) -> ServerTracing { ServerTracing(tracer: tracer) }

    @Test func aServerSpanIsNamedByTheRouteTemplateWithTheHTTPAttributes() async throws {
        let tracer = W3CTestTracer()
        let log = CapturedLog()
        try await withServer(router: router(), log: log, tracing: tracing(tracer)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/hello/Ada?x=1", "X-Request-ID: span-1\r\ntraceparent: \(Self.traceparent)\r\n"))
            #expect(try client.readResponse().status == 200)
            try await waitUntil { tracer.finished.count == 1 && !Self.lines(log, requestID: "span-1").isEmpty }
            let span = try #require(tracer.finished.first)
            #expect(span.name == "GET /hello/:name")
            #expect(span.kind == .server)
            #expect(span.context.traceID.description == Self.callerTrace)
            #expect(span.parentSpanID?.description == Self.callerSpan)
            #expect(span.status == nil)
            let attributes = span.attributes
            #expect(attributes["http.request.method"]?.toSpanAttribute() == .string("GET"))
            #expect(attributes["http.route"]?.toSpanAttribute() == .string("/hello/:name"))
            #expect(attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))
            #expect(attributes["url.path"]?.toSpanAttribute() == .string("/hello/Ada"))
            #expect(attributes["url.scheme"]?.toSpanAttribute() == .string("http"))
            #expect(attributes["server.port"]?.toSpanAttribute() == .int64(Int64(port)))
            #expect(attributes["client.address"]?.toSpanAttribute() == .string("127.0.0.1"))
            #expect(attributes["network.protocol.version"]?.toSpanAttribute() == .string("1.1"))
            // The log line carries the span's own IDs.
            let access = try #require(Self.lines(log, requestID: "span-1").first)
            #expect(access["trace_id"] as? String == Self.callerTrace)
            #expect(access["span_id"] as? String == span.context.spanID.description)
        }
    }

    /// A tracer that keeps its span context to itself (swift-otel does): the server learns the
    /// span's IDs from the `traceparent` it injects.
    @Test func theLogsGetTheSpansIDsFromWhatTheTracerInjects() async throws {
        let tracer = W3CTestTracer(privateKey: true)
        let log = CapturedLog()
        try await withServer(router: router(), log: log, tracing: tracing(tracer)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/logs", "X-Request-ID: injected\r\ntraceparent: \(Self.traceparent)\r\n"))
            let response = try client.readResponse()
            try await waitUntil { tracer.finished.count == 1 && Self.lines(log, requestID: "injected").count == 2 }
            let span = try #require(tracer.finished.first)
            #expect(span.parentSpanID?.description == Self.callerSpan)
            for line in Self.lines(log, requestID: "injected") {
                #expect(line["trace_id"] as? String == Self.callerTrace)
                #expect(line["span_id"] as? String == span.context.spanID.description)
            }
            #expect(response.bodyText == "00-\(Self.callerTrace)-\(span.context.spanID)-01")
        }
    }

    @Test func fiveHundredsAreErrorsAndFourHundredsAreNot() async throws {
        let tracer = W3CTestTracer()
        try await withServer(router: router(), log: CapturedLog(), tracing: tracing(tracer)) { port, _ in
            let client = try TestClient(port: port)
            for path in ["/boom", "/teapot", "/nowhere"] {
                try client.send(get(path))
                _ = try client.readResponse()
            }
            try await waitUntil { tracer.finished.count == 3 }
            let spans = tracer.finished
            try #require(spans.count == 3)
            #expect(spans[0].name == "GET /boom")
            #expect(spans[0].status?.code == .error)
            #expect(spans[0].attributes["http.response.status_code"]?.toSpanAttribute() == .int64(500))
            #expect(spans[1].status == nil)
            #expect(spans[1].attributes["http.response.status_code"]?.toSpanAttribute() == .int64(418))
            // No route: named by the method alone, no http.route.
            #expect(spans[2].name == "GET")
            #expect(spans[2].attributes["http.route"] == nil)
            #expect(spans[2].attributes["http.response.status_code"]?.toSpanAttribute() == .int64(404))
        }
    }

    @Test func probesAreNotTracedButTheirIDsStillReachTheLogs() async throws {
        let tracer = W3CTestTracer()
        try await withServer(router: router(), log: CapturedLog(), tracing: tracing(tracer)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/probe"))
            #expect(try client.readResponse().status == 200)
            try client.send(get("/hello/x"))
            #expect(try client.readResponse().status == 200)
            try await waitUntil { tracer.finished.count == 1 }
            #expect(tracer.startedCount == 1)
            #expect(tracer.finished.map(\.name) == ["GET /hello/:name"])
        }
    }

    @Test func aHandlerRunsInItsServerSpanSoChildSpansAndOutgoingCallsJoinIt() async throws {
        let tracer = W3CTestTracer()
        try await withServer(router: router(tracer: tracer), log: CapturedLog(), tracing: tracing(tracer)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/child", "traceparent: \(Self.traceparent)\r\n"))
            let response = try client.readResponse()
            #expect(response.status == 200)
            try await waitUntil { tracer.finished.count == 2 }
            let spans = tracer.finished
            let child = try #require(spans.first { $0.name == "query" })
            let server = try #require(spans.first { $0.name == "GET /child" })
            #expect(child.parentSpanID == server.context.spanID)
            #expect(child.context.traceID.description == Self.callerTrace)
            #expect(server.parentSpanID?.description == Self.callerSpan)
            #expect(response.bodyText == "00-\(Self.callerTrace)-\(child.context.spanID)-01")
            // The child ends inside the handler, the server span after the response.
            #expect(child.endedAt <= server.endedAt)
        }
    }

    /// A streamed response's span ends when its last byte is written, not when the handler
    /// returns the stream.
    @Test func aStreamedResponsesSpanEndsWithTheStream() async throws {
        let tracer = W3CTestTracer()
        let gate = Gate()
        var router = router()
        router.get("/stream") { _ in
            Response(stream: { writer in
                try await writer.write("first\n")
                await gate.wait()
                try await writer.write("last\n")
            })
        }
        try await withServer(router: router, log: CapturedLog(), tracing: tracing(tracer)) { port, _ in
            let client = try TestClient(port: port)
            try client.send(get("/stream"))
            let head = try client.readHead()
            #expect(head.status == 200)
            try await gate.waitForArrivals(1)
            #expect(tracer.finished.isEmpty, "the span ended before the stream")
            gate.open()
            var body: [UInt8] = []
            while let chunk = try client.readChunk() { body += chunk }
            #expect(String(decoding: body, as: UTF8.self) == "first\nlast\n")
            try await waitUntil { tracer.finished.count == 1 }
            #expect(tracer.finished.first?.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))
        }
    }
}
