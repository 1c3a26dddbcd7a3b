import Testing
@testable import ServiceKit

/// The server's metrics, end to end over loopback, read back from an in-memory backend.
@Suite struct ServerMetricsTests {
    typealias Name = ServerMetrics.Name

    func requests(_ metrics: TestMetrics, _ method: String, _ route: String, _ statusClass: String) -> Double? {
        metrics.value(Name.requests, ["method": method, "route": route, "status_class": statusClass])
    }

    @Test func requestsAreCountedByMethodRouteTemplateAndStatusClass() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics) { port, server in
            let client = try TestClient(port: port)
            for path in ["/health", "/health", "/path/1", "/path/2?q=x", "/teapot", "/fail"] {
                try client.send(get(path))
                _ = try client.readResponse()
            }
            try client.send("POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            #expect(try client.readResponse().status == 405)
            await server.collectMetrics()
            #expect(requests(metrics, "GET", "/health", "2xx") == 2)
            #expect(requests(metrics, "GET", "/path/:id", "2xx") == 2, "the template, not the raw paths")
            #expect(requests(metrics, "GET", "/teapot", "4xx") == 1)
            #expect(requests(metrics, "GET", "/fail", "5xx") == 1)
            #expect(requests(metrics, "POST", "/health", "4xx") == 1, "a 405 counts under the route it matched")
            #expect(metrics.series(Name.requests).count == 5)

            // Durations: one per request, under its route.
            #expect(metrics.recorded(Name.requestDuration, ["route": "/health"]).count == 3)
            #expect(metrics.recorded(Name.requestDuration, ["route": "/path/:id"]).count == 2)
        }
    }

    @Test func aFloodOfRandomPathsAndMethodsAddsNoSeries() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics) { port, server in
            let client = try TestClient(port: port)
            for i in 0..<200 {
                try client.send(get("/no/such/\(i)/\(UInt64.random(in: 0...UInt64.max))"))
                #expect(try client.readResponse().status == 404)
            }
            for method in ["BREW", "WHEN", "PROPFIND"] {
                try client.send("\(method) /health HTTP/1.1\r\nHost: t\r\n\r\n")
                _ = try client.readResponse()
            }
            await server.collectMetrics()
            #expect(requests(metrics, "GET", "unmatched", "4xx") == 200)
            #expect(requests(metrics, "_OTHER", "/health", "4xx") == 3, "unknown methods share one label value")
            #expect(metrics.series(Name.requests).count == 2)
            let routes = Set(metrics.series(Name.requestDuration).flatMap { $0 })
            #expect(routes == Set(testRouter().templates.map { "route=" + $0 } + ["route=unmatched"]))
        }
    }

    @Test func requestsRefusedBeforeRoutingAreCounted() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics, configure: { $0.maxBodyBytes = 10 }) { port, server in
            let garbage = try TestClient(port: port)
            try garbage.send("NOT HTTP AT ALL\r\n\r\n")
            #expect(try garbage.readResponse().status == 400)
            let tooBig = try TestClient(port: port)
            try tooBig.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
            #expect(try tooBig.readResponse().status == 413)
            await server.collectMetrics()
            #expect(requests(metrics, "_OTHER", "unmatched", "4xx") == 1, "no head: no method or route to name")
            #expect(requests(metrics, "POST", "/echo", "4xx") == 1, "the route the refused request was for")
        }
    }

    @Test func bytesInAndOutMatchWhatTheClientSentAndRead() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics) { port, server in
            let client = try TestClient(port: port)
            var sent = 0
            var read = 0
            for body in ["a", String(repeating: "b", count: 3000)] {
                let request = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                try client.send(request)
                sent += request.utf8.count
                let response = try client.readResponse()
                #expect(response.bodyText == body)
                // Status line, fields and body as they came on the wire.
                read += "HTTP/1.1 \(response.status) \(response.reason)\r\n".utf8.count
                    + response.headers.reduce(0) { $0 + $1.name.utf8.count + 2 + $1.value.utf8.count + 2 } + 2
                    + response.body.count
            }
            await server.collectMetrics()
            #expect(metrics.value(Name.receivedBytes) == Double(sent))
            #expect(metrics.value(Name.sentBytes) == Double(read))
        }
    }

    @Test func connectionsByStateAndRequestsInFlight() async throws {
        let metrics = TestMetrics()
        let gate = Gate()
        try await withServer(router: testRouter(gate: gate), metrics: metrics) { port, server in
            let waiting = try TestClient(port: port)
            try waiting.send(get("/gate"))
            try await gate.waitForArrivals(1)
            let idle = try TestClient(port: port)
            try idle.send(get("/health"))
            _ = try idle.readResponse()
            await server.collectMetrics()
            #expect(metrics.value(Name.requestsInFlight) == 1)
            #expect(metrics.value(Name.connections, ["state": "active"]) == 1)
            let idleOrParked = (metrics.value(Name.connections, ["state": "idle"]) ?? -1)
                + (metrics.value(Name.connections, ["state": "parked"]) ?? -1)
            #expect(idleOrParked == 1)

            // Past the park grace the idle connection holds no task: parked.
            for _ in 0..<100 where server.parkedConnectionCount < 1 { try await Task.sleep(for: .milliseconds(10)) }
            await server.collectMetrics()
            #expect(metrics.value(Name.connections, ["state": "parked"]) == 1)
            #expect(metrics.value(Name.connections, ["state": "idle"]) == 0)

            gate.open()
            #expect(try waiting.readResponse().status == 200)
            await server.collectMetrics()
            #expect(metrics.value(Name.requestsInFlight) == 0)
            #expect(metrics.value(Name.connections, ["state": "active"]) == 0)
            #expect(metrics.value(Name.connectionsAccepted) == 2)
        }
    }

    @Test func connectionsRefusedAtTheCapAreCounted() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics, configure: { $0.maxConnections = 1 }) { port, server in
            let first = try TestClient(port: port)
            try first.send(get("/health"))
            _ = try first.readResponse()
            for _ in 0..<3 {
                let refused = try TestClient(port: port)
                try? refused.send(get("/health"))
                #expect(try refused.readResponse().status == 503)
            }
            await server.collectMetrics()
            #expect(metrics.value(Name.connectionsRefused) == 3)
            #expect(metrics.value(Name.connectionsAccepted) == 1)
            // Reported once: a second scrape adds nothing.
            await server.collectMetrics()
            #expect(metrics.value(Name.connectionsRefused) == 3)
        }
    }

    @Test func drainingTurnsOneWhenAShutdownBegins() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics) { port, server in
            await server.collectMetrics()
            #expect(metrics.value(Name.draining) == 0)
            let shutdown = Task { await server.shutdown(shutdownDelay: .milliseconds(300), drainTimeout: .seconds(1)) }
            for _ in 0..<100 where !server.readiness.isDraining { try await Task.sleep(for: .milliseconds(5)) }
            await server.collectMetrics()
            #expect(metrics.value(Name.draining) == 1)
            await shutdown.value
            // A stopped server's collect returns at once.
            await server.collectMetrics()
        }
    }

    @Test func aLoopHandsOverItsCountsWithoutAScrapeOnceABatchIsDue() async throws {
        let metrics = TestMetrics()
        try await withServer(metrics: metrics, configure: { $0.eventLoops = 1 }) { port, server in
            let client = try TestClient(port: port)
            for _ in 0..<LoopMetrics.batch {
                try client.send(get("/health"))
                _ = try client.readResponse()
            }
            // No collectMetrics: the loop's end-of-iteration hook hands the batch over.
            var seen = 0
            for _ in 0..<100 {
                seen = metrics.recorded(Name.requestDuration, ["route": "/health"]).count
                if seen == LoopMetrics.batch { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(seen == LoopMetrics.batch)
            #expect(requests(metrics, "GET", "/health", "2xx") == Double(LoopMetrics.batch))
        }
    }

    @Test func routesRegisteredWithoutAccessLogGetNoLine() async throws {
        let log = CapturedLog()
        var router = testRouter()
        router.get("/quiet", accessLog: false) { _ in .text("shh") }
        try await withServer(router: router, log: log) { port, _ in
            let client = try TestClient(port: port)
            for path in ["/quiet", "/health", "/quiet"] {
                try client.send(get(path))
                #expect(try client.readResponse().status == 200)
            }
        }
        let access = log.lines.filter { $0.contains(#""logger":"access""#) }
        #expect(access.count == 1)
        #expect(access.first?.contains(#""path":"/health""#) == true)
    }

    @Test func aServerWithoutAFactoryHasNoMetrics() async throws {
        try await withServer { port, server in
            #expect(server.metrics == nil)
            let client = try TestClient(port: port)
            try client.send(get("/health"))
            #expect(try client.readResponse().status == 200)
            await server.collectMetrics()
        }
    }

    @Test func slotsRoundTripToTheirLabels() {
        let metrics = ServerMetrics(factory: TestMetrics(), routes: ["/a", "/b/:id"])
        #expect(metrics.routes == ["/a", "/b/:id", "unmatched"])
        for route in 0..<3 {
            for method in 0..<ServerMetrics.methodCount {
                for status in [101, 200, 302, 404, 503, 99, 600, 999] {
                    let slot = ServerMetrics.slot(route: route, method: method, status: status)
                    #expect(slot / 5 / ServerMetrics.methodCount == route)
                    #expect(slot / 5 % ServerMetrics.methodCount == method)
                    let expectedClass = status < 100 ? 0 : status >= 600 ? 4 : status / 100 - 1
                    #expect(slot % 5 == expectedClass)
                }
            }
        }
        #expect(ServerMetrics.methodIndex("GET") == 0)
        #expect(ServerMetrics.methodIndex("TRACE") == 8)
        #expect(ServerMetrics.methodIndex("get") == 9, "methods are case-sensitive")
    }
}

@Suite struct ProcessMetricsTests {
    @Test func parsesProcStatAfterTheCommandName() {
        // A command name may hold spaces and parentheses; fields are counted after the last ')'.
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 4242 123456789 2048 "
            + "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        let stat = ProcessMetrics.parseStat(Array(line.utf8))
        #expect(stat == ProcessMetrics.Stat(startTicks: 4242, virtualBytes: 123_456_789, residentPages: 2048))
        #expect(ProcessMetrics.parseStat(Array("1234 (x) S 1 2".utf8)) == nil)
        #expect(ProcessMetrics.parseStat(Array("garbage".utf8)) == nil)
    }

    @Test func parsesBootTime() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"
        #expect(ProcessMetrics.parseBootTime(Array(text.utf8)) == 1_700_000_000)
        #expect(ProcessMetrics.parseBootTime(Array("cpu 1\n".utf8)) == nil)
    }

    @Test func reportsThisProcess() throws {
        let metrics = TestMetrics()
        let process = ProcessMetrics(factory: metrics)
        typealias Name = ProcessMetrics.Name
        let rss = try #require(metrics.value(Name.residentMemory))
        #expect(rss > 1_000_000 && rss < 64 * 1024 * 1024 * 1024)
        #expect(try #require(metrics.value(Name.virtualMemory)) >= rss)
        let open = try #require(metrics.value(Name.openFileDescriptors))
        #expect(open >= 3, "stdin, stdout and stderr at least")
        #expect(try #require(metrics.value(Name.maxFileDescriptors)) >= open)
        let started = try #require(metrics.value(Name.startTime))
        let now = ProcessMetrics.nowSeconds()
        #expect(started <= now + 1 && started > now - 24 * 3600, "this test process started today")

        // CPU time moves forward with work.
        let before = try #require(metrics.value(Name.cpuSeconds))
        var x: UInt64 = 1
        for i in 0..<50_000_000 { x = x &* 6364136223846793005 &+ UInt64(i) }
        #expect(x != 0)
        process.collect()
        #expect(try #require(metrics.value(Name.cpuSeconds)) > before)

    }

    @Test func decimalParsing() {
        #expect(Int(decimal: "0".utf8) == 0)
        #expect(Int(decimal: "9223372036854775807".utf8) == Int.max)
        #expect(Int(decimal: "9223372036854775808".utf8) == nil)
        #expect(Int(decimal: "-1".utf8) == nil)
        #expect(Int(decimal: "".utf8) == nil)
    }
}
