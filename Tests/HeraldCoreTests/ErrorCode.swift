import HeraldCore

/// The code of the ``HeraldError`` that `body` throws; `nil` when it throws none (or another error).
func code(_ body: () throws -> Void) -> HeraldError.Code? {
    do {
        try body()
        return nil
    } catch let error as HeraldError {
        return error.code
    } catch {
        return nil
    }
}
