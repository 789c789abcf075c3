import GRDB

@testable import HeraldSQLite

/// An empty database with Herald's schema, to read the plans SQLite chooses for the store's
/// statements.
struct QueryPlans {
    private let database: DatabaseQueue

    init() throws {
        self.database = try DatabaseQueue()
        try Schema.migrator.migrate(self.database)
    }

    /// The steps of `EXPLAIN QUERY PLAN` for `sql` with `arguments`, one line each.
    func plan(_ sql: String, _ arguments: StatementArguments) throws -> [String] {
        try self.database.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
        }
    }
}
