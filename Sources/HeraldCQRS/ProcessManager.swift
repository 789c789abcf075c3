public import Foundation
public import HeraldCore

/// The state of a long-running process (a saga), persisted as a versioned document and
/// correlated by id.
///
/// A handler loads it with ``HandlerContext/loadProcess(_:id:)``, changes it, sends commands and
/// schedules timeouts through the context, and saves it with ``HandlerContext/save(_:)``: the
/// state, the commands and the completion of the incoming message commit together. Two
/// deliveries racing on one process conflict on its version; one is retried.
public protocol ProcessManagerState: Codable, Sendable {
    /// Names the process type; its instances live in the collection `process.<name>`.
    static var processName: String { get }
    /// A new process.
    init(id: String)
}

/// A process manager's state with the version it was loaded at.
public struct ProcessInstance<State: ProcessManagerState>: Sendable {
    /// The process id (its correlation id).
    public let id: String
    /// The state; change it, then save it.
    public var state: State
    /// The version loaded (0: a new process).
    public let version: Int64
    /// Whether the process was loaded from the store (`false`: it starts now).
    public var exists: Bool { self.version > 0 }
}

extension HandlerContext {
    /// Loads process `id`, or a new one.
    ///
    /// With a tracer, a span `load process <name>` links to the trace that last saved the process
    /// (the process's state keeps that trace's context), so that a message of another trace that
    /// continues the process points back to where it began.
    public func loadProcess<State: ProcessManagerState>(_ type: State.Type, id: String) async throws -> ProcessInstance<State> {
        if let document = try await self.store.document(id, in: "process.\(State.processName)") {
            if let tracer = self.tracer { self.traceLoad(of: State.processName, id: id, stored: document.data, tracer: tracer) }
            return ProcessInstance(id: id, state: try MessageCoding.decode(State.self, from: document.data), version: document.version)
        }
        return ProcessInstance(id: id, state: State(id: id), version: 0)
    }

    /// Saves the process with the handling's commit, if nobody saved it since it was loaded. With
    /// a tracer, the state keeps the trace context of the handling that saved it.
    public func save<State: ProcessManagerState>(_ instance: ProcessInstance<State>) throws {
        var data = try MessageCoding.encode(instance.state)
        if let tracer = self.tracer { data = Self.keepingTraceContext(in: data, tracer: tracer) }
        self.withTransaction { $0.write(data, collection: "process.\(State.processName)", key: instance.id, expectedVersion: instance.version) }
    }

    /// Schedules `command` to reach `queue` at `time`: a timeout. Cancel it with
    /// ``cancelTimeout(_:in:)`` when it is no longer needed.
    public func scheduleTimeout(_ command: some Command, to queue: EntityPath, at time: Date) throws {
        try self.send(command, to: queue, at: time)
    }

    /// Cancels a timeout scheduled with ``scheduleTimeout(_:to:at:)``, if it has not fired.
    public func cancelTimeout(_ commandId: String, in queue: EntityPath) {
        self.cancelScheduled(commandId: commandId, in: queue)
    }
}
