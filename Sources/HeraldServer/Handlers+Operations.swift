import Foundation
import HeraldCore
import HeraldWire
import Hummingbird
import Logging

extension Handlers {
    /// `GET /health`: 200 `ok` when the store answers a cheap query, 503 `failed` otherwise
    /// (a store that stopped on a storage error, or was closed).
    func health() async throws -> Response {
        do {
            _ = try await self.broker.listQueues()
            return try Reply.json(HealthResponse(status: "ok", store: self.storeName))
        } catch {
            return try Reply.json(HealthResponse(status: "failed", store: self.storeName), status: 503)
        }
    }

    /// `GET /metrics`: the Prometheus text format, with the entity gauges refreshed first. A store
    /// that cannot be counted leaves the gauges as they were; the counters are still rendered.
    func renderMetrics(logger: Logger) async throws -> Response {
        do {
            try await self.metrics.refreshEntityGauges(self.broker)
        } catch {
            logger.warning("cannot refresh the entity gauges", metadata: ["error": "\(error)"])
        }
        return Reply.bytes(self.metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// `GET /openapi.yaml`: the document bundled with the server.
    func openAPIDocument() throws -> Response {
        guard let document = OpenAPIDocument.contents else {
            throw ServerError(code: .notFound, message: "the OpenAPI document is not installed beside this executable")
        }
        return Reply.bytes(document, contentType: "application/yaml")
    }
}

/// The bundled `openapi.yaml`.
enum OpenAPIDocument {
    /// The document's bytes, or `nil` when the resource bundle cannot be found.
    ///
    /// SwiftPM's `Bundle.module` stops the process when the bundle is missing (an executable copied
    /// without its `Herald_HeraldServer.resources` folder), so this looks where `Bundle.module`
    /// would, beside the executable and in the main bundle, and answers `nil` instead.
    static let contents: [UInt8]? = {
        let bundleNames = ["Herald_HeraldServer.resources", "Herald_HeraldServer.bundle"]
        var folders = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let resources = Bundle.main.resourceURL { folders.append(resources) }
        folders.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for folder in folders {
            for name in bundleNames {
                let bundleURL = folder.appendingPathComponent(name)
                let candidates = [
                    bundleURL.appendingPathComponent("openapi.yaml"),
                    bundleURL.appendingPathComponent("Contents/Resources/openapi.yaml"),
                ]
                for candidate in candidates {
                    if let data = FileManager.default.contents(atPath: candidate.path) { return Array(data) }
                }
            }
        }
        return nil
    }()
}
