/*
 * The floor: a JNI binding written for the echo alone, as a careful team would hand-write it,
 * in the two usual styles. Both take the input array's length, allocate the output array and
 * run proxyso_bench_echo once.
 *
 *   echoCritical  pins both arrays (GetPrimitiveArrayCritical) and hands the function their
 *                 memory: no copy besides the echo's own.
 *   echoRegion    copies the input out of the Java heap (GetByteArrayRegion) into a native
 *                 buffer, runs the echo into a second one, and copies that into the new array
 *                 (SetByteArrayRegion); the buffers are on the stack up to 4 KiB, else malloc'd.
 *
 * And `address`, the address of a direct ByteBuffer, for the benchmark's zero-copy check.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>

#include "echo.h"

/** Up to this size the region variant's two buffers live on the stack. */
#define STACK_BYTES 4096

JNIEXPORT jbyteArray JNICALL Java_dev_proxyso_bench_DirectEcho_echoCritical(JNIEnv *env,
                                                                             jclass cls,
                                                                             jbyteArray input) {
    (void)cls;
    jsize n = (*env)->GetArrayLength(env, input);
    jbyteArray output = (*env)->NewByteArray(env, n);
    if (output == NULL) {
        return NULL; /* OutOfMemoryError pending */
    }
    uint8_t *in = (*env)->GetPrimitiveArrayCritical(env, input, NULL);
    if (in == NULL) {
        return NULL;
    }
    uint8_t *out = (*env)->GetPrimitiveArrayCritical(env, output, NULL);
    if (out == NULL) {
        (*env)->ReleasePrimitiveArrayCritical(env, input, in, JNI_ABORT);
        return NULL;
    }
    proxyso_bench_echo(in, (size_t)n, out);
    (*env)->ReleasePrimitiveArrayCritical(env, output, out, 0);
    (*env)->ReleasePrimitiveArrayCritical(env, input, in, JNI_ABORT);
    return output;
}

/* The address of a direct buffer's memory, for the benchmark's zero-copy check. */
JNIEXPORT jlong JNICALL Java_dev_proxyso_bench_DirectEcho_address(JNIEnv *env, jclass cls,
                                                                   jobject buffer) {
    (void)cls;
    return (jlong)(intptr_t)(*env)->GetDirectBufferAddress(env, buffer);
}

JNIEXPORT jbyteArray JNICALL Java_dev_proxyso_bench_DirectEcho_echoRegion(JNIEnv *env, jclass cls,
                                                                           jbyteArray input) {
    (void)cls;
    jsize n = (*env)->GetArrayLength(env, input);
    jbyteArray output = (*env)->NewByteArray(env, n);
    if (output == NULL) {
        return NULL;
    }
    uint8_t stack[2 * STACK_BYTES];
    uint8_t *in = stack;
    if (n > STACK_BYTES) {
        in = malloc(2 * (size_t)n);
        if (in == NULL) {
            jclass oom = (*env)->FindClass(env, "java/lang/OutOfMemoryError");
            if (oom != NULL) {
                (*env)->ThrowNew(env, oom, "echoRegion: no native buffer");
            }
            return NULL;
        }
    }
    uint8_t *out = in + (n > STACK_BYTES ? (size_t)n : STACK_BYTES);
    (*env)->GetByteArrayRegion(env, input, 0, n, (jbyte *)in);
    size_t written = proxyso_bench_echo(in, (size_t)n, out);
    (*env)->SetByteArrayRegion(env, output, 0, (jsize)written, (const jbyte *)out);
    if (in != stack) {
        free(in);
    }
    return output;
}
