/// The links of one AMQP session and their bookkeeping, without I/O: handles, link credit and
/// delivery counts, the session's transfer ids and windows, and messages that span several
/// transfer frames.
///
/// The server's role on a link is the opposite of the peer's: the peer's sender link is a link
/// the server receives on (it grants credit), the peer's receiver link one it sends on (it spends
/// the credit the peer grants).
public struct AMQPSessionLinks: Sendable {
    /// A link of the session.
    public struct Link: Sendable, Hashable {
        /// The link's name, unique per connection direction.
        public var name: String
        /// The server's end: `.receiver` when the peer sends.
        public var role: AMQPRole
        /// The peer's handle of the link (the one in the peer's frames).
        public var remoteHandle: UInt32
        /// The server's handle of the link (the one in the server's frames).
        public var localHandle: UInt32
        /// The source and target as the peer attached them.
        public var source: AMQPSource?
        public var target: AMQPTarget?
        /// The delivery count (the sender's count of deliveries, as link flow control defines it).
        public var deliveryCount: UInt32 = 0
        /// Deliveries the receiver will still take.
        public var linkCredit: UInt32 = 0
        /// The receiver asked the sender to use up its credit, or say it has nothing.
        public var drain = false
        /// 0 unsettled, 1 settled, 2 mixed.
        public var senderSettleMode: UInt8
        /// 0 first, 1 second.
        public var receiverSettleMode: UInt8
    }

    /// A message the peer finished transferring.
    public struct ReceivedDelivery: Sendable, Hashable {
        /// The server's handle of the link it came on.
        public var handle: UInt32
        public var deliveryId: UInt32
        public var deliveryTag: [UInt8]
        /// 0 for one message; Service Bus's batch is 0x80013700.
        public var messageFormat: UInt32
        /// Whether the peer settled it already (sent it pre-settled): it wants no outcome.
        public var settled: Bool
        /// The whole encoded message.
        public var bytes: [UInt8]
    }

    /// A link-level error: the link is detached with it, the session goes on.
    public struct LinkFailure: Error, Sendable, Hashable {
        /// The server's handle of the link.
        public var handle: UInt32
        public var error: AMQPError
    }

    /// The largest message the server accepts, in bytes (all frames of a delivery together).
    public let maxMessageSize: Int
    /// The most links at once.
    public let handleMax: UInt32
    private(set) public var links: [UInt32: Link] = [:]
    /// The server's handle of each of the peer's handles.
    private var localHandles: [UInt32: UInt32] = [:]
    /// A delivery whose frames are still coming, by the server's handle.
    private var partial: [UInt32: ReceivedDelivery] = [:] {
        didSet { self.bufferedBytes = self.partial.values.reduce(0) { $0 + $1.bytes.count } }
    }
    /// The bytes of deliveries whose last frame has not come, over all links of the session.
    public private(set) var bufferedBytes = 0
    /// The id of the server's next transfer.
    public private(set) var nextOutgoingId: UInt32 = 1
    /// The id of the peer's next transfer.
    public private(set) var nextIncomingId: UInt32
    /// How many more transfers the peer may send before the server widens its window.
    public private(set) var incomingWindow: UInt32
    /// The window the server grants when it widens it.
    public let grantedWindow: UInt32
    /// How many more transfers the peer takes.
    public private(set) var remoteIncomingWindow: UInt32

    /// The links of a session the peer began with `begin`.
    public init(peer begin: AMQPBegin, incomingWindow: UInt32, handleMax: UInt32, maxMessageSize: Int) {
        self.nextIncomingId = begin.nextOutgoingId
        self.remoteIncomingWindow = begin.incomingWindow
        self.incomingWindow = incomingWindow
        self.grantedWindow = incomingWindow
        self.handleMax = handleMax
        self.maxMessageSize = maxMessageSize
    }

    /// The server's handle of the peer's `handle`.
    public func localHandle(ofRemote handle: UInt32) -> UInt32? { self.localHandles[handle] }

    // MARK: Attach and detach

    /// Records the link the peer attaches; returns the server's handle of it, or the error that
    /// refuses it (a handle in use, too many links).
    public mutating func attach(_ attach: AMQPAttach) -> Result<Link, AMQPError> {
        guard self.localHandles[attach.handle] == nil else {
            return .failure(AMQPError(condition: AMQPCondition.handleInUse, description: "handle \(attach.handle) is attached already"))
        }
        guard attach.handle <= self.handleMax,
            let local = (0...min(self.handleMax, UInt32(self.links.count) + 1)).first(where: { self.links[$0] == nil })
        else {
            return .failure(AMQPError(condition: AMQPCondition.resourceLimitExceeded, description: "a session has at most \(self.handleMax) links"))
        }
        let link = Link(
            name: attach.name, role: attach.role == .sender ? .receiver : .sender, remoteHandle: attach.handle, localHandle: local,
            source: attach.source, target: attach.target, deliveryCount: attach.initialDeliveryCount ?? 0,
            senderSettleMode: attach.senderSettleMode, receiverSettleMode: attach.receiverSettleMode)
        self.links[local] = link
        self.localHandles[attach.handle] = local
        return .success(link)
    }

    /// The peer detached its `handle`; returns the link that was attached there.
    public mutating func detach(remote handle: UInt32) -> Link? {
        guard let local = self.localHandles.removeValue(forKey: handle) else { return nil }
        self.partial[local] = nil
        return self.links.removeValue(forKey: local)
    }

    /// The server detaches its link `handle` (after refusing it, or on an error).
    public mutating func detach(local handle: UInt32) -> Link? {
        guard let link = self.links.removeValue(forKey: handle) else { return nil }
        self.localHandles[link.remoteHandle] = nil
        self.partial[handle] = nil
        return link
    }

    // MARK: Flow

    /// What a `flow` from the peer changes.
    public enum FlowUpdate: Sendable, Hashable {
        /// Only the session's windows.
        case session
        /// The credit of a link the server sends on: it may now send `credit` deliveries (with
        /// `drain`, it must use them up or advance its delivery count to show it has nothing).
        case credit(handle: UInt32, credit: UInt32, drain: Bool)
        /// The peer's state of a link the server receives on (its delivery count).
        case receiverState(handle: UInt32)
    }

    /// Applies the peer's `flow`; a `nil` result names a handle that is not attached.
    public mutating func flow(_ flow: AMQPFlow) -> FlowUpdate? {
        // The peer's window counts from its next-incoming-id (part 2, section 2.5.6).
        let received = flow.nextIncomingId ?? 1
        self.remoteIncomingWindow = received &+ flow.incomingWindow &- self.nextOutgoingId
        guard let remote = flow.handle else { return .session }
        guard let local = self.localHandles[remote], var link = self.links[local] else { return nil }
        defer { self.links[local] = link }
        switch link.role {
        case .sender:
            // The receiver's credit is relative to its view of the delivery count.
            let counted = flow.deliveryCount ?? 0
            link.linkCredit = counted &+ (flow.linkCredit ?? 0) &- link.deliveryCount
            if Int32(bitPattern: link.linkCredit) < 0 { link.linkCredit = 0 }
            link.drain = flow.drain
            return .credit(handle: local, credit: link.linkCredit, drain: flow.drain)
        case .receiver:
            if let count = flow.deliveryCount { link.deliveryCount = count }
            return .receiverState(handle: local)
        }
    }

    /// Grants the peer `credit` deliveries on the link `handle` the server receives on; returns
    /// the `flow` to send.
    public mutating func grant(_ credit: UInt32, on handle: UInt32) -> AMQPFlow? {
        guard var link = self.links[handle], link.role == .receiver else { return nil }
        link.linkCredit = credit
        self.links[handle] = link
        var flow = self.sessionFlow()
        flow.handle = handle
        flow.deliveryCount = link.deliveryCount
        flow.linkCredit = credit
        return flow
    }

    /// The server's link `handle` has nothing more to send while draining: its delivery count
    /// takes up the rest of the credit. Returns the `flow` to send.
    public mutating func drained(_ handle: UInt32) -> AMQPFlow? {
        guard var link = self.links[handle], link.role == .sender else { return nil }
        link.deliveryCount = link.deliveryCount &+ link.linkCredit
        link.linkCredit = 0
        link.drain = false
        self.links[handle] = link
        var flow = self.sessionFlow()
        flow.handle = handle
        flow.deliveryCount = link.deliveryCount
        flow.linkCredit = 0
        flow.drain = true
        return flow
    }

    /// A `flow` that only states the session's windows.
    public func sessionFlow() -> AMQPFlow {
        AMQPFlow(nextIncomingId: self.nextIncomingId, incomingWindow: self.incomingWindow, nextOutgoingId: self.nextOutgoingId, outgoingWindow: .max)
    }

    // MARK: Transfers in

    /// What a `transfer` from the peer amounts to.
    public enum TransferResult: Sendable, Hashable {
        /// A frame of a delivery whose last frame has not come.
        case incomplete
        /// A whole delivery.
        case delivery(ReceivedDelivery)
        /// An aborted delivery: nothing to do.
        case aborted
        /// The server widened its window: send this `flow` (then handle nothing else).
        case window(AMQPFlow)
    }

    /// Applies a transfer frame and its payload.
    /// - Throws: ``LinkFailure`` for a link-level fault (no credit, a message too large);
    ///   `AMQPError` (session-level: an unknown handle, a window overrun) ends the session.
    public mutating func transfer(_ transfer: AMQPTransfer, payload: [UInt8]) throws -> [TransferResult] {
        guard let local = self.localHandles[transfer.handle], var link = self.links[local] else {
            throw AMQPError(condition: AMQPCondition.unattachedHandle, description: "transfer on handle \(transfer.handle), which is not attached")
        }
        guard link.role == .receiver else {
            throw AMQPError(condition: AMQPCondition.notAllowed, description: "transfer on a link the server sends on")
        }
        guard self.incomingWindow > 0 else {
            throw AMQPError(condition: AMQPCondition.windowViolation, description: "transfer past the session's incoming window")
        }
        self.incomingWindow -= 1
        self.nextIncomingId = self.nextIncomingId &+ 1
        var results: [TransferResult] = []

        var delivery: ReceivedDelivery
        if let started = self.partial.removeValue(forKey: local) {
            delivery = started
        } else {
            guard link.linkCredit > 0 else {
                throw LinkFailure(handle: local, error: AMQPError(condition: AMQPCondition.transferLimitExceeded, description: "transfer without link credit"))
            }
            guard let id = transfer.deliveryId, let tag = transfer.deliveryTag else {
                throw LinkFailure(
                    handle: local, error: AMQPError(condition: AMQPCondition.invalidField, description: "the first transfer of a delivery names its id and tag")
                )
            }
            link.linkCredit -= 1
            link.deliveryCount = link.deliveryCount &+ 1
            self.links[local] = link
            delivery = ReceivedDelivery(
                handle: local, deliveryId: id, deliveryTag: tag, messageFormat: transfer.messageFormat ?? 0, settled: transfer.settled ?? false, bytes: [])
        }
        if transfer.settled == true { delivery.settled = true }
        if transfer.aborted {
            results.append(.aborted)
        } else {
            guard delivery.bytes.count + payload.count <= self.maxMessageSize else {
                throw LinkFailure(
                    handle: local,
                    error: AMQPError(condition: AMQPCondition.messageSizeExceeded, description: "a message is larger than \(self.maxMessageSize) bytes"))
            }
            delivery.bytes += payload
            if transfer.more {
                self.partial[local] = delivery
                results.append(.incomplete)
            } else {
                results.append(.delivery(delivery))
            }
        }
        // Widen the window once half of it is used.
        if self.incomingWindow <= self.grantedWindow / 2 {
            self.incomingWindow = self.grantedWindow
            results.append(.window(self.sessionFlow()))
        }
        return results
    }

    // MARK: Transfers out

    /// Takes one credit of the server's link `handle` for a delivery and returns the delivery's
    /// id, or `nil` when the link has no credit (or the peer's window is shut).
    public mutating func nextDelivery(on handle: UInt32) -> UInt32? {
        guard var link = self.links[handle], link.role == .sender, link.linkCredit > 0, self.remoteIncomingWindow > 0 else { return nil }
        link.linkCredit -= 1
        link.deliveryCount = link.deliveryCount &+ 1
        self.links[handle] = link
        self.remoteIncomingWindow -= 1
        defer { self.nextOutgoingId = self.nextOutgoingId &+ 1 }
        return self.nextOutgoingId
    }

    /// A further frame of a delivery the server sends in several: it takes a transfer id (and a
    /// place in the peer's window) but no credit.
    public mutating func continueDelivery() {
        self.nextOutgoingId = self.nextOutgoingId &+ 1
        if self.remoteIncomingWindow > 0 { self.remoteIncomingWindow -= 1 }
    }
}
