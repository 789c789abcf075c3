public import HeraldCore

/// A broken expectation in a conformance case: what was expected, and where.
public struct ConformanceFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let message: String
    /// The file of the failed expectation (`#fileID`).
    public let file: String
    /// The line of the failed expectation.
    public let line: UInt

    /// Creates a failure.
    ///
    /// - Parameters:
    ///   - message: What went wrong.
    ///   - file: The file of the failed expectation.
    ///   - line: The line of the failed expectation.
    public init(_ message: String, file: StaticString = #fileID, line: UInt = #line) {
        self.message = message
        self.file = "\(file)"
        self.line = line
    }

    /// `file:line: message`.
    public var description: String { "\(self.file):\(self.line): \(self.message)" }
}

/// Fails unconditionally.
///
/// - Throws: A ``ConformanceFailure`` with `message`.
public func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) throws -> Never {
    throw ConformanceFailure(message, file: file, line: line)
}

/// Fails unless `condition` holds.
///
/// - Parameters:
///   - condition: What must hold.
///   - message: What the failure says.
/// - Throws: A ``ConformanceFailure`` when `condition` is false.
public func expect(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) throws {
    if !condition {
        throw ConformanceFailure(message(), file: file, line: line)
    }
}

/// Fails unless `actual == expected`.
///
/// - Parameters:
///   - actual: The value the broker produced.
///   - expected: The value the guarantee demands.
///   - message: Context for the failure.
/// - Throws: A ``ConformanceFailure`` showing both values when they differ.
public func expectEqual<T: Equatable>(
    _ actual: T, _ expected: T, _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line
) throws {
    if actual != expected {
        let context = message()
        throw ConformanceFailure(
            "\(context.isEmpty ? "" : context + ": ")expected \(String(describing: expected)), got \(String(describing: actual))",
            file: file, line: line
        )
    }
}

/// Returns the value, or fails when it is `nil`.
///
/// - Parameters:
///   - value: An optional that must hold a value.
///   - message: What the failure says.
/// - Throws: A ``ConformanceFailure`` when `value` is `nil`.
public func expectNotNil<T>(_ value: T?, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) throws -> T {
    guard let value else { throw ConformanceFailure(message(), file: file, line: line) }
    return value
}

/// Runs `body` and fails unless it throws a ``HeraldCore/HeraldError`` with `code`.
///
/// Succeeding, throwing another error type, or throwing a `HeraldError` with another code all fail.
///
/// - Parameters:
///   - code: The error code the broker must throw.
///   - message: Context for the failure.
///   - body: The operation that must fail.
/// - Returns: The error thrown, for further checks.
/// - Throws: A ``ConformanceFailure`` when `body` does not throw `code`.
@discardableResult
public func expectError<T>(
    _ code: HeraldError.Code, _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line,
    _ body: () async throws -> T
) async throws -> HeraldError {
    try await expectError(oneOf: [code], message(), file: file, line: line, body)
}

/// Runs `body` and fails unless it throws a ``HeraldCore/HeraldError`` whose code is one of `codes`.
///
/// - Parameters:
///   - codes: The error codes the broker may throw.
///   - message: Context for the failure.
///   - body: The operation that must fail.
/// - Returns: The error thrown, for further checks.
/// - Throws: A ``ConformanceFailure`` when `body` does not throw one of `codes`.
@discardableResult
public func expectError<T>(
    oneOf codes: [HeraldError.Code], _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line,
    _ body: () async throws -> T
) async throws -> HeraldError {
    let context = message()
    let prefix = context.isEmpty ? "" : context + ": "
    let expected = codes.map(\.description).joined(separator: " or ")
    let result: T
    do {
        result = try await body()
    } catch let error as HeraldError {
        if codes.contains(error.code) { return error }
        throw ConformanceFailure("\(prefix)expected HeraldError \(expected), got \(error)", file: file, line: line)
    } catch {
        throw ConformanceFailure("\(prefix)expected HeraldError \(expected), got \(type(of: error)): \(error)", file: file, line: line)
    }
    throw ConformanceFailure("\(prefix)expected HeraldError \(expected), but it succeeded with \(result)", file: file, line: line)
}
