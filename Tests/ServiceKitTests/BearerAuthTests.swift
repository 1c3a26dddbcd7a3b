import Synchronization
import Testing
@testable import ServiceKit

/// BearerAuth: the one configured token admits; anything else is a 401 with the right
/// challenge and never reaches the handler; an empty configured token admits no one.
@Suite struct BearerAuthTests {
    static let secret = "s3cret-T0ken.value_~+/="

    final class Calls: Sendable {
        let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
    }

    func router(token: String = secret, calls: Calls = Calls()) -> Router {
        var router = Router()
        router.group("/admin", middleware: [BearerAuth(token: token)]) { admin in
            admin.get("/stats") { _ in
                calls.count.add(1, ordering: .relaxed)
                return .text("stats")
            }
        }
        return router
    }

    func call(_ router: Router, _ authorization: [String]) async -> Response {
        await router.respond(
            to: Request("GET", "/admin/stats", headers: HTTPHeaders(authorization.map { ("Authorization", $0) })))
    }

    @Test(arguments: ["Bearer \(secret)", "bearer \(secret)", "BEARER \(secret)", "BeArEr   \(secret)"])
    func theConfiguredTokenPasses(authorization: String) async throws {
        let calls = Calls()
        let response = await call(router(calls: calls), [authorization])
        #expect(response.status == 200)
        #expect(response.body == Array("stats".utf8))
        #expect(calls.value == 1)
    }

    @Test(arguments: [
        [],  // no field
        ["Basic dXNlcjpwYXNz"],  // another scheme
        ["Bearer"],  // no token
        ["Bearer  "],
        ["Bearer\(secret)"],  // no space after the scheme
        ["Bearers \(secret)"],
        ["Bearer \(secret)", "Bearer \(secret)"],  // two fields
    ])
    func noBearerTokenIs401WithThePlainChallenge(authorization: [String]) async throws {
        let calls = Calls()
        let response = await call(router(calls: calls), authorization)
        #expect(response.status == 401)
        #expect(response.headers["WWW-Authenticate"] == "Bearer")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"missing bearer token","status":401}"#)
        #expect(calls.value == 0)
    }

    @Test(arguments: [
        "Bearer s3cret-T0ken.value_~+/-",  // the last byte differs
        "Bearer t3cret-T0ken.value_~+/=",  // the first byte differs
        "Bearer s3cret-T0ken.value_~+/",  // a prefix
        "Bearer \(secret)=",  // one byte more
        "Bearer \(secret)\(secret)",  // twice: wraps the padded copy
        "Bearer S3CRET-T0KEN.VALUE_~+/=",  // tokens are case-sensitive
        "Bearer x",
    ])
    func aWrongTokenIs401WithInvalidToken(authorization: String) async throws {
        let calls = Calls()
        let response = await call(router(calls: calls), [authorization])
        #expect(response.status == 401)
        #expect(response.headers["WWW-Authenticate"] == #"Bearer error="invalid_token""#)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"invalid bearer token","status":401}"#)
        #expect(calls.value == 0)
    }

    @Test func anEmptyConfiguredTokenRefusesEveryone() async throws {
        let calls = Calls()
        let router = router(token: "", calls: calls)
        #expect(await call(router, []).status == 401)
        #expect(await call(router, ["Bearer"]).headers["WWW-Authenticate"] == "Bearer")
        let guessed = await call(router, ["Bearer x"])
        #expect(guessed.status == 401)
        #expect(guessed.headers["WWW-Authenticate"] == #"Bearer error="invalid_token""#)
        #expect(calls.value == 0)
    }

    /// The comparison itself, at lengths around the padded copy's power-of-two size.
    @Test func theComparisonMatchesExactlyTheConfiguredBytes() {
        for length in [1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33] {
            let token = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
            let auth = BearerAuth(token: token)
            #expect(auth.matches(token[...].utf8))
            #expect(!auth.matches((token + "a")[...].utf8))
            #expect(!auth.matches((token + "\0")[...].utf8), "the zero padding is not part of the token")
            #expect(!auth.matches(token.dropLast().utf8))
            var changed = Array(token.utf8)
            changed[length / 2] ^= 1
            #expect(!auth.matches(String(decoding: changed, as: UTF8.self)[...].utf8))
        }
    }
}
