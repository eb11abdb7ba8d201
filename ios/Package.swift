// swift-tools-version:5.9
// Observer for iOS: the generated Swift bindings (Sources/ObserverCore/ObserverCoreFFI.swift),
// the Rust core as an XCFramework (built by build-xcframework.sh), and the
// iOS glue: Keychain key wrapping and background sync.
import PackageDescription

let package = Package(
    name: "ObserverCore",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "ObserverCore", targets: ["ObserverCore"]),
    ],
    targets: [
        .binaryTarget(name: "ObserverFFI", path: "ObserverFFI.xcframework"),
        .target(
            name: "ObserverCore",
            dependencies: ["ObserverFFI"],
            path: "Sources/ObserverCore"
        ),
    ]
)
