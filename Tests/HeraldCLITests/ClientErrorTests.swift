import Foundation
import HeraldClient
import HeraldCore
import HeraldWire
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
    func protocolErrors() throws {
        let unauthorized = try #require(
            HeraldClient.error(status: 401, body: Data(#"{"error":"unauthorized","message":"no key"}"#.utf8)) as? HeraldClientError
        )
        #expect(unauthorized.code == .unauthorized && unauthorized.message == "no key", "\(unauthorized)")
        let notFound = try #require(HeraldClient.error(status: 404, body: Data(#"{"error":"notFound","message":"no route"}"#.utf8)) as? HeraldClientError)
        #expect(notFound.code == .rejected && notFound.status == 404 && notFound.serverCode == "notFound" && notFound.message == "no route")
        #expect(notFound.name == "notFound" && notFound.description == "notFound (HTTP 404): no route")
        let proxy = try #require(HeraldClient.error(status: 502, body: Data("<html>bad gateway</html>".utf8)) as? HeraldClientError)
        #expect(proxy.code == .http && proxy.status == 502 && proxy.message == "<html>bad gateway</html>")
        let unknown = HeraldClient.error(status: 500, body: Data(#"{"error":"somethingNew","message":"x"}"#.utf8))
        #expect((unknown as? HeraldError)?.code == .storeFailed)
    }

    /// The server's `internal` (an unexpected error, answered without details) is a refusal of the
    /// server, not a failed store: the store may be fine.
    @Test("the server's internal error is a rejected request, not a failed store")
    func internalError() throws {
        let answer = HeraldClient.error(status: 500, body: Data(#"{"error":"internal","message":"internal server error"}"#.utf8))
        let error = try #require(answer as? HeraldClientError, "got \(answer)")
        #expect(error.code == .rejected && error.status == 500 && error.serverCode == "internal")
    }

    /// Every code the server sends (one list, in HeraldWire) comes back as what it stands for: none
    /// falls through to the fallback for codes from a newer server.
    @Test("every code the server sends is known to the client")
    func everyServerCodeIsKnown() {
        for code in WireError.Code.all {
            let body = Data(#"{"error":"\#(code)","message":"m"}"#.utf8)
            let error = HeraldClient.error(status: code.status, body: body)
            if let brokerCode = code.brokerCode {
                #expect((error as? HeraldError) == HeraldError(brokerCode, "m"), "\(code)")
            } else {
                let clientError = error as? HeraldClientError
                #expect(clientError?.name == code.description && clientError?.status == code.status, "\(code): \(error)")
            }
        }
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
