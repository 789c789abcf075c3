import ArgumentParser
import HeraldClient
import HeraldCore

/// A command failed for a reason of its own (not a broker error); printed as `error: <message>`.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Runs a command's body and turns its errors into one line on standard error and a non-zero
/// exit: `error: <code>: <message>` for broker errors, with the same codes as the HTTP API.
///
/// Exit statuses: 1 for broker errors, 2 for a refused key or right, 3 when the server cannot be
/// reached or answers unexpectedly, 1 for other failures. Argument errors keep ArgumentParser's
/// usage message (status 64).
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as HeraldError {
        CommandOutput.printError("error: \(error.code): \(error.message)")
        throw ExitCode(1)
    } catch let error as HeraldClientError {
        switch error {
        case .unauthorized(let message), .forbidden(let message):
            CommandOutput.printError("error: \(error.name): \(message)")
            throw ExitCode(2)
        case .rejected(_, let name, let message):
            CommandOutput.printError("error: \(name): \(message)")
            throw ExitCode(1)
        default:
            CommandOutput.printError("error: \(error)")
            throw ExitCode(3)
        }
    } catch let error as CommandFailure {
        CommandOutput.printError("error: \(error.description)")
        throw ExitCode(1)
    }
}
