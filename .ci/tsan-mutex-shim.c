// Makes Swift's `Synchronization.Mutex` visible to ThreadSanitizer on Linux. Loaded with
// LD_PRELOAD by .ci/sanitizers into the ThreadSanitizer test run (and the `service` processes
// the tests start); never part of a build.
//
// Why: `Mutex.withLock` inlines its uncontended path (a compare-exchange with acquire/release
// ordering, which TSan instruments and understands), but a contended lock or unlock goes
// through `_MutexHandle._lockSlow`, `_tryLockSlow` and `_unlockSlow` in
// libswiftSynchronization.so, which is not instrumented: a spin on a plain compare-exchange,
// then a priority-inheritance futex (FUTEX_LOCK_PI / FUTEX_UNLOCK_PI) that hands the lock over
// inside the kernel. TSan sees neither, loses the happens-before edge between the previous
// holder and the next one, and reports every access made under a contended Mutex as a data
// race (a four-thread counter incremented only inside `withLock` is enough to show it).
//
// How: these definitions interpose the three exported slow-path functions, call the real ones,
// and tell TSan what happened with `__tsan_acquire` / `__tsan_release` on the lock word, the
// same address the inlined fast path's atomics use, so both paths meet in one sync object.
// The lock's behaviour is unchanged. Outside a TSan process `__tsan_*` are absent (weak) and the
// shim only forwards.
//
// The symbols are Swift-mangled and use the Swift calling convention (`self`, the address of
// the lock word, in the swiftself register). Should a toolchain rename them or change how they
// are called, the shim would do nothing or the wrong thing; the canary in .ci/sanitizers (a
// correctly locked counter must be clean, a race beside it must be reported) then fails the
// run with a message pointing here, rather than letting either go unnoticed.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void __tsan_acquire(void *address) __attribute__((weak));
void __tsan_release(void *address) __attribute__((weak));

#define SWIFTCALL __attribute__((swiftcall))
#define SWIFTSELF __attribute__((swift_context))

#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define TRY_LOCK_SLOW "$s15Synchronization12_MutexHandleV12_tryLockSlowSbyF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"

typedef SWIFTCALL void (*lock_slow_fn)(uint32_t self_id, void *SWIFTSELF handle);
typedef SWIFTCALL bool (*try_lock_slow_fn)(void *SWIFTSELF handle);
typedef SWIFTCALL void (*unlock_slow_fn)(void *SWIFTSELF handle);

// The library's own definition, looked up once. Threads racing here store the same pointer.
static void *real(void **cache, const char *name) {
    void *function = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (function != NULL) return function;
    function = dlsym(RTLD_NEXT, name);
    if (function == NULL) {
        fprintf(stderr, "tsan-mutex-shim: %s not found: %s\n", name, dlerror());
        abort();
    }
    __atomic_store_n(cache, function, __ATOMIC_RELEASE);
    return function;
}

SWIFTCALL void shim_lock_slow(uint32_t self_id, void *SWIFTSELF handle) __asm__(LOCK_SLOW);
SWIFTCALL void shim_lock_slow(uint32_t self_id, void *SWIFTSELF handle) {
    static void *cache;
    lock_slow_fn function = (lock_slow_fn)real(&cache, LOCK_SLOW);
    function(self_id, handle);
    if (__tsan_acquire) __tsan_acquire(handle);
}

SWIFTCALL bool shim_try_lock_slow(void *SWIFTSELF handle) __asm__(TRY_LOCK_SLOW);
SWIFTCALL bool shim_try_lock_slow(void *SWIFTSELF handle) {
    static void *cache;
    try_lock_slow_fn function = (try_lock_slow_fn)real(&cache, TRY_LOCK_SLOW);
    bool locked = function(handle);
    if (locked && __tsan_acquire) __tsan_acquire(handle);
    return locked;
}

SWIFTCALL void shim_unlock_slow(void *SWIFTSELF handle) __asm__(UNLOCK_SLOW);
SWIFTCALL void shim_unlock_slow(void *SWIFTSELF handle) {
    static void *cache;
    unlock_slow_fn function = (unlock_slow_fn)real(&cache, UNLOCK_SLOW);
    if (__tsan_release) __tsan_release(handle);
    function(handle);
}
