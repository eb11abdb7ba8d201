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
 * `kotlin_p50_us=… rust_p50_us=… call_p50_us=… clone_p50_us=…`: the Kotlin
 * save, the Rust save, a Kotlin call that does no I/O (`deviceId()`: the
 * boundary's own cost), then where a save's overhead goes: each step of
 * [dissected] saves, alternating with Rust saves again (`rust_again_…`).
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
            val parts = Array(Step.entries.size) { LongArray(n) }
            val inRustAgain = LongArray(n)
            for (i in 0 until n) {
                dissected(core, obs, parts, i)
                inRustAgain[i] = rust.observer_bench_save_ns().also { check(it > 0) }
            }
            val p50 = { a: LongArray -> a.sort(); a[n / 2] / 1000.0 }
            println(
                "kotlin_p50_us=${p50(kotlin)} rust_p50_us=${p50(inRust)} call_p50_us=${p50(calls)} " +
                    "rust_again_p50_us=${p50(inRustAgain)} " +
                    Step.entries.joinToString(" ") { "${it.key}_p50_us=${p50(parts[it.ordinal])}" },
            )
        }
    }

    /** The crossings of one generated `save`, in the order the generated code makes them. */
    enum class Step(val key: String) { CLONE("clone"), LOWER("lower"), STATUS("status"), INVOKE("invoke"), LIFT("lift") }

    /**
     * One save made step by step exactly as the generated `ObserverCore.save`
     * makes it, each step timed: clone the object's handle (a JNA call),
     * lower the argument (a JNA call that allocates a Rust buffer, then
     * writes it), create the call-status structure, the call itself (JNA
     * passes and returns buffers by value; Rust lifts, saves, lowers), and
     * lift the result (a JNA call frees the buffer). It calls generated
     * internals, so a uniffi upgrade that changes them breaks this compile
     * rather than the figures.
     */
    private fun dissected(core: ObserverCore, obs: NewObservation, parts: Array<LongArray>, i: Int) {
        val t0 = System.nanoTime()
        val handle = core.uniffiCloneHandle()
        val t1 = System.nanoTime()
        val arg = FfiConverterTypeNewObservation.lower(obs)
        val t2 = System.nanoTime()
        val status = UniffiRustCallStatus()
        val t3 = System.nanoTime()
        val ret = UniffiLib.uniffi_observer_ffi_fn_method_observercore_save(handle, arg, status)
        val t4 = System.nanoTime()
        check(status.isSuccess()) { "the dissected save failed" }
        FfiConverterTypeSavedObservation.lift(ret)
        val t5 = System.nanoTime()
        for ((k, d) in listOf(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4).withIndex()) parts[k][i] = d
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
