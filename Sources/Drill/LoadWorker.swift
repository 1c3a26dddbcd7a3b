// One keep-alive connection's loop, on its own thread: send, read, record, and reconnect when
// the server closes. The loop is what a well-behaved HTTP/1.1 client does, so whatever it sees
// during a shutdown is what a real client pool behind a load balancer would see.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// What the orchestrator tells every worker, read by all of them without locks.
final class DrillControl: Sendable {
    /// When the signal was sent (CLOCK_MONOTONIC ns); Int64.max until then. Stamped just before
    /// the signal, so a refused connect at or after it can only be the closed listener.
    let signalAt = Atomic<Int64>(Int64.max)
    /// Workers start no new request at or after this time.
    let stopAt = Atomic<Int64>(Int64.max)

    init() {}

    func stop() {
        stopAt.store(0, ordering: .sequentiallyConsistent)
    }
}

/// The settings every worker shares.
struct WorkerConfiguration: Sendable {
    var address: ServerAddress
    /// `GET path HTTP/1.1\r\nHost: drill\r\n\r\n`, encoded once.
    var request: [UInt8]
    var requestTimeout: Int64
    /// How long to wait before reconnecting after a connect failure that does not stop the
    /// worker, so that a dead server is not hammered in a tight loop.
    var reconnectBackoff: Int64 = 10_000_000

    init(address: ServerAddress, path: String, requestTimeout: Int64) {
        self.address = address
        self.request = Array("GET \(path) HTTP/1.1\r\nHost: drill\r\n\r\n".utf8)
        self.requestTimeout = requestTimeout
    }
}

/// One connection's worker. Its records belong to its thread until that thread is joined;
/// pthread_join orders the thread's writes before the orchestrator's reads, which is the
/// synchronization `@unchecked Sendable` relies on.
final class LoadWorker: @unchecked Sendable {
    let index: Int32
    let configuration: WorkerConfiguration
    let control: DrillControl
    private(set) var records: [RequestRecord] = []
    /// Connections this worker opened (one per reconnect).
    private(set) var connectionsOpened = 0

    init(index: Int32, configuration: WorkerConfiguration, control: DrillControl) {
        self.index = index
        self.configuration = configuration
        self.control = control
        records.reserveCapacity(4096)
    }

    /// The loop; returns when told to stop or when the listener refuses after the signal.
    func run() {
        var fd: Int32 = -1
        var reader = ResponseReader(receiveTimeout: configuration.requestTimeout)
        var requestsOnConnection: Int32 = 0
        defer {
            if fd >= 0 { close(fd) }
        }

        while monotonicNanoseconds() < control.stopAt.load(ordering: .sequentiallyConsistent) {
            if fd < 0 {
                let attempt = monotonicNanoseconds()
                switch connectTCP(to: configuration.address, timeout: configuration.requestTimeout) {
                case .connected(let socket):
                    fd = socket
                    reader = ResponseReader(receiveTimeout: configuration.requestTimeout)
                    connectionsOpened += 1
                    requestsOnConnection = 0
                case .refused:
                    if attempt >= control.signalAt.load(ordering: .sequentiallyConsistent) {
                        // The listener is closed: the shutdown has reached its last step, and
                        // this connection's part of the drill is over.
                        record(sent: attempt, outcome: .refused, request: 0)
                        return
                    }
                    record(sent: attempt, outcome: .error("connection refused before SIGTERM"), request: 0)
                    sleep(nanoseconds: configuration.reconnectBackoff)
                    continue
                case .timeout:
                    record(sent: attempt, outcome: .timeout, request: 0)
                    continue
                case .failed(let reason):
                    record(sent: attempt, outcome: .error(reason), request: 0)
                    sleep(nanoseconds: configuration.reconnectBackoff)
                    continue
                }
            }

            let sent = monotonicNanoseconds()
            requestsOnConnection += 1
            let outcome: Outcome
            var peerClose: PeerClose?
            switch sendAll(fd, configuration.request) {
            case .sent:
                let result = reader.readResponse(from: fd, deadline: sent + configuration.requestTimeout)
                outcome = Outcome(result)
                switch result {
                case .unanswered(let how), .truncated(let how): peerClose = how
                default: break
                }
            case .closedByPeer(let how):
                // The server closed before our request got there: no byte of a response came.
                outcome = .unanswered
                peerClose = how
            case .timeout:
                outcome = .timeout
            case .failed(let reason):
                outcome = .error(reason)
            }
            record(sent: sent, outcome: outcome, request: requestsOnConnection, peerClose: peerClose)

            if !outcome.keepsConnection {
                close(fd)
                fd = -1
            }
        }
    }

    /// Appends a record finished now. `connectionsOpened` numbers the connection: for a failed
    /// connect it is the one that connect would have been (plus one).
    private func record(sent: Int64, outcome: Outcome, request: Int32, peerClose: PeerClose? = nil) {
        let connection = Int32(connectionsOpened) + (request == 0 ? 1 : 0)
        records.append(RequestRecord(sent: sent, finished: monotonicNanoseconds(), outcome: outcome,
                                     worker: index, connection: connection, request: request, peerClose: peerClose))
    }
}
