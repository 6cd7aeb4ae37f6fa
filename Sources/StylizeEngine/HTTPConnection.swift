import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One blocking HTTP/1.1 exchange over a plain TCP socket: what the Open Inference
/// Protocol client needs and no more. Written on POSIX sockets rather than URLSession so
/// the plugin, which carries its Swift runtime inside it, pulls in neither
/// FoundationNetworking nor libcurl into every process that loads GStreamer plugins.
/// `http://` only: an encoder service inside a cluster is reached in the clear, or
/// through a TLS sidecar. Every step (resolve, connect, send, each read) respects the
/// deadline; the connection closes after the response.
enum HTTPConnection {
    struct Response {
        let status: Int
        let body: Data
    }

    static func exchange(method: String, url: URL, body: Data?, contentType: String?, timeout: TimeInterval) throws -> Response {
        let where_ = url.absoluteString
        func fail(_ reason: String) -> OpenInferenceError { .unreachable(url: where_, reason: reason) }
        guard url.scheme?.lowercased() == "http", let host = url.host, !host.isEmpty else {
            throw fail("only http:// URLs are supported (put TLS in a sidecar)")
        }
        let deadline = Date(timeIntervalSinceNow: timeout)
        let port = url.port ?? 80
        let fd = try connect(host: host, port: port, deadline: deadline, fail: fail)
        defer { close(fd) }

        var path = url.path.isEmpty ? "/" : url.path
        if let q = url.query { path += "?" + q }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nAccept: application/json\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        head += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        try send(fd, Data(head.utf8) + (body ?? Data()), deadline: deadline, fail: fail)
        return try readResponse(fd, deadline: deadline, fail: fail)
    }

    private static func connect(host: String, port: Int, deadline: Date, fail: (String) -> OpenInferenceError) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { throw fail("cannot resolve \(host): \(String(cString: gai_strerror(status)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            entry = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                            a.pointee.ai_protocol)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 || errno == EINPROGRESS {
                if try wait(fd, for: Int16(POLLOUT), deadline: deadline) {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error == 0 { return fd }
                    lastError = String(cString: strerror(error))
                } else {
                    lastError = "connect timed out"
                }
            } else {
                lastError = String(cString: strerror(errno))
            }
            close(fd)
        }
        throw fail(lastError)
    }

    /// Waits until `fd` is ready for `events`; false when the deadline passes first.
    private static func wait(_ fd: Int32, for events: Int16, deadline: Date) throws -> Bool {
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return false }
        }
    }

    private static func send(_ fd: Int32, _ data: Data, deadline: Date, fail: (String) -> OpenInferenceError) throws {
        try data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                guard try wait(fd, for: Int16(POLLOUT), deadline: deadline) else { throw fail("sending timed out") }
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw fail("send: \(String(cString: strerror(errno)))")
                }
                sent += n
            }
        }
    }

    /// Reads until the server closes (the request asked for `Connection: close`), then
    /// parses the status line, headers and body (Content-Length or chunked).
    private static func readResponse(_ fd: Int32, deadline: Date, fail: (String) -> OpenInferenceError) throws -> Response {
        var bytes = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var expectedTotal: Int?
        while expectedTotal.map({ bytes.count < $0 }) ?? true {
            guard try wait(fd, for: Int16(POLLIN), deadline: deadline) else { throw fail("no complete response in time") }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { break }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw fail("receive: \(String(cString: strerror(errno)))")
            }
            bytes += buffer[0..<n]
            if expectedTotal == nil, let end = headerEnd(bytes), let length = contentLength(bytes[0..<end]) {
                expectedTotal = end + 4 + length   // a server that keeps the connection open still ends here
            }
        }
        guard let end = headerEnd(bytes) else { throw fail("the connection closed before a complete HTTP header") }
        let header = String(decoding: bytes[0..<end], as: UTF8.self)
        let statusLine = header.split(separator: "\r\n", maxSplits: 1).first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw OpenInferenceError.malformedResponse("not an HTTP response: '\(statusLine.prefix(80))'")
        }
        var body = Array(bytes[(end + 4)...])
        if header.lowercased().contains("transfer-encoding: chunked") { body = try dechunk(body) }
        else if let length = contentLength(bytes[0..<end]) {
            guard body.count >= length else { throw fail("the connection closed after \(body.count) of \(length) body bytes") }
            body = Array(body.prefix(length))
        }
        return Response(status: status, body: Data(body))
    }

    private static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    private static func contentLength(_ header: ArraySlice<UInt8>) -> Int? {
        for line in String(decoding: header, as: UTF8.self).split(separator: "\r\n") {
            let kv = line.split(separator: ":", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "content-length" { return Int(kv[1].trimmingCharacters(in: .whitespaces)) }
        }
        return nil
    }

    private static func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
        var out = [UInt8]()
        var i = 0
        while true {
            guard let lineEnd = (i..<max(i, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
                throw OpenInferenceError.malformedResponse("truncated chunked body")
            }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw OpenInferenceError.malformedResponse("bad chunk size '\(sizeText)'")
            }
            i = lineEnd + 2
            if size == 0 { return out }
            guard i + size <= bytes.count else { throw OpenInferenceError.malformedResponse("truncated chunk") }
            out += bytes[i..<(i + size)]
            i += size + 2
        }
    }
}
