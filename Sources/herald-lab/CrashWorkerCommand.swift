import ArgumentParser
import HeraldSQLite

/// `herald-lab crash-worker`: the child process of the SIGKILL crash test
/// (Tests/HeraldSQLiteTests/CrashTests.swift). It sends, receives, completes and abandons on one
/// queue until it is killed, logging each acknowledged step to an append-only file.
struct CrashWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-worker",
        abstract: "Send, receive and complete forever, logging every step (for the crash test)."
    )

    @Option(help: "The database file.")
    var data: String

    @Option(help: "The event log, appended to.")
    var log: String

    @Option(help: "The queue, created if missing.")
    var queue: String = "crash"

    @Option(help: "Concurrent senders.")
    var senders: Int = 4

    @Option(help: "Concurrent receivers.")
    var receivers: Int = 3

    func run() async throws {
        let log = try CrashWorker.EventLog(path: self.log)
        try await SQLiteBroker.withBroker(path: self.data) { broker in
            let worker = CrashWorker(broker: broker, queue: self.queue, log: log, senders: self.senders, receivers: self.receivers)
            try await worker.run()
        }
    }
}
