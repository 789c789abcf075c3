import HeraldCQRS
import Hummingbird

/// Places an order. Its id is the order's, so a client that retries a POST sends a duplicate,
/// which the queue's duplicate detection absorbs.
struct PlaceOrder: Command {
    static let typeName = "shop.PlaceOrder"
    var commandId: String
    var sku: String
    var quantity: Int
}

/// What placing an order records, as the first event of the order's stream.
struct OrderPlaced: Event, ResponseEncodable {
    static let typeName = "shop.OrderPlaced"
    var orderId: String
    var sku: String
    var quantity: Int
}

/// The body of `POST /orders`.
struct NewOrder: Decodable {
    var orderId: String
    var sku: String
    var quantity: Int
}
