// The SDK as an Android team calls it, compiled against the generated
// Kotlin bindings and run on the JVM (JNA loads libfield_ffi): a store
// opened, a morning of fixes recorded, a case reported with photo bytes,
// the catalog searched, typed errors naming the field, and the async sync
// refusing an unenrolled handset. Exits non-zero on the first failure.
import kotlinx.coroutines.runBlocking
import uniffi.field_ffi.*

fun check(ok: Boolean, what: String) {
    if (!ok) {
        System.err.println("FAILED: $what")
        kotlin.system.exitProcess(1)
    }
}

fun main(args: Array<String>) {
    val device = Device.open(args[0])
    val start = 1_772_409_600_000L // 2026-03-02T00:00:00Z, 08:00 in Hangzhou
    device.startRecorder()
    val fixes = (0 until 120).map { i ->
        Fix(start + i * 5_000L, 120.26 + i * 0.00001, 30.19, 5.0, 1.2, 90.0, "gps", false)
    }
    val recorded = device.recordFixes(fixes)
    check(recorded.recorded == 120UL, "120 fixes journalled, got ${recorded.recorded}")
    val mocked = device.recordFix(Fix(start + 700_000L, 120.27, 30.19, 5.0, null, null, "gps", true))
    check(mocked.skippedMock == 1UL, "a mock fix is kept out of the track")
    device.stopRecorder()
    check(device.gaps().any { it.cause == "mock" }, "the mocked stretch is a gap")

    val hits = device.catalogSearch("井盖", 5U)
    check(hits.isNotEmpty() && hits.all { it.nameZh.contains("井盖") }, "catalog search by Chinese name: $hits")
    val png = args[1].let { java.io.File(it).readBytes() }
    val id = device.reportCase(
        CaseReport("SJ0102", 120.2605, 30.1895, "井盖破损", listOf(Photo.Bytes(png)), null, listOf(), false)
    )
    check(device.cases().any { it.id == id }, "the reported case is listed")

    try {
        device.recordFix(Fix(start + 900_000L, 120.26, 200.0, null, null, null, null, false))
        check(false, "a latitude of 200 is refused")
    } catch (e: FieldException.Invalid) {
        check(e.field.endsWith("lat"), "the error names the field: ${e.field}")
    }

    val status = device.status()
    check(status.pendingChanges > 0UL && status.user == null, "status before enrolment: $status")
    try {
        runBlocking { device.sync(null, null) }
        check(false, "an unenrolled handset cannot sync")
    } catch (e: FieldException.NotEnrolled) {
    }
    check(device.digest().isNotEmpty(), "a digest")
    device.close()
    println("kotlin sdk: ok")
}
