import GRDB
import GRDBSQLite

/// One run of a cached statement whose values are bound one by one, each through GRDB's own
/// `StatementBinding` (so a value is stored exactly as GRDB stores it), rather than gathered into
/// `StatementArguments` first: for the 19 columns of a message row, boxing the values cost more
/// than SQLite's insert itself. Only for statements that take no rows back; the SQL must not be
/// run through GRDB's `execute(arguments:)` too, since GRDB does not see these bindings.
struct BoundStatement {
    private let statement: Statement
    private let database: Database
    private var index: CInt = 0

    init(_ db: Database, sql: String) throws {
        self.init(db, statement: try db.cachedStatement(sql: sql))
    }

    /// A run of `statement`, a statement of `db` that its caller looked up once for many runs.
    init(_ db: Database, statement: Statement) {
        self.statement = statement
        self.database = db
    }

    /// Binds the next `?` to `value`, or to NULL.
    mutating func bind(_ value: (some StatementBinding)?) {
        self.index += 1
        let code: CInt
        if let value {
            code = value.bind(to: self.statement.sqliteStatement, at: self.index)
        } else {
            code = sqlite3_bind_null(self.statement.sqliteStatement, self.index)
        }
        // Binding does no I/O: a failure is a wrong index, a bug.
        precondition(code == SQLITE_OK, "binding parameter \(self.index) of \(self.statement.sql) failed: \(code)")
    }

    /// Runs the statement once with the values bound; throws SQLite's error as a
    /// `DatabaseError`, as GRDB would (the writer tells a full disk by its result code).
    func execute() throws {
        let handle = self.statement.sqliteStatement
        let expected = sqlite3_bind_parameter_count(handle)
        precondition(self.index == expected, "\(self.statement.sql) takes \(expected) values, not \(self.index)")
        let code = sqlite3_step(handle)
        if code != SQLITE_DONE {
            let message = String(cString: sqlite3_errmsg(self.database.sqliteConnection))
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: self.statement.sql)
        }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }
}
