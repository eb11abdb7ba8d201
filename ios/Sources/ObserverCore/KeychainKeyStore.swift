import CryptoKit
import Foundation
import Security

/// Wraps Observer's device key with an AES-256-GCM key kept in the iOS
/// Keychain, readable only on this device after its first unlock
/// (`kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: never in backups,
/// never migrated to another phone). The core stores only the wrapped bytes.
public final class KeychainKeyStore: PlatformKeyStore {
    private let service: String
    private let account = "device-key-wrap"

    public init(service: String = "org.observer.core") {
        self.service = service
    }

    private func wrappingKey() throws -> SymmetricKey {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecReturnData as String: true,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecSuccess, let data = item as? Data {
            return SymmetricKey(data: data)
        }
        guard status == errSecItemNotFound else {
            throw KeyStoreFailure.Failed(reason: "Keychain read failed (\(status))")
        }
        let key = SymmetricKey(size: .bits256)
        let add: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            kSecValueData as String: key.withUnsafeBytes { Data($0) },
        ]
        let added = SecItemAdd(add as CFDictionary, nil)
        guard added == errSecSuccess else {
            throw KeyStoreFailure.Failed(reason: "Keychain write failed (\(added))")
        }
        return key
    }

    public func wrap(secret: Data) throws -> Data {
        do {
            guard let sealed = try AES.GCM.seal(secret, using: wrappingKey()).combined else {
                throw KeyStoreFailure.Failed(reason: "AES-GCM produced no output")
            }
            return sealed
        } catch let e as KeyStoreFailure {
            throw e
        } catch {
            throw KeyStoreFailure.Failed(reason: "could not wrap the device key: \(error)")
        }
    }

    public func unwrap(wrapped: Data) throws -> Data {
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: wrappingKey())
        } catch let e as KeyStoreFailure {
            throw e
        } catch {
            throw KeyStoreFailure.Failed(reason: "could not unwrap the device key: \(error)")
        }
    }

    /// Panic wipe: deletes the Keychain item, so no wrapped copy opens again.
    public func destroyKey() throws {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
        ]
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeyStoreFailure.Failed(reason: "Keychain delete failed (\(status))")
        }
    }
}
