import CoreMetrics
import Synchronization

/// TestMetrics is an in-memory swift-metrics backend: it keeps every value recorded, by label
/// and dimensions, for tests to read back.
final class TestMetrics: MetricsFactory, Sendable {
    final class Handler: CounterHandler, FloatingPointCounterHandler, RecorderHandler, MeterHandler, TimerHandler,
        Sendable
    {
        /// A counter's total, a gauge's last value.
        let value = Mutex<Double>(0)
        /// Every value a timer recorded, in nanoseconds.
        let recorded = Mutex<[Int64]>([])

        func increment(by amount: Int64) { value.withLock { $0 += Double(amount) } }
        func increment(by amount: Double) { value.withLock { $0 += amount } }
        func reset() { value.withLock { $0 = 0 } }
        func record(_ value: Int64) { self.value.withLock { $0 = Double(value) } }
        func record(_ value: Double) { self.value.withLock { $0 = value } }
        func set(_ value: Int64) { record(value) }
        func set(_ value: Double) { record(value) }
        func decrement(by amount: Double) { value.withLock { $0 -= amount } }
        func recordNanoseconds(_ duration: Int64) { recorded.withLock { $0.append(duration) } }
    }

    struct Key: Hashable {
        var label: String
        var dimensions: [String]
    }

    private let handlers = Mutex<[Key: Handler]>([:])

    private func handler(_ label: String, _ dimensions: [(String, String)]) -> Handler {
        let key = Key(label: label, dimensions: dimensions.map { "\($0.0)=\($0.1)" }.sorted())
        return handlers.withLock { handlers in
            if let existing = handlers[key] { return existing }
            let made = Handler()
            handlers[key] = made
            return made
        }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { handler(label, dimensions) }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        handler(label, dimensions)
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        handler(label, dimensions)
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { handler(label, dimensions) }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { handler(label, dimensions) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    /// The value of the metric `label` with exactly these dimensions; nil if never made.
    func value(_ label: String, _ dimensions: [String: String] = [:]) -> Double? {
        let key = Key(label: label, dimensions: dimensions.map { "\($0.key)=\($0.value)" }.sorted())
        return handlers.withLock { $0[key] }?.value.withLock { $0 }
    }

    /// The durations a timer recorded, in nanoseconds.
    func recorded(_ label: String, _ dimensions: [String: String] = [:]) -> [Int64] {
        let key = Key(label: label, dimensions: dimensions.map { "\($0.key)=\($0.value)" }.sorted())
        return handlers.withLock { $0[key] }?.recorded.withLock { $0 } ?? []
    }

    /// Every dimension set made for `label`, each as `name=value` pairs sorted.
    func series(_ label: String) -> [[String]] {
        handlers.withLock { handlers in handlers.keys.filter { $0.label == label }.map(\.dimensions) }
    }
}
