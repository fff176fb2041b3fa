@testable import LopperCoordination
@testable import LopperSensitivity
import Testing

@Suite struct SchedulerTests {
    /// Jobs of `groups` groups, `perGroup` levels each, as a fresh store lists them.
    static func rows(groups: Int, perGroup: Int) -> [ResultsStore.Row] {
        var rows: [ResultsStore.Row] = []
        for group in 0..<groups {
            for level in 0..<perGroup {
                rows.append(ResultsStore.Row(id: Int64(rows.count + 1),
                                             job: SweepJob(group: group, granularity: .channel, criterion: "l1", level: Double(level + 1) / 10),
                                             state: .pending, attempts: 0))
            }
        }
        return rows
    }

    /// Hands in a successful result for `id` from `worker`; whether it was taken.
    func finish(_ scheduler: inout Scheduler, _ id: Int64, by worker: String, now: Double) -> Bool {
        scheduler.finish(id, by: worker, key: scheduler.jobs[id]!.key, failed: false, now: now)
    }

    @Test func workersKeepTheirGroupsAndNewcomersTakeUntouchedOnes() {
        var scheduler = Scheduler(rows: Self.rows(groups: 3, perGroup: 4), leaseDuration: 10, maxAttempts: 3, now: 0)
        let a = scheduler.lease(to: "a", want: 1, now: 0)
        let b = scheduler.lease(to: "b", want: 1, now: 0)
        let groupA = scheduler.jobs[a[0].id]!.group, groupB = scheduler.jobs[b[0].id]!.group
        #expect(groupA != groupB, "a second worker starts on a group nobody holds")
        let taken = finish(&scheduler, a[0].id, by: "a", now: 1)
        #expect(taken)
        let next = scheduler.lease(to: "a", want: 2, now: 1)
        #expect(next.count == 2 && next.allSatisfy { scheduler.jobs[$0.id]!.group == groupA }, "a stays on its warm group")
        // A worker reporting a cached group gets it first.
        scheduler.saw("c", now: 1, cachedGroups: [2])
        let c = scheduler.lease(to: "c", want: 1, now: 1)
        #expect(scheduler.jobs[c[0].id]!.group == 2)
    }

    @Test func resultsAreTakenOnceAndOnlyFromTheLeaseHolder() {
        var scheduler = Scheduler(rows: Self.rows(groups: 1, perGroup: 2), leaseDuration: 10, maxAttempts: 3, now: 0)
        let id = scheduler.lease(to: "a", want: 1, now: 0)[0].id
        let fromB = finish(&scheduler, id, by: "b", now: 1)
        let wrongKey = scheduler.finish(id, by: "a", key: "g9/channel/l1/0.1000", failed: false, now: 1)
        let fromA = finish(&scheduler, id, by: "a", now: 1)
        let again = finish(&scheduler, id, by: "a", now: 2)
        #expect(!fromB, "not b's lease")
        #expect(!wrongKey, "wrong key for the id")
        #expect(fromA)
        #expect(!again, "duplicate")
        #expect(scheduler.doneCount == 1 && scheduler.counters.resultsIgnored == 3)
    }

    @Test func expiredLeasesRequeueThenFail() {
        var scheduler = Scheduler(rows: Self.rows(groups: 1, perGroup: 1), leaseDuration: 5, maxAttempts: 2, now: 0)
        let id = scheduler.lease(to: "a", want: 1, now: 0)[0].id
        let beat = scheduler.heartbeat("a", ids: [id], now: 4)
        #expect(beat.extended == [id])
        let early = scheduler.expire(now: 8)
        #expect(early.requeued.isEmpty, "the heartbeat at 4 extended the lease to 9")
        let late = scheduler.expire(now: 9.5)
        #expect(late.requeued == [id])
        let lateResult = finish(&scheduler, id, by: "a", now: 10)
        #expect(!lateResult, "a late result is ignored")
        let revoked = scheduler.heartbeat("a", ids: [id], now: 10)
        #expect(revoked.revoked == [id])
        let again = scheduler.lease(to: "b", want: 1, now: 10)
        #expect(again.map(\.id) == [id])
        let last = scheduler.expire(now: 16)
        #expect(last.failed == [id], "the second expiry uses up maxAttempts")
        #expect(scheduler.isComplete && scheduler.failedCount == 1)
    }

    @Test func stragglersAreSpeculatedAndTheFirstResultWins() {
        var scheduler = Scheduler(rows: Self.rows(groups: 1, perGroup: 3), leaseDuration: 100, maxAttempts: 3, now: 0)
        let jobs = scheduler.lease(to: "a", want: 2, now: 0) + scheduler.lease(to: "b", want: 1, now: 0)
        let tooEarly = scheduler.lease(to: "c", want: 1, now: 0.1)
        #expect(tooEarly.isEmpty, "no timing yet: no speculation")
        _ = finish(&scheduler, jobs[0].id, by: "a", now: 1)
        _ = finish(&scheduler, jobs[1].id, by: "a", now: 1.2)
        // b's job has run 1.5 s; the median job took 1.2 s: not yet twice as long.
        let notYet = scheduler.lease(to: "c", want: 1, now: 1.5)
        #expect(notYet.isEmpty)
        let speculative = scheduler.lease(to: "c", want: 1, now: 3)
        #expect(speculative.map(\.id) == [jobs[2].id] && speculative[0].speculative)
        let fromC = finish(&scheduler, jobs[2].id, by: "c", now: 3.5)
        let fromB = finish(&scheduler, jobs[2].id, by: "b", now: 4)
        #expect(fromC && !fromB)
        let revoked = scheduler.heartbeat("b", ids: [jobs[2].id], now: 4)
        #expect(revoked.revoked == [jobs[2].id])
        #expect(scheduler.isComplete && scheduler.counters.speculativeLeases == 1)
    }

    @Test func aRestartedCoordinatorHonoursRecordedLeases() {
        var rows = Self.rows(groups: 1, perGroup: 3)
        rows[0].state = .done
        rows[1].state = .running
        rows[1].worker = "a"
        var scheduler = Scheduler(rows: rows, leaseDuration: 5, maxAttempts: 3, now: 0)
        #expect(scheduler.doneCount == 1 && scheduler.leasedCount == 1 && scheduler.queuedCount == 1)
        let fromA = finish(&scheduler, 2, by: "a", now: 1)
        #expect(fromA, "a's result still counts")
        let leased = scheduler.lease(to: "b", want: 5, now: 1)
        #expect(leased.map(\.id) == [3], "finished jobs are never leased again")
    }
}
