import BackgroundTasks
import Foundation
import Network
import os

/// The app's entry point: one `ObserverCore` opened in Application Support
/// with `KeychainKeyStore`, `async` versions of the blocking calls, and sync
/// triggered when a network path appears and by a background task.
public final class Observer: @unchecked Sendable {
    public static let syncTaskIdentifier = "org.observer.sync"

    public let core: ObserverCore
    private let monitor = NWPathMonitor()
    private let queue = DispatchQueue(label: "org.observer.sync", qos: .utility)

    public init(directory: URL? = nil, keyStore: PlatformKeyStore = KeychainKeyStore()) throws {
        let base = try directory ?? FileManager.default
            .url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("observer", isDirectory: true)
        setLogSink(sink: OSLogSink.shared, level: .info)
        core = try ObserverCore.open(dataDir: base.path, keyStore: keyStore)
    }

    private func background<T>(_ work: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result(catching: work)) }
        }
    }

    public func enroll(code: String, name: String?) async throws -> EnrollmentInfo {
        try await background { try self.core.enroll(code: code, name: name) }
    }

    public func save(_ observation: NewObservation) async throws -> SavedObservation {
        try await background { try self.core.save(observation: observation) }
    }

    /// Delivers the outbox. Cancelling the calling task (a background
    /// task's expiry) stops the sync before its next request; it then throws
    /// `ObserverError.Cancelled` with every record pending or delivered.
    public func sync(progress: SyncProgress? = nil) async throws -> SyncReport {
        let token = CancelToken()
        return try await withTaskCancellationHandler {
            try await background { try self.core.sync(progress: progress, cancel: token) }
        } onCancel: {
            token.cancel()
        }
    }

    /// Panic wipe: destroys the Keychain key and every readable record. With
    /// `keepSealed`, undelivered records of sealed forms stay (unreadable
    /// here) for `deliverSealedOutbox(dataDir:)`. This object is unusable
    /// afterwards; opening the directory again throws `ObserverError.Wiped`.
    public func wipe(keepSealed: Bool) async throws -> WipeReport {
        try await background { try self.core.wipe(keepSealed: keepSealed) }
    }

    /// Syncs whenever a usable network path appears (links after a blackout
    /// are often short), and schedules the background task. Call once at launch.
    public func startAutomaticSync() {
        monitor.pathUpdateHandler = { [weak self] path in
            guard path.status == .satisfied, let self else { return }
            Task { _ = try? await self.sync() }
        }
        monitor.start(queue: queue)
        scheduleBackgroundSync()
    }

    /// Registers the background task handler. Call from
    /// `application(_:didFinishLaunchingWithOptions:)`, and list
    /// `org.observer.sync` under `BGTaskSchedulerPermittedIdentifiers`.
    public func registerBackgroundSync() {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: Self.syncTaskIdentifier, using: nil) { task in
            self.scheduleBackgroundSync()
            let work = Task {
                let ok = (try? await self.sync())?.remaining == 0
                task.setTaskCompleted(success: ok)
            }
            task.expirationHandler = { work.cancel() }
        }
    }

    /// iOS runs it at its discretion once a network is available.
    public func scheduleBackgroundSync() {
        let request = BGProcessingTaskRequest(identifier: Self.syncTaskIdentifier)
        request.requiresNetworkConnectivity = true
        request.earliestBeginDate = Date(timeIntervalSinceNow: 15 * 60)
        try? BGTaskScheduler.shared.submit(request)
    }
}

/// The core's log lines in the unified log (subsystem `org.observer`). The
/// core never logs stations, answers or names.
final class OSLogSink: LogSink, @unchecked Sendable {
    static let shared = OSLogSink()
    private let logger = Logger(subsystem: "org.observer", category: "core")

    func log(level: LogLevel, target: String, message: String) {
        let line = "\(target): \(message)"
        switch level {
        case .error: logger.error("\(line, privacy: .public)")
        case .warn: logger.warning("\(line, privacy: .public)")
        case .info: logger.info("\(line, privacy: .public)")
        case .debug, .trace: logger.debug("\(line, privacy: .public)")
        }
    }
}
