/* A valgrind preload for tests/bench/sse_memory.py --profile: mcpgate's global allocator is
   mimalloc, statically linked, which valgrind's heap tools do not see. These replacements send
   the four entry points Rust's GlobalAlloc uses (mi_malloc_aligned, mi_zalloc_aligned,
   mi_realloc_aligned, mi_free) to libc's malloc family, which DHAT and massif intercept.
   "NONE" is valgrind's soname for the main executable. Built by sse_memory.py with
   `gcc -shared -fPIC -O1`. */
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *_vgr00000ZU_NONE_mi_malloc_aligned(size_t size, size_t align) {
    return align <= 16 ? malloc(size) : memalign(align, size);
}

void *_vgr00000ZU_NONE_mi_zalloc_aligned(size_t size, size_t align) {
    if (align <= 16) return calloc(1, size);
    void *p = memalign(align, size);
    if (p) memset(p, 0, size);
    return p;
}

void *_vgr00000ZU_NONE_mi_realloc_aligned(void *p, size_t size, size_t align) {
    if (align <= 16) return realloc(p, size);
    void *n = memalign(align, size);
    if (n && p) {
        size_t old = malloc_usable_size(p);
        memcpy(n, p, old < size ? old : size);
        free(p);
    }
    return n;
}

void _vgr00000ZU_NONE_mi_free(void *p) { free(p); }
