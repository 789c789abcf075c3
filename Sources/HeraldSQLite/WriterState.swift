import Foundation
import GRDB
import HeraldCore

/// A queue, topic or subscription as the writer caches it.
final class EntityRecord {
    let id: Int64
    let path: EntityPath
    /// Changed only by an options update, in the writer, once the new options are stored.
    var options: EntityOptions
    /// Changed only by a rule change, in the writer, once the new rules are stored.
    var rules: [SubscriptionRule]
    let topicId: Int64?
    /// The highest sequence number ever assigned; persisted at each commit.
    var lastSequence: Int64

    init(id: Int64, path: EntityPath, options: EntityOptions, rules: [SubscriptionRule], topicId: Int64?, lastSequence: Int64) {
        self.id = id
        self.path = path
        self.options = options
        self.rules = rules
        self.topicId = topicId
        self.lastSequence = lastSequence
    }
}

/// Who holds a session, until when (monotonic nanoseconds).
struct SessionHold {
    var nonce: UUID
    var lockedUntil: Int64
}

/// Everything the writer keeps in memory: the entity cache, session locks (GUARANTEES.md allows lock
/// state in memory: a restart releases every lock), and what the current group changed.
/// Only the writer thread touches it.
final class WriterState {
    private(set) var entitiesByKey: [String: EntityRecord] = [:]
    private(set) var subscriptionsByTopic: [Int64: [EntityRecord]] = [:]
    var sessionLocks: [Int64: [String: SessionHold]] = [:]
    private var dirtySequences: [Int64: EntityRecord] = [:]
    private var touchedEntities: Set<String> = []
    private var touchedInBatch: Set<String> = []
    private var readyStarts: [ReadyKey: ReadyStart] = [:]
    /// The starts the running operation set, forgotten if it is rolled back.
    private var readyStartsSetByOperation: [ReadyKey] = []
    var duplicatePrune = PruneSchedule.duplicateHistory
    var settlementPrune = PruneSchedule.settlements
    /// ``SQLiteBroker/Configuration/_completionLockTime``: the lock-clock time a completion
    /// checks a lock's expiry against, given the current one.
    let completionLockTime: @Sendable (_ monotonicNow: Int64) -> Int64

    init(db: Database, completionLockTime: @escaping @Sendable (Int64) -> Int64 = { $0 }) throws {
        self.completionLockTime = completionLockTime
        let decoder = JSONDecoder()
        var byId: [Int64: EntityRecord] = [:]
        let rows = try Row.fetchAll(db, sql: "SELECT id, kind, name, topic_id, options, rules, last_seq FROM entity ORDER BY topic_id IS NOT NULL, id")
        for row in rows {
            let id: Int64 = row[0]
            let kind: String = row[1]
            let name: String = row[2]
            let topicId: Int64? = row[3]
            let options = try decoder.decode(EntityOptions.self, from: Data((row[4] as String).utf8))
            let rulesJSON: String? = row[5]
            let rules = try rulesJSON.map { try decoder.decode([SubscriptionRule].self, from: Data($0.utf8)) } ?? []
            let path: EntityPath
            switch kind {
            case "queue": path = .queue(name)
            case "topic": path = .topic(name)
            default:
                guard let topicId, let topic = byId[topicId] else { continue }
                path = .subscription(name, of: topic.path.name)
            }
            let record = EntityRecord(id: id, path: path, options: options, rules: rules, topicId: topicId, lastSequence: row[6])
            byId[id] = record
            self.add(record)
        }
    }

    func add(_ record: EntityRecord) {
        self.entitiesByKey[record.path.entityKey] = record
        if let topicId = record.topicId {
            self.subscriptionsByTopic[topicId, default: []].append(record)
        }
    }

    func remove(_ record: EntityRecord) {
        self.entitiesByKey[record.path.entityKey] = nil
        self.sessionLocks[record.id] = nil
        self.dirtySequences[record.id] = nil
        self.messagesMayBeReady(in: record.id)
        if let topicId = record.topicId {
            self.subscriptionsByTopic[topicId]?.removeAll { $0.id == record.id }
        } else {
            for subscription in self.subscriptionsByTopic[record.id] ?? [] { self.remove(subscription) }
            self.subscriptionsByTopic[record.id] = nil
        }
    }

    func entity(_ key: String) -> EntityRecord? { self.entitiesByKey[key] }

    func subscriptions(of topic: EntityRecord) -> [EntityRecord] { self.subscriptionsByTopic[topic.id] ?? [] }

    /// Assigns the next sequence number of `entity`.
    func nextSequence(_ entity: EntityRecord) -> Int64 {
        entity.lastSequence += 1
        self.dirtySequences[entity.id] = entity
        return entity.lastSequence
    }

    /// Writes the sequence counters assigned in this group, once per entity.
    func flushSequences(_ db: Database) throws {
        guard !self.dirtySequences.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "UPDATE entity SET last_seq = ? WHERE id = ?")
        for (id, record) in self.dirtySequences {
            try statement.execute(arguments: [record.lastSequence, id])
        }
        self.dirtySequences.removeAll(keepingCapacity: true)
    }

    /// Where a receive's walk may start (see ``ReadyStart``), if a valid start is known.
    func readyStart(_ key: ReadyKey, monotonic: Int64, wall: Int64) -> ReadyStart? {
        guard let start = self.readyStarts[key] else { return nil }
        guard start.isValid(monotonic: monotonic, wall: wall) else {
            self.readyStarts[key] = nil
            return nil
        }
        return start
    }

    func setReadyStart(_ start: ReadyStart, for key: ReadyKey) {
        self.readyStarts[key] = start
        self.readyStartsSetByOperation.append(key)
    }

    /// Forgets where the walks of `entityId` start: a message it had walked over may be receivable
    /// now (unlocked, moved in or out of the dead-letter queue, or made visible).
    func messagesMayBeReady(in entityId: Int64) {
        self.readyStarts[ReadyKey(entityId: entityId, deadLetter: false)] = nil
        self.readyStarts[ReadyKey(entityId: entityId, deadLetter: true)] = nil
    }

    /// Messages of `entity` that were locked or invisible are receivable again (a release, an
    /// abandon, a resubmitted dead letter, scheduled messages come due, a session's locks
    /// cleared): the walks start from the first candidate again, and waiting receivers wake after
    /// the commit. (A send only touches: its messages come after every start.)
    func madeReceivableAgain(_ entity: EntityRecord) {
        self.messagesMayBeReady(in: entity.id)
        self.touch(entity)
    }

    /// Forgets where the walks of `entityId`'s dead-letter queue start: a message moved in may lie
    /// before that start. The queue's own start stays: a message leaving it makes none receivable.
    func deadLettersMayBeReady(in entityId: Int64) {
        self.readyStarts[ReadyKey(entityId: entityId, deadLetter: true)] = nil
    }

    /// An operation ended. When it was rolled back, what its receives locked is unlocked again:
    /// the starts it set are forgotten (the others stay, whatever the operation).
    func operationEnded(rolledBack: Bool) {
        if rolledBack {
            for key in self.readyStartsSetByOperation { self.readyStarts[key] = nil }
        }
        self.readyStartsSetByOperation.removeAll(keepingCapacity: true)
    }

    /// Marks an entity as having new visible messages, so waiting receivers wake after the commit.
    func touch(_ entity: EntityRecord) {
        self.touchedEntities.insert(entity.path.entityKey)
        self.touchedInBatch.insert(entity.path.entityKey)
    }

    /// The entities touched since the last call: the writer hands them to the long polls parked on
    /// them after each batch of operations (see ``GroupCommitter/perform(whenTouching:after:orAfter:_:)``).
    func takeTouchedInBatch() -> Set<String> {
        defer { self.touchedInBatch.removeAll(keepingCapacity: true) }
        return self.touchedInBatch
    }

    func takeTouchedEntities() -> Set<String> {
        defer { self.touchedEntities.removeAll(keepingCapacity: true) }
        return self.touchedEntities
    }
}
