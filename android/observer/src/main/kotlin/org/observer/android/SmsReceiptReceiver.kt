package org.observer.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.provider.Telephony
import android.telephony.PhoneNumberUtils
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch
import org.observer.core.ObserverException

/**
 * Takes the coordinator's receipt that its gateway texts back after a
 * report arrived by SMS ([SmsSender]), and hands it to the core
 * ([org.observer.core.ObserverCore.acceptSmsReceipt]), which rebuilds it
 * and verifies it with the pinned coordinator key before marking anything
 * delivered: the sender's number only decides which texts are worth
 * trying, never what is believed. A receipt still missing a part is kept
 * (in the app's private preferences) until the rest arrives; anything else
 * from that number is left to the messaging app.
 *
 * Declared in the manifest for `android.provider.Telephony.SMS_RECEIVED`,
 * guarded by `android.permission.BROADCAST_SMS` so only the system can
 * send it; needs `RECEIVE_SMS`, asked together with `SEND_SMS`.
 */
class SmsReceiptReceiver : BroadcastReceiver() {

    override fun onReceive(context: Context, intent: Intent) {
        if (intent.action != Telephony.Sms.Intents.SMS_RECEIVED_ACTION) return
        val pending = goAsync()
        scope.launch {
            try {
                val observer = Observer.get(context)
                val gateway = observer.core.enrollment()?.smsNumber ?: return@launch
                val texts = Telephony.Sms.Intents.getMessagesFromIntent(intent)
                    .filter { PhoneNumberUtils.compare(context, it.originatingAddress ?: "", gateway) }
                    .map { it.messageBody.trim() }
                    .filter { it.startsWith("O1") }
                if (texts.isNotEmpty()) accept(context, observer, texts)
            } finally {
                pending.finish()
            }
        }
    }

    private fun accept(context: Context, observer: Observer, texts: List<String>) {
        val prefs = context.getSharedPreferences(PREFS, Context.MODE_PRIVATE)
        val waiting = prefs.getStringSet(WAITING, emptySet()).orEmpty()
        try {
            observer.core.acceptSmsReceipt(waiting.toList() + texts)
            prefs.edit().remove(WAITING).apply()
        } catch (e: ObserverException.InvalidInput) {
            // Incomplete (keep the parts, at most a few receipts' worth),
            // or not the coordinator's receipt (dropped with the rest when
            // the next one completes).
            prefs.edit().putStringSet(WAITING, (waiting + texts).toList().takeLast(MAX_WAITING).toSet()).apply()
        }
    }

    private companion object {
        const val PREFS = "org.observer.sms-receipts"
        const val WAITING = "waiting"
        const val MAX_WAITING = 32
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
    }
}
