package org.observer.core

import java.io.File

/**
 * The cost of one durable save called from Kotlin, for observer-bench
 * (`bench/ffi.sh`): prints one line `p50_us=… mean_us=… call_p50_us=…`,
 * the last being a call that does no I/O (`deviceId()`), which is the
 * boundary's own cost. Arguments: data directory, number of timed saves.
 */
object SaveBench {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = File(args[0]).apply { mkdirs() }
        val n = args[1].toInt()
        ObserverCore.open(dir.path, AesKeyStore()).use { core ->
            val obs = benchObservation()
            repeat(2000) { core.save(obs) } // JIT warm-up
            val calls = LongArray(n)
            for (i in 0 until n) {
                val t0 = System.nanoTime()
                core.deviceId()
                calls[i] = System.nanoTime() - t0
            }
            calls.sort()
            val times = LongArray(n)
            for (i in 0 until n) {
                val t0 = System.nanoTime()
                core.save(obs)
                times[i] = System.nanoTime() - t0
            }
            times.sort()
            println("p50_us=${times[n / 2] / 1000.0} mean_us=${times.average() / 1000.0} call_p50_us=${calls[n / 2] / 1000.0}")
        }
    }
}

/** The same observation the Rust side of the benchmark saves. */
fun benchObservation() = NewObservation(
    station = "KZ-ALA-0042",
    formId = "voting",
    formVersion = 3u,
    kind = "checklist",
    payloadJson = """{"ballot_box_sealed":true,"note":"voters photographed their ballots; commission chair warned twice","queue_length":14,"unauthorised_persons":false}""",
    attachments = emptyList(),
    supersedes = null,
)
