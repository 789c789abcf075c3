import ArgumentParser
import Foundation
import HeraldCore
import HeraldWire

/// The selection the bulk commands share: sequence numbers, `--all`, or filter conditions.
struct DeadLetterSelectionArguments: ParsableArguments {
    @Argument(help: "The queue or subscription (topic/subscriptions/name).")
    var entity: String

    @Argument(help: "The sequence numbers of the dead letters (or select with --all or the filter options).")
    var sequenceNumbers: [Int64] = []

    @Flag(help: "Every dead letter (that matches the filter options, if any).")
    var all = false

    @OptionGroup var filter: DeadLetterFilterArguments

    @Flag(help: "Start the job and print it, without waiting for it to finish.")
    var noWait = false

    /// Whether the arguments pick dead letters by sequence number, `--all` or a filter.
    var selects: Bool { !self.sequenceNumbers.isEmpty || self.all || !self.filter.filter.isEmpty }

    func validate() throws {
        if !self.sequenceNumbers.isEmpty && (self.all || !self.filter.filter.isEmpty) {
            throw ValidationError("give sequence numbers, or --all and filter options, not both")
        }
    }
}

/// What the bulk commands print with `--json`: the job, and the sequence numbers named that are
/// no dead letters.
struct BulkJobReport: Encodable {
    var job: WireBulkJob
    var resubmitted: Int?
    var moved: Int?
    var purged: Int?
    var notFound: [Int64]
}

/// Runs a bulk job on dead letters for `deadletter resubmit|move|purge`.
enum DeadLetterJobRun {
    /// Starts `action` on the dead letters `selection` picks, waits for it (unless `--no-wait`)
    /// and prints what it did; named sequence numbers that are no dead letters are an error.
    static func run(_ action: DeadLetterAction, _ selection: DeadLetterSelectionArguments, connection: ConnectionOptions) async throws {
        try await reportingErrors(json: connection.json) {
            let queue = try DeadLetterCommand.deadLetterQueue(of: selection.entity)
            try await connection.withBroker { broker in
                let broker = try manageable(broker)
                var missing: [Int64] = []
                let chosen: DeadLetterSelection
                if selection.sequenceNumbers.isEmpty {
                    chosen = .matching(selection.filter.filter)
                } else {
                    var present: [Int64] = []
                    for number in selection.sequenceNumbers {
                        do {
                            _ = try await DeadLetterQuery.message(number, in: queue, broker: broker)
                            present.append(number)
                        } catch let error as HeraldError where error.code == .messageNotFound {
                            missing.append(number)
                        }
                    }
                    if present.isEmpty { throw Self.notDeadLetters(missing, of: queue) }
                    chosen = .sequenceNumbers(present)
                }
                var job = try await broker.startBulkJob(action, on: queue.origin, selection: chosen)
                if !selection.noWait { job = try await broker.waitForBulkJob(job.id) }
                try Self.print(job, missing: missing, json: connection.json, waited: !selection.noWait)
                if !missing.isEmpty { throw Self.notDeadLetters(missing, of: queue) }
                if job.state == .failed { throw CommandFailure("the job failed: \(job.failure ?? "no reason given")", code: "jobFailed") }
            }
        }
    }

    private static func notDeadLetters(_ numbers: [Int64], of queue: EntityPath) -> HeraldError {
        HeraldError(.messageNotFound, "no dead letter of \(queue.origin) with sequence number \(numbers.map(String.init).joined(separator: ", "))")
    }

    private static func print(_ job: BulkJob, missing: [Int64], json: Bool, waited: Bool) throws {
        if json {
            var report = BulkJobReport(job: WireBulkJob(job), notFound: missing)
            switch job.action {
            case .resubmit: report.resubmitted = job.applied
            case .move: report.moved = job.applied
            case .purge: report.purged = job.applied
            }
            return try CommandOutput.printJSON(report)
        }
        guard waited else { return CommandOutput.print("started job \(job.id): \(job.action) of \(job.total) dead letter(s) of \(job.entity)") }
        var line: String
        switch job.action {
        case .resubmit: line = "resubmitted \(job.applied) dead letter(s) to \(job.entity)"
        case .move(let target): line = "moved \(job.applied) dead letter(s) of \(job.entity) to \(target)"
        case .purge: line = "purged \(job.applied) dead letter(s) of \(job.entity)"
        }
        if job.notFound > 0 { line += "; \(job.notFound) no longer there" }
        if job.failed > 0 { line += "; \(job.failed) refused by the target (\(job.failure ?? "no reason given")), left in place" }
        if job.state == .cancelled { line += "; the job was cancelled" }
        CommandOutput.print(line)
    }
}

extension DeadLetterCommand {
    struct Resubmit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move dead letters back to their queue or subscription.",
            discussion: """
                A resubmitted message keeps its sequence number and starts again with a delivery \
                count of zero.
                Examples:
                  herald deadletter resubmit orders 17 18
                  herald deadletter resubmit orders --all --reason Timeout
                  herald deadletter resubmit events/subscriptions/audit --all
                """
        )

        @OptionGroup var selection: DeadLetterSelectionArguments
        @OptionGroup var connection: ConnectionOptions

        func validate() throws {
            if !self.selection.selects { throw ValidationError("give sequence numbers, --all, or filter options") }
        }

        func run() async throws {
            try await DeadLetterJobRun.run(.resubmit, self.selection, connection: self.connection)
        }
    }

    struct Move: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move dead letters to another queue or topic (all of them unless selected).",
            discussion: """
                Each becomes a new message of the target, with its body, properties and ids, and \
                leaves the dead-letter queue in the same transaction. A target that refuses one \
                (too large, or a session entity and no session id) leaves it in place.
                Examples:
                  herald deadletter move orders --to orders-retry
                  herald deadletter move orders --to events --topic --reason Timeout
                """
        )

        @OptionGroup var selection: DeadLetterSelectionArguments

        @Option(help: "The queue (or, with --topic, the topic) to move them to.")
        var to: String

        @Flag(help: "The target is a topic.")
        var topic = false

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let target: EntityPath
            do {
                target = try EntityPath(parsing: self.to, isTopic: self.topic)
            } catch {
                return try await reportingErrors(json: self.connection.json) { throw error }
            }
            try await DeadLetterJobRun.run(.move(to: target), self.selection, connection: self.connection)
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead letters of a queue or subscription (all of them unless selected).",
            discussion: """
                Examples:
                  herald deadletter purge orders
                  herald deadletter purge orders --reason TTLExpired
                """
        )

        @OptionGroup var selection: DeadLetterSelectionArguments
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await DeadLetterJobRun.run(.purge, self.selection, connection: self.connection)
        }
    }

    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the bulk jobs on dead letters, newest first.",
            discussion: "Example: herald deadletter jobs --json"
        )

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                try await self.connection.withBroker { broker in
                    let jobs = try await manageable(broker).bulkJobs()
                    if self.connection.json { return try CommandOutput.printJSON(BulkJobList(jobs: jobs.map(WireBulkJob.init))) }
                    if jobs.isEmpty { return CommandOutput.print("(no jobs)") }
                    var table = Table([
                        .init("ID"), .init("ENTITY"), .init("ACTION"), .init("STATE"), .init("DONE", alignRight: true), .init("TOTAL", alignRight: true),
                        .init("STARTED"),
                    ])
                    for job in jobs {
                        table.append([
                            job.id, job.entity.description, job.action.description, job.state.rawValue, "\(job.processed)", "\(job.total)",
                            MessageRendering.time(job.createdAt),
                        ])
                    }
                    CommandOutput.print(table.render())
                }
            }
        }
    }

    struct Job: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a bulk job's progress, or cancel it.",
            discussion: "Example: herald deadletter job 3f2a… --cancel"
        )

        @Argument(help: "The job's id.")
        var id: String

        @Flag(help: "Stop the job after its current step.")
        var cancel = false

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors(json: self.connection.json) {
                try await self.connection.withBroker { broker in
                    let broker = try manageable(broker)
                    let job = self.cancel ? try await broker.cancelBulkJob(self.id) : try await broker.bulkJob(self.id)
                    if self.connection.json { return try CommandOutput.printJSON(WireBulkJob(job)) }
                    var details = Details()
                    details.append("Job", job.id)
                    details.append("Entity", job.entity.description)
                    details.append("Action", job.action.description)
                    details.append("State", job.state.rawValue)
                    details.append("Progress", "\(job.processed) of \(job.total)")
                    details.append("Applied", "\(job.applied)")
                    details.append("Not found", "\(job.notFound)")
                    details.append("Refused", "\(job.failed)")
                    if let failure = job.failure { details.append("Failure", failure) }
                    details.append("Started", MessageRendering.time(job.createdAt))
                    details.append("Updated", MessageRendering.time(job.updatedAt))
                    CommandOutput.print(details.render())
                }
            }
        }
    }
}
