/// Limits of the HTTP API that the server enforces and the client plans around.
public enum WireLimits {
    /// The longest wait one request may ask for (`maxWaitMs` of a receive or a session accept):
    /// the server refuses a longer one, and the client spreads a longer wait over several requests.
    public static let maxWaitPerRequest: Duration = .seconds(60)
}
