// The Observer Android library: the generated uniffi bindings
// (src/main/kotlin/org/observer/core), the native library built by
// ../build-native.sh into src/main/jniLibs, and the Android glue
// (Keystore, WorkManager, connectivity) in org.observer.android.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.observer.android"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // uniffi's Kotlin talks to the native library through JNA (the AAR
    // carries JNA's own native parts for each ABI).
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
}
