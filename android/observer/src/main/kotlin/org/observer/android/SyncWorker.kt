package org.observer.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.observer.core.ObserverException

/**
 * Delivers the outbox whenever WorkManager sees a network: retried with
 * exponential backoff (30 s, doubling, WorkManager caps it at 5 h) while the
 * failure is temporary; stops on failures that need a person. When
 * WorkManager stops the worker (constraints lost, quota), CoroutineWorker
 * cancels [doWork]'s coroutine, which cancels the core's sync before its
 * next request: nothing is left half sent.
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {

    override suspend fun doWork(): Result = withContext(Dispatchers.IO) {
        try {
            val report = Observer.get(applicationContext).sync()
            if (report.remaining > 0UL) Result.retry() else Result.success()
        } catch (e: ObserverException.Offline) {
            Result.retry()
        } catch (e: ObserverException.ServerBusy) {
            Result.retry()
        } catch (e: ObserverException.Cancelled) {
            // Stopped by WorkManager: it schedules the work again.
            Result.retry()
        } catch (e: ObserverException) {
            // Not enrolled, revoked, interception, tampering, a rewritten
            // coordinator log: retrying will not help; the app shows the
            // message instead.
            Result.failure()
        }
    }

    companion object {
        private const val NAME = "org.observer.sync"

        /** Asks for a sync as soon as any network is available. */
        fun schedule(context: Context) {
            val request = OneTimeWorkRequestBuilder<SyncWorker>()
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniqueWork(NAME, ExistingWorkPolicy.KEEP, request)
        }
    }
}
