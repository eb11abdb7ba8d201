package org.observer.core

import java.io.File
import java.net.ServerSocket
import java.net.URL
import java.net.URLEncoder
import java.nio.file.Files
import java.security.KeyStore
import java.security.SecureRandom
import java.security.cert.CertificateFactory
import java.util.Base64
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import javax.crypto.Cipher
import javax.crypto.Mac
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLContext
import javax.net.ssl.TrustManagerFactory
import javax.xml.parsers.DocumentBuilderFactory
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test

/**
 * A desktop stand-in for Android Keystore: AES-256-GCM with a key that
 * never leaves this object (on Android it never leaves secure hardware).
 */
class AesKeyStore : PlatformKeyStore {
    private val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
    @Volatile private var destroyed = false

    override fun wrap(secret: ByteArray): ByteArray {
        val iv = ByteArray(12).also { SecureRandom().nextBytes(it) }
        val c = Cipher.getInstance("AES/GCM/NoPadding")
        c.init(Cipher.ENCRYPT_MODE, SecretKeySpec(key, "AES"), GCMParameterSpec(128, iv))
        return iv + c.doFinal(secret)
    }

    override fun unwrap(wrapped: ByteArray): ByteArray {
        if (destroyed) throw KeyStoreFailure.Failed("the key was destroyed")
        try {
            val c = Cipher.getInstance("AES/GCM/NoPadding")
            c.init(Cipher.DECRYPT_MODE, SecretKeySpec(key, "AES"), GCMParameterSpec(128, wrapped, 0, 12))
            return c.doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: Exception) {
            throw KeyStoreFailure.Failed("this key store cannot open the key: ${e.message}")
        }
    }

    override fun destroyKey() {
        key.fill(0)
        destroyed = true
    }
}

/** A real observer-server process on loopback. */
class Server(val data: File, vararg serveArgs: String) {
    private val bin = System.getenv("OBSERVER_SERVER_BIN") ?: error("set OBSERVER_SERVER_BIN")
    val port = ServerSocket(0).use { it.localPort }
    private val process: Process
    /** What unlocks the server's keys: beside its data directory, never inside it. */
    private val keyFile = File(data.path + ".key")

    init {
        cli("init", "--url", "https://127.0.0.1:$port", "--org", "kotlin-test")
        process = ProcessBuilder(listOf(bin, "--data", data.path, "--key-file", keyFile.path, "serve", "--listen", "127.0.0.1:$port") + serveArgs)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val out = process.inputStream.bufferedReader()
        val first = out.readLine() ?: error("server exited")
        check(first.contains("listening")) { first }
        Thread { runCatching { out.readLines() } }.apply { isDaemon = true }.start()
    }

    fun cli(vararg args: String): String {
        val p = ProcessBuilder(listOf(bin, "--data", data.path, "--key-file", keyFile.path) + args)
            .redirectErrorStream(true).start()
        val text = p.inputStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "observer-server ${args.toList()}: $text" }
        return text
    }

    fun code(station: String) = cli("enroll", "--station", station, "--text").trim()

    fun stop() {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS)
    }
}

/**
 * Twilio posting one incoming SMS to the coordinator's webhook, signed as
 * Twilio signs (HMAC-SHA1 over the URL and the sorted parameters), over
 * TLS that trusts only this server's certificate. Returns the texts the
 * TwiML answer has Twilio send back to the sender.
 */
fun viaTwilio(server: Server, token: String, from: String, text: String): List<String> {
    val url = "https://127.0.0.1:${server.port}/v1/sms/twilio"
    val params = sortedMapOf("AccountSid" to "AC0123456789abcdef0123456789abcdef", "Body" to text,
        "From" to from, "MessageSid" to "SM0123456789abcdef0123456789abcdef", "To" to "+77010000000")
    val mac = Mac.getInstance("HmacSHA1").apply { init(SecretKeySpec(token.toByteArray(), "HmacSHA1")) }
    val signed = url + params.entries.joinToString("") { it.key + it.value }
    val signature = Base64.getEncoder().encodeToString(mac.doFinal(signed.toByteArray(Charsets.UTF_8)))
    val body = params.entries.joinToString("&") {
        it.key + "=" + URLEncoder.encode(it.value, Charsets.UTF_8)
    }.toByteArray(Charsets.UTF_8)
    val cert = File(server.data, "tls/cert.der").inputStream().use {
        CertificateFactory.getInstance("X.509").generateCertificate(it)
    }
    val trusted = KeyStore.getInstance(KeyStore.getDefaultType()).apply { load(null); setCertificateEntry("server", cert) }
    val tls = SSLContext.getInstance("TLS").apply {
        init(null, TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(trusted) }.trustManagers, null)
    }
    val conn = URL(url).openConnection() as HttpsURLConnection
    conn.sslSocketFactory = tls.socketFactory
    conn.requestMethod = "POST"
    conn.doOutput = true
    conn.setRequestProperty("Content-Type", "application/x-www-form-urlencoded")
    conn.setRequestProperty("X-Twilio-Signature", signature)
    conn.outputStream.use { it.write(body) }
    assertEquals(200, conn.responseCode)
    val doc = conn.inputStream.use { DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(it) }
    val messages = doc.getElementsByTagName("Message")
    return (0 until messages.length).map { messages.item(it).textContent }
}

/** A witness another organisation runs: its own directory, key and process. */
class WitnessProcess(val data: File) {
    private val bin = System.getenv("OBSERVER_SERVER_BIN") ?: error("set OBSERVER_SERVER_BIN")
    private val keyFile = File(data.path + ".key")
    private var process: Process? = null

    fun cli(vararg args: String): String {
        val p = ProcessBuilder(listOf(bin, "--data", data.path, "--key-file", keyFile.path, "witness") + args)
            .redirectErrorStream(true).start()
        val text = p.inputStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "observer-server witness ${args.toList()}: $text" }
        return text
    }

    /** Serves on a free loopback port; answers its address. */
    fun serve(): String {
        val p = ProcessBuilder(bin, "--data", data.path, "--key-file", keyFile.path, "witness", "serve", "--listen", "127.0.0.1:0")
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        process = p
        val out = p.inputStream.bufferedReader()
        val first = out.readLine() ?: error("the witness exited")
        Thread { runCatching { out.readLines() } }.apply { isDaemon = true }.start()
        return "http://" + first.substringAfter("http://").substringBefore('/')
    }

    fun stop() {
        process?.destroyForcibly()?.waitFor(10, TimeUnit.SECONDS)
    }
}

fun observation(station: String, n: Int) = NewObservation(
    station = station,
    formId = "voting",
    formVersion = 1u,
    kind = "checklist",
    payloadJson = """{"n": $n, "ballot_box_sealed": true}""",
    attachments = emptyList(),
    supersedes = null,
)

fun everything(status: StatusFilter = StatusFilter.ALL) =
    ObservationQuery(status = status, station = null, kind = null, afterSeq = null, limit = 10_000u)

/** Rewrites one field of an enrollment code's JSON (for hostile codes). */
fun alterCode(code: String, field: String, value: String): String {
    val json = String(Base64.getUrlDecoder().decode(code.removePrefix("OBS1:")))
    val altered = json.replace(Regex("\"$field\":\"[^\"]*\""), "\"$field\":\"$value\"")
    check(altered != json)
    return "OBS1:" + Base64.getUrlEncoder().withoutPadding().encodeToString(altered.toByteArray())
}

class ObserverCoreTest {
    private lateinit var tmp: File
    private lateinit var server: Server

    @Before
    fun setUp() {
        tmp = Files.createTempDirectory("observer-kotlin").toFile()
        server = Server(File(tmp, "server"))
    }

    @After
    fun tearDown() {
        server.stop()
        tmp.deleteRecursively()
    }

    @Test
    fun opensEnrollsSavesFromManyThreadsSyncsAndReopens() {
        val keys = AesKeyStore()
        val dir = File(tmp, "phone").path
        val deviceId = ObserverCore.open(dir, keys).use { core ->
            val enrolled = core.enroll(server.code("KZ-ALA-0042"), "Aigerim")
            assertEquals(core.deviceId(), enrolled.deviceId)
            assertEquals(listOf("KZ-ALA-0042"), enrolled.stations)

            val pool = Executors.newFixedThreadPool(8)
            val seqs = CopyOnWriteArrayList<ULong>()
            repeat(8) { t ->
                pool.submit { repeat(25) { n -> seqs.add(core.save(observation("KZ-ALA-0042", t * 100 + n)).seq) } }
            }
            pool.shutdown()
            assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS))
            assertEquals((1UL..200UL).toList(), seqs.sorted())
            assertEquals(200UL, core.counts().pending)
            assertTrue(core.verify().intact)

            val progress = CopyOnWriteArrayList<ULong>()
            val report = core.sync(object : SyncProgress {
                override fun onProgress(sent: ULong, delivered: ULong, mediaBytes: ULong) {
                    progress.add(delivered)
                }
            }, null)
            assertEquals(200UL, report.delivered)
            assertEquals(0UL, report.remaining)
            assertTrue("progress is reported per batch", progress.size >= 1 && progress.last() == 200UL)
            assertEquals(OutboxCounts(0UL, 0UL, 200UL, 0UL), core.counts())
            assertEquals(null, report.stationsAssigned)
            assertEquals("no witness is named, so nothing is witnessed", null, report.witnessedSize)
            // The coordinator moves the observer: the next sync says so.
            server.cli("assign", core.deviceId(), "--station", "KZ-ALA-0043")
            val moved = core.sync(null, null)
            assertEquals(listOf("KZ-ALA-0043"), moved.stationsAssigned)
            assertEquals(listOf("KZ-ALA-0043"), core.enrollment()?.stations)
            assertTrue("the second sync checked the log", moved.logProofsVerified >= 1UL)
            // Every delivered record proved still in the coordinator's log.
            val audit = core.auditLog(null)
            assertEquals(200UL, audit.recordsProved)
            assertEquals(200UL, audit.logSize)
            core.deviceId()
        }
        // Closed; reopening finds the same identity and every record delivered.
        ObserverCore.open(dir, keys).use { core ->
            assertEquals(deviceId, core.deviceId())
            val all = core.list(everything(StatusFilter.DELIVERED))
            assertEquals(200, all.size)
            assertTrue(all.all { it.status is DeliveryStatus.Delivered })
            assertTrue(all.first().bodyJson.contains("\"station\":\"KZ-ALA-0042\""))
        }
        val devices = server.cli("devices")
        assertTrue(devices, devices.contains(deviceId) && devices.contains("200"))
    }

    private inline fun <reified E : ObserverException> expect(block: () -> Unit): E {
        try {
            block()
        } catch (e: ObserverException) {
            assertTrue("expected ${E::class.simpleName}, got $e", e is E)
            assertTrue("the message says what to do", !e.message.isNullOrBlank())
            return e as E
        }
        fail("expected ${E::class.simpleName}")
        throw IllegalStateException()
    }

    @Test
    fun everyErrorVariantReachesKotlinWithItsMessage() {
        val keys = AesKeyStore()
        val dir = File(tmp, "phone").path
        ObserverCore.open(dir, keys).use { core ->
            val bad = expect<ObserverException.InvalidInput> { core.save(observation("", 1)) }
            assertTrue(bad.message!!.contains("station"))
            expect<ObserverException.InvalidInput> { core.enroll("not a code", null) }
            expect<ObserverException.NotEnrolled> { core.sync(null, null) }

            val code = server.code("S-1")
            val pinned = expect<ObserverException.IdentityNotConfirmed> {
                core.enroll(alterCode(code, "tls_sha256", "0".repeat(64)), null)
            }
            assertTrue(pinned.message!!.contains("identity could not be confirmed"))
            val closed = ServerSocket(0).use { it.localPort }
            expect<ObserverException.Offline> {
                core.enroll(alterCode(code, "url", "https://127.0.0.1:$closed"), null)
            }
            core.enroll(code, null)
            val used = expect<ObserverException.Refused> { core.enroll(code, null) }
            assertTrue(used.message!!.contains("used already"))

            repeat(5) { core.save(observation("S-1", it)) }
            server.cli("revoke", core.deviceId())
            expect<ObserverException.Revoked> { core.sync(null, null) }
            // Signed after the last record the coordinator had: quarantined, and this phone stops signing.
            assertEquals(5UL, core.counts().rejected)
            expect<ObserverException.Revoked> { core.save(observation("S-1", 6)) }
        }
        // Another key store cannot unlock this device's key.
        expect<ObserverException.KeyUnavailable> { ObserverCore.open(dir, AesKeyStore()) }
        // Records deleted behind the app's back.
        val db = File(dir, "observer.db").path
        val py = ProcessBuilder("python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM records WHERE seq = 3'); c.commit()", db)
            .inheritIO().start()
        assertEquals(0, py.waitFor())
        val tampered = expect<ObserverException.Tampered> { ObserverCore.open(dir, keys) }
        assertTrue(tampered.message!!.contains("deleted"))
        ObserverCore.openDespiteTampering(dir, keys).use { core ->
            assertTrue(core.verify().problems.any { it.contains("records 3 are missing") || it.contains("record 3") || it.contains("3 are missing") })
        }
        // A data directory that cannot exist.
        val file = File(tmp, "plain-file").apply { writeText("x") }
        expect<ObserverException.Storage> { ObserverCore.open(File(file, "data").path, keys) }
    }

    @Test
    fun anObserverAtASampledStationSeesTheResultsFormAsPriority() {
        val registry = File(tmp, "stations.csv")
        registry.writeText(
            "station,name,region,district,address,registered_voters\n" +
                "KZ-ALA-0042,School 1,Almaty,D1,Street 1,1200\n" +
                "KZ-ALA-0043,School 2,Almaty,D1,Street 2,900\n" +
                "KZ-ALA-0044,School 3,Almaty,D2,Street 3,1500\n",
        )
        server.cli("stations", "import", registry.path)
        server.cli("pvt", "draw", "--size", "3", "--seed", "kotlin")
        ObserverCore.open(File(tmp, "phone").path, AesKeyStore()).use { core ->
            core.enroll(server.code("KZ-ALA-0042"), null)
            assertTrue(core.listForms("en").none { it.priority })
            core.sync(null, null)
            assertEquals(listOf("KZ-ALA-0042"), core.enrollment()?.priorityStations)
            val priority = core.listForms("en").filter { it.priority }
            assertTrue(priority.isNotEmpty())
            assertTrue(priority.all { it.kind == "results" })
        }
    }

    @Test
    fun aSyncReportsTheCheckpointAnIndependentWitnessCosigned() {
        server.stop()
        server = Server(File(tmp, "witnessed"), "--witness-interval-secs", "1")
        val code = server.code("KZ-ALA-0042")
        val json = String(Base64.getUrlDecoder().decode(code.removePrefix("OBS1:")))
        val coordinator = Regex("\"coordinator\":\"([^\"]+)\"").find(json)!!.groupValues[1]
        val witness = WitnessProcess(File(tmp, "witness"))
        try {
            val vkey = witness.cli("init", "--name", "press.example/witness")
                .lines().first { it.startsWith("witness key") }.substringAfter("witness key").trim()
            witness.cli("follow", "--log-key", coordinator)
            server.cli("witnesses", "add", "--key", vkey, "--url", witness.serve())
            ObserverCore.open(File(tmp, "phone").path, AesKeyStore()).use { core ->
                core.enroll(code, null)
                repeat(3) { core.save(observation("KZ-ALA-0042", it)) }
                val first = core.sync(null, null)
                assertEquals(3UL, first.delivered)
                // The first sync's signed updates name the witness; once it has
                // cosigned the log of three, a sync brings that checkpoint, which
                // the phone checks against the witness's key before reporting it.
                val deadline = System.nanoTime() + 30_000_000_000L
                var size: ULong? = first.witnessedSize
                while (size != 3UL && System.nanoTime() < deadline) {
                    Thread.sleep(500)
                    size = core.sync(null, null).witnessedSize
                }
                assertEquals("the witnessed checkpoint reached the phone", 3UL, size)
            }
        } finally {
            witness.stop()
        }
    }

    @Test
    fun formsAreListedInTheChosenLanguageAndAnswersValidated() {
        ObserverCore.open(File(tmp, "phone").path, AesKeyStore()).use { core ->
            val forms = core.listForms("kk")
            assertTrue(forms.map { it.id }.containsAll(listOf("opening", "voting", "closing", "counting", "incident", "access")))
            assertEquals("Бақылаушының кіру журналы", forms.first { it.id == "access" }.title)
            // Not enrolled, so no station of the quick count's sample: nothing is priority.
            assertTrue(forms.none { it.priority })
            val fields = core.formFields("access", null, "ru")
            val event = fields.first { it.id == "event" }
            assertEquals("single_choice", event.fieldType)
            assertTrue(event.options.any { it.id == "expelled" && it.label == "Удалён" })
            assertTrue(fields.first { it.id == "reason_given" }.conditional)
            // The shipped access log has no sections and no defaults.
            assertTrue(fields.all { it.sections.isEmpty() && it.defaultJson == null })

            val denied = core.validateAnswers("access", null, """{"event": "denied", "time": "06:00"}""", "en")
            assertTrue(denied.visible.contains("reason_given"))
            assertEquals(listOf("missing"), denied.problems.map { it.problem })
            assertTrue(!denied.clean)

            val stuffed = core.validateAnswers("counting", 1u, """{"ballots_issued": 100, "ballots_cast": 130}""", "kk")
            val rule = stuffed.findings.first { it.rule == "cast_not_above_issued" }
            assertEquals("error", rule.severity)
            assertTrue(rule.message, rule.message.contains("бюллетень"))
            expect<ObserverException.InvalidInput> { core.formFields("no-such-form", null, "en") }
            expect<ObserverException.InvalidInput> { core.validateAnswers("access", null, "[1]", "en") }
        }
    }

    @Test
    fun aPanicWipeKeepsOnlyTheSealedOutboxWhichStillReachesTheCoordinator() {
        val keys = AesKeyStore()
        val dir = File(tmp, "phone").path
        val incident = { n: Int ->
            NewObservation(
                station = "KZ-ALA-0042", formId = "incident", formVersion = 1u, kind = "incident",
                payloadJson = """{"type": "ballot_stuffing", "time": "11:0$n", "note": "seen by Aigerim"}""",
                attachments = emptyList(), supersedes = null,
            )
        }
        val oldDevice = ObserverCore.open(dir, keys).use { core ->
            core.enroll(server.code("KZ-ALA-0042"), null)
            core.save(incident(1))
            core.save(incident(2))
            core.save(observation("KZ-ALA-0042", 3))
            val report = core.wipe(true)
            assertEquals(2UL, report.sealedWaiting)
            expect<ObserverException.Wiped> { core.counts() }
            core.deviceId()
        }
        val wiped = expect<ObserverException.Wiped> { ObserverCore.open(dir, keys) }
        assertTrue(wiped.message!!.contains("2 sealed records"))
        expect<ObserverException.Wiped> { startOver(dir, false) }

        val delivered = deliverSealedOutbox(dir)
        assertEquals(2UL, delivered.delivered)
        assertEquals(0UL, delivered.remaining)
        val devices = server.cli("devices")
        assertTrue(devices, devices.contains(oldDevice))

        startOver(dir, false)
        ObserverCore.open(dir, AesKeyStore()).use { core ->
            assertTrue("a new identity", core.deviceId() != oldDevice)
            assertEquals(0UL, core.counts().pending)
        }
    }

    @Test
    fun evidenceIsImportedWithProgressAttachedAndUploadedAfterItsRecord() {
        ObserverCore.open(File(tmp, "phone").path, AesKeyStore()).use { core ->
            core.enroll(server.code("KZ-ALA-0042"), null)
            val video = File(tmp, "clip.mp4")
            val bytes = ByteArray(3 * 1024 * 1024 + 11).also { SecureRandom().nextBytes(it) }
            video.writeBytes(bytes)
            val seen = CopyOnWriteArrayList<ULong>()
            val ref = core.importMedia(video.path, "video/mp4", false, object : ImportProgress {
                override fun onProgress(done: ULong, total: ULong) {
                    assertEquals(bytes.size.toULong(), total)
                    seen.add(done)
                }
            }, null)
            assertEquals(bytes.size.toULong(), seen.last())
            val sha = java.security.MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }
            assertEquals(sha, ref.sha256)
            video.delete()
            core.save(
                NewObservation(
                    station = "KZ-ALA-0042", formId = "incident", formVersion = 1u, kind = "incident",
                    payloadJson = """{"type": "ballot_stuffing", "time": "11:40"}""",
                    attachments = listOf(
                        ref.copy(
                            meta = MediaMetaInput(
                                consent = ConsentInput.NOT_ASKED, facesVisible = true,
                                ballotsVisible = false, voterListVisible = false,
                                takenFrom = "the observers' bench", note = null,
                            ),
                        ),
                    ),
                    supersedes = null,
                ),
            )
            assertEquals(listOf(false), core.listMedia().map { it.delivered })
            val mediaSeen = CopyOnWriteArrayList<ULong>()
            val report = core.sync(object : SyncProgress {
                override fun onProgress(sent: ULong, delivered: ULong, mediaBytes: ULong) {
                    mediaSeen.add(mediaBytes)
                }
            }, null)
            assertEquals(1UL, report.delivered)
            assertEquals(1UL, report.mediaDelivered)
            assertEquals(bytes.size.toULong(), report.mediaBytesSent)
            assertEquals(bytes.size.toULong(), mediaSeen.last())
            assertEquals(listOf(true), core.listMedia().map { it.delivered })
            expect<ObserverException.InvalidInput> { core.importMedia(File(tmp, "gone.mp4").path, "video/mp4", false, null, null) }
            val export = server.cli("export", "--format", "ndjson")
            assertTrue(export, export.contains("\"consent\":\"not_asked\"") && export.contains("\"media_missing\":0"))
        }
    }

    @Test
    fun theCoresLogsReachTheAppsSinkWithoutStationPayloadOrName() {
        val marker = "Zq7MARKERq7Z"
        val lines = CopyOnWriteArrayList<String>()
        setLogSink(object : LogSink {
            override fun log(level: LogLevel, target: String, message: String) {
                lines.add("$level $target $message")
            }
        }, LogLevel.DEBUG)
        try {
            ObserverCore.open(File(tmp, "phone").path, AesKeyStore()).use { core ->
                val station = "KZ-$marker"
                core.enroll(server.code(station), "Aigerim $marker")
                repeat(3) { n ->
                    core.save(observation(station, n).copy(payloadJson = """{"n": $n, "note": "said $marker"}"""))
                }
                assertEquals(3UL, core.sync(null, null).delivered)
            }
        } finally {
            clearLogSink()
        }
        assertTrue(lines.toString(), lines.any { it.contains("sync finished") && it.contains("accepted=3") })
        assertTrue(lines.toString(), lines.any { it.contains("schema migrated") })
        assertTrue("a marker leaked: $lines", lines.none { it.contains(marker) })
    }

    @Test
    fun aStoppedSyncLeavesEveryRecordPendingOrDeliveredAndTheNextDeliversTheRest() {
        ObserverCore.open(File(tmp, "phone").path, AesKeyStore()).use { core ->
            core.enroll(server.code("KZ-ALA-0042"), null)
            repeat(450) { n -> core.save(observation("KZ-ALA-0042", n)) }
            val token = CancelToken()
            // Stopped after the first batch, as WorkManager stops a worker.
            expect<ObserverException.Cancelled> {
                core.sync(object : SyncProgress {
                    override fun onProgress(sent: ULong, delivered: ULong, mediaBytes: ULong) {
                        token.cancel()
                    }
                }, token)
            }
            val counts = core.counts()
            assertEquals(0UL, counts.inFlight)
            assertEquals(200UL, counts.delivered)
            assertEquals(250UL, counts.pending)
            val rest = core.sync(null, CancelToken())
            assertEquals(250UL, rest.delivered)
            assertEquals(OutboxCounts(0UL, 0UL, 450UL, 0UL), core.counts())
        }
    }

    @Test
    fun aPhoneWithoutALinkHandsItsRecordsToAnotherWhichDeliversThem() {
        val a = ObserverCore.open(File(tmp, "a").path, AesKeyStore())
        val b = ObserverCore.open(File(tmp, "b").path, AesKeyStore())
        a.use {
            b.use {
                a.enroll(server.code("KZ-ALA-0042"), null)
                b.enroll(server.code("KZ-ALA-0043"), null)
                repeat(3) { n -> a.save(observation("KZ-ALA-0042", n)) }
                val export = a.exportRelayBundle(16UL * 1024UL * 1024UL)
                assertEquals(3UL, export.records)
                assertEquals(0UL, export.leftOut)

                val cut = export.bundle.copyOf(export.bundle.size - 1)
                val refused = expect<ObserverException.InvalidInput> { b.importRelayBundle(cut) }
                assertTrue(refused.message!!, refused.message!!.contains("incomplete"))
                assertEquals(0UL, b.relayCount())

                val took = b.importRelayBundle(export.bundle)
                assertEquals(a.deviceId(), took.device)
                assertEquals(3UL, took.added)
                assertEquals(0UL, b.counts().pending)
                val synced = b.sync(null, null)
                assertEquals(3UL, synced.relayed)
                assertEquals(0UL, synced.relayRemaining)

                val own = a.sync(null, null)
                assertEquals(3UL, own.delivered)
                assertEquals(0UL, own.remaining)
                expect<ObserverException.InvalidInput> { a.importRelayBundle(export.bundle) }
            }
        }
    }

    @Test
    fun sharedRelayBundlesReadAlikeFromKotlin() {
        val path = System.getenv("OBSERVER_RELAY_VECTORS") ?: error("set OBSERVER_RELAY_VECTORS")
        val json = File(path)
        val text = json.readText()
        fun field(name: String) = Regex("\"$name\":\\s*\"([^\"]+)\"").find(text)!!.groupValues[1]
        val validFile = Regex("\"file\":\\s*\"(relay/valid[^\"]*)\"").find(text)!!.groupValues[1]
        val info = readRelayBundle(File(json.parentFile, validFile).readBytes())
        assertEquals(field("device"), info.device)
        assertEquals(field("org_key"), info.orgKey)
        assertEquals(listOf(1UL, 2UL, 3UL), info.seqs)
        val said = mapOf(
            "altered" to "altered after the sending phone wrote it",
            "truncated" to "incomplete",
            "not_a_bundle" to "not an Observer relay bundle",
        )
        val damaged = Regex("\"error\":\\s*\"([a-z_]+)\",\\s*\"file\":\\s*\"([^\"]+)\"").findAll(text).toList()
        assertEquals(3, damaged.size)
        for (m in damaged) {
            val e = expect<ObserverException.InvalidInput> {
                readRelayBundle(File(json.parentFile, m.groupValues[2]).readBytes())
            }
            assertTrue(e.message!!, e.message!!.contains(said.getValue(m.groupValues[1])))
        }
    }

    @Test
    fun sharedSmsReportsPackAlikeFromKotlin() {
        val path = System.getenv("OBSERVER_SMS_VECTORS") ?: error("set OBSERVER_SMS_VECTORS")
        val text = File(path).readText()
        val str = "\"((?:[^\"\\\\]|\\\\.)*)\""
        val org = unescapeJson(Regex("\"org\":\\s*$str").find(text)!!.groupValues[1])
        val record = Regex("\\{\\s*\"body\":\\s*$str,\\s*\"id\":\\s*\"[0-9a-f]{64}\",\\s*\"sig\":\\s*\"([0-9a-f]{128})\",\\s*\"texts\":\\s*\\[([^\\]]*)\\]")
        val found = record.findAll(text).toList()
        assertEquals(2, found.size)
        for (m in found) {
            val body = unescapeJson(m.groupValues[1]).toByteArray(Charsets.UTF_8)
            val sig = m.groupValues[2].chunked(2).map { it.toInt(16).toByte() }.toByteArray()
            val want = Regex(str).findAll(m.groupValues[3]).map { unescapeJson(it.groupValues[1]) }.toList()
            assertEquals(want, smsPartsForRecord(body, sig, org))
        }

        // A stored record: at most two texts of one segment, and "sent by
        // SMS" leaves it pending.
        ObserverCore.open(File(tmp, "sms-phone").path, AesKeyStore()).use { core ->
            val saved = core.save(NewObservation(
                station = "KZ-ALA-0042", formId = "access", formVersion = 1u, kind = "access",
                payloadJson = """{"event": "denied_entry", "time": "07:40", "reason_given": "аккредитация жоқ"}""",
                attachments = emptyList(), supersedes = null,
            ))
            val texts = core.smsParts(saved.id)
            assertTrue(texts.size in 1..2)
            assertTrue(texts.all { it.length <= 160 && it.startsWith("O1") })
            assertEquals(1, core.heartbeatSmsParts().size)
            assertEquals(null, core.sentBySmsAtMs(saved.id))
            core.markSentBySms(saved.id)
            assertTrue(core.sentBySmsAtMs(saved.id) != null)
            assertEquals(1UL, core.counts().pending)
        }
    }

    @Test
    fun aReportTextedToTheGatewayIsSettledByTheReceiptTextedBack() {
        val token = "kotlin-twilio-token"
        val tokenFile = File(tmp, "twilio-token").apply { writeText(token) }
        server.cli("sms", "gateways", "--twilio-token-file", tokenFile.path,
            "--twilio-url", "https://127.0.0.1:${server.port}/v1/sms/twilio", "--number", "+77010000000")
        ObserverCore.open(File(tmp, "sms-receipt-phone").path, AesKeyStore()).use { core ->
            core.enroll(server.code("KZ-ALA-0042"), "Aigerim")
            val saved = core.save(NewObservation(
                station = "KZ-ALA-0042", formId = "access", formVersion = 1u, kind = "access",
                payloadJson = """{"event": "expelled", "time": "14:20", "reason_given": "бақылаушыны шығарды"}""",
                attachments = emptyList(), supersedes = null,
            ))
            val texts = core.smsParts(saved.id)
            // In any order; nothing comes back until the report is whole.
            val answers = texts.reversed().map { viaTwilio(server, token, "+77011112233", it) }
            assertTrue(answers.dropLast(1).all { it.isEmpty() })
            val receipt = answers.last()
            assertEquals(1, receipt.size)
            core.markSentBySms(saved.id)
            assertEquals(1UL, core.counts().pending)

            val got = core.acceptSmsReceipt(receipt)
            assertEquals(listOf(saved.id), got.delivered)
            assertEquals(1u, got.newlyDelivered)
            assertEquals(0UL, core.counts().pending)
            // A report's own texts are not a receipt: refused, nothing changes.
            expect<ObserverException.InvalidInput> { core.acceptSmsReceipt(texts) }
        }
    }

    @Test
    fun sharedVectorsVerifyFromKotlin() {
        val path = System.getenv("OBSERVER_VECTORS") ?: error("set OBSERVER_VECTORS")
        val text = File(path).readText()
        val publicKey = Regex("\"public_key\":\\s*\"([^\"]+)\"").find(text)!!.groupValues[1]
        val record = Regex("\"body\":\\s*\"((?:[^\"\\\\]|\\\\.)*)\",\\s*\"id\":\\s*\"([0-9a-f]{64})\",\\s*\"seq\":\\s*\\d+,\\s*\"sig\":\\s*\"([0-9a-f]{128})\"")
        val found = record.findAll(text).toList()
        assertEquals(2, found.size)
        for (m in found) {
            val body = unescapeJson(m.groupValues[1]).toByteArray(Charsets.UTF_8)
            val sig = m.groupValues[3].chunked(2).map { it.toInt(16).toByte() }.toByteArray()
            assertEquals(m.groupValues[2], verifyRecord(publicKey, body, sig))
            sig[0] = (sig[0].toInt() xor 1).toByte()
            expect<ObserverException.Tampered> { verifyRecord(publicKey, body, sig) }
        }
    }
}

/** Decodes a JSON string literal's escapes. */
fun unescapeJson(s: String): String {
    val out = StringBuilder()
    var i = 0
    while (i < s.length) {
        val c = s[i]
        if (c != '\\') { out.append(c); i++; continue }
        when (val e = s[i + 1]) {
            'n' -> out.append('\n')
            't' -> out.append('\t')
            'r' -> out.append('\r')
            'b' -> out.append('\b')
            'f' -> out.append('\u000c')
            'u' -> { out.append(s.substring(i + 2, i + 6).toInt(16).toChar()); i += 4 }
            else -> out.append(e)
        }
        i += 2
    }
    return out.toString()
}
