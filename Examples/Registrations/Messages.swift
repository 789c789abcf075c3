import HeraldCQRS

struct RegisterToConference: Command {
    static let typeName = "conference.RegisterToConference"  // stable: survives renaming the type
    var commandId: String  // the message id, end to end
    var orderId: String
    var seats: Int
}

struct OrderPlaced: Event {
    static let typeName = "conference.OrderPlaced"
    var orderId: String
    var seats: Int
}

// An event-sourced aggregate: state is the fold of its stream.
struct Order: Aggregate {
    static let category = "order"  // stream "order-<id>"
    static let eventTypes = EventTypes([OrderPlaced.self])
    var placed = false
    init(id: String) {}
    mutating func apply(_ event: any Event) {
        if event is OrderPlaced { placed = true }
    }
}
