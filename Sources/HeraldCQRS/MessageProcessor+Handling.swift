import HeraldCore
import Logging
import Tracing

// MARK: Handling one message

extension MessageProcessor {
    /// Reads, in one go, which messages of a received batch their handlers have handled already.
    /// A message whose (handler, message id) occurs twice in the batch is left to be looked up
    /// on its turn, after the first one's handling.
    func readInbox(for messages: [ReceivedMessage]) async throws -> InboxSnapshot {
        var entries: [InboxEntry] = []
        var seen: Set<InboxEntry> = []
        var repeated: Set<InboxEntry> = []
        for message in messages where message.lockToken != nil {
            guard let subject = message.message.subject, let entry = self.handlers.entries[subject] else { continue }
            let inbox = InboxEntry(handler: entry.name, messageId: message.message.messageId)
            if seen.insert(inbox).inserted { entries.append(inbox) } else { repeated.insert(inbox) }
        }
        entries.removeAll { repeated.contains($0) }
        guard !entries.isEmpty else { return InboxSnapshot() }
        let found = try await self.broker.inboxEntries(among: entries)
        return InboxSnapshot(found: found, absent: Set(entries).subtracting(found))
    }

    /// Handles `message`; with a tracer, in a consumer span `process <source>` whose parent is
    /// the trace context the message carries (the span that created or sent it). `inbox` is what
    /// was read of the inbox with the message's batch; the inbox is asked about anything else.
    func process(_ message: ReceivedMessage, inbox: InboxSnapshot = InboxSnapshot()) async throws {
        guard message.lockToken != nil else { return }
        guard let tracer = self.tracer else { return try await self.processUntraced(message, inbox: inbox) }
        let parent = MessagingTracing.context(in: message.message.applicationProperties, tracer: tracer)
        try await MessagingTracing.withSpan("process \(self.source)", ofKind: .consumer, parent: parent, tracer: tracer) { span in
            span.attributes.setMessaging(operation: "process", type: "process", entity: self.source)
            span.attributes.setMessage(message)
            span.attributes[MessagingAttribute.consumerGroup] = self.configuration.name
            try await self.processUntraced(message, inbox: inbox)
        }
    }

    private func processUntraced(_ message: ReceivedMessage, inbox snapshot: InboxSnapshot) async throws {
        guard let token = message.lockToken else { return }
        guard let subject = message.message.subject, let entry = self.handlers.entries[subject] else {
            try await self.deadLetter(
                message, reason: ProcessorDeadLetterReason.unknownMessageType, description: "no handler for '\(message.message.subject ?? "")'"
            )
            return
        }
        var gate: GatePassage?
        if self.configuration.sequenceGate != nil, let sender = message.message.senderId, let sequence = message.message.senderSequence {
            let passage = try await self.passGate(message, sender: sender, sequence: sequence)
            switch passage.decision {
            case .duplicate:
                try await self.settle { try await self.broker.complete(token) }
                self.count { $0.duplicatesSuppressed += 1 }
                return
            case .hold:
                var transaction = BrokerTransaction()
                transaction.defer(token)
                try passage.write(passage.gate, in: &transaction)
                try await self.commit(transaction, for: message, token: token)
                self.count { $0.held += 1 }
                return
            case .handle:
                gate = passage
            }
        }
        let inbox = InboxEntry(handler: entry.name, messageId: message.message.messageId)
        if try await snapshot.contains(inbox, in: self.broker) {
            if let gate {
                // Handled before, but the gate must still move past it, or what it holds waits.
                var transaction = BrokerTransaction()
                transaction.complete(token)
                try gate.write(gate.gate.advanced(), in: &transaction)
                if try await self.commit(transaction, for: message, token: token) { try await self.releaseHeld(gate.key) }
            } else {
                try await self.settle { try await self.broker.complete(token) }
            }
            self.count { $0.duplicatesSuppressed += 1 }
            return
        }
        let context = HandlerContext(
            message: message, store: self.broker, clock: self.clock, handlerName: entry.name, logger: self.logger, tracer: self.tracer)
        let started = self.metrics.isEnabled ? ContinuousClock.now : nil
        do {
            if let lockedUntil = message.lockedUntil, !self.configuration.sessions {
                try await self.renewingLock(token, lockedUntil: lockedUntil) { try await entry.run(message, context) }
            } else {
                // A session message's lock is its session's, which the session's worker renews.
                try await entry.run(message, context)
            }
            if let started { self.metrics.handlerRan(for: ContinuousClock.now - started, error: nil) }
        } catch let error as UndecodableMessage {
            try await self.deadLetter(message, reason: ProcessorDeadLetterReason.undecodableMessage, description: error.description)
            return
        } catch {
            if let started { self.metrics.handlerRan(for: ContinuousClock.now - started, error: error) }
            try await self.failed(message, error)
            return
        }
        var transaction = context.transaction
        transaction.recordInbox(handler: entry.name, messageId: message.message.messageId)
        transaction.complete(token)
        if let gate { try gate.write(gate.gate.advanced(), in: &transaction) }
        if try await self.commit(transaction, for: message, token: token) {
            self.count { $0.handled += 1 }
            if let gate { try await self.releaseHeld(gate.key) }
        }
    }

    /// Commits a handling of `message` (locked by `token`); returns whether it took effect. A
    /// lost lock or an inbox hit is not an error of the processor's: the message is delivered
    /// again, or was handled already.
    @discardableResult
    private func commit(_ transaction: BrokerTransaction, for message: ReceivedMessage, token: LockToken) async throws -> Bool {
        do {
            _ = try await self.broker.commit(transaction)
            return true
        } catch let error as HeraldError where error.code == .alreadyProcessed {
            try await self.settle { try await self.broker.complete(token) }
            self.count { $0.duplicatesSuppressed += 1 }
        } catch let error as HeraldError where error.code == .lockLost || error.code == .sessionLockLost {
            self.count { $0.lockLosses += 1 }
        } catch let error as HeraldError where error.code == .storeFailed || error.code == .storeClosed {
            throw error
        } catch {
            try await self.failed(message, error)
        }
        return false
    }

    private func failed(_ message: ReceivedMessage, _ error: any Error) async throws {
        guard let token = message.lockToken else { return }
        if message.deliveryCount >= self.configuration.retry.maxAttempts {
            try await self.deadLetter(
                message, reason: ProcessorDeadLetterReason.handlerFailed, description: "\(message.deliveryCount) attempts; last: \(error)"
            )
            return
        }
        self.logger.debug(
            "handler failed; retrying",
            metadata: ["herald.message_id": "\(message.message.messageId)", "herald.delivery_count": "\(message.deliveryCount)", "error": "\(error)"]
        )
        try await self.settle { try await self.broker.abandon(token, delay: self.configuration.retry.delay(afterAttempt: message.deliveryCount)) }
        self.count { $0.retries += 1 }
    }

    private func deadLetter(_ message: ReceivedMessage, reason: String, description: String) async throws {
        guard let token = message.lockToken else { return }
        let description = String(description.prefix(1000))
        try await self.settle { try await self.broker.deadLetter(token, reason: reason, description: description) }
        self.count { $0.deadLettered[reason, default: 0] += 1 }
        self.logDeadLetter(message, reason: reason, description: description)
    }

    /// Logs at warning that the processor dead-lettered `message`: someone has to look at it.
    func logDeadLetter(_ message: ReceivedMessage, reason: String, description: String) {
        var metadata: Logger.Metadata = [
            "herald.message_id": "\(message.message.messageId)", "herald.source": "\(self.source)",
            "herald.dead_letter_reason": "\(reason)", "herald.dead_letter_description": "\(description)",
            "herald.delivery_count": "\(message.deliveryCount)",
        ]
        if let subject = message.message.subject { metadata["herald.subject"] = "\(subject)" }
        if let correlationId = message.message.correlationId { metadata["herald.correlation_id"] = "\(correlationId)" }
        self.logger.warning("message dead-lettered: \(reason)", metadata: metadata)
    }

    /// Runs a settlement; a lost lock only means someone else will see the message again.
    private func settle(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as HeraldError where error.code == .lockLost || error.code == .sessionLockLost {
            self.count { $0.lockLosses += 1 }
        }
    }
}

/// What was read of the inbox with a batch of received messages.
struct InboxSnapshot: Sendable {
    /// Entries the inbox held.
    var found: Set<InboxEntry> = []
    /// Entries it did not hold.
    var absent: Set<InboxEntry> = []

    /// Whether the inbox holds `entry`: as read with the batch, or, for an entry not read
    /// then, asked now.
    func contains(_ entry: InboxEntry, in broker: any TransactionalBroker) async throws -> Bool {
        if self.found.contains(entry) { return true }
        if self.absent.contains(entry) { return false }
        return try await broker.inboxContains(entry)
    }
}
