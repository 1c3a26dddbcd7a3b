import Testing
@testable import HTTP1

@Suite("HTTPHeaders")
struct HTTPHeadersTests {
    @Test("the subscript finds the first field of that name, in any case")
    func subscriptIgnoresCase() {
        let headers: HTTPHeaders = ["Content-Type": "text/plain", "X-Id": "1", "x-id": "2"]
        #expect(headers["content-type"] == "text/plain")
        #expect(headers["CONTENT-TYPE"] == "text/plain")
        #expect(headers["Content-Type"] == "text/plain")
        #expect(headers["X-ID"] == "1")
        #expect(headers["content-typ"] == nil)
        #expect(headers["content-types"] == nil)
        #expect(headers[""] == nil)
        #expect(headers.contains(name: "x-ID"))
        #expect(!headers.contains(name: "x-i"))
    }

    @Test("values(for:) returns every value of that name, in order")
    func valuesForName() {
        let headers = HTTPHeaders([("Accept", "a"), ("X-Other", "o"), ("ACCEPT", "b"), ("accept", "c")])
        #expect(headers.values(for: "accept") == ["a", "b", "c"])
        #expect(headers.values(for: "Accept") == ["a", "b", "c"])
        #expect(headers.values(for: "x-other") == ["o"])
        #expect(headers.values(for: "missing").isEmpty)
    }

    @Test("replaceOrAdd replaces every field of that name, in any case, with one at the end")
    func replaceOrAdd() {
        var headers = HTTPHeaders([("X-A", "1"), ("Other", "o"), ("x-a", "2")])
        headers.replaceOrAdd(name: "X-a", value: "3")
        #expect(headers == HTTPHeaders([("Other", "o"), ("X-a", "3")]))
        headers.replaceOrAdd(name: "New", value: "n")
        #expect(headers == HTTPHeaders([("Other", "o"), ("X-a", "3"), ("New", "n")]))
        #expect(headers.count == 3)
    }

    @Test("remove removes every field of that name, in any case, and keeps the rest in order")
    func remove() {
        var headers = HTTPHeaders([("A", "1"), ("X-Drop", "d"), ("B", "2"), ("x-DROP", "e"), ("C", "3")])
        headers.remove(name: "x-drop")
        #expect(headers == HTTPHeaders([("A", "1"), ("B", "2"), ("C", "3")]))
        headers.remove(name: "missing")
        #expect(headers.count == 3)
        headers.remove(name: "a")
        headers.remove(name: "B")
        headers.remove(name: "c")
        #expect(headers.isEmpty)
    }

    @Test("add appends, keeping duplicates")
    func add() {
        var headers = HTTPHeaders()
        #expect(headers.isEmpty)
        headers.add(name: "Set-Cookie", value: "a=1")
        headers.add(name: "Set-Cookie", value: "b=2")
        #expect(headers.count == 2)
        #expect(headers.values(for: "set-cookie") == ["a=1", "b=2"])
        #expect(headers.map(\.name) == ["Set-Cookie", "Set-Cookie"])
    }

    @Test("equality compares names and values exactly, in order")
    func equality() {
        #expect(HTTPHeaders([("A", "1"), ("B", "2")]) == HTTPHeaders([("A", "1"), ("B", "2")]))
        #expect(HTTPHeaders([("A", "1"), ("B", "2")]) != HTTPHeaders([("B", "2"), ("A", "1")]))
        #expect(HTTPHeaders([("A", "1")]) != HTTPHeaders([("a", "1")]))
        #expect(HTTPHeaders([("A", "1")]) != HTTPHeaders([("A", "1"), ("A", "1")]))
    }

    @Test(
        "equalsIgnoringCase folds ASCII letters and nothing else",
        arguments: [
            ("A", "a", true), ("z", "Z", true), ("x-Request-ID", "X-REQUEST-id", true), ("", "", true),
            ("content-length", "content-length", true),
            ("@", "`", false), ("`", "@", false), ("[", "{", false), ("{", "[", false), ("]", "}", false),
            ("\\", "|", false), ("^", "~", false), ("_", "\u{7F}", false), ("-", "\r", false),
            ("\u{E9}", "\u{C9}", false), ("x@y", "x`y", false), ("ab", "abc", false), ("abc", "ab", false), ("a", "b", false),
        ]
    )
    func equalsIgnoringCase(a: String, b: String, expected: Bool) {
        #expect(HTTPHeaders.equalsIgnoringCase(a, b) == expected)
    }

    @Test("lookups do not treat @ and ` or [ and { as the same name")
    func lookupsDoNotFoldSymbols() {
        let headers: HTTPHeaders = ["x@": "1", "y[": "2"]
        #expect(headers["x`"] == nil)
        #expect(headers["y{"] == nil)
        #expect(headers["X@"] == "1")
        #expect(headers["Y["] == "2")
    }
}

@Suite("HTTPRequestHead")
struct HTTPRequestHeadTests {
    static func head(_ path: String = "/a") -> HTTPRequestHead {
        HTTPRequestHead(method: "GET", target: path, path: path, query: nil, version: .http1_1,
                        headers: ["host": "h"], framing: .none, keepAlive: true, expectsContinue: false)
    }

    @Test("a head is a value: changing a copy leaves the original as it was")
    func copiesAreIndependent() {
        let original = Self.head()
        var copy = original
        #expect(copy == original)
        copy.path = "/b"
        copy.headers.add(name: "x", value: "1")
        copy.keepAlive = false
        #expect(original.path == "/a" && original.headers.count == 1 && original.keepAlive)
        #expect(copy.path == "/b" && copy.headers.count == 2 && !copy.keepAlive)
        #expect(copy != original)
    }

    @Test("equality compares the fields, not the storage")
    func equalityIsByValue() {
        #expect(Self.head() == Self.head())
        #expect(Self.head("/a") != Self.head("/b"))
    }
}
