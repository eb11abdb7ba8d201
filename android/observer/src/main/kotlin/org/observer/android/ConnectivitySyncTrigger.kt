package org.observer.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network

/**
 * Schedules a sync the moment a network appears (after a blackout links
 * often last minutes), on top of WorkManager's own network constraint.
 * Register it from `Application.onCreate`; unregister is rarely needed.
 */
class ConnectivitySyncTrigger(private val context: Context) : ConnectivityManager.NetworkCallback() {

    override fun onAvailable(network: Network) {
        SyncWorker.schedule(context)
    }

    fun register() {
        val cm = context.getSystemService(ConnectivityManager::class.java)
        cm.registerDefaultNetworkCallback(this)
        SyncWorker.schedule(context)
    }

    fun unregister() {
        context.getSystemService(ConnectivityManager::class.java).unregisterNetworkCallback(this)
    }
}
