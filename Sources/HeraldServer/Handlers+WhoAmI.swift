import HeraldCore
import HeraldWire
import Hummingbird

extension Handlers {
    /// `GET /v1/whoami`, what the web console asks first: the caller's key; for a scoped key, with
    /// the existing entities its scope covers (a scoped key may not list the namespace, so this is
    /// how its holder learns what it may look at).
    func whoAmI(_ caller: Caller) async throws -> WhoAmIResponse {
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
