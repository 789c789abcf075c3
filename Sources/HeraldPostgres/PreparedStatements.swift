import Foundation
import HeraldCore
import PostgresNIO

/// A statement PostgreSQL parses and plans once per connection, then only binds and runs: for
/// the hot paths, where parsing and planning cost more than running (a one-message send's
/// statement runs in about half the server time prepared).
///
/// The name is derived from the text, so brokers of different schemas sharing a client (and its
/// connections) never collide, and a connection that has prepared one keeps it.
struct PreparedSQL: Sendable {
    let name: String
    let sql: String

    init(_ sql: String) {
        self.sql = sql
        // FNV-1a: stable across processes and runs (Swift's Hasher is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        self.name = "herald_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The statements of one schema that run prepared.
struct PreparedStatements: Sendable {
    /// Sends simple messages to one queue: ``Store/sendSimple(_:)``.
    let send: PreparedSQL
    /// Sends one simple message: ``send`` with a value per column instead of arrays, which
    /// PostgreSQL runs in about a third of the time (no `unnest`).
    let sendOne: PreparedSQL
    /// Completes one receive's messages, all or none, and remembers them completed:
    /// ``Store/completeInOneStatement(_:)``. Binds the entity id, whether the queue is the
    /// dead-letter queue, the sequence numbers, the lock nonce, the lock clock, the wall clock
    /// and the number of tokens.
    let complete: PreparedSQL

    init(tables: Tables) {
        let arrays = Store.sendArrayColumns.map { "$\($0.offset + 3)::\($0.type)[]" }.joined(separator: ", ")
        let names = Store.sendArrayColumns.map(\.name).joined(separator: ", ")
        // The INSERT in a WITH runs to completion although the query reads none of its rows;
        // ordinality numbers the rows in array order.
        self.send = PreparedSQL(
            """
            WITH s AS (UPDATE \(tables.entity) SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq - $2 AS base),
            i AS (INSERT INTO \(tables.message) (entity_id, seq, \(names))
                SELECT $1, s.base + v.o, \(names) FROM s, unnest(\(arrays)) WITH ORDINALITY AS v(\(names), o))
            SELECT base FROM s
            """
        )
        let values = Store.sendArrayColumns.map { "$\($0.offset + 3)::\($0.type)" }.joined(separator: ", ")
        self.sendOne = PreparedSQL(
            """
            WITH s AS (UPDATE \(tables.entity) SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq - $2 AS base),
            i AS (INSERT INTO \(tables.message) (entity_id, seq, \(names)) SELECT $1, s.base + 1, \(values) FROM s)
            SELECT base FROM s
            """
        )
        self.complete = PreparedSQL(
            """
            WITH d AS (DELETE FROM \(tables.message) WHERE entity_id = $1::int8 AND dlq = $2::bool
                AND seq = ANY($3::int8[]) AND lock_nonce = $4::uuid AND locked_until > $5::int8 RETURNING seq),
            r AS (INSERT INTO \(tables.settledDelivery) (entity_id, nonce, kind, settled_at, seqs)
                SELECT $1::int8, $4::uuid, \(SettlementKind.complete.rawValue), $6::int8, array_agg(seq ORDER BY seq) FROM d HAVING count(*) > 0)
            SELECT \(tables.schema).herald_expect_count((SELECT count(*) FROM d), $7::int8)
            """
        )
    }
}

extension Store {
    /// Runs a prepared statement with `bindings` (preparing it first on a connection that has not).
    @discardableResult
    func rows(_ statement: PreparedSQL, _ bindings: PostgresBindings) async throws -> [PostgresRow] {
        try await PreparedStatement.$current.withValue(statement) {
            var rows: [PostgresRow] = []
            for try await row in try await self.connection.execute(PreparedStatement(bindings: bindings), logger: self.logger) {
                rows.append(row)
            }
            return rows
        }
    }
}

/// postgres-nio names a prepared statement after a type and takes its text from the type; Herald's
/// texts name their schema, so this one type carries them all: `execute` reads the name and text
/// of the call (a task-local value ``Store/rows(_:_:)`` sets) before it suspends.
private struct PreparedStatement: PostgresPreparedStatement {
    typealias Row = PostgresRow

    @TaskLocal static var current = PreparedSQL("")

    static var name: String { Self.current.name }
    static var sql: String { Self.current.sql }

    let bindings: PostgresBindings

    func makeBindings() -> PostgresBindings { self.bindings }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// A one-dimensional array whose elements may be NULL, in PostgreSQL's binary format (postgres-nio
/// encodes arrays of non-optional elements only).
struct NullableArray<Element: NullableArrayElement>: PostgresEncodable {
    var elements: [Element?]

    static var psqlType: PostgresDataType { Element.psqlArrayOfOptionalsType }

    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) throws {
        // Dimensions, whether any element is NULL, the element type; then the dimension's length
        // and lower bound; then each element as its length (-1: NULL) and bytes.
        buffer.writeInteger(Int32(self.elements.isEmpty ? 0 : 1))
        buffer.writeInteger(Int32(self.elements.contains { $0 == nil } ? 1 : 0))
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !self.elements.isEmpty else { return }
        buffer.writeInteger(Int32(self.elements.count))
        buffer.writeInteger(Int32(1))
        for element in self.elements {
            guard let element else {
                buffer.writeInteger(Int32(-1))
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(Int32(0))
            try element.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
        }
    }
}

/// A type ``NullableArray`` holds.
protocol NullableArrayElement: PostgresEncodable {
    /// The type of an array of it.
    static var psqlArrayOfOptionalsType: PostgresDataType { get }
}

extension Int64: NullableArrayElement {
    static var psqlArrayOfOptionalsType: PostgresDataType { .int8Array }
}

extension String: NullableArrayElement {
    static var psqlArrayOfOptionalsType: PostgresDataType { .textArray }
}

extension Data: NullableArrayElement {
    static var psqlArrayOfOptionalsType: PostgresDataType { .byteaArray }
}
