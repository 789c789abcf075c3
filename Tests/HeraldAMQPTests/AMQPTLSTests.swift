import Crypto
import Foundation
import HeraldAMQP
import HeraldAMQPServer
import Logging
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import Testing
import X509

/// AMQPS: the listener with a certificate speaks TLS, and a client that trusts the certificate
/// does the same handshake as over plain TCP.
@Suite(.timeLimit(.minutes(1)))
struct AMQPTLSTests {
    /// A self-signed certificate for `localhost` and its key, written as PEM files in `directory`.
    static func certificate(in directory: URL) throws -> (certificate: String, key: String, pem: String) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("localhost") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey), notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName("localhost")]) }, issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM().pemString
        let certificateFile = directory.appendingPathComponent("certificate.pem").path
        let keyFile = directory.appendingPathComponent("key.pem").path
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try pem.write(toFile: certificateFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: keyFile, atomically: true, encoding: .utf8)
        return (certificateFile, keyFile, pem)
    }

    @Test func aTLSListenerHandshakesWithAClientThatTrustsItsCertificate() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-amqps-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try Self.certificate(in: directory)
        var configuration = AMQPListener.Configuration(port: 0)
        configuration.tls = AMQPListener.Configuration.TLS(certificateChainFile: files.certificate, privateKeyFile: files.key)
        var clientTLS = TLSConfiguration.makeClientConfiguration()
        clientTLS.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(files.pem.utf8), format: .pem)])
        let trusting = try NIOSSLContext(configuration: clientTLS)
        try await AMQPListenerTests.serving(configuration) { port in
            try await AMQPTestClient.with(port: port, tls: trusting) { client in
                let open = try await client.handshake()
                #expect(open?.containerId == "herald")
            }
            // A plain-TCP client gets no AMQP from a TLS listener.
            try await AMQPTestClient.with(port: port) { client in
                try await client.send(.sasl)
                // The server closes it (after a TLS alert, which is no AMQP header, or a reset).
                let header = try? await client.readHeader()
                #expect(header == nil)
            }
        }
    }

    @Test func aListenerWhoseCertificateCannotBeReadSaysWhichFiles() async throws {
        var configuration = AMQPListener.Configuration(port: 0)
        configuration.tls = AMQPListener.Configuration.TLS(certificateChainFile: "/nonexistent/certificate.pem", privateKeyFile: "/nonexistent/key.pem")
        let listener = AMQPListener(configuration: configuration, logger: Logger(label: "herald.amqp.test"))
        await #expect {
            try await listener.run()
        } throws: { error in
            "\(error)".contains("/nonexistent/certificate.pem")
        }
    }
}
