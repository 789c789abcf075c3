import Foundation
import HeraldClient
import HeraldCore
import Testing

@Suite("HeraldClient error answers")
struct ClientErrorTests {
    @Test("a broker code comes back as the HeraldError an embedded broker throws")
    func brokerCodes() throws {
        for code in HeraldError.Code.all {
            let body = Data(#"{"error":"\#(code)","message":"because"}"#.utf8)
            let error = try #require(HeraldClient.error(status: 400, body: body) as? HeraldError)
            #expect(error == HeraldError(code, "because"))
        }
    }

    @Test("refusals that are not broker errors are HeraldClientError")
    func protocolErrors() {
        let unauthorized = HeraldClient.error(status: 401, body: Data(#"{"error":"unauthorized","message":"no key"}"#.utf8))
        guard case .unauthorized("no key")? = unauthorized as? HeraldClientError else {
            Issue.record("got \(unauthorized)")
            return
        }
        let notFound = HeraldClient.error(status: 404, body: Data(#"{"error":"notFound","message":"no route"}"#.utf8))
        guard case .rejected(404, "notFound", "no route")? = notFound as? HeraldClientError else {
            Issue.record("got \(notFound)")
            return
        }
        let proxy = HeraldClient.error(status: 502, body: Data("<html>bad gateway</html>".utf8))
        guard case .http(502, "<html>bad gateway</html>")? = proxy as? HeraldClientError else {
            Issue.record("got \(proxy)")
            return
        }
        let unknown = HeraldClient.error(status: 500, body: Data(#"{"error":"somethingNew","message":"x"}"#.utf8))
        #expect((unknown as? HeraldError)?.code == .storeFailed)
    }

    @Test("a base URL must be http or https with a host")
    func baseURL() throws {
        #expect(throws: HeraldClientError.self) { try HeraldClient(baseURL: "ftp://example.com") }
        #expect(throws: HeraldClientError.self) { try HeraldClient(baseURL: "localhost:8080") }
        #expect(HeraldClientError.invalidURL("127.0.0.1:18089").description == "invalid server URL '127.0.0.1:18089'; did you mean http://127.0.0.1:18089?")
        #expect(HeraldClientError.invalidURL("localhost:8080").description == "invalid server URL 'localhost:8080'; did you mean http://localhost:8080?")
        #expect(HeraldClientError.invalidURL("ftp://example.com").description == "invalid server URL 'ftp://example.com': use http:// or https:// and a host")
        let client = try HeraldClient(baseURL: "http://localhost:8080/")
        #expect(client.baseURL.absoluteString == "http://localhost:8080/")
    }
}
