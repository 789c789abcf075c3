extension BrokerTransaction {
    /// One step of a commit. Every store applies ``steps`` in order, each with its own SQL, so the
    /// order (and what fails first) is the same on every store.
    package enum Step: Sendable, Hashable {
        /// Records that a handler handled a message; fails with
        /// ``HeraldError/Code/alreadyProcessed`` if it already did.
        case recordInbox(InboxEntry)
        /// Writes or deletes a document at its expected version.
        case writeDocument(DocumentWrite)
        /// Appends events to a stream at its expected version, and publishes them.
        case append(Append)
        /// Sends consecutive messages to one entity, as one batch.
        case send([Message], to: EntityPath)
        /// Cancels a scheduled message by sequence number; an unknown one fails the transaction.
        case cancelScheduled(Int64, in: EntityPath)
        /// Cancels the scheduled message with a message id, if it is still scheduled.
        case cancelScheduledMessage(messageId: String, in: EntityPath)
        /// Defers a received message.
        case deferMessage(LockToken)
        /// Dead-letters a received message.
        case deadLetter(LockToken, reason: String, description: String?)
        /// Completes received messages, all at once.
        case complete([LockToken])
    }

    /// The steps of the transaction, in the order stores apply them: inbox records first (a
    /// message handled twice fails before anything is written), then documents, settlements and
    /// completions, and last appends, sends and cancellations. An append or a send locks a row
    /// many transactions share (the event log's head, the target entity's sequence counter)
    /// until the commit, on PostgreSQL; coming last, it holds that lock for as short as it can.
    package var steps: [Step] {
        var steps: [Step] = []
        steps += self.inboxEntries.map(Step.recordInbox)
        steps += self.documentWrites.map(Step.writeDocument)
        for settlement in self.settlements {
            if let reason = settlement.deadLetterReason {
                steps.append(.deadLetter(settlement.token, reason: reason, description: settlement.deadLetterDescription))
            } else {
                steps.append(.deferMessage(settlement.token))
            }
        }
        if !self.completions.isEmpty { steps.append(.complete(self.completions)) }
        steps += self.appends.map(Step.append)
        var index = self.sends.startIndex
        while index < self.sends.endIndex {
            let entity = self.sends[index].entity
            var end = index
            while end < self.sends.endIndex && self.sends[end].entity == entity { end += 1 }
            steps.append(.send(self.sends[index..<end].map(\.message), to: entity))
            index = end
        }
        for cancellation in self.cancellations {
            if let sequenceNumber = cancellation.sequenceNumber {
                steps.append(.cancelScheduled(sequenceNumber, in: cancellation.entity))
            } else if let messageId = cancellation.messageId {
                steps.append(.cancelScheduledMessage(messageId: messageId, in: cancellation.entity))
            }
        }
        return steps
    }
}
