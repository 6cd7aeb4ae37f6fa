/// Writing values into gst-launch pipeline descriptions (gst_parse_launch syntax).
public enum LaunchSyntax {
    /// `value` as one token: double-quoted, with `\` and `"` escaped, when it holds anything
    /// the parser would split or interpret; as it is otherwise.
    public static func quote(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { c in
            (c.properties.isAlphabetic && c.isASCII) || ("0"..."9").contains(c) || "-_./+:".unicodeScalars.contains(c)
        }
        if plain { return value }
        var out = "\""
        for c in value {
            if c == "\\" || c == "\"" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }

    /// `name=value` pairs for an element.
    public static func assignments(_ properties: [(name: String, value: String)]) -> String {
        properties.map { "\($0.name)=\(quote($0.value))" }.joined(separator: " ")
    }
}
