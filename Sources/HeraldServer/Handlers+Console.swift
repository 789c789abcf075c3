import HeraldCore
import HeraldWire
import Hummingbird

extension Handlers {
    /// `GET /`, `GET /console/{asset}` and `GET /v1/whoami`: the web console and what it asks first.
    func handleConsole(_ route: WireRoute, parameters: [String: String], caller: Caller) async throws -> Response {
        switch route {
        case .console:
            return ConsoleAssets.response(ConsoleAssets.page)
        case .consoleAsset:
            let name = parameters["asset"] ?? ""
            guard let asset = ConsoleAssets.files[name] else { throw ServerError.notFound("/console/\(name.prefix(100))") }
            return ConsoleAssets.response(asset)
        case .whoAmI:
            return try Reply.json(try await self.whoAmI(caller))
        default:
            throw ServerError.notFound(route.path)
        }
    }

    /// The caller's key; for a scoped key, with the existing entities its scope covers (a scoped
    /// key may not list the namespace, so this is how its holder learns what it may look at).
    private func whoAmI(_ caller: Caller) async throws -> WhoAmIResponse {
        guard let key = caller.key else {
            return WhoAmIResponse(keysRequired: false, id: nil, name: nil, rights: AccessRight.allCases, scope: nil, entities: nil)
        }
        var entities: [WireEntity]?
        if let scope = key.entity {
            var covered: [WireEntity] = []
            if try await self.broker.listQueues().contains(where: { $0.path.name == scope }) {
                covered.append(WireEntity(.queue(scope)))
            }
            if try await self.broker.listTopics().contains(where: { $0.path.name == scope }) {
                covered.append(WireEntity(.topic(scope)))
                covered += try await self.broker.listSubscriptions(topic: scope).map { WireEntity($0.path) }
            }
            entities = covered
        }
        return WhoAmIResponse(keysRequired: true, id: key.id, name: key.name, rights: key.rights, scope: key.entity, entities: entities)
    }
}
