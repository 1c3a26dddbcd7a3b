import Foundation
import Testing
@testable import ServiceKit

/// The default connection cap follows the cgroup memory limit: the parsing of the cgroup
/// files (from strings and from a fake cgroup tree in a temporary folder) and the arithmetic.
@Suite struct ConnectionBudgetTests {
    @Test func limitFiles() {
        #expect(ConnectionBudget.parseLimit("134217728\n", v1: false) == 134_217_728)
        #expect(ConnectionBudget.parseLimit("max\n", v1: false) == nil)
        #expect(ConnectionBudget.parseLimit("  268435456 ", v1: true) == 268_435_456)
        // cgroup v1's "no limit": Int64.max rounded down to a page, or anything that large.
        #expect(ConnectionBudget.parseLimit("9223372036854771712\n", v1: true) == nil)
        #expect(ConnectionBudget.parseLimit("\(UInt64(1) << 60)", v1: true) == nil)
        for junk in ["", "\n", "0", "-1", "128M", "max", "12 34", "18446744073709551616"] {
            #expect(ConnectionBudget.parseLimit(junk, v1: true) == nil, "\(junk.debugDescription)")
        }
    }

    @Test func cgroupMembership() {
        let v2 = "0::/kubepods.slice/pod1/container\n"
        #expect(ConnectionBudget.cgroupPath(v2, v2: true) == "/kubepods.slice/pod1/container")
        #expect(ConnectionBudget.cgroupPath(v2, v2: false) == nil)
        let v1 = "12:pids:/\n4:memory:/docker/abc\n1:name=systemd:/\n0::/\n"
        #expect(ConnectionBudget.cgroupPath(v1, v2: false) == "/docker/abc")
        #expect(ConnectionBudget.cgroupPath(v1, v2: true) == "")
        #expect(ConnectionBudget.cgroupPath("3:cpu,memory:/a\n", v2: false) == "/a")
        #expect(ConnectionBudget.cgroupPath("4:memory:/a/../../etc\n", v2: false) == nil)
        #expect(ConnectionBudget.cgroupPath("garbage", v2: true) == nil)
    }

    @Test func limitFromAFakeCgroupTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func write(_ path: String, _ text: String) throws {
            let url = URL(fileURLWithPath: root + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let membership = root + "/self-cgroup"
        func limit() -> UInt64? {
            ConnectionBudget.cgroupMemoryLimit(root: root + "/fs", selfCgroup: membership)
        }
        // No cgroup files at all: no limit.
        #expect(limit() == nil)
        // v1, the process's own memory cgroup.
        try write("/self-cgroup", "4:memory:/docker/abc\n0::/\n")
        try write("/fs/memory/docker/abc/memory.limit_in_bytes", "268435456\n")
        #expect(limit() == 268_435_456)
        // v2 (in a container: the namespace's root) wins over v1; "max" means none.
        try write("/fs/memory.max", "max\n")
        #expect(limit() == nil)
        try write("/fs/memory.max", "134217728\n")
        #expect(limit() == 134_217_728)
        // v2 with the process's own cgroup path (no cgroup namespace).
        try write("/self-cgroup", "0::/system.slice/service.service\n")
        try write("/fs/system.slice/service.service/memory.max", "536870912\n")
        #expect(limit() == 536_870_912)
    }

    @Test func theCapForALimit() {
        let mib: UInt64 = 1024 * 1024
        #expect(ConnectionBudget.maxConnections(memoryLimit: nil, tls: false) == 10_000)
        #expect(ConnectionBudget.maxConnections(memoryLimit: nil, tls: true) == 10_000)
        // The shipped manifests' 128 MiB (deploy/check_memory.py prints the same).
        #expect(ConnectionBudget.maxConnections(memoryLimit: 128 * mib, tls: false) == 2_304)
        #expect(ConnectionBudget.maxConnections(memoryLimit: 128 * mib, tls: true) == 1_536)
        #expect(ConnectionBudget.maxConnections(memoryLimit: 1024 * mib, tls: true) == 10_000)
        // Below the reserve: one connection rather than none.
        #expect(ConnectionBudget.maxConnections(memoryLimit: 16 * mib, tls: false) == 1)
        #expect(ConnectionBudget.maxConnections(memoryLimit: .max, tls: false) == 10_000)
    }
}
