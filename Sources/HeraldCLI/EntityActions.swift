import HeraldCore

/// What `herald queue`, `herald topic` and `herald subscription` do, once for the three kinds:
/// each subcommand declares its arguments and help, then calls one of these.
enum EntityActions {
    /// Creates the entity `path` names, then prints it (its details with `--json`).
    static func create(_ path: EntityPath, options: EntityOptions, filter: SubscriptionFilter = .all, connection: ConnectionOptions) async throws {
        try await reportingErrors(json: connection.json) {
            try await connection.withBroker(creating: true) { broker in
                switch path.kind {
                case .queue: try await broker.createQueue(path.name, options: options)
                case .topic: try await broker.createTopic(path.name, options: options)
                case .subscription: try await broker.createSubscription(path.name, topic: path.topic ?? "", options: options, filter: filter)
                }
                let status = try await Inventory.status(of: path, in: broker)
                if connection.json { return try EntityRendering.printDetails(status, json: true) }
                CommandOutput.print("created \(path.kind.rawValue) \(path)")
            }
        }
    }

    /// Changes the options of the entity `path` names, then prints it (its details with `--json`).
    static func update(_ path: EntityPath, change: EntityOptionsChange, connection: ConnectionOptions) async throws {
        try await reportingErrors(json: connection.json) {
            try await connection.withBroker { broker in
                _ = try await manageable(broker).updateOptions(of: path, change)
                let status = try await Inventory.status(of: path, in: broker)
                if connection.json { return try EntityRendering.printDetails(status, json: true) }
                CommandOutput.print("updated \(path.kind.rawValue) \(path)")
                try EntityRendering.printDetails(status, json: false)
            }
        }
    }

    /// Deletes the entity `path` names, with its messages (and a topic's subscriptions).
    static func delete(_ path: EntityPath, connection: ConnectionOptions) async throws {
        try await reportingErrors(json: connection.json) {
            try await connection.withBroker { broker in
                switch path.kind {
                case .queue: try await broker.deleteQueue(path.name)
                case .topic: try await broker.deleteTopic(path.name)
                case .subscription: try await broker.deleteSubscription(path.name, topic: path.topic ?? "")
                }
                if connection.json { return try CommandOutput.printJSON(["deleted": path.description]) }
                CommandOutput.print("deleted \(path.kind.rawValue) \(path)")
            }
        }
    }

    /// Lists the queues, the topics, or the subscriptions of `topic`.
    static func list(_ kind: EntityPath.Kind, topic: String? = nil, connection: ConnectionOptions) async throws {
        try await reportingErrors(json: connection.json) {
            try await connection.withBroker { broker in
                try EntityRendering.printList(try await Inventory.list(kind, topic: topic, in: broker), json: connection.json)
            }
        }
    }

    /// Prints the entity's options, filter and counts.
    static func show(_ path: EntityPath, connection: ConnectionOptions) async throws {
        try await reportingErrors(json: connection.json) {
            try await connection.withBroker { broker in
                try EntityRendering.printDetails(try await Inventory.status(of: path, in: broker), json: connection.json)
            }
        }
    }
}
