import Testing
@testable import ServiceKit

@Suite struct RequestIDTests {
    @Test("a generated ID is the 64-bit value in 13 characters of Crockford base32, most significant first")
    func encoding() {
        #expect(LoopState.requestID(0) == "0000000000000")
        #expect(LoopState.requestID(1) == "0000000000001")
        #expect(LoopState.requestID(0x0123_4567_89ab_cdef) == "028t5cy4tqkff")
        #expect(LoopState.requestID(.max) == "fzzzzzzzzzzzz")
    }

    @Test("different values give different IDs: no bit is dropped")
    func everyBitCounts() {
        var seen = Set<String>()
        for bit in 0..<64 { seen.insert(LoopState.requestID(1 << UInt64(bit))) }
        #expect(seen.count == 64)
    }
}
