import Foundation
import LopperProtocol
import LopperSensitivity

extension Coordinator {
    /// Checks one incoming frame and answers it. `nil` means no reply: the request is a resend
    /// of one still being handled, whose reply will answer both.
    func handle(_ bytes: [UInt8]) async throws -> [UInt8]? {
        let frame: Lopper_Wire_Frame
        let request: Lopper_Wire_Request
        do {
            frame = try codec.open(bytes)
            request = try codec.payload(of: frame, as: Lopper_Wire_Request.self)
        } catch {
            // Answer in the terms the peer used, if its frame can be read at all.
            let loose = try? Lopper_Wire_Frame(serializedBytes: bytes)
            count(error, from: loose?.sender ?? "?")
            return FrameCodec.rejection(error, to: loose?.sender ?? "", counter: loose?.counter ?? 0)
        }
        let sender = frame.sender
        let (verdict, cached) = lock.withLock { () -> (ReplayWindow.Verdict, [UInt8]?) in
            let now = self.now
            senders[sender, default: SenderState()].lastSeen = now
            if case .status? = request.kind {} else { lastWorkerMessage = now }
            let verdict = senders[sender]!.window.check(frame.counter)
            if verdict == .fresh { senders[sender]!.inFlight.insert(frame.counter) }
            return (verdict, senders[sender]!.replies[frame.counter])
        }
        switch verdict {
        case .stale:
            count(.replay(frame.counter), from: sender)
            return FrameCodec.rejection(.replay(frame.counter), to: sender, counter: frame.counter)
        case .duplicate:
            // nng resent a request: the first one's reply answers it. One still being handled
            // gets no second reply; read-only requests whose reply was not kept are answered again.
            if let cached { return cached }
            guard request.isReadOnly, !lock.withLock({ senders[sender]?.inFlight.contains(frame.counter) ?? false }) else { return nil }
            return try codec.seal(try await answer(request, from: sender), to: sender, counter: frame.counter)
        case .fresh:
            break
        }
        let reply = try await answer(request, from: sender)
        let sealed = try codec.seal(reply, to: sender, counter: frame.counter)
        lock.withLock {
            senders[sender]?.inFlight.remove(frame.counter)
            // Chunks are large and cheap to read again; everything else is kept for resends.
            guard !request.isReadOnly, senders[sender] != nil else { return }
            senders[sender]!.replies[frame.counter] = sealed
            if senders[sender]!.replies.count > Self.keptReplies, let oldest = senders[sender]!.replies.keys.min() {
                senders[sender]!.replies[oldest] = nil
            }
        }
        return sealed
    }

    /// Replies kept per sender: more than the requests a worker has in flight at once.
    static let keptReplies = 256

    private func answer(_ request: Lopper_Wire_Request, from sender: String) async throws -> Lopper_Wire_Reply {
        var reply = Lopper_Wire_Reply()
        if let claimed = request.workerID, claimed != sender {
            let rejection = FrameRejection.malformed("the request names worker '\(claimed)' but its frame comes from '\(sender)'")
            count(rejection, from: sender)
            reply.rejected.reason = rejection.description
            reply.rejected.protocolVersion = WireProtocol.version
            return reply
        }
        switch request.kind {
        case .hello(let hello):
            lock.withLock { scheduler.saw(hello.workerID, now: now) }
            logger.info("worker \(hello.workerID) joined", metadata: [
                "host": "\(hello.hostname)", "cores": "\(hello.cores)", "slots": "\(hello.slots)", "memory_mb": "\(hello.memoryBytes >> 20)"])
            reply.welcome = offer.welcome(heartbeat: options.heartbeatSeconds, lease: options.leaseSeconds, chunkBytes: options.chunkBytes)
        case .lease(let lease):
            guard lease.sweepID == offer.sweepID else {
                count(.unknownSweep(lease.sweepID), from: sender)
                reply.rejected.reason = FrameRejection.unknownSweep(lease.sweepID).description
                reply.rejected.protocolVersion = WireProtocol.version
                return reply
            }
            reply = try await leaseReply(lease, from: sender)
        case .heartbeat(let heartbeat):
            let (extended, revoked, complete) = lock.withLock {
                let (extended, revoked) = scheduler.heartbeat(heartbeat.workerID, ids: heartbeat.jobIds, now: now)
                if scheduler.isComplete { toldShutdown.insert(heartbeat.workerID) }
                return (extended, revoked, scheduler.isComplete)
            }
            reply.heartbeat.extended = extended
            reply.heartbeat.revoked = revoked
            reply.heartbeat.sweepComplete = complete
        case .blob(let request):
            reply = blobReply(request)
        case .status:
            reply.status = status().wire
        case .goodbye(let goodbye):
            let (requeued, pending) = lock.withLock {
                let (requeued, failed) = scheduler.leave(goodbye.workerID, ids: goodbye.jobIds)
                return (requeued, ledger.record(Self.releases(requeued: requeued, failed: failed, attempts: options.maxAttempts, worker: goodbye.workerID)))
            }
            try await ledger.settle(pending)
            logger.info("worker \(goodbye.workerID) left; \(requeued.count) jobs back in the queue")
            reply.ack = Lopper_Wire_Ack()
        case nil:
            count(.malformed("a request of no known kind"), from: sender)
            reply.rejected.reason = FrameRejection.malformed("a request of no known kind").description
            reply.rejected.protocolVersion = WireProtocol.version
        }
        return reply
    }

    /// Takes the worker's results, then leases it more jobs; both are committed before replying.
    private func leaseReply(_ request: Lopper_Wire_LeaseRequest, from sender: String) async throws -> Lopper_Wire_Reply {
        let worker = request.workerID
        var changes: [ResultsStore.Change] = []
        var files: [Int64: [ProducedFile]] = [:]
        var lease = Lopper_Wire_Lease()
        let (leased, complete, pending) = lock.withLock {
            let now = self.now
            scheduler.saw(worker, now: now, cachedGroups: request.cachedGroups.map(Int.init))
            for result in request.results {
                let misnamed = result.files.first { !ProducedFile.isPlainName($0.name) }
                let failed = !result.error.isEmpty || misnamed != nil
                if scheduler.finish(result.jobID, by: worker, key: result.jobKey, failed: failed, now: now) {
                    lease.accepted.append(result.jobID)
                    if let misnamed {
                        changes.append(.failure(result.jobID, "the job returned a file named '\(misnamed.name)', which is not a plain file name", stderr: nil, worker: worker))
                    } else if failed {
                        changes.append(.failure(result.jobID, result.error, stderr: result.stderr.isEmpty ? nil : result.stderr, worker: worker))
                    } else {
                        changes.append(.result(result.jobID, JobOutcome(score: result.score, removed: Int(result.removed),
                                                                        macsExecuted: Int(result.macsExecuted), seconds: result.seconds), worker: worker))
                        files[result.jobID] = result.files.map { ProducedFile(name: $0.name, data: $0.data) }
                    }
                } else {
                    lease.ignored.append(result.jobID)
                }
            }
            if request.hasBaseline, let change = takeBaseline(request.baseline, from: worker) { changes.append(change) }
            if scheduler.isComplete {
                toldShutdown.insert(worker)
                // This also covers every earlier request's results: "complete" is on disk.
                return ([(id: Int64, speculative: Bool)](), true, ledger.record(changes, files: files))
            }
            let leased = scheduler.lease(to: worker, want: Int(min(max(request.want, 1), 64)), now: now)
            for (id, _) in leased { changes.append(.leased(id, worker: worker)) }
            return (leased, false, ledger.record(changes, files: files))
        }
        try await ledger.settle(pending)
        if !request.results.isEmpty { reportProgress() }
        var reply = Lopper_Wire_Reply()
        if complete {
            reply.shutdown.reason = "sweep complete"
            return reply
        }
        lease.jobs = leased.map { id, _ in
            var entry = Lopper_Wire_JobLease()
            entry.jobID = id
            entry.jobKey = lock.withLock { scheduler.jobs[id]!.key }
            if let job = ledger.batchJob(id) {
                entry.kind = job.kind.wire
                entry.payload = job.payload
            }
            return entry
        }
        // Idle workers poll: soon enough to take a requeued job or hear that the sweep is over.
        if leased.isEmpty { lease.retryAfterMs = UInt32(min(200, options.heartbeatSeconds * 1000 / 2)) }
        reply.lease = lease
        return reply
    }

    /// The first baseline a worker reports is stored; a different one means the workers do not
    /// compute alike (another Lopper build, say), and is logged loudly. Called with the lock held.
    private func takeBaseline(_ value: Double, from worker: String) -> ResultsStore.Change? {
        guard let previous = baseline else {
            baseline = value
            return .baseline(value, offer.metric)
        }
        if previous.bitPattern != value.bitPattern {
            logger.error("worker \(worker) computes the dense baseline as \(value), others as \(previous): its scores are not comparable (same Lopper build on every node?)")
        }
        return nil
    }

    /// A chunk of one of the sweep's files, named by its hash only.
    private func blobReply(_ request: Lopper_Wire_BlobRequest) -> Lopper_Wire_Reply {
        var reply = Lopper_Wire_Reply()
        guard let blob = offer.blobs.first(where: { $0.sha256 == request.sha256 }) else {
            reply.rejected.reason = "no file with SHA-256 \(request.sha256) belongs to this sweep"
            reply.rejected.protocolVersion = WireProtocol.version
            return reply
        }
        guard request.offset <= UInt64(blob.size) else {
            reply.rejected.reason = "offset \(request.offset) is past the end of \(blob.role.rawValue) (\(blob.size) bytes)"
            reply.rejected.protocolVersion = WireProtocol.version
            return reply
        }
        let length = min(Int(request.length), options.chunkBytes, blob.size - Int(request.offset))
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: blob.path))
            defer { try? handle.close() }
            try handle.seek(toOffset: request.offset)
            reply.blob.data = try handle.read(upToCount: length) ?? Data()
        } catch {
            logger.error("cannot read \(blob.path): \(error)")
            reply.rejected.reason = "the coordinator cannot read its \(blob.role.rawValue) file"
            reply.rejected.protocolVersion = WireProtocol.version
            return reply
        }
        reply.blob.sha256 = blob.sha256
        reply.blob.offset = request.offset
        reply.blob.totalSize = UInt64(blob.size)
        return reply
    }
}

extension Lopper_Wire_Request {
    /// Requests that change nothing: answering one twice is harmless.
    var isReadOnly: Bool {
        switch kind {
        case .blob?, .status?, .hello?: return true
        default: return false
        }
    }

    /// The worker id the request claims, for the kinds that carry one.
    var workerID: String? {
        switch kind {
        case .hello(let hello)?: return hello.workerID
        case .lease(let lease)?: return lease.workerID
        case .heartbeat(let heartbeat)?: return heartbeat.workerID
        case .goodbye(let goodbye)?: return goodbye.workerID
        default: return nil
        }
    }
}
