package org.observer.android

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.observer.core.KeyStoreFailure
import org.observer.core.PlatformKeyStore

/**
 * Wraps Observer's device key with an AES-256-GCM key held by Android
 * Keystore (in secure hardware where the phone has it). That key never
 * leaves the Keystore; the core stores only the wrapped bytes.
 */
class AndroidKeystoreKeyStore(private val alias: String = "org.observer.device-key-wrap") : PlatformKeyStore {

    private fun key(): SecretKey {
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (ks.getKey(alias, null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        gen.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .setRandomizedEncryptionRequired(true)
                .build(),
        )
        return gen.generateKey()
    }

    override fun wrap(secret: ByteArray): ByteArray = try {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key())
        cipher.iv + cipher.doFinal(secret)
    } catch (e: Exception) {
        throw KeyStoreFailure.Failed("Android Keystore could not wrap the device key: ${e.message}")
    }

    override fun unwrap(wrapped: ByteArray): ByteArray = try {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, wrapped, 0, 12))
        cipher.doFinal(wrapped, 12, wrapped.size - 12)
    } catch (e: Exception) {
        throw KeyStoreFailure.Failed("Android Keystore could not unwrap the device key: ${e.message}")
    }

    /** Panic wipe: deletes the Keystore key, so no wrapped copy opens again. */
    override fun destroyKey() = try {
        KeyStore.getInstance("AndroidKeyStore").apply { load(null) }.deleteEntry(alias)
    } catch (e: Exception) {
        throw KeyStoreFailure.Failed("Android Keystore could not delete the key: ${e.message}")
    }
}
