package org.observer.android

import android.content.Context
import java.io.File
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.observer.core.CancelToken
import org.observer.core.EnrollmentInfo
import org.observer.core.LogLevel
import org.observer.core.setLogSink
import org.observer.core.NewObservation
import org.observer.core.ObserverCore
import org.observer.core.OutboxCounts
import org.observer.core.SavedObservation
import org.observer.core.SyncProgress
import org.observer.core.SyncReport
import org.observer.core.WipeReport

/**
 * The app's entry point: one [ObserverCore] per process, opened in the app's
 * private files directory with [AndroidKeystoreKeyStore], and `suspend`
 * versions of the blocking calls that run on [Dispatchers.IO].
 */
class Observer private constructor(val core: ObserverCore) {

    suspend fun enroll(code: String, name: String?): EnrollmentInfo =
        withContext(Dispatchers.IO) { core.enroll(code, name) }

    suspend fun save(observation: NewObservation): SavedObservation =
        withContext(Dispatchers.IO) { core.save(observation) }

    suspend fun counts(): OutboxCounts = withContext(Dispatchers.IO) { core.counts() }

    /**
     * Delivers the outbox. Cancelling the calling coroutine (a stopped
     * worker, a closed screen) stops the sync before its next request; it
     * then throws `ObserverException.Cancelled` with every record pending
     * or delivered.
     */
    suspend fun sync(progress: SyncProgress? = null): SyncReport =
        cancellable { token -> core.sync(progress, token) }

    /** Runs a blocking core call on [Dispatchers.IO], cancelling its token when the coroutine is cancelled. */
    private suspend fun <T> cancellable(call: (CancelToken) -> T): T = coroutineScope {
        val token = CancelToken()
        val watcher = launch {
            try { awaitCancellation() } finally { token.cancel() }
        }
        try {
            withContext(Dispatchers.IO) { call(token) }
        } finally {
            watcher.cancel()
        }
    }

    /**
     * Panic wipe: destroys the Keystore key and every readable record. With
     * [keepSealed], undelivered records of sealed forms stay (unreadable
     * here) for `deliverSealedOutbox`. This instance is unusable afterwards;
     * opening the directory again throws `ObserverException.Wiped`.
     */
    suspend fun wipe(keepSealed: Boolean): WipeReport = withContext(Dispatchers.IO) {
        core.wipe(keepSealed).also { synchronized(Companion) { instance = null } }
    }

    companion object {
        @Volatile private var instance: Observer? = null

        /** Opens the store on first use (blocking: call it off the main thread). */
        fun get(context: Context): Observer =
            instance ?: synchronized(this) {
                setLogSink(LogcatSink, LogLevel.INFO)
                instance ?: Observer(
                    ObserverCore.open(
                        File(context.applicationContext.filesDir, "observer").path,
                        AndroidKeystoreKeyStore(),
                    ),
                ).also { instance = it }
            }
    }
}
