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
 * sent; it stays pending until a receipt proves the coordinator holds it:
 * the one its gateway texts back ([SmsReceiptReceiver]), or the next
 * internet sync's. The network's delivery reports, which can come minutes
 * later or never, reach [onDelivered] (show "delivered to the gateway's
 * phone", never "delivered to the coordinator"). Needs the `SEND_SMS`
 * permission, asked when the observer first chooses SMS. Call [close]
 * when the screen that sends goes away.
 */
class SmsSender(
    private val context: Context,
    private val core: ObserverCore,
    private val onDelivered: (Delivery) -> Unit = {},
) : AutoCloseable {

    /** What happened to the texts of one report. */
    data class Sent(val texts: Int, val failed: Int)

    /** The network's delivery report for text [index] of [total] of record [recordId] (null: the heartbeat). */
    data class Delivery(val recordId: String?, val index: Int, val total: Int, val delivered: Boolean)

    private val deliveredAction = "org.observer.SMS_DELIVERED.${System.identityHashCode(this)}"
    private val requestCodes = java.util.concurrent.atomic.AtomicInteger()
    private val deliveries = object : BroadcastReceiver() {
        override fun onReceive(c: Context, intent: Intent) {
            onDelivered(Delivery(
                recordId = intent.getStringExtra(EXTRA_RECORD),
                index = intent.getIntExtra(EXTRA_INDEX, 0),
                total = intent.getIntExtra(EXTRA_TOTAL, 0),
                delivered = resultCode == Activity.RESULT_OK,
            ))
        }
    }

    init {
        register(deliveries, IntentFilter(deliveredAction))
    }

    override fun close() {
        runCatching { context.unregisterReceiver(deliveries) }
    }

    /** Sends record [recordId]; marks it sent by SMS if every text left. */
    suspend fun sendRecord(gatewayNumber: String, recordId: String): Sent {
        val texts = withContext(Dispatchers.IO) { core.smsParts(recordId) }
        val sent = sendAll(gatewayNumber, texts, recordId)
        if (sent.failed == 0) withContext(Dispatchers.IO) { core.markSentBySms(recordId) }
        return sent
    }

    /** Sends the signed heartbeat (one text): how many records this phone holds. */
    suspend fun sendHeartbeat(gatewayNumber: String): Sent =
        sendAll(gatewayNumber, withContext(Dispatchers.IO) { core.heartbeatSmsParts() }, null)

    private suspend fun sendAll(number: String, texts: List<String>, recordId: String?): Sent {
        var failed = 0
        for ((i, text) in texts.withIndex()) {
            if (!sendOne(number, text, i, texts.size, recordId)) failed++
        }
        return Sent(texts.size, failed)
    }

    private fun register(receiver: BroadcastReceiver, filter: IntentFilter) {
        if (Build.VERSION.SDK_INT >= 33) {
            context.registerReceiver(receiver, filter, Context.RECEIVER_NOT_EXPORTED)
        } else {
            context.registerReceiver(receiver, filter)
        }
    }

    /** One text, waiting for the radio's sent report; its delivery report goes to [onDelivered]. */
    private suspend fun sendOne(number: String, text: String, index: Int, total: Int, recordId: String?): Boolean =
        suspendCancellableCoroutine { cont ->
            val action = "org.observer.SMS_SENT.${System.nanoTime()}.$index"
            val receiver = object : BroadcastReceiver() {
                override fun onReceive(c: Context, intent: Intent) {
                    context.unregisterReceiver(this)
                    if (cont.isActive) cont.resume(resultCode == Activity.RESULT_OK)
                }
            }
            register(receiver, IntentFilter(action))
            val sentIntent = PendingIntent.getBroadcast(
                context, index, Intent(action).setPackage(context.packageName),
                PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_ONE_SHOT,
            )
            // A request code of its own, so each text's extras are kept.
            val deliveryIntent = PendingIntent.getBroadcast(
                context, requestCodes.incrementAndGet(),
                Intent(deliveredAction).setPackage(context.packageName)
                    .putExtra(EXTRA_RECORD, recordId).putExtra(EXTRA_INDEX, index).putExtra(EXTRA_TOTAL, total),
                PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_ONE_SHOT,
            )
            val sms = if (Build.VERSION.SDK_INT >= 31) {
                context.getSystemService(SmsManager::class.java)
            } else {
                @Suppress("DEPRECATION") SmsManager.getDefault()
            }
            sms.sendTextMessage(number, null, text, sentIntent, deliveryIntent)
            cont.invokeOnCancellation { runCatching { context.unregisterReceiver(receiver) } }
        }

    private companion object {
        const val EXTRA_RECORD = "org.observer.sms.record"
        const val EXTRA_INDEX = "org.observer.sms.index"
        const val EXTRA_TOTAL = "org.observer.sms.total"
    }
}
