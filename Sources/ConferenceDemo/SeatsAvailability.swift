public import HeraldCQRS
import HeraldCore
import Synchronization

/// The seats of one conference, event-sourced on the stream `seats-<conference>`: the one place
/// that decides whether seats are left, so no seat is sold twice.
///
/// A reservation is all or nothing. Reserved seats are sold when the order is paid, or released
/// when it expires.
public struct SeatsAvailability: Aggregate {
    /// The stream category: `seats-<conference>`.
    public static let category = "seats"
    /// The events of the stream.
    public static let eventTypes = EventTypes([
        SeatsAdded.self, SeatsReserved.self, SeatReservationRejected.self, SeatsReservationCommitted.self, SeatsReservationCancelled.self,
    ])

    /// Seats added in all.
    public private(set) var capacity = 0
    /// Seats neither reserved nor sold.
    public private(set) var available = 0
    /// Seats sold.
    public private(set) var sold = 0
    /// Reserved seats by order, not yet sold or released.
    public private(set) var pending: [String: Int] = [:]
    /// The lowest `available` ever reached; below zero means seats were oversold.
    public private(set) var lowestAvailable = 0

    /// An empty conference.
    public init(id: String) {}

    /// Folds one event into the state.
    public mutating func apply(_ event: any Event) {
        switch event {
        case let added as SeatsAdded:
            self.capacity += added.seats
            self.available += added.seats
        case let reserved as SeatsReserved:
            self.available -= reserved.seats
            self.pending[reserved.orderId, default: 0] += reserved.seats
        case let committed as SeatsReservationCommitted:
            self.pending[committed.orderId] = nil
            self.sold += committed.seats
        case let cancelled as SeatsReservationCancelled:
            self.pending[cancelled.orderId] = nil
            self.available += cancelled.seats
        default:
            break
        }
        self.lowestAvailable = min(self.lowestAvailable, self.available)
    }
}

/// Loads `SeatsAvailability` from a cache plus the events appended since, instead of replaying
/// its stream, which grows with every reservation (the CQRS Journey keeps a memento cache for
/// this aggregate too). The cache only ever holds state folded from committed events, so a
/// handling that crashes or conflicts cannot poison it.
final class SeatsCache: Sendable {
    private let entries = Mutex<[String: (version: Int64, state: SeatsAvailability)]>([:])

    func load(_ conferenceId: String, context: HandlerContext) async throws -> AggregateRoot<SeatsAvailability> {
        let stream = SeatsAvailability.stream(conferenceId)
        var (version, state) = self.entries.withLock { $0[stream] } ?? (0, SeatsAvailability(id: conferenceId))
        while true {
            let events = try await context.store.readStream(stream, from: version + 1, maxCount: 500)
            for recorded in events {
                if let event = try SeatsAvailability.eventTypes.decode(typeName: recorded.event.type, data: recorded.event.data) {
                    state.apply(event)
                }
                version = recorded.version
            }
            if events.count < 500 { break }
        }
        let loaded = (version, state)
        self.entries.withLock { entries in
            if (entries[stream]?.version ?? -1) < loaded.0 { entries[stream] = loaded }
        }
        return AggregateRoot(id: conferenceId, state: state, version: version)
    }
}

extension ConferenceSystem {
    /// The handlers of the queue `seats`: the SeatsAvailability aggregate.
    func seatsHandlers() -> MessageHandlers {
        var handlers = MessageHandlers()
        self.on(MakeSeatReservation.self, name: "seats.MakeSeatReservation", in: &handlers) { command, context in
            var seats = try await self.seatsCache.load(command.conferenceId, context: context)
            guard seats.state.pending[command.orderId] == nil else { return }
            if seats.state.available >= command.seats {
                seats.raise(SeatsReserved(conferenceId: command.conferenceId, orderId: command.orderId, seats: command.seats))
            } else {
                seats.raise(
                    SeatReservationRejected(
                        conferenceId: command.conferenceId, orderId: command.orderId, requested: command.seats, available: seats.state.available
                    )
                )
            }
            try context.save(seats, publishTo: ConferenceEntities.seatEvents)
        }
        self.on(CommitSeatReservation.self, name: "seats.CommitSeatReservation", in: &handlers) { command, context in
            var seats = try await self.seatsCache.load(command.conferenceId, context: context)
            guard let reserved = seats.state.pending[command.orderId] else { return }
            seats.raise(SeatsReservationCommitted(conferenceId: command.conferenceId, orderId: command.orderId, seats: reserved))
            try context.save(seats, publishTo: ConferenceEntities.seatEvents)
        }
        self.on(CancelSeatReservation.self, name: "seats.CancelSeatReservation", in: &handlers) { command, context in
            var seats = try await self.seatsCache.load(command.conferenceId, context: context)
            guard let reserved = seats.state.pending[command.orderId] else { return }
            seats.raise(SeatsReservationCancelled(conferenceId: command.conferenceId, orderId: command.orderId, seats: reserved))
            try context.save(seats, publishTo: ConferenceEntities.seatEvents)
        }
        return handlers
    }
}
