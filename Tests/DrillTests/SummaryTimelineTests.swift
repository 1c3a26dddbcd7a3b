// Counting: the summary's before/after split at the signal, and the timeline's buckets around
// it (floor division, so the last instant before the signal is in bucket -1).

import Testing
@testable import Drill

private let signal: Int64 = 10_000_000_000
private let ms: Int64 = 1_000_000

private func record(sent: Int64, finished: Int64, _ outcome: Outcome) -> RequestRecord {
    RequestRecord(sent: signal + sent, finished: signal + finished, outcome: outcome)
}

@Suite struct SummaryTests {
    @Test func countsEveryClassOnceAndSplitsOkAtTheSignal() {
        let records = [
            record(sent: -50 * ms, finished: -40 * ms, .ok(close: false)),
            record(sent: -1, finished: 3 * ms, .ok(close: true)),      // sent just before: "before"
            record(sent: 0, finished: 20 * ms, .ok(close: true)),      // sent at the signal: "after"
            record(sent: 5 * ms, finished: 25 * ms, .ok(close: false)),
            record(sent: 6 * ms, finished: 7 * ms, .unanswered),
            record(sent: 6 * ms, finished: 8 * ms, .truncated),
            record(sent: 6 * ms, finished: 5006 * ms, .timeout),
            record(sent: 30 * ms, finished: 30 * ms, .refused),
            record(sent: 30 * ms, finished: 31 * ms, .error("status 503")),
            record(sent: 32 * ms, finished: 33 * ms, .error("status 503")),
            record(sent: -900 * ms, finished: -900 * ms, .error("connection refused before SIGTERM")),
        ]
        let summary = Summary(records: records, signalAt: signal)
        #expect(summary.total == 11)
        #expect(summary.okBefore == 2)
        #expect(summary.okAfter == 2)
        #expect(summary.okClose == 2)
        #expect(summary.unanswered == 1)
        #expect(summary.truncated == 1)
        #expect(summary.timeout == 1)
        #expect(summary.refused == 1)
        #expect(summary.error == 3)
        #expect(summary.errorReasons == ["status 503": 2, "connection refused before SIGTERM": 1])
        #expect(summary.lost == 6)
        #expect(summary.okBefore + summary.okAfter + summary.unanswered + summary.truncated + summary.timeout
            + summary.refused + summary.error == summary.total)
    }

    @Test func refusedAfterTheSignalIsNotLost() {
        let summary = Summary(records: [record(sent: 1, finished: 2, .refused), record(sent: 0, finished: 1, .ok(close: true))],
                              signalAt: signal)
        #expect(summary.lost == 0)
    }
}

@Suite struct TimelineTests {
    @Test func bucketIndexIsAFloorDivision() {
        let bucket = 100 * ms
        #expect(Timeline.index(of: signal, signalAt: signal, bucket: bucket) == 0)
        #expect(Timeline.index(of: signal + 99 * ms, signalAt: signal, bucket: bucket) == 0)
        #expect(Timeline.index(of: signal + 100 * ms, signalAt: signal, bucket: bucket) == 1)
        #expect(Timeline.index(of: signal - 1, signalAt: signal, bucket: bucket) == -1)
        #expect(Timeline.index(of: signal - 100 * ms, signalAt: signal, bucket: bucket) == -1)
        #expect(Timeline.index(of: signal - 100 * ms - 1, signalAt: signal, bucket: bucket) == -2)
    }

    @Test func eventsLandInTheBucketOfTheirCompletion() {
        let records = [
            record(sent: -1500 * ms, finished: -1450 * ms, .ok(close: false)),   // bucket -15
            record(sent: -60 * ms, finished: -10 * ms, .ok(close: false)),       // -1
            record(sent: -60 * ms, finished: -1, .ok(close: false)),             // -1
            record(sent: -5 * ms, finished: 10 * ms, .ok(close: true)),          // 0
            record(sent: 10 * ms, finished: 12 * ms, .unanswered),               // 0
            record(sent: 50 * ms, finished: 150 * ms, .truncated),               // 1
            record(sent: 150 * ms, finished: 199 * ms, .refused),                // 1
            record(sent: 0, finished: 5000 * ms, .timeout),                      // 50: where it gave up
            record(sent: 200 * ms, finished: 210 * ms, .error("status 500")),    // 2
        ]
        let timeline = Timeline(records: records, signalAt: signal, bucketNanoseconds: 100 * ms)
        #expect(timeline.firstIndex == -15)
        #expect(timeline.lastIndex == 50)
        #expect(timeline.buckets.count == 66)
        #expect(timeline.counts(at: -15) == BucketCounts(ok: 1))
        #expect(timeline.counts(at: -14) == BucketCounts())
        #expect(timeline.counts(at: -1) == BucketCounts(ok: 2))
        #expect(timeline.counts(at: 0) == BucketCounts(okClose: 1, unanswered: 1))
        #expect(timeline.counts(at: 1) == BucketCounts(truncated: 1, refused: 1))
        #expect(timeline.counts(at: 2) == BucketCounts(error: 1))
        #expect(timeline.counts(at: 50) == BucketCounts(timeout: 1))
        #expect(timeline.counts(at: 51) == BucketCounts())
        #expect(timeline.buckets.reduce(0) { $0 + $1.total } == records.count)
        #expect(timeline.startMilliseconds(of: -15) == -1500)
        // The text table starts one second before the signal.
        #expect(timeline.indices(fromSecondsBeforeSignal: 1) == -10...50)
    }

    @Test func anEmptyRunStillHasTheSignalBucket() {
        let timeline = Timeline(records: [], signalAt: signal, bucketNanoseconds: 100 * ms)
        #expect(timeline.firstIndex == 0)
        #expect(timeline.buckets == [BucketCounts()])
    }

    @Test func aRunThatStartedLateStartsTheTableAtItsFirstBucket() {
        let records = [record(sent: -300 * ms, finished: -250 * ms, .ok(close: false))]
        let timeline = Timeline(records: records, signalAt: signal, bucketNanoseconds: 100 * ms)
        #expect(timeline.indices(fromSecondsBeforeSignal: 1) == -3...0)
    }
}
