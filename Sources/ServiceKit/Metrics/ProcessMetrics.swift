import CoreMetrics
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// ProcessMetrics reports what Go's Prometheus client exposes for every process, under the
/// same names: memory, CPU time, file descriptors and start time. Values are read from
/// `getrusage`, `getrlimit` and `/proc` when ``collect()`` runs (once per scrape).
public final class ProcessMetrics: Sendable {
    public enum Name {
        /// Gauge: resident set size, bytes.
        public static let residentMemory = "process_resident_memory_bytes"
        /// Gauge: virtual memory size, bytes.
        public static let virtualMemory = "process_virtual_memory_bytes"
        /// Counter: user plus system CPU time, seconds.
        public static let cpuSeconds = "process_cpu_seconds_total"
        /// Gauge: open file descriptors.
        public static let openFileDescriptors = "process_open_fds"
        /// Gauge: the soft limit on open file descriptors.
        public static let maxFileDescriptors = "process_max_fds"
        /// Gauge: when the process started, seconds since the Unix epoch.
        public static let startTime = "process_start_time_seconds"
        /// Counter: log lines dropped because standard output was not read in time (or failed).
        public static let droppedLogLines = "log_lines_dropped_total"

        public static let all = [
            residentMemory, virtualMemory, cpuSeconds, openFileDescriptors, maxFileDescriptors, startTime, droppedLogLines,
        ]
    }

    let residentMemory: Gauge
    let virtualMemory: Gauge
    let cpuSeconds: FloatingPointCounter
    let openFileDescriptors: Gauge
    let maxFileDescriptors: Gauge
    let startTime: Gauge
    let droppedLogLines: Counter
    /// The sink whose drops ``droppedLogLines`` counts.
    let logSink: LogSink
    /// CPU seconds and dropped lines already reported, so the counters move by the difference.
    private let reportedCPU = Mutex<Double>(0)
    private let reportedDrops = Mutex<Int>(0)

    public init(factory: any MetricsFactory = MetricsSystem.factory, logSink: LogSink = .standardOutput) {
        self.logSink = logSink
        droppedLogLines = Counter(label: Name.droppedLogLines, factory: factory)
        residentMemory = Gauge(label: Name.residentMemory, factory: factory)
        virtualMemory = Gauge(label: Name.virtualMemory, factory: factory)
        cpuSeconds = FloatingPointCounter(label: Name.cpuSeconds, factory: factory)
        openFileDescriptors = Gauge(label: Name.openFileDescriptors, factory: factory)
        maxFileDescriptors = Gauge(label: Name.maxFileDescriptors, factory: factory)
        startTime = Gauge(label: Name.startTime, factory: factory)
        startTime.record(Self.startTimeSeconds() ?? Self.nowSeconds())
        collect()
    }

    /// Reads the current values and records them.
    public func collect() {
        if let stat = Self.selfStat() {
            residentMemory.record(stat.residentPages * Int(sysconf(Int32(_SC_PAGESIZE))))
            virtualMemory.record(stat.virtualBytes)
        }
        var usage = rusage()
        if getrusage(Platform.usageSelf, &usage) == 0 {
            let seconds = Self.seconds(usage.ru_utime) + Self.seconds(usage.ru_stime)
            let delta = reportedCPU.withLock { reported -> Double in
                guard seconds > reported else { return 0 }
                defer { reported = seconds }
                return seconds - reported
            }
            if delta > 0 { cpuSeconds.increment(by: delta) }
        }
        if let open = Self.openDescriptorCount() { openFileDescriptors.record(open) }
        var limit = rlimit()
        if getrlimit(Platform.nofileLimit, &limit) == 0 {
            maxFileDescriptors.record(Int(clamping: limit.rlim_cur))
        }
        let dropped = logSink.droppedLines
        let newDrops = reportedDrops.withLock { reported -> Int in
            defer { reported = max(reported, dropped) }
            return dropped - reported
        }
        if newDrops > 0 { droppedLogLines.increment(by: Int64(newDrops)) }
    }

    static func seconds(_ value: timeval) -> Double {
        Double(value.tv_sec) + Double(value.tv_usec) / 1_000_000
    }

    static func nowSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1_000_000_000
    }

    struct Stat: Equatable {
        var startTicks: Int
        var virtualBytes: Int
        var residentPages: Int
    }

    static func selfStat() -> Stat? {
        guard let text = readFile("/proc/self/stat") else { return nil }
        return parseStat(text)
    }

    /// Fields 22 to 24 of `/proc/PID/stat` (start time in clock ticks since boot, virtual size
    /// in bytes, resident pages). They are counted after the `)` that closes the command name,
    /// which may itself hold spaces and parentheses.
    static func parseStat(_ text: [UInt8]) -> Stat? {
        guard let close = text.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = text[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (the state), so field N is fields[N - 3].
        guard fields.count > 21,
              let start = Int(decimal: fields[19]), let virtual = Int(decimal: fields[20]),
              let resident = Int(decimal: fields[21])
        else { return nil }
        return Stat(startTicks: start, virtualBytes: virtual, residentPages: resident)
    }

    /// The process's start time: the boot time (`btime` in `/proc/stat`) plus the start in
    /// clock ticks since boot, as Go's client computes it.
    static func startTimeSeconds() -> Double? {
        guard let stat = selfStat(), let system = readFile("/proc/stat"), let boot = parseBootTime(system) else {
            return nil
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard ticks > 0 else { return nil }
        return Double(boot) + Double(stat.startTicks) / ticks
    }

    static func parseBootTime(_ text: [UInt8]) -> Int? {
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let parts = line.split(separator: UInt8(ascii: " "))
            if parts.count == 2, parts[0].elementsEqual("btime".utf8) { return Int(decimal: parts[1]) }
        }
        return nil
    }

    /// The entries of `/proc/self/fd`, less the descriptor the listing itself holds open.
    static func openDescriptorCount() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return max(0, count - 1)
    }

    /// A small file's bytes (files under /proc report size 0, so it reads until the end).
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = systemClose(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return count == 0 ? bytes : nil }
            bytes.append(contentsOf: chunk[..<count])
        }
        return bytes
    }
}

extension Int {
    /// A non-negative decimal integer, nil for anything else or on overflow.
    init?(decimal digits: some Collection<UInt8>) {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        self = value
    }
}
