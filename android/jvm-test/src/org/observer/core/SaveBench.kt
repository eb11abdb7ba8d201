package org.observer.core

import java.io.File

/** The C entry points of a library built with `--features bench`. */
interface RustBench : com.sun.jna.Library {
    fun observer_bench_open(dir: String): Int
    fun observer_bench_save_ns(): Long
}

/**
 * The cost of one durable save called from Kotlin against the same save
 * timed inside Rust, for observer-bench (`bench/ffi.sh`). The two alternate
 * save by save in this one process (two stores in one directory tree), so
 * disk drift and background load hit both equally. Prints one line
 * `kotlin_p50_us=… rust_p50_us=… call_p50_us=…`, the last being a Kotlin
 * call that does no I/O (`deviceId()`): the boundary's own cost.
 * Arguments: data directory, number of timed saves per side.
 */
object SaveBench {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = File(args[0]).apply { mkdirs() }
        val n = args[1].toInt()
        val rust = com.sun.jna.Native.load("observer_ffi", RustBench::class.java)
        check(rust.observer_bench_open(File(dir, "rust").path) == 0) { "the Rust side did not open" }
        ObserverCore.open(File(dir, "kotlin").path, AesKeyStore()).use { core ->
            val obs = benchObservation()
            repeat(2000) { // JIT warm-up, both sides
                core.save(obs)
                check(rust.observer_bench_save_ns() > 0)
            }
            val calls = LongArray(n)
            for (i in 0 until n) {
                val t0 = System.nanoTime()
                core.deviceId()
                calls[i] = System.nanoTime() - t0
            }
            val kotlin = LongArray(n)
            val inRust = LongArray(n)
            for (i in 0 until n) {
                val t0 = System.nanoTime()
                core.save(obs)
                kotlin[i] = System.nanoTime() - t0
                inRust[i] = rust.observer_bench_save_ns().also { check(it > 0) }
            }
            for (a in listOf(calls, kotlin, inRust)) a.sort()
            println("kotlin_p50_us=${kotlin[n / 2] / 1000.0} rust_p50_us=${inRust[n / 2] / 1000.0} call_p50_us=${calls[n / 2] / 1000.0}")
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
