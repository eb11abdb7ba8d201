package org.observer.android

import android.app.Activity
import android.app.PendingIntent
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.os.Build
import android.telephony.SmsManager
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withContext
import org.observer.core.ObserverCore
import kotlin.coroutines.resume

/**
 * Sends a record (or the heartbeat) as SMS texts to the coordinator's
 * gateway number when mobile data is blocked. Each text is one standalone
 * GSM 7-bit segment from the core ([ObserverCore.smsParts]); they are sent
 * one by one with `sendTextMessage` (never as a multipart message: gateways
 * reorder parts and strip concatenation headers, and these need neither).
 * The record is marked "sent by SMS" once the radio reports every text
 * sent; it stays pending until a receipt (the next internet sync hears
 * `already`). Needs the `SEND_SMS` permission, asked when the observer
 * first chooses SMS.
 */
class SmsSender(private val context: Context, private val core: ObserverCore) {

    /** What happened to the texts of one report. */
    data class Sent(val texts: Int, val failed: Int)

    /** Sends record [recordId]; marks it sent by SMS if every text left. */
    suspend fun sendRecord(gatewayNumber: String, recordId: String): Sent {
        val texts = withContext(Dispatchers.IO) { core.smsParts(recordId) }
        val sent = sendAll(gatewayNumber, texts)
        if (sent.failed == 0) withContext(Dispatchers.IO) { core.markSentBySms(recordId) }
        return sent
    }

    /** Sends the signed heartbeat (one text): how many records this phone holds. */
    suspend fun sendHeartbeat(gatewayNumber: String): Sent =
        sendAll(gatewayNumber, withContext(Dispatchers.IO) { core.heartbeatSmsParts() })

    private suspend fun sendAll(number: String, texts: List<String>): Sent {
        var failed = 0
        for ((i, text) in texts.withIndex()) {
            if (!sendOne(number, text, i)) failed++
        }
        return Sent(texts.size, failed)
    }

    /** One text, waiting for the radio's sent report (delivery reports are logged by the system). */
    private suspend fun sendOne(number: String, text: String, index: Int): Boolean =
        suspendCancellableCoroutine { cont ->
            val action = "org.observer.SMS_SENT.${System.nanoTime()}.$index"
            val receiver = object : BroadcastReceiver() {
                override fun onReceive(c: Context, intent: Intent) {
                    context.unregisterReceiver(this)
                    if (cont.isActive) cont.resume(resultCode == Activity.RESULT_OK)
                }
            }
            val filter = IntentFilter(action)
            if (Build.VERSION.SDK_INT >= 33) {
                context.registerReceiver(receiver, filter, Context.RECEIVER_NOT_EXPORTED)
            } else {
                context.registerReceiver(receiver, filter)
            }
            val sentIntent = PendingIntent.getBroadcast(
                context, index, Intent(action).setPackage(context.packageName),
                PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_ONE_SHOT,
            )
            val sms = if (Build.VERSION.SDK_INT >= 31) {
                context.getSystemService(SmsManager::class.java)
            } else {
                @Suppress("DEPRECATION") SmsManager.getDefault()
            }
            sms.sendTextMessage(number, null, text, sentIntent, null)
            cont.invokeOnCancellation { runCatching { context.unregisterReceiver(receiver) } }
        }
}
