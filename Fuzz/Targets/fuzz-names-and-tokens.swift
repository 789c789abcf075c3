// Names, entity paths, lock tokens and base64 fields: the strings the server reads from URLs and bodies.
import Foundation
import HeraldCore
import HeraldWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNamesAndTokens(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let string = String(decoding: bytes.dropFirst(), as: UTF8.self)
    switch bytes[0] % 5 {
    case 0:
        // EntityName.validate accepts exactly 1–128 bytes of A-Z a-z 0-9 . _ -, starting alphanumeric.
        let utf8 = Array(string.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
        let expected = !utf8.isEmpty && utf8.count <= 128 && alnum(utf8[0]) && utf8.allSatisfy { alnum($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
        require(((try? EntityName.validate(string)) != nil) == expected, "EntityName.validate disagrees with the rule on \(string.debugDescription)")
    case 1, 2:
        if let path = try? EntityPath(parsing: string, isTopic: bytes[0] % 5 == 2) {
            require(path.description == string, "a parsed path's description differs: \(string.debugDescription) -> \(path)")
            checkPath(path)
        }
    case 3:
        checkToken(string)
    default:
        if let data = try? WireBase64.decode(string, "field") {
            require(Data(base64Encoded: data.base64EncodedString()) == data, "base64 round trip")
        }
    }
    return 0
}
