import ArgumentParser
import Foundation
import HeraldServer
import HeraldWire

/// `herald keys`: create, list and revoke the access keys of a server.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage the access keys of `herald serve` (shared access rules: manage, send, listen).",
        discussion: """
            Keys live in <data>/keys.json (--data, ./herald-data by default) or in --keys FILE, the file \
            `herald serve --postgres` reads. The file holds salted SHA-256 hashes of the secrets; a key's \
            secret is printed once, when it is created, with the connection string of Azure Service Bus \
            clients (whose shared access key the file keeps: the server verifies their tokens with it). \
            A running server picks up changes within a second.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    /// Where the key file is.
    struct Location: ParsableArguments {
        @Option(help: "The data folder of the server; its key file is <data>/keys.json.")
        var data: String = "./herald-data"

        @Option(help: "The key file, instead of <data>/keys.json (for `herald serve --postgres`).")
        var keys: String?

        var path: String { self.keys ?? KeyStore.path(inDataDirectory: self.data) }

        func open() throws -> KeyStore { try KeyStore(path: self.path) }
    }

    /// `herald keys create`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key and print it once.",
            discussion: "Clients send it as `Authorization: Bearer <key>` (or `X-Herald-Key: <key>`)."
        )

        @OptionGroup var location: Location

        @Option(help: "A name for the key, for example the service that uses it.")
        var name: String

        @Option(help: "Comma-separated rights: manage (implies send and listen), send, listen.")
        var rights: String

        @Option(help: "Limit the key to one queue or topic (a topic covers its subscriptions); the whole namespace by default.")
        var entity: String?

        @Option(help: "The host AMQP clients connect to, in the connection string printed for them.")
        var amqpHost: String = "localhost"

        @Option(help: "The port of `herald serve --amqp-port`, in the connection string printed for AMQP clients.")
        var amqpPort: Int = 5672

        func validate() throws {
            _ = try self.parsedRights()
            guard (1...65_535).contains(self.amqpPort) else { throw ValidationError("--amqp-port is 1 to 65535") }
        }

        func run() async throws {
            let created = try self.location.open().create(name: self.name, rights: try self.parsedRights(), entity: self.entity)
            print(created.secret)
            var standardError = StandardErrorStream()
            print(
                "key \(created.key.id) (\(created.key.name): \(created.key.rights.map(\.rawValue).joined(separator: ",")) on \(created.key.scopeDescription)) "
                    + "added to \(self.location.path); the key above is shown only now\n"
                    + "Azure Service Bus clients (AMQP) use it with the connection string\n"
                    + created.connectionString(host: self.amqpHost, amqpPort: self.amqpPort),
                to: &standardError
            )
        }

        private func parsedRights() throws -> Set<AccessRight> {
            var rights = Set<AccessRight>()
            for part in self.rights.split(separator: ",") {
                let name = part.trimmingCharacters(in: .whitespaces)
                guard let right = AccessRight(rawValue: name) else { throw ValidationError("unknown right '\(name)'; use manage, send, listen") }
                rights.insert(right)
            }
            guard !rights.isEmpty else { throw ValidationError("--rights needs at least one of manage, send, listen") }
            return rights
        }
    }

    /// `herald keys list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys (never their secrets).")

        @OptionGroup var location: Location

        @Flag(help: "Print JSON instead of a table.")
        var json: Bool = false

        func run() async throws {
            let keys = try self.location.open().keys
            let rows = keys.map { key in
                KeyRow(
                    id: key.id, name: key.name, rights: key.rights.map(\.rawValue).joined(separator: ","),
                    scope: key.scopeDescription, created: key.created.formatted(.iso8601)
                )
            }
            if self.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                return
            }
            let header = KeyRow(id: "ID", name: "NAME", rights: "RIGHTS", scope: "SCOPE", created: "CREATED")
            let table = [header] + rows
            let widths = [\KeyRow.id, \KeyRow.name, \KeyRow.rights, \KeyRow.scope].map { column in
                table.map { $0[keyPath: column].count }.max() ?? 0
            }
            for row in table {
                let cells = [row.id, row.name, row.rights, row.scope]
                let padded = zip(cells, widths).map { cell, width in cell.padding(toLength: width, withPad: " ", startingAt: 0) }
                print((padded + [row.created]).joined(separator: "  "))
            }
        }
    }

    /// `herald keys revoke`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; running servers refuse it within a second.")

        @OptionGroup var location: Location

        @Argument(help: "The key's id (the ID column of `herald keys list`).")
        var id: String

        func run() async throws {
            guard let revoked = try self.location.open().revoke(id: self.id) else {
                var standardError = StandardErrorStream()
                print("herald keys revoke: no key \(self.id) in \(self.location.path)", to: &standardError)
                throw ExitCode.failure
            }
            print("revoked key \(revoked.id) (\(revoked.name))")
        }
    }
}

/// One line of `herald keys list`.
private struct KeyRow: Encodable {
    var id: String
    var name: String
    var rights: String
    var scope: String
    var created: String
}
