package org.observer.android

import android.util.Log
import org.observer.core.LogLevel
import org.observer.core.LogSink

/**
 * The core's log lines in Logcat under the tag `Observer`. The core never
 * logs stations, answers or names, so these lines are safe to share in a
 * bug report.
 */
object LogcatSink : LogSink {
    private const val TAG = "Observer"

    override fun log(level: LogLevel, target: String, message: String) {
        val line = "$target: $message"
        when (level) {
            LogLevel.ERROR -> Log.e(TAG, line)
            LogLevel.WARN -> Log.w(TAG, line)
            LogLevel.INFO -> Log.i(TAG, line)
            LogLevel.DEBUG -> Log.d(TAG, line)
            LogLevel.TRACE -> Log.v(TAG, line)
        }
    }
}
