/// The reasons a ``MessageProcessor`` gives when it dead-letters a message (the broker's own
/// reasons are ``/HeraldCore/DeadLetterReason``).
public enum ProcessorDeadLetterReason {
    /// No handler is registered for the message's subject.
    public static let unknownMessageType = "UnknownMessageType"
    /// The message's body does not decode as its subject's type.
    public static let undecodableMessage = "UndecodableMessage"
    /// The handler failed on the last attempt its ``RetryPolicy`` allows.
    public static let handlerFailed = "HandlerFailed"
    /// The message was held by the sequence gate, and the gap before it did not fill within the
    /// gate's timeout.
    public static let sequenceGapTimeout = "SequenceGapTimeout"
}
