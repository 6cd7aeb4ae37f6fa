import XCTest
@testable import StylizeModels

/// The error tests' one assertion: `body` throws, and the message names every fragment
/// (the file, the key or tensor, the offending value); optionally it is a ModelError.
func assertThrows(_ body: @autoclosure () throws -> Any, contains fragments: [String], modelError: Bool = false,
                  file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch {
        if modelError {
            XCTAssertTrue(error is ModelError, "\(error) is not a ModelError", file: file, line: line)
        }
        let message = "\(error)"
        for f in fragments {
            XCTAssertTrue(message.contains(f), "'\(message)' does not mention '\(f)'", file: file, line: line)
        }
    }
}
