// The embedded store on an in-memory database, for unit tests and previews.

extension SQLiteBroker {
    /// A broker on a new, empty in-memory SQLite database, for unit tests, previews and tools that
    /// need no file: the same store, schema and rules as on a file (the writer, its transactions and
    /// group commit included), without the fsyncs, the write-ahead log and the disk-space check.
    /// Nothing survives the broker: ``close()`` (or the end of ``run()``) discards every message
    /// and entity, and a crash loses them all. Each call makes a database of its own, which only
    /// grows as much as what it holds (messages, dead letters, events, documents) in memory.
    ///
    /// It is a `Service` like a broker on a file: nothing runs until ``run()``.
    ///
    /// ```swift
    /// let broker = try SQLiteBroker.inMemory()
    /// try await withThrowingTaskGroup(of: Void.self) { group in
    ///     group.addTask { try await broker.run() }
    ///     try await broker.createQueue("orders")
    ///     // …
    ///     await broker.close()
    /// }
    /// ```
    ///
    /// ``withInMemoryBroker(configuration:_:)`` runs one for the duration of a closure. The
    /// conformance suite passes on it except the cases that close a broker and open its storage
    /// again (`ConformanceRequirement.durableStorage`).
    ///
    /// - Parameter configuration: The clock and logger; ``Configuration/minimumFreeDiskBytes`` is
    ///   ignored (no disk).
    /// - Returns: The broker, not running yet.
    /// - Throws: ``/HeraldCore/HeraldError/Code/storeFailed`` when SQLite cannot create the database.
    public static func inMemory(configuration: Configuration = Configuration()) throws -> SQLiteBroker {
        try SQLiteBroker(file: nil, configuration: configuration)
    }

    /// Whether the broker keeps its store in memory (``inMemory(configuration:)``) rather than in a file.
    public var isInMemory: Bool { self.path == nil }

    /// Runs a broker on a new in-memory database (``inMemory(configuration:)``) for the duration
    /// of `body`, then closes it, which discards everything it held.
    ///
    /// ```swift
    /// try await SQLiteBroker.withInMemoryBroker { broker in
    ///     try await broker.createQueue("orders")
    ///     try await broker.send(Message(text: "hello"), to: .queue("orders"))
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - configuration: The clock and logger.
    ///   - body: What to do with the broker.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or what ``inMemory(configuration:)`` throws.
    public static func withInMemoryBroker<T>(
        configuration: Configuration = Configuration(), _ body: (SQLiteBroker) async throws -> T
    ) async throws -> T {
        try await Self.withRunning(try Self.inMemory(configuration: configuration), body)
    }

    /// Like ``running(path:configuration:)``, on a new in-memory database (``inMemory(configuration:)``).
    package static func runningInMemory(configuration: Configuration = Configuration()) throws -> SQLiteBroker {
        let broker = try SQLiteBroker.inMemory(configuration: configuration)
        Task { try await broker.run() }
        return broker
    }
}
