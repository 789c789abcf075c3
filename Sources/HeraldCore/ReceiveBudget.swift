import Foundation

/// The byte budget of one receive: messages are taken in order while their bodies and
/// application properties fit in ``maxBytes``; the first always is, so that a receive of a large
/// message still makes progress. Both stores apply it while they choose the rows to deliver.
package struct ReceiveBudget: Sendable {
    /// The budget; `Int.max` for none.
    package let maxBytes: Int
    /// What the messages taken so far count.
    package private(set) var usedBytes = 0
    private var taken = 0
    private var exhausted = false

    package init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Whether there is a budget at all.
    package var isLimited: Bool { self.maxBytes < .max }

    /// Whether a message did not fit: nothing more is taken.
    package var isSpent: Bool { self.exhausted }

    /// What is left of the budget.
    package var remainingBytes: Int { self.exhausted ? 0 : self.maxBytes - self.usedBytes }

    /// Takes messages of `sizes`, in order, while they fit.
    ///
    /// - Returns: How many were taken.
    package mutating func admit(_ sizes: [Int]) -> Int {
        var count = 0
        for size in sizes {
            guard self.admit(size) else { break }
            count += 1
        }
        return count
    }

    /// Takes one message of `size` if it fits; once one does not, nothing more is taken.
    package mutating func admit(_ size: Int) -> Bool {
        guard !self.exhausted else { return false }
        if self.taken > 0 && size > self.maxBytes - self.usedBytes {
            self.exhausted = true
            return false
        }
        self.usedBytes = self.usedBytes > self.maxBytes - size ? self.maxBytes : self.usedBytes + size
        self.taken += 1
        return true
    }
}

extension Message {
    /// What the message counts against a ``ReceiveBudget``: its body, its application
    /// properties and its annotations (keys and values).
    package var budgetSize: Int {
        let properties = self.applicationProperties.reduce(0) { $0 + $1.key.utf8.count + $1.value.encodedSize }
        return self.body.count + self.annotations.reduce(properties) { $0 + $1.key.utf8.count + $1.value.encodedSize }
    }
}
