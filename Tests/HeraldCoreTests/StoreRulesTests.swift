import Foundation
import HeraldCore
import Testing

/// The rules every store applies, written once in the core: how a message is stored, when it goes
/// to the dead-letter queue, what a stored state reads as, and the order of a commit's steps.
@Suite struct StoreRulesTests {
    private let now: Int64 = 1_800_000_000_000

    // MARK: Visibility and expiry

    @Test func aMessageWithoutScheduleIsVisibleAtOnce() {
        let enqueued = EnqueuedMessage(Message(text: "now"), now: self.now, defaultTimeToLive: nil)
        #expect(enqueued.state == .active)
        #expect(enqueued.visibleAt == 0)
        #expect(enqueued.enqueuedAt == self.now)
        #expect(enqueued.expiresAt == nil)
        #expect(enqueued.scheduledAt == nil)
        #expect(enqueued.isVisibleNow)
    }

    @Test func aFutureScheduleHidesTheMessageUntilItsTime() {
        let later = self.now + 30_000
        let message = Message(body: Data(), scheduledEnqueueTime: Date(millisecondsSince1970: later))
        let enqueued = EnqueuedMessage(message, now: self.now, defaultTimeToLive: nil)
        #expect(enqueued.state == .scheduled)
        #expect(enqueued.visibleAt == later)
        #expect(enqueued.enqueuedAt == later)
        #expect(enqueued.scheduledAt == later)
        #expect(!enqueued.isVisibleNow)
    }

    @Test(arguments: [Int64(0), -1, -86_400_000])
    func aScheduleThatHasComeIsVisibleAtOnce(offset: Int64) {
        let time = self.now + offset
        let message = Message(body: Data(), scheduledEnqueueTime: Date(millisecondsSince1970: time))
        let enqueued = EnqueuedMessage(message, now: self.now, defaultTimeToLive: nil)
        #expect(enqueued.state == .active)
        #expect(enqueued.visibleAt == 0, "visible without comparing against the wall clock")
        #expect(enqueued.enqueuedAt == self.now)
        #expect(enqueued.scheduledAt == time, "the schedule as sent is kept")
    }

    @Test func expiryCountsFromTheEnqueueTimeWithTheMessagesOwnTimeToLiveFirst() {
        let own = Message(body: Data(), timeToLive: .seconds(5))
        #expect(EnqueuedMessage(own, now: self.now, defaultTimeToLive: .seconds(60)).expiresAt == self.now + 5000)
        let inherited = Message(body: Data())
        #expect(EnqueuedMessage(inherited, now: self.now, defaultTimeToLive: .seconds(60)).expiresAt == self.now + 60_000)
        let scheduled = Message(body: Data(), timeToLive: .seconds(5), scheduledEnqueueTime: Date(millisecondsSince1970: self.now + 1000))
        #expect(EnqueuedMessage(scheduled, now: self.now, defaultTimeToLive: nil).expiresAt == self.now + 6000, "from the scheduled time")
    }

    @Test func anAbandonDelayHidesTheMessageForThatLong() {
        #expect(EntityOptions.visibleAt(afterAbandonDelay: nil, now: self.now) == 0)
        #expect(EntityOptions.visibleAt(afterAbandonDelay: .zero, now: self.now) == 0)
        #expect(EntityOptions.visibleAt(afterAbandonDelay: .milliseconds(1), now: self.now) == self.now + 1)
        #expect(EntityOptions.visibleAt(afterAbandonDelay: .seconds(10), now: self.now) == self.now + 10_000)
    }

    // MARK: Dead letters

    @Test func aMessageIsExhaustedAtTheMaximumDeliveryCountOutsideTheDeadLetterQueue() {
        let options = EntityOptions(maxDeliveryCount: 3)
        #expect(!options.isExhausted(deliveryCount: 2, inDeadLetterQueue: false))
        #expect(options.isExhausted(deliveryCount: 3, inDeadLetterQueue: false))
        #expect(options.isExhausted(deliveryCount: 4, inDeadLetterQueue: false))
        #expect(!options.isExhausted(deliveryCount: 3_000, inDeadLetterQueue: true), "a dead letter is never dead-lettered again")
        #expect(options.exhaustionThreshold(inDeadLetterQueue: false) == 3)
        #expect(options.exhaustionThreshold(inDeadLetterQueue: true) == .max)
    }

    @Test func theBrokersDeadLetterTextsAreFixed() {
        #expect(DeadLetterReason.maxDeliveryCountExceeded == "MaxDeliveryCountExceeded")
        #expect(DeadLetterReason.ttlExpired == "TTLExpired")
        #expect(DeadLetterReason.description(deliveries: 7) == "delivered 7 times")
        #expect(EntityOptions(maxDeliveryCount: 4).exhaustedDescription == "delivered 4 times")
    }

    // MARK: Stored state

    @Test func storedStateCodesAreFixed() throws {
        #expect(StoredState.allCases.map(\.code) == [0, 1, 2])
        #expect(try StoredState(code: 0) == .active)
        #expect(try StoredState(code: 1) == .deferred)
        #expect(try StoredState(code: 2) == .scheduled)
    }

    @Test(arguments: [Int64(3), -1, .max])
    func anUnknownStoredStateIsAStoreFailure(code stored: Int64) {
        #expect(code { _ = try StoredState(code: stored) } == .storeFailed)
    }

    @Test func aStoredStateReadsAsItsState() {
        #expect(StoredState.allCases.map(\.readState) == [.active, .deferred, .scheduled])
    }

    @Test func aScheduledMessageReadsActiveOnceItsTimeHasCome() {
        #expect(StoredState.scheduled.readState(visibleAt: self.now + 1, now: self.now) == .scheduled)
        #expect(StoredState.scheduled.readState(visibleAt: self.now, now: self.now) == .active)
        #expect(StoredState.deferred.readState(visibleAt: self.now + 1, now: self.now) == .deferred)
        #expect(StoredState.active.readState(visibleAt: self.now + 1, now: self.now) == .active, "an abandon delay is not a schedule")
    }

    // MARK: Duplicate detection

    @Test func senderPairsAreRememberedByExactPairForADayAtLeast() {
        #expect(DuplicateDetection.senderKey(of: Message(body: Data(), senderId: "s", senderSequence: 12)) == "12:s")
        #expect(DuplicateDetection.senderKey(of: Message(body: Data())) == nil)
        #expect(DuplicateDetection.senderPairExpiry(now: self.now, window: nil) == self.now + 86_400_000)
        #expect(DuplicateDetection.senderPairExpiry(now: self.now, window: 1000) == self.now + 86_400_000)
        #expect(DuplicateDetection.senderPairExpiry(now: self.now, window: 2 * 86_400_000) == self.now + 2 * 86_400_000)
        #expect(DuplicateDetection.messageIdExpiry(now: self.now, window: 1000) == self.now + 1000)
    }

    // MARK: Checks

    @Test func aSendBatchIsCheckedOnce() {
        #expect(code { try HeraldLimits.checkBatchCount(HeraldLimits.maxBatchCount) } == nil)
        #expect(code { try HeraldLimits.checkBatchCount(HeraldLimits.maxBatchCount + 1) } == .batchTooLarge)
    }

    @Test func aMessageASessionSubscriptionWouldTakeNeedsASession() {
        struct Subscription: StoredEntity {
            var path: EntityPath
            var options: EntityOptions
            var rules: [SubscriptionRule]
        }
        let sessions = Subscription(
            path: .subscription("s", of: "t"), options: EntityOptions(requiresSession: true),
            rules: [SubscriptionRule(name: "a", filter: SubscriptionFilter(subject: "a"))])
        let check = { (message: Message) in code { try Message.checkBatch([message], against: EntityOptions(), subscriptions: [sessions]) } }
        #expect(check(Message(text: "x", subject: "a")) == .sessionRequired)
        #expect(check(Message(text: "x", subject: "a", sessionId: "s1")) == nil)
        #expect(check(Message(text: "x", subject: "b")) == nil, "a message the subscription does not take")
    }

    // MARK: Rules

    @Test func rulesMatchWhenAnyRuleMatchesAndNoRulesMatchNothing() {
        let rules = [
            SubscriptionRule(name: "a", filter: SubscriptionFilter(subject: "a")),
            SubscriptionRule(name: "to", filter: SubscriptionFilter(to: "x", replyToSessionId: "r")),
        ]
        #expect(rules.matches(Message(text: "1", subject: "a")))
        #expect(rules.matches(Message(body: Data("2".utf8), replyToSessionId: "r", to: "x")))
        #expect(!rules.matches(Message(body: Data("3".utf8), to: "x")), "every condition of one filter must hold")
        #expect(![SubscriptionRule]().matches(Message(text: "4")))
        #expect(!SubscriptionFilter.none.matches(Message(text: "5")))
        #expect(
            SubscriptionFilter(messageId: "m", replyTo: "q", sessionId: "s").matches(
                Message(messageId: "m", body: Data("6".utf8), sessionId: "s", replyTo: "q")))
    }

    @Test func aRuleIsAddedOnceUpToTheLimitAndRemovedByName() {
        let path = EntityPath.subscription("s", of: "t")
        var rules = path.initialRules(filter: .all)
        #expect(rules.map(\.name) == ["$Default"])
        #expect(code { _ = try rules.adding(SubscriptionRule(name: "$Default", filter: .all), of: path) } == .entityAlreadyExists)
        for index in 1..<HeraldLimits.maxRulesPerSubscription {
            rules = (try? rules.adding(SubscriptionRule(name: "r\(index)", filter: .all), of: path)) ?? rules
        }
        #expect(rules.count == HeraldLimits.maxRulesPerSubscription)
        #expect(code { _ = try rules.adding(SubscriptionRule(name: "one-more", filter: .all), of: path) } == .invalidArgument)
        #expect(code { _ = try rules.removing(named: "absent", of: path) } == .entityNotFound)
        #expect((try? rules.removing(named: "r1", of: path))?.count == HeraldLimits.maxRulesPerSubscription - 1)
    }

    @Test func aRuleNameHasOneToFiftyCharactersThatSurviveAURL() {
        let valid = { (name: String) in code { try SubscriptionRule(name: name, filter: .all).validate() } }
        #expect(valid(String(repeating: "é", count: HeraldLimits.maxRuleNameLength)) == nil)
        #expect(valid(String(repeating: "a", count: HeraldLimits.maxRuleNameLength + 1)) == .invalidName)
        #expect(valid("") == .invalidName)
        #expect(valid("a/b") == .invalidName)
        #expect(valid("a\u{7}") == .invalidName)
        #expect(valid("$Default") == nil)
        #expect(code { try EntityPath.queue("q").checkRulesTarget() } == .invalidArgument)
        #expect(code { try EntityPath.subscription("s", of: "t").deadLetter.checkRulesTarget() } == .invalidArgument)
    }

    @Test func aFilterStoredBeforeItsNewFieldsDecodesAsBefore() throws {
        let old = try JSONDecoder().decode(SubscriptionFilter.self, from: Data(#"{"properties":{},"subject":"a"}"#.utf8))
        #expect(old == SubscriptionFilter(subject: "a"))
        #expect(try StoredJSON.encode(SubscriptionFilter(subject: "a")) == #"{"properties":{},"subject":"a"}"#)
        let none = try JSONDecoder().decode(SubscriptionFilter.self, from: Data(try StoredJSON.encode(SubscriptionFilter.none).utf8))
        #expect(none == .none)
        let description = try JSONDecoder().decode(
            SubscriptionDescription.self,
            from: Data(try JSONEncoder().encode(SubscriptionDescription(path: .subscription("s", of: "t"), options: EntityOptions(), filter: .all))))
        #expect(description.rules == [SubscriptionRule(name: "$Default", filter: .all)])
    }

    @Test func aCompleteTakesEachTokenOnceGroupedByDelivery() {
        let first = UUID()
        let second = UUID()
        let a1 = LockToken(entity: .queue("q"), sequenceNumber: 1, nonce: first)
        let b1 = LockToken(entity: .queue("q"), sequenceNumber: 2, nonce: second)
        let a2 = LockToken(entity: .queue("q"), sequenceNumber: 3, nonce: first)
        let other = LockToken(entity: .queue("r"), sequenceNumber: 4, nonce: first)
        #expect(LockToken.groupedByDelivery([b1, a1, other, a2]) == [[b1], [a1, a2], [other]])
        #expect(code { try HeraldLimits.checkCompletion([a1, b1]) } == nil)
        #expect(code { try HeraldLimits.checkCompletion([a1, a1]) } == .invalidArgument)
        let tooMany = (0...HeraldLimits.maxBatchCount).map { LockToken(entity: .queue("q"), sequenceNumber: Int64($0), nonce: first) }
        #expect(code { try HeraldLimits.checkCompletion(tooMany) } == .batchTooLarge)
    }

    @Test func anUncancellableSequenceNumberIsClassified() {
        #expect(HeraldError.Uncancellable(holdsMessage: true, sequenceNumber: 3, lastSequence: 5) == .notScheduled)
        #expect(HeraldError.Uncancellable(holdsMessage: false, sequenceNumber: 5, lastSequence: 5) == .gone)
        #expect(HeraldError.Uncancellable(holdsMessage: false, sequenceNumber: 1, lastSequence: 5) == .gone)
        #expect(HeraldError.Uncancellable(holdsMessage: false, sequenceNumber: 6, lastSequence: 5) == .neverAssigned)
        #expect(HeraldError.Uncancellable(holdsMessage: false, sequenceNumber: 0, lastSequence: 5) == .neverAssigned)
        // A topic holds no message of its own: a number it assigned has no scheduled copy left.
        #expect(HeraldError.Uncancellable(topicSequenceNumber: 5, lastSequence: 5) == .noScheduledCopy)
        #expect(HeraldError.Uncancellable(topicSequenceNumber: 6, lastSequence: 5) == .neverAssigned)
        #expect(HeraldError.Uncancellable(topicSequenceNumber: 0, lastSequence: 5) == .neverAssigned)
    }

    // MARK: Commit steps

    @Test func anAppendNumbersItsEventsFromTheStreamsVersion() throws {
        let events = [EventData(type: "A", data: Data()), EventData(type: "B", data: Data())]
        var transaction = BrokerTransaction()
        transaction.append(events, to: "s", expectedVersion: .exactly(4), publishTo: .topic("t"))
        let append = transaction.appends[0]
        #expect(try append.numbered(after: 4).map(\.version) == [5, 6])
        #expect(try append.numbered(after: 4).map(\.event) == events)
        #expect(code { _ = try append.numbered(after: 3) } == .concurrencyConflict)
        let publication = append.publication(after: 4)
        #expect(publication?.topic == .topic("t"))
        #expect(publication?.messages.map(\.messageId) == ["s@5", "s@6"])
        transaction.append(events, to: "quiet", expectedVersion: .any)
        #expect(transaction.appends[1].publication(after: 0) == nil, "no topic, nothing published")
    }

    @Test func aCommitsStepsComeInOneOrder() {
        let token = LockToken(entity: .queue("in"), sequenceNumber: 1, nonce: UUID())
        let deferred = LockToken(entity: .queue("in"), sequenceNumber: 2, nonce: UUID())
        let a = Message(text: "a")
        let b = Message(text: "b")
        let c = Message(text: "c")
        var transaction = BrokerTransaction()
        // Added in the reverse of the order they are applied in: what locks a row many
        // transactions share (appends, sends) comes after the settlements, cancellations last.
        transaction.cancelScheduled(messageId: "timeout", in: .queue("out"))
        transaction.cancelScheduled(7, in: .queue("out"))
        transaction.send(a, to: .queue("out"))
        transaction.send(b, to: .queue("out"))
        transaction.send(c, to: .topic("events"))
        transaction.send(a, to: .queue("out"))
        transaction.append([EventData(type: "E", data: Data())], to: "s", expectedVersion: .any)
        transaction.complete(token)
        transaction.deadLetter(deferred, reason: "r", description: "d")
        transaction.defer(deferred)
        transaction.write(Data(), collection: "c", key: "k", expectedVersion: 0)
        transaction.recordInbox(handler: "h", messageId: "m")
        let steps = transaction.steps
        #expect(steps.count == 11)
        #expect(
            steps == [
                .recordInbox(InboxEntry(handler: "h", messageId: "m")),
                .writeDocument(transaction.documentWrites[0]),
                .deadLetter(deferred, reason: "r", description: "d"),
                .deferMessage(deferred),
                .complete([token]),
                .append(transaction.appends[0]),
                .send([a, b], to: .queue("out")),
                .send([c], to: .topic("events")),
                .send([a], to: .queue("out")),
                .cancelScheduledMessage(messageId: "timeout", in: .queue("out")),
                .cancelScheduled(7, in: .queue("out")),
            ])
        #expect(BrokerTransaction().steps.isEmpty)
    }
}
