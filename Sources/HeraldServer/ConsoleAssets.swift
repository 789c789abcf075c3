import Foundation
import HTTPTypes
import HeraldWire
import Hummingbird
import NIOCore

/// The web console's files: plain HTML, CSS and JavaScript from `Sources/HeraldServer/Console`,
/// compiled into the executable (SwiftPM's `embedInCode` resources), so that `herald serve` needs
/// nothing beside it and nothing is built at run time.
enum ConsoleAssets {
    /// One file, the type it is served with, and its entity tag (a digest of its bytes).
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
        let entityTag: String

        init(bytes: [UInt8], contentType: String) {
            self.bytes = bytes
            self.contentType = contentType
            self.entityTag = "\"\(SecretDigest.sha256Hex(bytes).prefix(32))\""
        }
    }

    /// The page at `/`.
    static let page = Asset(bytes: PackageResources.index_html, contentType: "text/html; charset=utf-8")

    /// The files under `/console/`, by name. Only these names are served: the name is a key of
    /// this table, never a path on disk.
    static let files: [String: Asset] = [
        "style.css": Asset(bytes: PackageResources.style_css, contentType: "text/css; charset=utf-8"),
        "app.js": Asset(bytes: PackageResources.app_js, contentType: "text/javascript; charset=utf-8"),
        "api.js": Asset(bytes: PackageResources.api_js, contentType: "text/javascript; charset=utf-8"),
        "dom.js": Asset(bytes: PackageResources.dom_js, contentType: "text/javascript; charset=utf-8"),
        "chart.js": Asset(bytes: PackageResources.chart_js, contentType: "text/javascript; charset=utf-8"),
        "entities.js": Asset(bytes: PackageResources.entities_js, contentType: "text/javascript; charset=utf-8"),
        "entity.js": Asset(bytes: PackageResources.entity_js, contentType: "text/javascript; charset=utf-8"),
        "messages.js": Asset(bytes: PackageResources.messages_js, contentType: "text/javascript; charset=utf-8"),
        "deadletters.js": Asset(bytes: PackageResources.deadletters_js, contentType: "text/javascript; charset=utf-8"),
        "icon.svg": Asset(bytes: PackageResources.icon_svg, contentType: "image/svg+xml"),
    ]

    /// The console's scripts and styles come from the server only, nothing runs inline, and no
    /// other site may frame the page or receive its requests.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private static let frameOptions = HTTPField.Name("X-Frame-Options")!
    private static let referrerPolicy = HTTPField.Name("Referrer-Policy")!

    /// The answer to `GET /` or `GET /console/{asset}`: the file with the console's security and
    /// caching headers, or 304 without a body when the browser's copy is current.
    ///
    /// - Throws: ``ServerError`` `notFound` for a name that is not one of ``files``.
    static func answer(_ route: WireRoute, parameters: [String: String], request: Request) throws(ServerError) -> Response {
        let asset: Asset
        if route == .console {
            asset = Self.page
        } else {
            let name = parameters["asset"] ?? ""
            guard let file = Self.files[name] else { throw ServerError.notFound("/console/\(name.prefix(100))") }
            asset = file
        }
        var headers: HTTPFields = [
            // Revalidate each time (a 304 when unchanged), so that a new server's console replaces the old one at once.
            .cacheControl: "no-cache",
            .eTag: asset.entityTag,
            .contentSecurityPolicy: Self.contentSecurityPolicy,
            .xContentTypeOptions: "nosniff",
        ]
        headers[Self.frameOptions] = "DENY"
        headers[Self.referrerPolicy] = "no-referrer"
        if let tags = request.headers[.ifNoneMatch], Self.matches(tags, asset.entityTag) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        headers[.contentLength] = String(asset.bytes.count)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }

    /// Whether an `If-None-Match` list (`"a", W/"b"` or `*`) names `entityTag`.
    static func matches(_ list: String, _ entityTag: String) -> Bool {
        list.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == entityTag || tag == "W/\(entityTag)"
        }
    }
}
