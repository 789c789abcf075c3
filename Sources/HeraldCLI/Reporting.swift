import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore

/// A command failed for a reason of its own (not a broker error); printed as `error: <message>`,
/// or with `--json` as `{"error": code, "message": message}`.
struct CommandFailure: Error, CustomStringConvertible {
    /// A short, stable name for `--json` output, for example `commandFailed` or `storeInUse`.
    var code: String
    var description: String

    init(_ description: String, code: String = "commandFailed") {
        self.code = code
        self.description = description
    }
}

/// How the admin commands report a failure: a stable code, a message for people, and the exit
/// status.
///
/// Exit statuses: 1 for broker errors, 2 for a refused key or right, 3 when the server cannot be
/// reached or answers unexpectedly, 1 for other failures. Argument errors keep ArgumentParser's
/// usage message and status (64), with the code `usage`.
struct ReportedFailure: Encodable {
    /// A ``HeraldCore/HeraldError/Code``, a ``HeraldClient/HeraldClientError/name``, or a
    /// command's own code.
    var error: String
    /// What went wrong.
    var message: String
    /// Whether the message is prefixed with the code for people (broker errors and refusals are).
    private var showsCode: Bool
    /// The exit status.
    private var status: Int32

    private enum CodingKeys: String, CodingKey { case error, message }

    /// The report of `error`, or `nil` for an error ArgumentParser reports itself.
    init?(_ error: any Error) {
        switch error {
        case let error as HeraldError:
            self.init(error: "\(error.code)", message: error.message, showsCode: true, status: 1)
        case let error as HeraldClientError:
            switch error.code {
            case .unauthorized, .forbidden:
                self.init(error: error.name, message: error.message, showsCode: true, status: 2)
            case .rejected:
                self.init(error: error.name, message: error.message, showsCode: true, status: 1)
            default:
                self.init(error: error.name, message: error.description, showsCode: false, status: 3)
            }
        case let error as CommandFailure:
            self.init(error: error.code, message: error.description, showsCode: false, status: 1)
        default:
            return nil
        }
    }

    private init(error: String, message: String, showsCode: Bool, status: Int32) {
        self.error = error
        self.message = message
        self.showsCode = showsCode
        self.status = status
    }

    /// Reports an error the command did not report itself, in ArgumentParser's words: the code
    /// `usage` for an argument error (status 64), `commandFailed` otherwise.
    init(unreported message: String, status: Int32) {
        let code = status == ExitCode.validationFailure.rawValue ? "usage" : "commandFailed"
        self.init(error: code, message: message, showsCode: false, status: status)
    }

    /// Prints the failure on standard error, as one line of text or with `json` as one JSON
    /// object, and returns the exit status.
    func print(json: Bool) -> ExitCode {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let text = (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? #"{"error":"\#(self.error)"}"#
            CommandOutput.printError(text)
        } else {
            CommandOutput.printError(self.showsCode ? "error: \(self.error): \(self.message)" : "error: \(self.message)")
        }
        return ExitCode(self.status)
    }
}

/// Runs a command's body and turns its errors into one report on standard error and a non-zero
/// exit (see ``ReportedFailure``): `error: <code>: <message>` for broker errors, with the same
/// codes as the HTTP API, or with `json` a JSON object `{"error": code, "message": text}`.
func reportingErrors(json: Bool, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        guard let failure = ReportedFailure(error) else { throw error }
        throw failure.print(json: json)
    }
}
