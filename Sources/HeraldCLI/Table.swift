/// A plain-text table with aligned columns, the readable form of every listing.
struct Table {
    /// A column's title and alignment; numbers align right.
    struct Column {
        var title: String
        var alignRight: Bool

        init(_ title: String, alignRight: Bool = false) {
            self.title = title
            self.alignRight = alignRight
        }
    }

    var columns: [Column]
    var rows: [[String]] = []

    init(_ columns: [Column]) {
        self.columns = columns
    }

    mutating func append(_ row: [String]) {
        self.rows.append(row)
    }

    /// The header, then one line per row; columns are separated by two spaces and no line has
    /// trailing blanks.
    func render() -> String {
        let cells =
            [self.columns.map(\.title)]
            + self.rows.map { row in
                self.columns.indices.map { $0 < row.count ? Self.singleLine(row[$0]) : "" }
            }
        let widths = self.columns.indices.map { index in cells.map { $0[index].count }.max() ?? 0 }
        return cells.map { row in
            var line = ""
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                if index > 0 { line += "  " }
                line += self.columns[index].alignRight ? padding + cell : cell + padding
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }

    /// `text` with line breaks and tabs shown as spaces, so a cell never breaks the layout.
    static func singleLine(_ text: String) -> String {
        String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    }

    /// `text` cut to `limit` characters, with an ellipsis when cut.
    static func truncated(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }
}

/// Key–value lines with aligned values, the readable form of `show`.
struct Details {
    var lines: [(String, String)] = []

    mutating func append(_ key: String, _ value: String) {
        self.lines.append((key, value))
    }

    func render() -> String {
        let width = self.lines.map(\.0.count).max() ?? 0
        return self.lines.map { key, value in
            key + ":" + String(repeating: " ", count: width - key.count + 1) + value
        }.joined(separator: "\n")
    }
}
