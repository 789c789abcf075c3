// The CQRS layer: typed buses, the message processor, aggregates and process managers.
