import CoreMetrics
import Foundation
import Testing
import TestSupport
@testable import App
@testable import ServiceKit

/// `/metrics` of the built `service` executable, scraped the way Prometheus scrapes it.
@Suite(.serialized) struct MetricsEndpointTests {
    func scrape(_ port: Int) throws -> (text: String, response: TestClient.Response) {
        let client = try TestClient(port: port)
        try client.send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let response = try client.readResponse()
        return (response.bodyText, response)
    }

    func request(_ port: Int, _ paths: [String], method: String = "GET") throws {
        let client = try TestClient(port: port)
        for path in paths {
            try client.send("\(method) \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
            _ = try client.readResponse()
        }
    }

    @Test func scrapesAreValidPrometheusTextAndCountersAndHistogramsMove() throws {
        let service = try ServiceProcess(["--host=127.0.0.1", "--port=0"])
        let port = try service.waitForPort()

        let (firstText, first) = try scrape(port)
        #expect(first.status == 200)
        #expect(first.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        let before = try PrometheusText(firstText)

        try request(port, ["/health", "/health", "/health", "/hello/ada", "/hello/bob", "/nope"])
        try request(port, ["/health"], method: "DELETE")

        let after = try PrometheusText(try scrape(port).text)
        func requests(_ method: String, _ route: String, _ statusClass: String, in text: PrometheusText) -> Double {
            text.value("http_server_requests_total", ["method": method, "route": route, "status_class": statusClass]) ?? 0
        }
        #expect(requests("GET", "/health", "2xx", in: after) - requests("GET", "/health", "2xx", in: before) == 3)
        #expect(requests("GET", "/hello/:name", "2xx", in: after) == 2)
        #expect(requests("GET", "unmatched", "4xx", in: after) == 1)
        #expect(requests("DELETE", "/health", "4xx", in: after) == 1)
        // The first scrape itself was counted once it was answered.
        #expect(requests("GET", "/metrics", "2xx", in: after) == 1)

        let duration = "http_server_request_duration_seconds"
        #expect(after.families[duration]?.type == "histogram")
        let countBefore = before.value(duration + "_count", ["route": "/health"]) ?? 0
        // The three GETs and the DELETE (a 405 counts under the route it matched).
        #expect(after.value(duration + "_count", ["route": "/health"]).map { $0 - countBefore } == 4)
        #expect((after.value(duration + "_sum", ["route": "/health"]) ?? 0) > 0)
        #expect(after.value(duration + "_bucket", ["route": "/health", "le": "10.0"]) == after.value(duration + "_count", ["route": "/health"]))
        #expect((after.value("http_server_received_bytes_total") ?? 0) > (before.value("http_server_received_bytes_total") ?? 0))
        #expect((after.value("http_server_sent_bytes_total") ?? 0) > (before.value("http_server_sent_bytes_total") ?? 0))
        #expect(after.value("http_server_requests_in_flight") == 1, "the scrape in progress")
        #expect(after.value("http_server_draining") == 0)
        #expect((after.value("http_server_connections_accepted_total") ?? 0) >= 4)
        #expect(after.value("http_server_connections_refused_total") == 0)
        #expect(after.samples("http_server_connections").count == 3)

        // Go's process metrics and the build info.
        #expect((after.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((after.value("process_open_fds") ?? 0) >= 4, "stdio and the listener at least")
        #expect((after.value("process_max_fds") ?? 0) > 0)
        #expect((after.value("process_cpu_seconds_total") ?? 0) > 0)
        let started = try #require(after.value("process_start_time_seconds"))
        #expect(abs(started - Date().timeIntervalSince1970) < 60)
        #expect(after.value("service_build_info", ["version": BuildInfo.version, "revision": BuildInfo.revision]) == 1)

        // Every metric the README documents has HELP text; types are as documented.
        for name in ServerMetrics.Name.all + ProcessMetrics.Name.all + [PrometheusMetrics.buildInfoName] {
            let family = try #require(after.families[name], "\(name) missing")
            #expect(family.help?.isEmpty == false, "\(name) has no HELP")
            #expect(family.type == (name.hasSuffix("_total") ? "counter" : name == duration ? "histogram" : "gauge"))
        }

        // Scrapes are not access-logged by default; the other requests are.
        service.signal()
        let lines = service.finish().stdout.split(separator: "\n").filter { $0.contains(#""logger":"access""#) }
        #expect(lines.count == 7)
        #expect(!lines.contains { $0.contains("/metrics") })
    }

    @Test func aFloodOfRandomPathsYieldsOneUnmatchedSeriesAndNoRawPath() throws {
        let service = try ServiceProcess(["--host=127.0.0.1", "--port=0", "--access-log=false"])
        let port = try service.waitForPort()
        let paths = (0..<300).map { "/flood/\($0)/\(UInt32.random(in: 0...UInt32.max))" }
        try request(port, paths)
        try request(port, ["/hello/x1", "/hello/x2", "/hello/x3"])
        try request(port, ["/health"], method: "BREW")
        let text = try scrape(port).text
        let parsed = try PrometheusText(text)
        #expect(!text.contains("/flood/"))
        #expect(!text.contains("x1") && !text.contains("BREW"))
        #expect(parsed.value("http_server_requests_total", ["method": "GET", "route": "unmatched", "status_class": "4xx"]) == 300)
        #expect(parsed.value("http_server_requests_total", ["method": "_OTHER", "route": "/health", "status_class": "4xx"]) == 1)
        let routes = Set(parsed.samples("http_server_requests_total").compactMap { $0.labels["route"] })
        #expect(routes == ["unmatched", "/hello/:name", "/health"])
        service.signal()
        #expect(service.finish().status == 0)
    }

    @Test func metricsCanBeTurnedOff() throws {
        let service = try ServiceProcess(["--host=127.0.0.1", "--port=0"], environment: ["METRICS": "false"])
        let port = try service.waitForPort()
        #expect(try scrape(port).response.status == 404)
        service.signal()
        #expect(service.finish().status == 0)
    }

    @Test func metricsOnTheirOwnPortAndScrapesLoggedWhenAsked() throws {
        let metricsPort = try ServiceProcess.freePort()
        let service = try ServiceProcess([
            "--host=127.0.0.1", "--port=0", "--metrics-port=\(metricsPort)", "--metrics-access-log=true",
        ])
        let port = try service.waitForPort()
        let listening = try #require(service.waitForLine(containing: "metrics listening"))
        #expect(listening.contains(#""port":\#(metricsPort)"#))
        #expect(try scrape(port).response.status == 404, "not on the main listener")
        try request(port, ["/health", "/health"])
        let parsed = try PrometheusText(try scrape(metricsPort).text)
        #expect(parsed.value("http_server_requests_total", ["method": "GET", "route": "/health", "status_class": "2xx"]) == 2)
        #expect(parsed.value("http_server_requests_total", ["method": "GET", "route": "unmatched", "status_class": "4xx"]) == 1)
        // The metrics listener's own requests are not in the server's metrics.
        #expect(parsed.value("http_server_requests_total", ["method": "GET", "route": "/metrics", "status_class": "2xx"]) == nil)
        service.signal()
        let result = service.finish()
        #expect(result.status == 0)
        let access = result.stdout.split(separator: "\n").filter { $0.contains(#""logger":"access""#) }
        #expect(access.contains { $0.contains(#""path":"/metrics""#) })
    }

    @Test func aMetricsPortInUseIsAStartupError() throws {
        let first = try ServiceProcess(["--host=127.0.0.1", "--port=0"])
        let taken = try first.waitForPort()
        let second = try ServiceProcess(["--host=127.0.0.1", "--port=0", "--metrics-port=\(taken)"]).finish()
        #expect(second.status == 1)
        let line = try #require(second.stdout.split(separator: "\n").first { $0.contains("cannot start metrics listener") })
        #expect(line.contains("Address already in use"))
        first.signal()
        #expect(first.finish().status == 0)
    }

    @Test(arguments: [
        (["--metrics-port=70000"], "invalid value \"70000\" for --metrics-port"),
        (["--metrics=maybe"], "invalid value \"maybe\" for --metrics"),
        (["--port=9000", "--metrics-port=9000"], "is the service's own port"),
    ])
    func badMetricsSettingsAreUsageErrors(arguments: [String], message: String) {
        guard case .exit(let code, let text, true) = serviceProgram.parse(arguments, environment: [:]) else {
            Issue.record("accepted \(arguments)")
            return
        }
        #expect(code == 2)
        #expect(text.contains(message), "\(text)")
    }

    @Test func librariesReportIntoTheSameRegistryAndOurNamesGetHelpText() async throws {
        let metrics = PrometheusMetrics(version: "1.2.3", revision: "abc")
        // A library's metrics, through swift-metrics only.
        CoreMetrics.Counter(label: "db_queries_total", dimensions: [("table", "users")], factory: metrics.factory)
            .increment(by: 5)
        CoreMetrics.Timer(label: "db_query_duration", factory: metrics.factory).recordMilliseconds(3)
        // The server's names registered twice (a second server) do not trip the registry's checks.
        _ = ServerMetrics(factory: metrics.factory, routes: ["/a"])
        let server = ServerMetrics(factory: metrics.factory, routes: ["/a"])
        server.requestCounter(slot: ServerMetrics.slot(route: 0, method: 0, status: 200)).increment(by: 2)
        _ = server.handles  // made at the first batch or scrape

        let parsed = try PrometheusText(String(decoding: await metrics.scrape(), as: UTF8.self))
        #expect(parsed.value("db_queries_total", ["table": "users"]) == 5)
        #expect(parsed.families["db_query_duration"]?.type == "histogram")
        #expect(parsed.families["db_queries_total"]?.help == nil)
        #expect(parsed.value("http_server_requests_total", ["method": "GET", "route": "/a", "status_class": "2xx"]) == 2)
        #expect(parsed.families["http_server_requests_total"]?.help?.isEmpty == false)
        #expect(parsed.value("service_build_info", ["version": "1.2.3", "revision": "abc"]) == 1)
        let buckets = parsed.samples("http_server_request_duration_seconds_bucket").filter { $0.labels["route"] == "/a" }
        #expect(buckets.compactMap { $0.labels["le"] }.first == "0.0001")
        #expect(buckets.count == PrometheusMetrics.requestDurationBuckets.count + 1)
    }

    @Test func theTimerHistogramBucketsAsPrometheusDoesAndEscapesLabels() throws {
        let histograms = TimerHistograms()
        let buckets: [Duration] = [.milliseconds(1), .microseconds(100), .milliseconds(10)]
        let histogram = histograms.histogram(
            "t_seconds", help: "a \\ help\nline", labels: [("route", #"/a"b\c"#)], buckets: buckets)
        #expect(histograms.histogram("t_seconds", help: nil, labels: [("route", #"/a"b\c"#)], buckets: buckets) === histogram)
        // `le` is inclusive: a value equal to a bound is in that bucket.
        for nanoseconds: Int64 in [0, 100_000, 100_001, 1_000_000, 10_000_001, -5] { histogram.recordNanoseconds(nanoseconds) }
        var buffer: [UInt8] = []
        histograms.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        let parsed = try PrometheusText(text)
        let labels = ["route": #"/a"b\c"#]
        func bucket(_ le: String) -> Double? { parsed.value("t_seconds_bucket", labels.merging(["le": le]) { $1 }) }
        #expect(bucket("0.0001") == 3, "0, 100 µs exactly, and a negative duration")
        #expect(bucket("0.001") == 5)
        #expect(bucket("0.01") == 5)
        #expect(bucket("+Inf") == 6)
        #expect(parsed.value("t_seconds_count", labels) == 6)
        #expect(parsed.value("t_seconds_sum", labels) == 0.011200002)
        #expect(parsed.families["t_seconds"]?.help == #"a \\ help\nline"#)
        #expect(text.contains(#"route="/a\"b\\c""#))
        histograms.remove(histogram)
        var empty: [UInt8] = []
        histograms.emit(into: &empty)
        #expect(empty.isEmpty)
    }

    @Test(arguments: [
        ("x 1\n", true),
        ("# TYPE x counter\nx 1\n", true),
        ("# TYPE x counter\nx{a=\"q\\\"\\\\\\n\"} 1 1700000000000\n", true),
        ("x 1", false),
        ("# TYPE x counter\nx{a=\"1} 1\n", false),
        ("# TYPE x counter\nx{a=\"\\t\"} 1\n", false),
        ("# TYPE x counter\nx{1a=\"v\"} 1\n", false),
        ("# TYPE x counter\nx one\n", false),
        ("# TYPE x gauge\n# TYPE y gauge\ny 1\nx 2\n", false),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", false),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", false),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", true),
    ])
    func theFormatCheckerRejectsWhatAScraperWould(text: String, valid: Bool) {
        #expect(((try? PrometheusText(text)) != nil) == valid)
    }
}
