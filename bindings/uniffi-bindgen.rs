//! uniffi's generator, built from the same uniffi version as the library so
//! the generated Kotlin and Swift always match it.

fn main() {
    uniffi::uniffi_bindgen_main()
}
