import Foundation

/// Debian's `chromium` in headless mode: a page as the browser parsed it (its DOM), a
/// screenshot, and the messages the page wrote to the console.
public enum HeadlessBrowser {
    public static let executable = "/usr/bin/chromium"

    /// Whether chromium is installed (`.ci/setup --test` installs it). In CI its absence is an error.
    public static var isAvailable: Bool {
        let present = FileManager.default.isExecutableFile(atPath: executable)
        if !present && Fixtures.isCI { fatalError("CI must install chromium first: .ci/setup --test") }
        return present
    }

    public struct Page {
        /// The document after parsing, serialised.
        public var dom: String
        /// Every console message (`"text", source: URL (line)`); a page without scripts writes none.
        public var console: [String]
    }

    private static func chromium(_ arguments: [String], profile: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        // As root chromium needs --no-sandbox; its own profile folder keeps runs apart.
        try Reference.run(["timeout", "120", executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0"] + arguments)
    }

    /// Loads `url` (file:// or http://127.0.0.1…) and returns its DOM and console messages.
    public static func load(_ url: String) throws -> Page {
        let profile = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: profile) }
        let result = try chromium(["--dump-dom", url], profile: profile)
        guard result.status == 0 else { throw BrowserError("chromium --dump-dom \(url) exited \(result.status): \(result.stderr.suffix(2000))") }
        let console = result.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }
            .map { String($0[$0.range(of: "] ")!.upperBound...]) }
        return Page(dom: result.stdout, console: console)
    }

    /// Renders `url` in a window of `width` × `height` pixels to a PNG file.
    public static func screenshot(_ url: String, to png: String, width: Int = 1400, height: Int = 2400) throws {
        let profile = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: profile) }
        let result = try chromium(["--hide-scrollbars", "--window-size=\(width),\(height)", "--screenshot=\(png)", url], profile: profile)
        guard result.status == 0, FileManager.default.fileExists(atPath: png) else {
            throw BrowserError("chromium --screenshot \(url) exited \(result.status): \(result.stderr.suffix(2000))")
        }
    }
}

public struct BrowserError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
